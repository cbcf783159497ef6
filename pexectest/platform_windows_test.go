package pexectest_test

import "github.com/pexec-dev/pexec/pexectest"

// How a process killed with os.Kill ends on Windows: TerminateProcess with
// exit code 1, as os/exec's Kill; Windows has no signal statuses.
var (
	killedStatus  = "exit status 1"
	killedOutcome = pexectest.Outcome{Exit: 1}
)

// noSuchProgram is the error of running path, which does not exist: on
// Windows os/exec looks it up first.
func noSuchProgram(path string) string {
	return `exec: "` + path + `": executable file not found in %PATH%`
}

// startCleanupHere holds the rows of TestStartCleanup that differ on
// Windows: there is no SIGTERM, so Start's clean-up (Handle.Stop, whose
// only step there is the kill for a child without
// CREATE_NEW_PROCESS_GROUP) kills at once, and a process cannot send
// itself SIGTERM.
var startCleanupHere = map[string]cleanupRow{
	"stops gracefully":             {status: killedStatus, log: "(or cannot get SIGTERM here); killed"},
	"kills after the grace period": {status: killedStatus, log: "did not exit within 50ms of SIGTERM"},
	"unexpected signal":            {skip: "Windows has no SIGTERM a process can send itself"},
}
