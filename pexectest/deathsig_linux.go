package pexectest

import (
	"syscall"

	"github.com/pexec-dev/pexec/pexec"
)

// setDeathSignal makes cmd's process get SIGKILL when the test process
// dies (SysProcAttr.Pdeathsig), unless the caller set a signal. The
// caller's SysProcAttr is copied, not modified: it may be shared.
func setDeathSignal(cmd *pexec.Cmd) {
	var attr syscall.SysProcAttr
	if cmd.SysProcAttr != nil {
		if cmd.SysProcAttr.Pdeathsig != 0 {
			return
		}
		attr = *cmd.SysProcAttr
	}
	attr.Pdeathsig = syscall.SIGKILL
	cmd.SysProcAttr = &attr
}
