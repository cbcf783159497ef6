//go:build !windows

package pexec

import "syscall"

// termCont is the stop ladder's graceful step on Unix.
var termCont = []syscall.Signal{syscall.SIGTERM, syscall.SIGCONT}

// gracefulSignals returns the stop ladder's graceful step: SIGTERM, then
// SIGCONT, so that a stopped process can act on the SIGTERM.
func (h *Handle) gracefulSignals() []syscall.Signal { return termCont }
