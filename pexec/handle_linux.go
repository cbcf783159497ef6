package pexec

import (
	"errors"
	"fmt"
	"os"
	"runtime"
	"sync"
	"sync/atomic"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// sysHandle is the Linux part of a Handle. In ModePidFD its pidfd is either
// borrowed from a Cmd child's os.Process (proc), used through
// os.Process.WithHandle, or owned (own); either way every use holds a
// reference (see control), and every wait goes through the one exit poller
// (see awaitEvent). In ModePID it holds the PID-mode state (pidState). A
// Cmd child's Handle, in either mode, has a reap gate (see killByPID).
type sysHandle struct {
	proc *os.Process             // a Cmd child's pidfd is its os.Process's
	breg atomic.Pointer[pollReg] // and its exit-poller entry
	own  *ownedFD                // any other Handle's pidfd, with its entry
	id   uint64                  // pidfs ID read when the Handle was made (0: unknown)

	blockOnce sync.Once // starts settleBlocking, for a process a tracer holds

	// observers counts the waiters that hold the pidfd and may yet read
	// the status; unseen is an outcome without a status, concluded by a
	// caller that could not hold it, applied once the last of them has
	// let go without settling (see settleUnseen). Both under the Handle's
	// mu.
	observers int
	unseen    *unseenOutcome

	reap reapGate
	pid  pidState
}

// newBorrowedHandle returns the ModePidFD Handle of a Cmd child, on the
// pidfd its os.Process holds. Since Go 1.23 os.Process spawns the child
// with CLONE_PIDFD itself, so the pidfd exists from the child's first
// instant, and a child costs one descriptor, as with os/exec. A Process
// whose pidfd is gone gives a Handle that refuses everything, never one
// that names the process by its PID: settled (os.ErrProcessDone) once the
// Process's own Wait has reaped the child, closed (os.ErrClosed) once
// Process.Release has closed the pidfd, or if the Process never held one.
func newBorrowedHandle(p *os.Process, r role) *Handle {
	h := newHandle(p.Pid, ModePidFD, r)
	h.sys.proc = p
	err := h.control(func(fd int) {
		if pidfsSupported() == nil {
			h.sys.id, _ = pidfdID(fd)
		}
	})
	if err == os.ErrProcessDone {
		h.ownerReaped()
	}
	return h
}

// newOwnedHandle takes ownership of pidfd and returns a ModePidFD Handle.
// The pidfd is closed by Close or when the Handle is garbage collected.
func newOwnedHandle(pidfd, pid int, r role) *Handle {
	h := newHandle(pid, ModePidFD, r)
	h.sys.own = &ownedFD{fd: pidfd}
	runtime.AddCleanup(h, func(o *ownedFD) { o.close() }, h.sys.own)
	return h
}

// control runs fn with the pidfd while holding a reference to it. A Cmd
// child's pidfd is gone once its os.Process has reaped the child: control
// then reports os.ErrProcessDone. If the os.Process was released
// (Process.Release closes its pidfd), the Handle has lost its descriptor as
// if closed: control closes it and reports os.ErrClosed.
func (h *Handle) control(fn func(fd int)) error {
	if o := h.sys.own; o != nil {
		if !o.acquire() {
			return os.ErrClosed
		}
		defer o.release()
		fn(o.fd)
		return nil
	}
	if h.sys.proc == nil {
		return errNoPidfd
	}
	err := h.sys.proc.WithHandle(func(fd uintptr) { fn(int(fd)) })
	switch {
	case err == nil:
		return nil
	case errors.Is(err, os.ErrProcessDone):
		return os.ErrProcessDone
	}
	h.Close()
	return fmt.Errorf("pexec: pid %d: the os.Process released its pidfd: %w", h.pid, errors.Join(os.ErrClosed, err))
}

// pidfdReadable reports whether the pidfd is readable, which it becomes when
// its process exits (zombie or reaped).
func pidfdReadable(fd int) bool { return pidfdRevents(fd)&(unix.POLLIN|unix.POLLHUP) != 0 }

// pidfdGone reports whether the pidfd's process has been reaped: the kernel
// then adds POLLHUP.
func pidfdGone(fd int) bool { return pidfdRevents(fd)&unix.POLLHUP != 0 }

// pidfdRevents polls the pidfd without blocking: ppoll(2) with a zero
// timeout, made as a raw system call (it cannot block, so the scheduler
// need not be told), which halves its cost on the paths that poll before
// anything else (Alive, Signal, Cmd.Wait).
func pidfdRevents(fd int) int16 {
	fds := [1]unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}
	var zero unix.Timespec
	for {
		n, _, e := unix.RawSyscall6(unix.SYS_PPOLL, uintptr(unsafe.Pointer(&fds[0])), 1, uintptr(unsafe.Pointer(&zero)), 0, 0, 0)
		if e == unix.EINTR {
			continue
		}
		if e != 0 || n == 0 {
			return 0
		}
		return fds[0].Revents
	}
}

func (h *Handle) sysExited() bool {
	if h.mode == ModePID {
		return h.pidExited()
	}
	exited := false
	err := h.control(func(fd int) { exited = pidfdReadable(fd) })
	return exited || err == os.ErrProcessDone
}

func (h *Handle) sysSignal(sig syscall.Signal) error {
	return h.signalFlags(sig, 0)
}

// signalFlags sends sig with pidfd_send_signal flags (PIDFD_SIGNAL_*).
func (h *Handle) signalFlags(sig syscall.Signal, flags int) error {
	if sig != syscall.Signal(int32(sig)) {
		// The kernel takes an int: a larger number would arrive truncated,
		// as another signal (1<<32 + 9 as SIGKILL).
		op := "pidfd_send_signal"
		if h.mode == ModePID {
			op = "kill"
		}
		return os.NewSyscallError(op, unix.EINVAL)
	}
	if h.mode == ModePID {
		return h.pidSignal(sig, flags)
	}
	var err error
	if cerr := h.control(func(fd int) {
		if pidfdReadable(fd) {
			err = os.ErrProcessDone
			return
		}
		err = unix.PidfdSendSignal(fd, unix.Signal(sig), nil, flags)
	}); cerr != nil {
		return cerr
	}
	if err == os.ErrProcessDone {
		h.markExited()
	}
	return signalError("pidfd_send_signal", err)
}

// signalError maps ESRCH to os.ErrProcessDone and wraps other errors.
func signalError(op string, err error) error {
	switch {
	case err == nil || errors.Is(err, os.ErrProcessDone):
		return err
	case err == unix.ESRCH:
		return os.ErrProcessDone
	}
	return os.NewSyscallError(op, err)
}

// awaitExit returns nil once the process has exited, or errStopped once
// stop or closed is closed first; a nil channel never stops it. In
// ModePidFD it waits through the exit poller, holding no thread.
func (h *Handle) awaitExit(stop, closed <-chan struct{}) error {
	if h.hasExited() {
		return nil
	}
	if h.mode == ModePID {
		return h.pidAwaitExit(stop, closed)
	}
	var err error
	cerr := h.control(func(fd int) { err = h.awaitEvent(fd, false, stop, closed) })
	if cerr == os.ErrProcessDone {
		return nil // the os.Process has reaped the child
	}
	if cerr != nil {
		return cerr
	}
	return err
}

// fallbackPollMsec bounds each wait of a waiter that could not use the
// exit poller (no descriptor was free to set it up): it blocks a thread in
// poll(2) that long at most, then notices stop and retries the poller.
const fallbackPollMsec = 50

// awaitEvent waits until the process of pidfd fd (held by the caller) has
// exited, or with gone has been reaped. It returns errStopped if stop or
// closed is closed first. Where the exit poller cannot be set up, or has no
// room for another entry (a shortage of descriptors, memory or epoll
// watches), it blocks the thread in poll(2) for up to fallbackPollMsec at a
// time, and tries the poller again; any other failure of the poller is
// returned.
func (h *Handle) awaitEvent(fd int, gone bool, stop, closed <-chan struct{}) error {
	for {
		p, err := sharedExitPoller()
		var ch <-chan struct{}
		if err == nil {
			ch, err = p.arm(fd, h.regSlot(), h, gone)
		}
		switch {
		case err == nil:
			if p.wait(ch, stop, closed) {
				return nil
			}
			return errStopped
		case p != nil && !errors.Is(err, errShortage) && err != errRetired:
			return err // not a shortage: waiting longer would not help
		}
		events := int16(unix.POLLIN)
		if gone {
			events = 0 // POLLHUP is always reported
		}
		if pollFor(fd, events, fallbackPollMsec) {
			return nil
		}
		if isClosed(stop) || isClosed(closed) {
			return errStopped
		}
	}
}

// pollFor blocks the calling thread in poll(2) for up to msec milliseconds
// (-1: no limit) until the pidfd fd reports one of events, or POLLHUP
// (reaped); with events 0 it waits for the reap.
func pollFor(fd int, events int16, msec int) bool {
	fds := [1]unix.PollFd{{Fd: int32(fd), Events: events}}
	for {
		n, err := unix.Poll(fds[:], msec)
		if err != unix.EINTR {
			return err == nil && n > 0
		}
	}
}

// pending says what an exited process's outcome waits for.
type pending int

const (
	final         pending = iota // nothing: the outcome is known
	untilWaitable                // a tracer holds the process: waitid finds nothing yet
	untilReaped                  // its status is recorded when its parent (or a foreign reaper) reaps it
)

// sysWait waits for the process to exit and records its outcome, or
// takes one step towards it; WaitContext calls it until the outcome is
// settled. It returns errStopped if stop or the Handle's closing ends a wait
// first. In ModePidFD the exit and the status are read under one reference
// to the pidfd, so that the status is recorded even if the os.Process reaps
// the child at once (a direct cmd.Process.Wait), from the exit record that
// the pidfd keeps after the reap (Linux 6.15+).
func (h *Handle) sysWait(stop <-chan struct{}) error {
	closed := h.closedC()
	if h.mode == ModePID {
		// Always the watcher's notice, never the phase: the phase may have
		// left phaseRunning without it (a Close since WaitContext read it,
		// or a Signal that found the child exited), and pidSettle waits
		// for that notice without a way out.
		if err := h.pidAwaitExit(stop, closed); err != nil {
			return err
		}
		h.markExited()
		return h.pidSettle()
	}
	var next pending
	var err error
	cerr := h.observing(func(fd int) {
		if h.phase() == phaseRunning {
			if err = h.awaitEvent(fd, false, stop, closed); err != nil {
				return
			}
			h.markExited()
		}
		var st *Status
		var serr error
		st, next, serr = h.collect(fd)
		if next == untilReaped {
			if err = h.awaitEvent(fd, true, stop, closed); err != nil {
				return
			}
			st, next, serr = h.collect(fd)
		}
		if next == final {
			h.observe(st, serr)
		}
	})
	switch {
	case cerr == os.ErrProcessDone:
		h.ownerReaped()
		return nil
	case cerr != nil:
		return cerr
	case err != nil || next != untilWaitable:
		return err
	}
	h.sys.blockOnce.Do(func() { go h.settleBlocking() })
	_, settled, _ := h.waitChans()
	select {
	case <-settled:
		return nil
	case <-closed:
	case <-stop:
	}
	return errStopped
}

// collect reads the outcome of the exited process of pidfd fd (held by the
// caller) without blocking: from waitid, which reaps the process for a
// roleOwn Handle and only observes it (WNOWAIT) otherwise, or from the
// kernel's exit record when the process is not the caller's child or was
// reaped by someone else.
func (h *Handle) collect(fd int) (*Status, pending, error) {
	opts := unix.WEXITED | unix.WNOHANG
	if h.role != roleOwn {
		opts |= unix.WNOWAIT
	}
	st, err := waitid(unix.P_PIDFD, fd, opts, h.pid)
	switch {
	case st != nil:
		return st, final, nil
	case err == nil:
		// Exited (the pidfd said so) yet not waitable: a tracer
		// (ptrace) is notified first and has not released it.
		return nil, untilWaitable, nil
	case !isErrno(err, syscall.ECHILD):
		return nil, final, err
	}
	st, err = h.exitRecord(fd)
	switch {
	case errors.Is(err, errNotReapedYet):
		return nil, untilReaped, nil
	case err != nil:
		return nil, final, h.unavailable()
	}
	return st, final, nil
}

// unavailable is the outcome of a process whose status nobody can know.
func (h *Handle) unavailable() error {
	switch h.role {
	case roleCmd:
		return &ReapedError{Err: os.NewSyscallError("waitid", syscall.ECHILD)}
	case roleObserve:
		return fmt.Errorf("pexec: pid %d was reaped by its owner and the kernel keeps no exit record (Linux 6.15+): %w", h.pid, ErrStatusUnavailable)
	}
	return fmt.Errorf("pexec: pid %d is not a child of this process: %w", h.pid, ErrStatusUnavailable)
}

// observe records an outcome seen by a Handle waiter. A status is the
// process's, whoever reaps it, so it settles the Handle even while Cmd.Wait
// reaps (phaseReaping); an error (no status to be had) never replaces the
// outcome that Cmd.Wait's reap is about to record.
func (h *Handle) observe(st *Status, err error) {
	from := phaseExited
	if st != nil {
		from = phaseReaping
	}
	h.move(phaseSettled, from, result{st: st, err: err})
}

// regSlot is where the Handle's exit-poller entry is recorded.
func (h *Handle) regSlot() *atomic.Pointer[pollReg] {
	if o := h.sys.own; o != nil {
		return &o.reg
	}
	return &h.sys.breg
}

// ownerReaped is called when a Cmd child's os.Process reaped it itself.
// Cmd.Wait leaves phaseExited before it reaps, so a Handle still in
// phaseExited lost the child to a direct call of cmd.Process.Wait, whose
// result pexec never sees, unless a waiter holding the pidfd reads it.
func (h *Handle) ownerReaped() {
	h.settleUnseen(phaseExited, fmt.Errorf("pexec: pid %d was reaped by its os.Process.Wait: %w", h.pid, errors.Join(ErrStatusUnavailable, os.ErrProcessDone)))
}

// unseenOutcome is an outcome without a status, waiting for the waiters
// that may still read one.
type unseenOutcome struct {
	from phase
	err  error
}

// observing runs fn with the pidfd, as control does, counted as a waiter
// that may read the status.
func (h *Handle) observing(fn func(fd int)) error {
	h.mu.Lock()
	h.sys.observers++
	h.mu.Unlock()
	defer func() {
		h.mu.Lock()
		defer h.mu.Unlock()
		if h.sys.observers--; h.sys.observers == 0 && h.sys.unseen != nil {
			u := h.sys.unseen
			h.sys.unseen = nil
			h.moveLocked(phaseSettled, u.from, result{err: u.err})
		}
	}()
	return h.control(fn)
}

// settleUnseen settles err, the conclusion of a caller that could not hold
// the pidfd (the os.Process had reaped the child and closed it) that the
// status is unknown, as observe would with from. A waiter that held the
// pidfd when the child was reaped can still read the status (before the
// reap, or from the exit record after it), so while one is in progress the
// conclusion waits: the last of them applies it, unless one found the
// status.
func (h *Handle) settleUnseen(from phase, err error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.sys.observers > 0 {
		h.sys.unseen = &unseenOutcome{from: from, err: err}
		return
	}
	h.moveLocked(phaseSettled, from, result{err: err})
}

// settleBlocking records the outcome of a process that has exited but that
// waitid does not report yet, because a tracer holds it: it blocks a thread
// in waitid until the tracer lets go (the pidfd gives no further notice).
func (h *Handle) settleBlocking() {
	for h.phase() < phaseReaping {
		var next pending
		cerr := h.control(func(fd int) {
			waitid(unix.P_PIDFD, fd, unix.WEXITED|unix.WNOWAIT, h.pid)
			var st *Status
			var err error
			if st, next, err = h.collect(fd); next == final {
				h.observe(st, err)
			} else if next == untilReaped {
				h.awaitEvent(fd, true, nil, nil)
			}
		})
		if cerr != nil {
			if cerr == os.ErrProcessDone {
				h.ownerReaped()
			}
			return
		}
	}
}

// beforeReap is called by Cmd.Wait before it reaps the child through the
// standard library: it waits for the exit on the exit poller (holding no
// thread; Close does not stop it). With capture
// (os/exec's Wait may return well after its reap: it copies I/O, or it
// waits for a Cancel to return), it first records the status while the
// child is still a zombie, so that Handle waiters have it at once and never
// wait for Cmd.Wait's progress; it returns the status if it found one.
// Without, Handle waiters wait for the reap, which follows at once. It also
// takes the child's pidfd out of the exit poller while the descriptor is
// still held: the os.Process closes it after the reap, and an entry left
// behind would live as long as any duplicate of the pidfd (FromProcess).
func (h *Handle) beforeReap(capture bool) *Status {
	if h.mode == ModePID {
		return h.pidBeforeReap()
	}
	var st *Status
	err := h.control(func(fd int) {
		h.awaitExitSpin(fd)
		if capture {
			st = h.observeExit(fd)
		}
		if r := h.sys.breg.Load(); r != nil {
			if p := pollerPtr.Load(); p != nil {
				p.retire(fd, r)
			}
		}
	})
	if err == os.ErrProcessDone {
		// The os.Process's own Wait reaped the child before Cmd.Wait.
		h.ownerReaped()
	}
	return st
}

// reaping is called by Cmd.Wait right before it reaps the child: the
// outcome is Cmd.Wait's to record (phaseReaping), and no signal by PID
// starts any more (the reap gate closes).
func (h *Handle) reaping() {
	h.move(phaseReaping, phaseExited, result{})
	h.markReaped()
}

// observeExit records the status of the exited child of pidfd fd (held by
// the caller) without reaping it, and returns it (nil if there is none to
// be had without blocking).
func (h *Handle) observeExit(fd int) *Status {
	// If waitid finds nothing (untilWaitable), a tracer holds the child,
	// and the reap waits until it lets go.
	st, next, err := h.collect(fd)
	if next == untilReaped {
		// A foreign reaper has claimed the child; the kernel records
		// the status when it lets go, at once.
		h.awaitEvent(fd, true, nil, nil)
		st, next, err = h.collect(fd)
	}
	if next != final {
		return nil
	}
	h.observe(st, err)
	return st
}

// cmdWaits counts the Cmd.Waits waiting in awaitExitSpin; the one that
// finds it was the first spins.
var cmdWaits atomic.Int32

// awaitExitSpin waits, for Cmd.Wait, until the child of pidfd fd (held by
// the caller) has exited. Like the exit poller's reader, one Cmd.Wait at a
// time first blocks its thread in poll(2) on the pidfd for up to
// readerSpinMsec: a child that exits within that time is noticed as
// directly as by os/exec's waitid, and without registering it with the
// poller (whose entry, added and then removed as the pidfd closes, costs
// more than the poll). Only a Cmd.Wait that found no other in progress
// spins, for the reason the exit poller's reader does (readerSpinMsec):
// any other, and one whose child runs longer, waits on the exit poller,
// holding no thread.
func (h *Handle) awaitExitSpin(fd int) {
	if pidfdReadable(fd) {
		return
	}
	defer cmdWaits.Add(-1)
	if cmdWaits.Add(1) == 1 && pollFor(fd, unix.POLLIN, readerSpinMsec) {
		return
	}
	h.awaitEvent(fd, false, nil, nil)
}

// foreignStatus returns the status of a Cmd child that another waiter
// reaped, for Cmd.Wait's ReapedError: the one recorded already, or the
// pidfd's exit record (Linux 6.15+), waiting for the other waiter to let go
// of the child if it has only claimed it. nil: unknown.
func (h *Handle) foreignStatus() *Status {
	if st, _ := h.outcome(); st != nil {
		return st
	}
	var st *Status
	h.control(func(fd int) {
		var err error
		st, err = h.exitRecord(fd)
		if errors.Is(err, errNotReapedYet) {
			h.awaitEvent(fd, true, nil, nil)
			st, _ = h.exitRecord(fd)
		}
	})
	return st
}

// afterReap records the outcome of Cmd.Wait's reap and drops the child
// from the exit poller: its pidfd is being closed.
func (h *Handle) afterReap(r result) {
	if r.st == nil && r.ps == nil {
		h.settleUnseen(phaseSettled, r.err)
	} else {
		h.to(phaseSettled, r)
	}
	if r := h.sys.breg.Load(); r != nil {
		if p := pollerPtr.Load(); p != nil {
			p.reaped(r)
		}
	}
}

// exitRecord reads the exit status the kernel keeps in the pidfd fd, which
// the caller holds (PIDFD_GET_INFO with PIDFD_INFO_EXIT, Linux 6.15+). It
// returns errNotReapedYet if the kernel keeps exit records but the process
// has not been reaped yet.
func (h *Handle) exitRecord(fd int) (*Status, error) {
	for attempt := 0; ; attempt++ {
		var info unix.PidfdInfo
		if err := pidfdGetInfo(fd, unix.PIDFD_INFO_EXIT, &info); err != nil {
			return nil, errors.Join(ErrStatusUnavailable, err)
		}
		if info.Mask&unix.PIDFD_INFO_EXIT != 0 {
			return statusFromWaitStatus(h.pid, info.Exit_code), nil
		}
		kept := info.Supported_mask == 0 || info.Supported_mask&unix.PIDFD_INFO_EXIT != 0
		switch {
		case !kept || attempt > 0:
			return nil, ErrStatusUnavailable
		case !pidfdGone(fd):
			return nil, errNotReapedYet
		}
		// Reaped, yet no record: the reap may have happened between the
		// kernel's reading of the record and its looking for the task.
		// The record is written before the reap is visible (POLLHUP), so
		// a second look, after the POLLHUP, finds it if there is one.
	}
}

// pidfdGetInfo wraps ioctl(PIDFD_GET_INFO) (Linux 6.13+).
func pidfdGetInfo(fd int, mask uint64, info *unix.PidfdInfo) error {
	info.Mask = mask
	_, _, e := unix.Syscall(unix.SYS_IOCTL, uintptr(fd), unix.PIDFD_GET_INFO, uintptr(unsafe.Pointer(info)))
	if e != 0 {
		return os.NewSyscallError("ioctl(PIDFD_GET_INFO)", e)
	}
	return nil
}

// sysClose releases what Close releases: an owned pidfd (once nobody uses
// it), or, for a Cmd child, nothing but the exit poller's reader, which a
// waiter of this Handle may be blocked in.
func (h *Handle) sysClose() error {
	if o := h.sys.own; o != nil {
		o.close()
	}
	if p := pollerPtr.Load(); p != nil && h.regSlot().Load() != nil {
		p.interrupt()
	}
	return nil
}

// Control calls fn with the Handle's pidfd, for poll/epoll integration or
// syscalls pexec does not wrap, while holding a reference that keeps the
// descriptor number from being closed and reused until fn returns. fn must
// not close the descriptor or keep it after returning, and must not change
// its file status flags (the description may be shared). A [Cmd] child's
// pidfd is its os.Process's: once [Cmd.Wait] has reaped the child, Control
// returns [os.ErrProcessDone]. In ModePID it returns an error wrapping
// [errors.ErrUnsupported].
func (h *Handle) Control(fn func(pidfd int)) error {
	if err := h.check(); err != nil {
		return err
	}
	if h.mode != ModePidFD {
		return errNoPidfd
	}
	return h.control(fn)
}
