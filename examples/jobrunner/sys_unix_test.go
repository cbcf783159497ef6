//go:build !windows

package main

import (
	"syscall"
	"time"

	"github.com/pexec-dev/pexec/pexec"
	"github.com/pexec-dev/pexec/pexectest"
)

// setsid makes c start in a session of its own.
func setsid(c *pexec.Cmd) { c.SysProcAttr = &syscall.SysProcAttr{Setsid: true} }

// shellTests are TestShell's rows: command lines, a timeout, and the
// outcome of each.
var shellTests = []struct {
	line    string
	timeout time.Duration
	want    pexectest.Outcome
}{
	{"echo hello", time.Minute, pexectest.Outcome{Stdout: "hello\n"}},
	{"echo oops >&2; exit 3", time.Minute, pexectest.Outcome{Exit: 3, Stderr: "oops\n"}},
	// The shell's background job is in its tree: Run's timeout kills it too.
	{"sleep 60 & sleep 60", 300 * time.Millisecond, pexectest.Outcome{Exit: -1, Signal: "SIGKILL", TimedOut: true, Killed: pexectest.KilledTree}},
}
