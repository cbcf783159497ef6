package main

import (
	"time"

	"github.com/pexec-dev/pexec/pexec"
	"github.com/pexec-dev/pexec/pexectest"
)

// setsid does nothing on Windows, which has no sessions: the rows that use
// it are skipped.
func setsid(*pexec.Cmd) {}

// shellTests are TestShell's rows: command lines, a timeout, and the
// outcome of each.
var shellTests = []struct {
	line    string
	timeout time.Duration
	want    pexectest.Outcome
}{
	{"echo hello", time.Minute, pexectest.Outcome{Stdout: "hello\r\n"}},
	{"exit 3", time.Minute, pexectest.Outcome{Exit: 3}},
}
