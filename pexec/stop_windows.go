package pexec

import "syscall"

// ctrlBreakStep is the stop ladder's graceful step on Windows.
var ctrlBreakStep = []syscall.Signal{syscall.SIGINT}

// gracefulSignals returns the stop ladder's graceful step on Windows:
// os.Interrupt, which is CTRL_BREAK_EVENT to the console process group of
// a child started with CREATE_NEW_PROCESS_GROUP (see Handle.Signal). Any
// other child has none: Windows has no signal that asks a console program
// to stop (WM_CLOSE reaches only programs with a window), so the ladder
// kills at once.
func (h *Handle) gracefulSignals() []syscall.Signal {
	if h.sys.group {
		return ctrlBreakStep
	}
	return nil
}
