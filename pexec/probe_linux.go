// Support for pidfds arrived over several Linux releases; pexec probes each
// feature once, by calling it, never by parsing the kernel version:
//
//	5.1  pidfd_send_signal
//	5.2  CLONE_PIDFD (clone), pidfd readable (pollable) at exit: 5.3
//	5.3  pidfd_open, clone3
//	5.4  waitid(P_PIDFD)
//	5.6  pidfd_getfd
//	5.10 PIDFD_NONBLOCK (pexec never relies on it: it always passes WNOHANG)
//	6.5  SO_PEERPIDFD
//	6.9  pidfs: one inode per process (Handle.ID), PIDFD_SIGNAL_PROCESS_GROUP
//	6.13 PIDFD_GET_INFO
//	6.14 pidfs file handles (Handle.ID on 32-bit systems, where st_ino is 32 bits)
//	6.15 PIDFD_INFO_EXIT: exit status kept after the reap

package pexec

import (
	"os"
	"sync"
	"syscall"

	"golang.org/x/sys/unix"
)

// forcePIDMode makes Supported report false; tests set it through
// export_linux_test.go to run the PID-mode paths on a pidfd kernel.
var forcePIDMode bool

// probePidfd checks, once, that the pidfd syscalls pexec needs work here:
// pidfd_open, pidfd_send_signal and waitid(P_PIDFD). They fail with ENOSYS
// on kernels before 5.3/5.4 and with ENOSYS or EPERM under seccomp filters.
var probePidfd = sync.OnceValue(func() error {
	fd, err := unix.PidfdOpen(os.Getpid(), 0)
	if err != nil {
		return os.NewSyscallError("pidfd_open", err)
	}
	defer unix.Close(fd)
	if err := unix.PidfdSendSignal(fd, 0, nil, 0); err != nil {
		return os.NewSyscallError("pidfd_send_signal", err)
	}
	_, err = waitid(unix.P_PIDFD, fd, unix.WEXITED|unix.WNOHANG, 0)
	if !isErrno(err, syscall.ECHILD) {
		// We are not our own parent: anything but ECHILD means
		// waitid(P_PIDFD) is not understood.
		return err
	}
	return nil
})

// Supported reports whether pexec can use pidfds on this system: on Linux
// 5.4+ unless a seccomp filter blocks them. When it returns false, every
// Handle is in [ModePID].
func Supported() bool {
	return !forcePIDMode && probePidfd() == nil
}
