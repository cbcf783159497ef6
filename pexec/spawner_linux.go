package pexec

import (
	"os/exec"
	"runtime"
	"sync"
)

// The parent-death signal (SysProcAttr.Pdeathsig, PR_SET_PDEATHSIG) is sent
// when the thread that forked the child exits, not the process
// (golang/go#27505): Go retires threads freely, for one when a goroutine
// that locked its thread returns, so with os/exec children die at random
// while their parent lives. pexec starts every child that asks for
// Pdeathsig from one thread that never exits: a goroutine locked to its
// thread for the life of the process, fed start requests. The signal then
// comes exactly when the parent process dies. Children without Pdeathsig
// are started by the calling goroutine, as by os/exec.

// spawnThread returns the channel of the goroutine that runs start
// requests on its own thread, starting it on first use.
var spawnThread = sync.OnceValue(func() chan<- func() {
	reqs := make(chan func())
	go func() {
		// Never unlocked, and the goroutine never returns: the thread
		// lives as long as the process.
		runtime.LockOSThread()
		for req := range reqs {
			req()
		}
	}()
	return reqs
})

// startEngine starts in, from the spawn thread if it asks for a
// parent-death signal.
func startEngine(in *exec.Cmd) error {
	if in.SysProcAttr == nil || in.SysProcAttr.Pdeathsig == 0 {
		return in.Start()
	}
	errc := make(chan error, 1)
	spawnThread() <- func() { errc <- in.Start() }
	return <-errc
}
