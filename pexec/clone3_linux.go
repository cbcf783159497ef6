package pexec

import (
	"os"
	"syscall"

	"golang.org/x/sys/unix"
)

// spawnAttr returns the SysProcAttr to start the child with. When pidfds
// work, it is a copy of sys (never sys itself) whose PidFD points at pidfd:
// the runtime then spawns with clone3 (or clone) and CLONE_PIDFD, so the
// pidfd exists from the child's first instant and never comes from a PID.
// userPidFD is the caller's own PidFD pointer, to be served a duplicate.
func spawnAttr(sys *syscall.SysProcAttr, pidfd *int) (attr *syscall.SysProcAttr, userPidFD *int) {
	if !Supported() {
		return sys, nil
	}
	var cp syscall.SysProcAttr
	if sys != nil {
		cp = *sys
		userPidFD = sys.PidFD
	}
	cp.PidFD = pidfd
	return &cp, userPidFD
}

// childHandle builds the Handle of a child that Cmd.Wait will reap. pidfd is
// -1 when the runtime gave none (then the Handle is in ModePID).
func childHandle(p *os.Process, pidfd int, userPidFD *int) *Handle {
	if userPidFD != nil {
		*userPidFD = -1
		if pidfd >= 0 {
			if d, err := unix.FcntlInt(uintptr(pidfd), unix.F_DUPFD_CLOEXEC, 0); err == nil {
				*userPidFD = d
			}
		}
	}
	if pidfd >= 0 {
		// The runtime's os.Process holds a dup of pidfd: use that one.
		if h := newBorrowedHandle(p, pidfd); h != nil {
			unix.Close(pidfd)
			return h
		}
		if h, err := newPidfdHandle(pidfd, p.Pid, true); err == nil {
			return h
		}
	}
	return newPIDHandle(p.Pid, true)
}
