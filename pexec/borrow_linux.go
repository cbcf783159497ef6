package pexec

import (
	"errors"
	"fmt"
	"os"
	"sync/atomic"

	"golang.org/x/sys/unix"
)

// borrowed is the state of a Handle whose pidfd belongs to the child's
// os.Process. Since Go 1.23 os.Process keeps a pidfd of its own (a dup of
// the one pexec asks clone for), so a Cmd child's Handle uses that one
// through os.Process.WithHandle, which holds a reference for the duration of
// each use, instead of keeping a second descriptor: a child then costs one
// descriptor, as with os/exec. Once os.Process has reaped the child (or
// been released) the pidfd is gone, and so is everything that needs it.
type borrowed struct {
	proc   *os.Process
	id     uint64        // pidfs inode, read at spawn (0: none)
	poller *exitPoller   // nil: no epoll, waits block a thread in poll(2)
	fired  chan struct{} // closed by the exit poller, once: it reports each entry once
}

// noExitPoller is a test hook: children wait without the exit poller.
var noExitPoller atomic.Bool

// newBorrowedHandle returns the ModePidFD Handle of a Cmd child that uses
// p's pidfd, or nil if p has none. pidfd is pexec's own pidfd of the same
// child, still open, used here only to read the child's ID. The child is
// registered with the exit poller at once, so that waiting adds nothing to
// the path from its exit to Wait's return.
func newBorrowedHandle(p *os.Process, pidfd int) *Handle {
	b := &borrowed{proc: p, fired: make(chan struct{})}
	poller, perr := sharedExitPoller()
	if noExitPoller.Load() {
		perr = errors.ErrUnsupported
	}
	err := p.WithHandle(func(fd uintptr) {
		if perr == nil && poller.add(int(fd), b) == nil {
			b.poller = poller
		}
	})
	if err != nil {
		return nil
	}
	h := newHandle(p.Pid, ModePidFD, true)
	h.sys.b = b
	if pidfsSupported() == nil {
		b.id, _ = pidfdID(pidfd)
	}
	return h
}

// borrow runs fn with the os.Process's pidfd. Once the os.Process has
// reaped the child it reports os.ErrProcessDone. If the os.Process was
// released (Process.Release closes its pidfd), the Handle has lost its
// descriptor as if closed: borrow closes it and reports os.ErrClosed.
func (h *Handle) borrow(fn func(fd int)) error {
	err := h.sys.b.proc.WithHandle(func(fd uintptr) { fn(int(fd)) })
	switch {
	case err == nil:
		return nil
	case errors.Is(err, os.ErrProcessDone):
		return os.ErrProcessDone
	}
	h.Close()
	return fmt.Errorf("pexec: pid %d: the os.Process released its pidfd: %w", h.pid, errors.Join(os.ErrClosed, err))
}

// borrowedAwait blocks until the process exits (true) or stop is closed
// (false), holding no OS thread: it holds a reference to the pidfd, so that
// the exit poller's entry lives, and waits through the exit poller. With
// capture, it also records the exit status while it still holds the pidfd
// (see captureExit).
func (h *Handle) borrowedAwait(stop <-chan struct{}, capture bool) bool {
	b := h.sys.b
	exited := false
	err := h.borrow(func(fd int) {
		if b.poller != nil {
			exited = b.poller.wait(b.fired, stop)
		} else {
			// No epoll: block this thread until the exit.
			exited = pollFor(fd, unix.POLLIN)
		}
		if exited && capture {
			h.captureExit(fd)
		}
	})
	// os.Process has reaped the child: it has exited.
	return exited || errors.Is(err, os.ErrProcessDone)
}

// captureExit records the status of the exited process while the caller
// holds the pidfd: a user's direct cmd.Process.Wait reaps the child and
// closes the descriptor, after which no status could be read.
func (h *Handle) captureExit(fd int) {
	h.mu.Lock()
	if h.status != nil || h.reapStarted {
		h.mu.Unlock()
		return
	}
	st, err := waitid(unix.P_PIDFD, fd, unix.WEXITED|unix.WNOHANG|unix.WNOWAIT, h.pid)
	if err == nil && st != nil {
		h.status = st
	}
	h.mu.Unlock()
	if !isErrno(err, unix.ECHILD) {
		return
	}
	// Another waiter has claimed the child; the kernel records the status
	// when it releases it, at once. (Not through h.exitInfo: once
	// os.Process.Wait has reaped, WithHandle refuses, though the
	// reference held here keeps fd open.)
	st, err = h.exitRecord(fd)
	if errors.Is(err, errNotReapedYet) {
		pollFor(fd, 0)
		st, err = h.exitRecord(fd)
	}
	if err == nil {
		h.mu.Lock()
		if h.status == nil {
			h.status = st
		}
		h.mu.Unlock()
	}
}

// closed is called by Handle.Close: a waiter of h may be the exit poller's
// reader, which must be interrupted to notice.
func (b *borrowed) closed() {
	if b.poller != nil {
		b.poller.interrupt()
	}
}

// pollFor blocks the calling thread in poll(2) until the pidfd fd reports
// one of events, or POLLHUP (reaped); with events 0 it waits for the reap.
func pollFor(fd int, events int16) bool {
	fds := [1]unix.PollFd{{Fd: int32(fd), Events: events}}
	for {
		n, err := unix.Poll(fds[:], -1)
		if err != unix.EINTR {
			return err == nil && n > 0
		}
	}
}
