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
// Pdeathsig from threads that never exit: goroutines locked to their
// threads for the life of the process, fed start requests. The signal then
// comes exactly when the parent process dies. There are as many of these
// threads as concurrent such Starts have needed, up to GOMAXPROCS (so that
// concurrent Starts overlap as they do with os/exec, where only the fork
// itself is serialized); they are made on demand and then kept. Children
// without Pdeathsig are started by the calling goroutine, as by os/exec.

var spawners struct {
	mu   sync.Mutex
	n    int         // spawn threads made
	reqs chan func() // taken by an idle spawn thread
}

// onSpawnThread runs fn on a spawn thread and returns when it has run.
func onSpawnThread(fn func()) {
	done := make(chan struct{})
	req := func() { fn(); close(done) }
	s := &spawners
	s.mu.Lock()
	if s.reqs == nil {
		s.reqs = make(chan func())
	}
	reqs := s.reqs
	select {
	case reqs <- req: // an idle spawn thread took it
		s.mu.Unlock()
	default:
		if s.n < max(2, runtime.GOMAXPROCS(0)) {
			s.n++
			s.mu.Unlock()
			go spawnLoop(req, reqs)
		} else {
			s.mu.Unlock()
			reqs <- req
		}
	}
	<-done
}

// spawnLoop locks its goroutine to its thread for ever, runs first, then
// every request it takes.
func spawnLoop(first func(), reqs <-chan func()) {
	// Never unlocked, and the goroutine never returns: the thread lives as
	// long as the process.
	runtime.LockOSThread()
	first()
	for req := range reqs {
		req()
	}
}

// startEngine starts in, from a spawn thread if it asks for a parent-death
// signal.
func startEngine(in *exec.Cmd) error {
	if in.SysProcAttr == nil || in.SysProcAttr.Pdeathsig == 0 {
		return in.Start()
	}
	var err error
	onSpawnThread(func() { err = in.Start() })
	return err
}
