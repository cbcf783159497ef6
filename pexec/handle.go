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
)

// String returns "pidfd" or "pid".
func (m Mode) String() string {
	switch m {
	case ModePidFD:
		return "pidfd"
	case ModePID:
		return "pid"
	}
	return "Mode(" + fmt.Sprint(int(m)) + ")"
}

// A Handle refers to one process. It is obtained from [Cmd.Handle] for a
// child started by pexec. All methods are safe for concurrent use, and a
// nil or zero Handle returns errors rather than panicking.
//
// In [ModePidFD] the Handle of a [Cmd] child uses the pidfd that the child's
// os.Process holds, which the reap in Cmd.Wait closes (as with os/exec); a
// Handle from [Open], [Parent], [PeerHandle] or [FromFile] owns a pidfd,
// closed by [Handle.Close] or when the Handle is garbage collected. Every
// use of the descriptor holds a reference, so closing it while another
// goroutine signals can never make that goroutine use a recycled descriptor
// number.
type Handle struct {
	pid  int
	mode Mode
	// cmdReaps reports that reaping belongs to Cmd.Wait: Handle.Wait then
	// observes the exit without reaping (waitid with WNOWAIT).
	cmdReaps bool

	sys sysHandle // per-OS state (the pidfd on Linux)

	closeOnce sync.Once
	closed    atomic.Bool
	closedCh  chan struct{}

	exited    atomic.Bool   // the process is known to have exited
	done      chan struct{} // closed once the process has exited
	watchOnce sync.Once

	// gate guards PID-mode operations against the reap: signals and
	// waitid(P_PID) run under the read lock, and the reap is marked under the
	// write lock, so no PID-mode operation can run after the reap (when the
	// PID may already belong to another process).
	gate   sync.RWMutex
	reaped bool

	mu          sync.Mutex
	status      *Status       // the outcome, once known
	reapStarted bool          // Cmd.Wait has begun to reap the child
	reapDone    chan struct{} // closed when Cmd.Wait has reaped the child
}

func newHandle(pid int, mode Mode, cmdReaps bool) *Handle {
	return &Handle{
		pid:      pid,
		mode:     mode,
		cmdReaps: cmdReaps,
		closedCh: make(chan struct{}),
		done:     make(chan struct{}),
		reapDone: make(chan struct{}),
	}
}

// check returns the error every method reports for a nil, zero or closed
// Handle.
func (h *Handle) check() error {
	if h == nil || h.done == nil {
		return errNilHandle
	}
	if h.closed.Load() {
		return os.ErrClosed
	}
	return nil
}

// Pid returns the process ID the Handle refers to, or -1 for a nil Handle.
// Prefer the Handle's methods to using the PID: the PID may be reused once
// the process has been reaped.
func (h *Handle) Pid() int {
	if h == nil || h.done == nil {
		return -1
	}
	return h.pid
}

// Mode reports whether the Handle holds a pidfd or only a PID.
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
// or closed Handle.
func (h *Handle) Alive() bool {
	if h.check() != nil || h.exited.Load() {
		return false
	}
	if h.sysExited() {
		h.exited.Store(true)
		return false
	}
	return true
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
	// A Close racing the signal surfaces as os.ErrClosed from h.control.
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
	if h.exited.Load() {
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
	if h == nil || h.done == nil {
		return nil
	}
	h.watch()
	return h.done
}

// watch starts, once, the goroutine that closes h.done when the process
// exits.
func (h *Handle) watch() {
	h.watchOnce.Do(func() {
		if h.exited.Load() {
			close(h.done)
			return
		}
		go func() {
			if h.sysWatch() {
				h.exited.Store(true)
				close(h.done)
			}
		}()
	})
}

// awaitExit returns once the process has exited or the Handle is closed,
// like a receive from Done. Where it can (ModePidFD) it waits in the calling
// goroutine itself, so that the exit path has no watch goroutine to start
// and no hand-off from it: Cmd.Wait uses it.
func (h *Handle) awaitExit() {
	if !h.exited.Load() && h.sysAwaitExit() {
		h.exited.Store(true)
		// Close done unless a watch has started (it closes done itself).
		h.watchOnce.Do(func() { close(h.done) })
		return
	}
	select {
	case <-h.Done():
	case <-h.closedCh:
	}
}

// Wait waits for the process to exit and returns its status. Any number of
// goroutines may call Wait, before or after [Cmd.Wait]: all observe the same
// outcome and the process is reaped exactly once. For a child started by
// [Cmd], Cmd.Wait is the one that reaps it (it must still be called, as with
// os/exec, to release its pipes); Handle.Wait only observes the exit.
//
// When the process was reaped by someone else, Wait returns the status read
// from the pidfd (Linux 6.15+) or an error wrapping [ErrStatusUnavailable].
func (h *Handle) Wait() (*Status, error) {
	return h.WaitContext(context.Background())
}

// WaitContext is like [Handle.Wait] but returns early, with an error wrapping
// ctx.Err(), when ctx is done first. The process is then left running and can
// still be waited for.
func (h *Handle) WaitContext(ctx context.Context) (*Status, error) {
	if err := h.check(); err != nil {
		return nil, err
	}
	if st := h.cachedStatus(); st != nil {
		return st, nil
	}
	h.watch()
	select {
	case <-h.done:
	case <-h.closedCh:
		return nil, os.ErrClosed
	case <-ctx.Done():
		return nil, fmt.Errorf("pexec: wait for pid %d: %w", h.pid, ctx.Err())
	}
	return h.collect(ctx)
}

func (h *Handle) cachedStatus() *Status {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.status
}

// collect returns the status of an exited process, obtaining it once.
func (h *Handle) collect(ctx context.Context) (*Status, error) {
	h.mu.Lock()
	if st := h.status; st != nil || h.reapStarted {
		h.mu.Unlock()
		return h.awaitReap()
	}
	st, err := h.sysCollect()
	if err == nil {
		h.status = st
	}
	started := h.reapStarted
	h.mu.Unlock()
	switch {
	case err == nil || !isErrno(err, syscall.ECHILD):
		return st, err
	case started:
		// Cmd.Wait reaped the child between our waitid and now.
		return h.awaitReap()
	}
	return h.afterForeignReap(ctx, err)
}

// awaitReap returns the status recorded by Cmd.Wait's reap, waiting for the
// reap to finish if it has begun.
func (h *Handle) awaitReap() (*Status, error) {
	h.mu.Lock()
	st, started := h.status, h.reapStarted
	h.mu.Unlock()
	if !started {
		return st, nil
	}
	select {
	case <-h.reapDone:
	case <-h.closedCh:
		return nil, os.ErrClosed
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.status == nil {
		return nil, &ReapedError{Err: os.NewSyscallError("waitid", syscall.ECHILD)}
	}
	return h.status, nil
}

// afterForeignReap reports the status of a process the caller could not
// reap: a child someone else reaped, or a process that is not the caller's
// child. The kernel records the status when the process is reaped, so for a
// non-child whose parent has not reaped it yet, it waits for that (or ctx).
func (h *Handle) afterForeignReap(ctx context.Context, reapErr error) (*Status, error) {
	st, err := h.exitInfo()
	if errors.Is(err, errNotReapedYet) {
		select {
		case <-h.sysGone():
		case <-h.closedCh:
			return nil, os.ErrClosed
		case <-ctx.Done():
			return nil, fmt.Errorf("pexec: wait for pid %d to be reaped by its parent: %w", h.pid, ctx.Err())
		}
		st, err = h.exitInfo()
	}
	if err != nil {
		if h.cmdReaps {
			return nil, &ReapedError{Err: reapErr}
		}
		return nil, fmt.Errorf("pexec: pid %d is not a child of this process: %w", h.pid, ErrStatusUnavailable)
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.status == nil {
		h.status = st
	}
	return h.status, nil
}

// beginReap is called by Cmd.Wait once the child has exited, just before it
// reaps the child through the standard library. It reports false if a reap
// was already begun.
func (h *Handle) beginReap() bool {
	// reapStarted first: a collect that then finds the child reaped (in
	// ModePID, h.reaped makes waitid report ECHILD) must know that the reap
	// is Cmd.Wait's, not a foreign one.
	h.mu.Lock()
	first := !h.reapStarted
	h.reapStarted = true
	h.mu.Unlock()
	h.gate.Lock()
	h.reaped = true
	h.gate.Unlock()
	h.exited.Store(true)
	return first
}

// endReap records the outcome of Cmd.Wait's reap; st is nil when it is
// unknown. A status from the reap replaces one observed earlier with WNOWAIT
// (they are equal, but the reap's carries the os.ProcessState).
func (h *Handle) endReap(st *Status) {
	h.mu.Lock()
	if st != nil {
		h.status = st
	}
	close(h.reapDone)
	h.mu.Unlock()
}

// Close releases the Handle's pidfd (a Cmd child's pidfd belongs to its
// os.Process, released by Cmd.Wait). It is idempotent: the first call
// returns the result of closing, later calls return nil. Afterwards every
// method returns an error for which errors.Is(err, [os.ErrClosed]) holds
// (Alive returns false). Close does not affect the process itself. If the
// user calls cmd.Process.Release, which closes the os.Process's pidfd, the
// Handle of that child is closed with it.
func (h *Handle) Close() error {
	if h == nil || h.done == nil {
		return errNilHandle
	}
	var err error
	h.closeOnce.Do(func() {
		h.closed.Store(true)
		close(h.closedCh)
		err = h.sysClose()
	})
	return err
}
