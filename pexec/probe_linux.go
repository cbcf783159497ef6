// Support for pidfds arrived over several Linux releases; pexec probes each
// feature once, by calling it, never by parsing the kernel version. A probe
// that fails for want of a resource at the time (no descriptor or memory
// free, EINTR: probe.Transient) has learnt nothing, and runs again on the
// next call:
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

	"github.com/pexec-dev/pexec/internal/probe"
	"golang.org/x/sys/unix"
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
// probe succeeded, and its pidfd_open succeeds.
//
// That pidfd_open can fail for want of a descriptor (EMFILE) although Go
// uses pidfds: then pexec's own pidfd_open tells, and the answer is not
// kept (probe.Once). Only if pexec can open a pidfd of its own and
// FindProcess still gives none, right after, is Go's verdict taken as
// negative; a descriptor that another goroutine takes in the instant
// between the two would still be misread so. (Go keeps its own verdict,
// whatever made its probe fail, for the process's life; pexec follows it.)
var probePidfd = probe.OnceErr(func() error {
	if goHoldsPidfd() == nil {
		return nil
	}
	fd, err := unix.PidfdOpen(os.Getpid(), 0)
	if probe.Transient(err) {
		return transientError("pidfds", os.NewSyscallError("pidfd_open", err))
	}
	if err == nil {
		unix.Close(fd)
	}
	herr := goHoldsPidfd()
	if herr == nil {
		return nil // FindProcess's pidfd_open had failed for want of a descriptor
	}
	return fmt.Errorf("pexec: Go's runtime does not spawn children with pidfds here (clone with CLONE_PIDFD fails: QEMU user mode before 8.0, or a seccomp filter; %v): %w", herr, errors.ErrUnsupported)
})

// goHoldsPidfd reports, as an error, whether os.FindProcess of the caller's
// own PID gives a Process that holds a pidfd.
func goHoldsPidfd() error {
	p, err := os.FindProcess(os.Getpid())
	if err != nil {
		return err
	}
	defer p.Release()
	return p.WithHandle(func(uintptr) {})
}

// Supported reports whether pexec can use pidfds on this system: on Linux
// 5.4+ unless a seccomp filter blocks them or children cannot be spawned
// with one (CLONE_PIDFD, which QEMU user mode before 8.0 lacks). When it
// returns false, every Handle is in [ModePID].
func Supported() bool {
	return !forcePIDMode && probePidfd() == nil
}
