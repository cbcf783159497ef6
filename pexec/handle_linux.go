package pexec

import (
	"errors"
	"fmt"
	"os"
	"sync"
	"syscall"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// sysHandle is the Linux part of a Handle in ModePidFD: either a pidfd it
// borrows from a Cmd child's os.Process (b, see borrowed), or a pidfd of its
// own as an *os.File registered with Go's netpoller. Every use of the
// descriptor holds a reference to it (through os.Process.WithHandle, or
// RawConn.Control and Read), so Close never frees the number while a syscall
// is using it.
type sysHandle struct {
	b *borrowed

	f        *os.File
	rc       syscall.RawConn
	pollable bool
	pollFn   func(fd uintptr) // marks the Handle exited if the pidfd is readable

	goneOnce sync.Once
	gone     chan struct{} // closed once the process has been reaped
}

// newPidfdHandle takes ownership of pidfd and returns a ModePidFD Handle.
func newPidfdHandle(pidfd, pid int, cmdReaps bool) (*Handle, error) {
	// os.NewFile registers a descriptor with the netpoller only if it is
	// non-blocking. The flag lives in the open file description, which
	// dup'd copies share (os.Process keeps one, and its Wait must block), so
	// it is set only for the registration and cleared again: pexec's own
	// waitid calls pass WNOHANG and never depend on it.
	if err := unix.SetNonblock(pidfd, true); err != nil {
		unix.Close(pidfd)
		return nil, os.NewSyscallError("fcntl", err)
	}
	f := os.NewFile(uintptr(pidfd), "pidfd")
	rc, err := f.SyscallConn()
	if err != nil {
		f.Close()
		return nil, err
	}
	var serr error
	if err := rc.Control(func(fd uintptr) { serr = unix.SetNonblock(int(fd), false) }); err != nil || serr != nil {
		f.Close()
		return nil, os.NewSyscallError("fcntl", errors.Join(err, serr))
	}
	h := newHandle(pid, ModePidFD, cmdReaps)
	h.sys = sysHandle{
		f:        f,
		rc:       rc,
		pollable: !errors.Is(f.SetReadDeadline(time.Time{}), os.ErrNoDeadline),
	}
	h.sys.pollFn = func(fd uintptr) {
		if pidfdReadable(int(fd)) {
			h.exited.Store(true)
		}
	}
	return h, nil
}

// pidfdReadable reports whether the pidfd is readable, which it becomes when
// its process exits (zombie or reaped).
func pidfdReadable(fd int) bool { return pidfdRevents(fd)&(unix.POLLIN|unix.POLLHUP) != 0 }

// pidfdGone reports whether the pidfd's process has been reaped: the kernel
// then adds POLLHUP.
func pidfdGone(fd int) bool { return pidfdRevents(fd)&unix.POLLHUP != 0 }

// pidfdRevents polls the pidfd without blocking.
func pidfdRevents(fd int) int16 {
	fds := [1]unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}
	for {
		n, err := unix.Poll(fds[:], 0)
		if err == unix.EINTR {
			continue
		}
		if err != nil || n == 0 {
			return 0
		}
		return fds[0].Revents
	}
}

// sysGone returns a channel closed once the process has been reaped (by
// anyone), watched on the netpoller. It is used only after the exit.
func (h *Handle) sysGone() <-chan struct{} {
	h.sys.goneOnce.Do(func() {
		h.sys.gone = make(chan struct{})
		if h.sys.b != nil {
			// A child is waited for here only between a foreign
			// reaper's claim and its release of it: a short wait, on a
			// thread.
			go func() {
				h.borrow(func(fd int) { pollFor(fd, 0) })
				close(h.sys.gone)
			}()
			return
		}
		go func() {
			if h.sys.rc.Read(func(fd uintptr) bool { return pidfdGone(int(fd)) }) == nil {
				close(h.sys.gone)
			}
		}()
	})
	return h.sys.gone
}

// control runs fn with the pidfd while holding a reference to it.
func (h *Handle) control(fn func(fd int)) error {
	if h.sys.b != nil {
		if h.closed.Load() {
			return os.ErrClosed
		}
		return h.borrow(fn)
	}
	err := h.sys.rc.Control(func(fd uintptr) { fn(int(fd)) })
	if err != nil {
		if h.closed.Load() {
			return os.ErrClosed
		}
		return err
	}
	return nil
}

func (h *Handle) sysExited() bool {
	if h.mode == ModePID {
		return h.pidExited()
	}
	if h.sys.b != nil {
		exited := false
		err := h.borrow(func(fd int) { exited = pidfdReadable(fd) })
		return exited || errors.Is(err, os.ErrProcessDone)
	}
	if h.sys.rc.Control(h.sys.pollFn) != nil {
		return false
	}
	return h.exited.Load()
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
			h.exited.Store(true)
			err = os.ErrProcessDone
			return
		}
		err = unix.PidfdSendSignal(fd, unix.Signal(sig), nil, flags)
	}); cerr != nil {
		return cerr
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

// sysWatch blocks until the process exits; false means the Handle was
// closed first.
func (h *Handle) sysWatch() bool {
	if h.mode == ModePID {
		return h.pidWatch()
	}
	if h.sys.b != nil {
		return h.borrowedAwait(h.closedCh, true)
	}
	if h.sys.pollable {
		// Park on the netpoller: no OS thread is held while waiting.
		return h.sys.rc.Read(func(fd uintptr) bool { return pidfdReadable(int(fd)) }) == nil
	}
	// Not on the netpoller: block a thread in poll(2), holding a reference
	// to the descriptor (Close then defers the close until poll returns).
	exited := false
	h.control(func(fd int) { exited = pollFor(fd, unix.POLLIN) })
	return exited
}

// sysAwaitExit waits for the exit in the calling goroutine, parked on the
// netpoller. It reports false if it cannot (ModePID, a pidfd the netpoller
// did not take) or the Handle was closed first.
func (h *Handle) sysAwaitExit() bool {
	if h.mode == ModePidFD && h.sys.b != nil {
		// Cmd.Wait reaps and obtains the status itself.
		return h.borrowedAwait(h.closedCh, false)
	}
	return h.mode == ModePidFD && h.sys.pollable &&
		h.sys.rc.Read(func(fd uintptr) bool { return pidfdReadable(int(fd)) }) == nil
}

// sysCollect obtains the status of an exited process: without reaping it
// when Cmd.Wait owns the reap, by reaping it otherwise.
func (h *Handle) sysCollect() (*Status, error) {
	opts := unix.WEXITED | unix.WNOHANG
	if h.cmdReaps {
		opts |= unix.WNOWAIT
	}
	if h.mode == ModePID {
		return h.pidCollect(opts)
	}
	var st *Status
	var err error
	if cerr := h.control(func(fd int) { st, err = waitid(unix.P_PIDFD, fd, opts, h.pid) }); cerr != nil {
		if h.sys.b != nil && cerr == os.ErrProcessDone {
			// Only a direct cmd.Process.Wait, with no pexec waiter in flight
			// to record the status, gets here; that Wait returned it.
			return nil, fmt.Errorf("pexec: pid %d was reaped by its os.Process.Wait: %w", h.pid, errors.Join(ErrStatusUnavailable, os.ErrProcessDone))
		}
		return nil, cerr
	}
	if err == nil && st == nil {
		err = os.NewSyscallError("waitid", syscall.EAGAIN)
	}
	return st, err
}

// exitInfo reads the exit status the kernel keeps in the pidfd
// (PIDFD_GET_INFO with PIDFD_INFO_EXIT, Linux 6.15+).
func (h *Handle) exitInfo() (*Status, error) {
	if h.mode == ModePID {
		return nil, ErrStatusUnavailable
	}
	var st *Status
	var err error
	if cerr := h.control(func(fd int) { st, err = h.exitRecord(fd) }); cerr != nil {
		return nil, cerr
	}
	return st, err
}

// exitRecord is exitInfo on the pidfd fd, which the caller holds.
func (h *Handle) exitRecord(fd int) (*Status, error) {
	var info unix.PidfdInfo
	if err := pidfdGetInfo(fd, unix.PIDFD_INFO_EXIT, &info); err != nil {
		return nil, errors.Join(ErrStatusUnavailable, err)
	}
	if info.Mask&unix.PIDFD_INFO_EXIT == 0 {
		kept := info.Supported_mask == 0 || info.Supported_mask&unix.PIDFD_INFO_EXIT != 0
		if kept && !pidfdGone(fd) && (h.sys.pollable || h.sys.b != nil) {
			return nil, errNotReapedYet
		}
		return nil, ErrStatusUnavailable
	}
	return statusFromWaitStatus(h.pid, info.Exit_code), nil
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

func (h *Handle) sysClose() error {
	if h.sys.b != nil {
		h.sys.b.closed() // the pidfd is the os.Process's
		return nil
	}
	if h.sys.f == nil {
		return nil
	}
	return h.sys.f.Close()
}

// Control calls fn with the Handle's pidfd, for poll/epoll integration or
// syscalls pexec does not wrap, while holding a reference that keeps the
// descriptor number from being closed and reused until fn returns. fn must
// not close the descriptor or keep it after returning. A [Cmd] child's pidfd
// is its os.Process's: once [Cmd.Wait] has reaped the child, Control returns
// [os.ErrProcessDone]. In ModePID it returns an error wrapping
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
