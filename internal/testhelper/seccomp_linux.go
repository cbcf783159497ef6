package testhelper

import (
	"errors"
	"os"
	"runtime"
	"syscall"

	"golang.org/x/sys/unix"

	"github.com/pexec-dev/pexec/pexectest"
)

// DenyPidfd installs, in the calling process, the seccomp jail under
// which pidfd_open, pidfd_send_signal, pidfd_getfd, clone3 and clone with
// CLONE_PIDFD fail with ENOSYS: [pexectest.EnterJail] with
// [pexectest.JailNoPidfd], where the filter now lives. It cannot be undone:
// call it only in a helper process, first thing, before anything
// (os.StartProcess, os.FindProcess, pexec.Supported) has probed for pidfd
// support. (A helper made with pexectest.Jailed is jailed before it runs.)
func DenyPidfd() error { return pexectest.EnterJail(pexectest.JailNoPidfd) }

// ProbePidfdSyscalls calls each system call the jail concerns with
// arguments that cannot create anything and returns the errno each one
// gave ("ENOSYS", "EBADF", ... or "ok"). Outside the jail pidfd_open gives
// "ok", pidfd_send_signal and pidfd_getfd on fd -1 "EBADF", clone3 with a
// zero size "EINVAL", and clone with CLONE_PIDFD|CLONE_PARENT_SETTID (which
// the kernel rejects before creating anything, as it does CLONE_SIGHAND
// without CLONE_VM) "EINVAL". Inside the jail all five give "ENOSYS", while
// "clone" (the same rejected call without CLONE_PIDFD) still gives "EINVAL":
// the filter looks at the flag, not at clone as a whole.
func ProbePidfdSyscalls() map[string]string {
	name := ErrnoName
	raw := func(trap, a1, a2, a3 uintptr) error {
		_, _, e := unix.RawSyscall(trap, a1, a2, a3)
		if e != 0 {
			return e
		}
		return nil
	}
	out := map[string]string{}
	fd, err := unix.PidfdOpen(os.Getpid(), 0)
	if err == nil {
		unix.Close(fd)
	}
	out["pidfd_open"] = name(err)
	out["pidfd_send_signal"] = name(unix.PidfdSendSignal(-1, 0, nil, 0))
	fd, err = unix.PidfdGetfd(-1, 0, 0)
	if err == nil {
		unix.Close(fd)
	}
	out["pidfd_getfd"] = name(err)
	out["clone3"] = name(raw(unix.SYS_CLONE3, 0, 0, 0))
	// clone's first two arguments are swapped on s390x; both orders put
	// the flags where the kernel (and the filter) look for them.
	invalid := uintptr(unix.CLONE_PARENT_SETTID | unix.CLONE_SIGHAND)
	cloneCall := func(flags uintptr) error {
		if runtime.GOARCH == "s390x" {
			return raw(unix.SYS_CLONE, 0, flags, 0)
		}
		return raw(unix.SYS_CLONE, flags, 0, 0)
	}
	out["clone(CLONE_PIDFD)"] = name(cloneCall(invalid | unix.CLONE_PIDFD))
	out["clone"] = name(cloneCall(invalid))
	return out
}

// ErrnoName names err's errno ("ENOSYS"), says "ok" for nil, and gives the
// text of any other error: for reports that compare system call outcomes.
func ErrnoName(err error) string {
	var e syscall.Errno
	switch {
	case err == nil:
		return "ok"
	case errors.As(err, &e):
		return unix.ErrnoName(e)
	}
	return err.Error()
}
