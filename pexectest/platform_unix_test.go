//go:build unix

package pexectest_test

import "github.com/pexec-dev/pexec/pexectest"

// How a process killed with os.Kill ends here: by SIGKILL.
var (
	killedStatus  = "signal: killed"
	killedOutcome = pexectest.Outcome{Exit: -1, Signal: "SIGKILL"}
)

// noSuchProgram is the error of running path, which does not exist.
func noSuchProgram(path string) string {
	return "fork/exec " + path + ": no such file or directory"
}

// startCleanupHere holds the rows of TestStartCleanup that differ on this
// system: none on Unix.
var startCleanupHere = map[string]cleanupRow{}
