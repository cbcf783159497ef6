package pexec

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
)

// Mode says how a [Handle] refers to its process.
type Mode int

const (
	// ModePidFD means the Handle holds a pidfd: it refers to one process
	// for ever and cannot be confused with a later process that reuses the
	// PID. Linux 5.3+.
	ModePidFD Mode = iota + 1
	// ModePID means the Handle holds only a PID (other systems, older
	// kernels, or pidfd syscalls blocked by seccomp). For a child, pexec
	// still refuses to signal once the child has been reaped, but it cannot
	// defend against another waiter in the same process reaping the child.
	ModePID
	// ModeHandle means the Handle holds a Windows process HANDLE: it
	// refers to one process for ever, and Windows does not reuse the PID
	// while the HANDLE is open. Every Handle on Windows.
	ModeHandle
)

// String returns "pidfd", "pid" or "handle".
func (m Mode) String() string {
	switch m {
	case ModePidFD:
		return "pidfd"
	case ModePID:
		return "pid"
	case ModeHandle:
		return "handle"
	}
	return "Mode(" + fmt.Sprint(int(m)) + ")"
}

// phase is where a Handle is in its life. It only moves forward, in
// [Handle.to], which is also the only place that closes the channels
// waiters select on:
//
//	running ──> exited ──> reaping ──> settled
//	   │           │          │           │
//	   └───────────┴──────────┴───────────┴──> closed
//
// running: not known to have exited. exited: the process has exited (a
// zombie, or reaped by someone), its status not yet known. reaping:
// Cmd.Wait is reaping the child without having seen its status first (a
// tracer or a foreign reaper held it); the outcome is Cmd.Wait's to record.
// settled: the outcome (a Status, or an error saying why there is none) is
// final. closed: Close was called; every method reports os.ErrClosed.
// Any phase may be skipped (a process seen exiting with its status goes
// from running to settled at once).
type phase int32

const (
	phaseRunning phase = iota
	phaseExited
	phaseReaping
	phaseSettled
	phaseClosed
)

// role says who reaps the process.
type role uint8

const (
	// roleCmd: a Cmd's child. Cmd.Wait reaps it; the Handle only observes
	// the exit (waitid with WNOWAIT).
	roleCmd role = iota + 1
	// roleOwn: Open, Parent, FromFile, PeerHandle, OpenID. Wait reaps the
	// process if it is the caller's child.
	roleOwn
	// roleObserve: FromProcess. The os.Process's owner reaps; the Handle
	// only observes.
	roleObserve
)

// closedChan is a channel that is always closed: what a phase's channel is
// when nobody asked for it before the phase was reached.
var closedChan = func() chan struct{} { c := make(chan struct{}); close(c); return c }()

// A Handle refers to one process. It is obtained from [Cmd.Handle] for a
// child started by pexec, or from [Open], [OpenID], [FromProcess],
// [FromFile], [PeerHandle] and [Parent]. All methods are safe for
// concurrent use, and a nil or zero Handle returns errors rather than
// panicking.
//
// In [ModePidFD] the Handle of a [Cmd] child uses the pidfd that the child's
// os.Process holds, which the reap in Cmd.Wait closes (as with os/exec); any
// other Handle owns a pidfd, closed by [Handle.Close] or when the Handle is
// garbage collected. Every use of the descriptor holds a reference, so
// closing it while another goroutine signals can never make that goroutine
// use a recycled descriptor number.
type Handle struct {
	pid  int
	mode Mode
	role role
	sys  sysHandle // per-OS state (the pidfd on Linux)
	tree treeCtl   // the child's tree, for a Cmd started with Tree set

	state atomic.Int32 // the phase; written only by to, under mu

	mu      sync.Mutex
	res     result        // the outcome, once settled
	done    chan struct{} // closed on leaving phaseRunning (made on demand)
	settled chan struct{} // closed on reaching phaseSettled (made on demand)
	closed  chan struct{} // closed on reaching phaseClosed (made on demand)

	watchOnce sync.Once // starts Done's watcher

	goneOnce sync.Once     // starts gone's watcher
	goneC    chan struct{} // see gone
	ladder   *ladder       // the stop ladder, once a stop has begun (under mu)
}

func newHandle(pid int, mode Mode, r role) *Handle {
	return &Handle{pid: pid, mode: mode, role: r}
}

// phase returns the Handle's phase.
func (h *Handle) phase() phase { return phase(h.state.Load()) }

// result is a process's outcome: a Status; or the os.ProcessState of
// Cmd.Wait's reap, from which a Status is made when first asked for (the
// reap itself allocates nothing more than os/exec's); or an error saying
// why there is no status.
type result struct {
	st  *Status
	ps  *os.ProcessState
	err error
}

// to moves h forward to phase p, recording the outcome r when p is
// phaseSettled, and closes the channels of the phases it passes. A move
// backwards, or out of phaseClosed, is ignored; so is a second outcome,
// except that the os.ProcessState of Cmd.Wait's reap replaces an equal
// status observed before the reap. It reports whether the phase changed.
func (h *Handle) to(p phase, r result) bool { return h.move(p, p, r) }

// move is [Handle.to], restricted to a Handle whose phase is at most from:
// an observation made by a waiter must not settle an outcome that Cmd.Wait
// has taken over (phaseReaping).
func (h *Handle) move(p, from phase, r result) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.moveLocked(p, from, r)
}

// moveLocked is [Handle.move] for a caller that holds h.mu.
func (h *Handle) moveLocked(p, from phase, r result) bool {
	cur := h.phase()
	if cur == phaseSettled && p == phaseSettled && r.ps != nil && h.res.ps == nil && h.res.err == nil {
		h.res = result{ps: r.ps}
	}
	if p <= cur || cur > from {
		return false
	}
	if p == phaseSettled {
		h.res = r
	}
	// The phase first: a waiter woken by a channel reads it, without mu.
	h.state.Store(int32(p))
	if cur == phaseRunning && p != phaseClosed {
		closeChan(&h.done)
	}
	switch p {
	case phaseSettled:
		closeChan(&h.settled)
	case phaseClosed:
		closeChan(&h.closed)
	}
	return true
}

// closeChan closes *c, or marks it closed if nobody made it yet.
func closeChan(c *chan struct{}) {
	if *c == nil {
		*c = closedChan
		return
	}
	close(*c)
}

// isClosed reports whether c is a closed channel (false for nil).
func isClosed(c <-chan struct{}) bool {
	select {
	case <-c:
		return true
	default:
		return false
	}
}

// chanOf returns *c, making it first if needed; the caller holds h.mu.
func chanOf(c *chan struct{}) chan struct{} {
	if *c == nil {
		*c = make(chan struct{})
	}
	return *c
}

// waitChans returns the channels closed when the process exits, when the
// outcome is settled and when h is closed.
func (h *Handle) waitChans() (done, settled, closed <-chan struct{}) {
	h.mu.Lock()
	defer h.mu.Unlock()
	return chanOf(&h.done), chanOf(&h.settled), chanOf(&h.closed)
}

// closedC returns the channel closed when h is closed.
func (h *Handle) closedC() <-chan struct{} {
	h.mu.Lock()
	defer h.mu.Unlock()
	return chanOf(&h.closed)
}

// outcome returns the settled outcome.
func (h *Handle) outcome() (*Status, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.res.st == nil && h.res.ps != nil {
		h.res.st = statusFromState(h.res.ps)
	}
	return h.res.st, h.res.err
}

// markExited records that the process has exited.
func (h *Handle) markExited() { h.to(phaseExited, result{}) }

// hasExited reports whether the process is known to have exited.
func (h *Handle) hasExited() bool { p := h.phase(); return p > phaseRunning && p < phaseClosed }

// check returns the error every method reports for a nil, zero or closed
// Handle.
func (h *Handle) check() error {
	if h == nil || h.mode == 0 {
		return errNilHandle
	}
	if h.phase() == phaseClosed {
		return os.ErrClosed
	}
	return nil
}

// Pid returns the process ID the Handle refers to, or -1 for a nil Handle.
// Prefer the Handle's methods to using the PID: the PID may be reused once
// the process has been reaped.
func (h *Handle) Pid() int {
	if h == nil || h.mode == 0 {
		return -1
	}
	return h.pid
}

// Mode reports whether the Handle holds a pidfd, a Windows process HANDLE,
// or only a PID.
func (h *Handle) Mode() Mode {
	if h == nil {
		return 0
	}
	return h.mode
}

// Alive reports whether the process is still running. It never blocks and
// sends no signal: in ModePidFD it polls the pidfd, in ModePID it asks
// waitid(WNOHANG|WNOWAIT), which does not reap. A process that has exited
// but not been reaped (a zombie) is not alive. Alive returns false for a nil
// or closed Handle, also when Close races with it.
func (h *Handle) Alive() bool {
	if h.check() != nil || h.phase() != phaseRunning {
		return false
	}
	if h.sysExited() {
		h.markExited()
	}
	return h.phase() == phaseRunning
}

// Signal sends sig to the process. It returns an error for which
// errors.Is(err, [os.ErrProcessDone]) holds once the process has exited, and
// [os.ErrClosed] after [Handle.Close]. The signal can never reach another
// process that reused the PID. sig must be a [syscall.Signal]; 0 checks
// deliverability without sending anything.
func (h *Handle) Signal(sig os.Signal) error {
	s, err := h.signalArg(sig)
	if err != nil {
		return err
	}
	return h.sysSignal(s)
}

// signalArg checks what every signalling method checks first: a usable
// Handle, a syscall.Signal, a process not known to have exited.
func (h *Handle) signalArg(sig os.Signal) (syscall.Signal, error) {
	if err := h.check(); err != nil {
		return 0, err
	}
	s, ok := sig.(syscall.Signal)
	if !ok {
		return 0, fmt.Errorf("pexec: unsupported signal type %T: %w", sig, errors.ErrUnsupported)
	}
	if h.hasExited() {
		return 0, os.ErrProcessDone
	}
	return s, nil
}

// Kill sends SIGKILL to the process, like Signal(os.Kill).
func (h *Handle) Kill() error { return h.Signal(os.Kill) }

// Done returns a channel that is closed once the process has exited. It is
// usable in a select over many handles; waiting on it holds no OS thread in
// ModePidFD. The channel of a nil Handle, or of a Handle closed before the
// process exited, is never closed.
func (h *Handle) Done() <-chan struct{} {
	if h == nil || h.mode == 0 {
		return nil
	}
	done, _, closed := h.waitChans()
	h.watchOnce.Do(func() {
		if h.phase() != phaseRunning {
			return
		}
		go func() {
			if h.awaitExit(nil, closed) == nil {
				h.markExited()
			}
		}()
	})
	return done
}

// Wait waits for the process to exit and returns its status. Any number of
// goroutines may call Wait, before or after [Cmd.Wait]: all observe the same
// outcome and the process is reaped exactly once. For a child started by
// [Cmd], Cmd.Wait is the one that reaps it (it must still be called, as with
// os/exec, to release its pipes); Handle.Wait only observes the exit and
// returns as soon as the child has exited, without waiting for Cmd.Wait or
// for the copying of the child's output.
//
// When the process was reaped by someone else, Wait returns the status read
// from the pidfd (Linux 6.15+) or an error wrapping [ErrStatusUnavailable].
func (h *Handle) Wait() (*Status, error) {
	return h.WaitContext(context.Background())
}

// WaitContext is like [Handle.Wait] but returns early, with an error wrapping
// ctx.Err(), when ctx is done first, whatever it was waiting for. The process
// is then left running and can still be waited for. A nil ctx is treated as
// [context.Background].
func (h *Handle) WaitContext(ctx context.Context) (*Status, error) {
	if err := h.check(); err != nil {
		return nil, err
	}
	var stop <-chan struct{}
	if ctx != nil {
		stop = ctx.Done()
	}
	for {
		var err error
		switch h.phase() {
		case phaseClosed:
			return nil, os.ErrClosed
		case phaseSettled:
			return h.outcome()
		case phaseReaping:
			// Cmd.Wait records the outcome when its reap returns.
			_, settled, closed := h.waitChans()
			select {
			case <-settled:
			case <-closed:
			case <-stop:
				err = errStopped
			}
		default:
			err = h.sysWait(stop)
		}
		switch {
		case err == nil:
		case h.phase() == phaseClosed:
			return nil, os.ErrClosed
		case err == errStopped && ctx != nil && ctx.Err() != nil:
			return nil, fmt.Errorf("pexec: wait for pid %d: %w", h.pid, ctx.Err())
		default:
			return nil, err
		}
	}
}

// errStopped is what the waiting steps return when their stop channel (a
// context, or the Handle's closing) ends the wait.
var errStopped = errors.New("pexec: wait stopped")

// Close releases the Handle's pidfd (a Cmd child's pidfd belongs to its
// os.Process, released by Cmd.Wait). It is idempotent: the first call
// returns the result of closing, later calls return nil. Afterwards every
// method returns an error for which errors.Is(err, [os.ErrClosed]) holds
// (Alive returns false), and waiters blocked in Wait return it. Close does
// not affect the process itself, nor [Cmd.Wait], nor the Cmd's
// cancellation. If the user calls cmd.Process.Release, which closes the
// os.Process's pidfd once nobody uses it, the Handle of that child is
// closed as by Close when pexec next uses the descriptor: the next call on
// the Handle reports os.ErrClosed, and so do waits in progress from then
// on. A wait in progress that sees the process exit first, holding the
// descriptor, returns the process's status.
func (h *Handle) Close() error {
	if h == nil || h.mode == 0 {
		return errNilHandle
	}
	if !h.to(phaseClosed, result{}) {
		return nil
	}
	return h.sysClose()
}
