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
	"errors"
	"fmt"
	"os"
	"sync"
)

// forcePIDMode makes Supported report false; tests set it through
// export_linux_test.go to run the PID-mode paths on a pidfd kernel.
var forcePIDMode bool

// probePidfd reads, once, the verdict of Go's own probe (os/pidfd_linux.go),
// which calls what pexec needs: pidfd_open, pidfd_send_signal,
// waitid(P_PIDFD) and clone(CLONE_PIDFD). They fail with ENOSYS on kernels
// before 5.3/5.4 and with ENOSYS or EPERM under seccomp filters; the
// runtime spawns children with a pidfd only where all work. Some environments have pidfd_open but not
// CLONE_PIDFD: QEMU user mode before 8.0 (how multi-arch container builds
// and cross-architecture CI run Go binaries), or a seccomp filter that
// denies clone3 and clone with CLONE_PIDFD. There os.Process holds no pidfd,
// and pexec must not ask for one either: the spawn would fail. FindProcess
// of the caller's own PID returns a Process with a pidfd exactly when Go's
// probe succeeded.
var probePidfd = sync.OnceValue(func() error {
	p, err := os.FindProcess(os.Getpid())
	if err != nil {
		return err
	}
	defer p.Release()
	if err := p.WithHandle(func(uintptr) {}); err != nil {
		return fmt.Errorf("pexec: Go's runtime does not spawn children with pidfds here (clone with CLONE_PIDFD fails: QEMU user mode before 8.0, or a seccomp filter; %v): %w", err, errors.ErrUnsupported)
	}
	return nil
})

// Supported reports whether pexec can use pidfds on this system: on Linux
// 5.4+ unless a seccomp filter blocks them or children cannot be spawned
// with one (CLONE_PIDFD, which QEMU user mode before 8.0 lacks). When it
// returns false, every Handle is in [ModePID].
func Supported() bool {
	return !forcePIDMode && probePidfd() == nil
}
