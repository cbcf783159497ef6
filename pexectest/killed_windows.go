package pexectest

import (
	"github.com/pexec-dev/pexec/pexec"
	"golang.org/x/sys/windows"
)

// killedBy reports whether the stop ladder's kill ended cmd's process,
// whose status is st. Windows has no signal statuses: a process that pexec
// kills exits with code 1 (TerminateProcess, as os/exec's Kill). Without
// CREATE_NEW_PROCESS_GROUP the ladder has no graceful step and kills at
// once, so a process it found running was killed; with it, the process may
// have exited on the CTRL_BREAK_EVENT, and exit code 1 is taken for the
// kill.
func killedBy(cmd *pexec.Cmd, st *pexec.Status) bool {
	if a := cmd.SysProcAttr; a == nil || a.CreationFlags&windows.CREATE_NEW_PROCESS_GROUP == 0 {
		return true
	}
	return st.ExitCode() == 1
}
