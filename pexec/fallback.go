//go:build linux

package pexec

import (
	"os"
	"syscall"

	"golang.org/x/sys/unix"
)

// PID mode on Linux. A child that has not been reaped keeps its PID, so
// waitid(P_PID, pid, WNOWAIT) and kill(pid) are safe while the child is
// unreaped; h.gate makes every such call finish before Cmd.Wait reaps the
// child, and makes every later call refuse. Nothing can stop another waiter
// in the same process from reaping the child behind pexec's back: that is
// what pidfds fix.

func newPIDHandle(pid int, cmdReaps bool) *Handle {
	return newHandle(pid, ModePID, cmdReaps)
}

// pidExited reports whether the child has exited, without reaping it.
func (h *Handle) pidExited() bool {
	h.gate.RLock()
	defer h.gate.RUnlock()
	if h.reaped {
		return true
	}
	st, err := waitid(unix.P_PID, h.pid, unix.WEXITED|unix.WNOHANG|unix.WNOWAIT, 0)
	return st != nil || isErrno(err, syscall.ECHILD)
}

func (h *Handle) pidSignal(sig syscall.Signal, flags int) error {
	h.gate.RLock()
	defer h.gate.RUnlock()
	if h.reaped {
		return os.ErrProcessDone
	}
	st, err := waitid(unix.P_PID, h.pid, unix.WEXITED|unix.WNOHANG|unix.WNOWAIT, 0)
	if st != nil || isErrno(err, syscall.ECHILD) {
		h.exited.Store(true)
		return os.ErrProcessDone
	}
	target := h.pid
	if flags&unix.PIDFD_SIGNAL_PROCESS_GROUP != 0 {
		// Like PIDFD_SIGNAL_PROCESS_GROUP, signal only the group the child
		// leads: its ID is the unreaped child's PID, so it cannot have been
		// reused. Any other group might be the caller's own.
		pgid, err := unix.Getpgid(h.pid)
		if err != nil {
			return signalError("getpgid", err)
		}
		if pgid != h.pid {
			return errNotGroupLeader(h.pid)
		}
		target = -pgid
	}
	return signalError("kill", unix.Kill(target, unix.Signal(sig)))
}

func (h *Handle) pidWatch() bool {
	h.gate.RLock()
	defer h.gate.RUnlock()
	if h.reaped {
		return true
	}
	// Blocks an OS thread until the child exits, as os/exec does.
	_, err := waitid(unix.P_PID, h.pid, unix.WEXITED|unix.WNOWAIT, 0)
	return err == nil || isErrno(err, syscall.ECHILD)
}

func (h *Handle) pidCollect(opts int) (*Status, error) {
	h.gate.RLock()
	defer h.gate.RUnlock()
	if h.reaped {
		return nil, os.NewSyscallError("waitid", syscall.ECHILD)
	}
	st, err := waitid(unix.P_PID, h.pid, opts, h.pid)
	if err == nil && st == nil {
		err = os.NewSyscallError("waitid", syscall.EAGAIN)
	}
	return st, err
}
