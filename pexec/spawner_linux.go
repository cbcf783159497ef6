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
//
// A child also inherits what the forking thread holds apart from the other
// threads (threadState): a network namespace entered with setns on a locked
// thread, a CPU affinity, a per-thread seccomp filter, an SELinux exec
// label... A spawn thread starts the child only if its state is the calling
// thread's; otherwise the calling thread starts it, exactly as os/exec
// would, and the signal then follows that thread, as with os/exec. The
// child's environment is never other than os/exec would make it.

var spawners struct {
	mu   sync.Mutex
	n    int                // spawn threads made
	reqs chan *spawnRequest // taken by an idle spawn thread
}

// spawnRequest asks a spawn thread to run start if its state is caller's.
type spawnRequest struct {
	caller *threadState
	start  func()
	ran    bool
	done   chan struct{}
}

// onSpawnThread runs start on a spawn thread whose state is caller's, and
// reports whether it did.
func onSpawnThread(caller *threadState, start func()) bool {
	req := &spawnRequest{caller: caller, start: start, done: make(chan struct{})}
	s := &spawners
	s.mu.Lock()
	if s.reqs == nil {
		s.reqs = make(chan *spawnRequest)
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
	<-req.done
	return req.ran
}

// spawnLoop locks its goroutine to its thread for ever, serves first, then
// every request it takes.
func spawnLoop(first *spawnRequest, reqs <-chan *spawnRequest) {
	// Never unlocked, and the goroutine never returns: the thread lives as
	// long as the process.
	runtime.LockOSThread()
	own := readThreadState()
	serve := func(req *spawnRequest) {
		if !own.same(req.caller) {
			// The process may have changed since (an affinity set for
			// every thread): look again.
			own = readThreadState()
		}
		if req.ran = own.same(req.caller); req.ran {
			req.start()
		}
		close(req.done)
	}
	serve(first)
	for req := range reqs {
		serve(req)
	}
}

// startEngine starts in, from a spawn thread if it asks for a parent-death
// signal and the calling thread holds nothing a child inherits that the
// spawn threads do not.
func startEngine(in *exec.Cmd) error {
	if in.SysProcAttr == nil || in.SysProcAttr.Pdeathsig == 0 {
		return in.Start()
	}
	// Locked while the state is read, so that it is one thread's. A
	// goroutine that the caller locked to a thread stays on it and, if
	// the spawn threads decline, forks there; any other forks wherever it
	// runs, as with os/exec. The lock is not held while a spawn thread
	// works, so that concurrent Starts hold no thread each meanwhile.
	runtime.LockOSThread()
	caller := readThreadState()
	runtime.UnlockOSThread()
	var err error
	if onSpawnThread(&caller, func() { err = in.Start() }) {
		return err
	}
	return in.Start()
}
