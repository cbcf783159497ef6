package testhelper

import (
	"os"
	"os/signal"
	"syscall"
)

// DefaultChildSignals gives the test binary's children the default action
// for SIGHUP and SIGINT even when the binary itself was started with them
// ignored (by nohup, or as a background job of a shell without job
// control): an ignored signal stays ignored across exec, and the Go runtime
// leaves these two ignored when it finds them so, so without this a child
// that a test ends with SIGHUP would outlive it. The binary keeps ignoring
// them: it catches and drops them, and a Go program's children get the
// default action for every signal it catches.
func DefaultChildSignals() {
	dropped := make(chan os.Signal, 1) // never read: the signal package drops what does not fit
	for _, sig := range []os.Signal{syscall.SIGHUP, syscall.SIGINT} {
		if signal.Ignored(sig) {
			signal.Notify(dropped, sig)
		}
	}
}
