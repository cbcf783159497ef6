package pexec

import (
	"bufio"
	"fmt"
	"math"
	"os"
	"strconv"
	"strings"

	"github.com/pexec-dev/pexec/internal/probe"
	"golang.org/x/sys/unix"
)

// File returns a new *os.File holding a duplicate of the Handle's pidfd
// (F_DUPFD_CLOEXEC), which the caller owns and must close. It can be sent
// to another process over a Unix socket (SCM_RIGHTS, see
// [golang.org/x/sys/unix.UnixRights]), which rebuilds a Handle with
// [FromFile] and can then signal and wait for the process, or given to a
// child through [Cmd.ExtraFiles]. The duplicate shares the open file
// description, so it stays valid after [Handle.Close]; pexec never changes
// that description's file status flags. A [Cmd]
// child's Handle has no descriptor left once [Cmd.Wait] has reaped the
// child: File then returns [os.ErrProcessDone]. In [ModePID] File returns an
// error wrapping [errors.ErrUnsupported].
func (h *Handle) File() (*os.File, error) {
	if err := h.check(); err != nil {
		return nil, err
	}
	if h.mode != ModePidFD {
		return nil, errNoPidfd
	}
	var nfd int
	var err error
	if cerr := h.control(func(fd int) { nfd, err = unix.FcntlInt(uintptr(fd), unix.F_DUPFD_CLOEXEC, 0) }); cerr != nil {
		return nil, cerr
	}
	if err != nil {
		return nil, os.NewSyscallError("fcntl", err)
	}
	return os.NewFile(uintptr(nfd), "pidfd:"+strconv.Itoa(h.pid)), nil
}

// FromFile returns a Handle for the process that the pidfd f refers to,
// for example one received over a Unix socket or inherited from a parent.
// It duplicates f's descriptor, so the caller keeps f and may close it. The
// Handle is not a [Cmd]'s: its Wait reaps the process if it is the caller's
// child, as for [Open]. FromFile never changes the file status flags of the
// open file description, which it shares with f and perhaps with other
// processes (an os/exec Process.Wait blocked on a duplicate keeps working).
//
// f must be a pidfd that refers to a process (not a PIDFD_THREAD pidfd);
// otherwise FromFile returns an error wrapping [os.ErrInvalid]. If the
// process has already been reaped, or is outside the caller's PID
// namespace, it has no PID here and FromFile returns an error wrapping
// [os.ErrProcessDone] (respectively [os.ErrNotExist]). Without pidfd support
// it returns an error wrapping [errors.ErrUnsupported].
func FromFile(f *os.File) (*Handle, error) {
	if f == nil {
		return nil, fmt.Errorf("pexec: FromFile: nil *os.File: %w", os.ErrInvalid)
	}
	if !Supported() {
		return nil, fmt.Errorf("pexec: FromFile: %w", errOpenPIDMode)
	}
	rc, err := f.SyscallConn()
	if err != nil {
		return nil, fmt.Errorf("pexec: FromFile: %w", err)
	}
	fd, flags := -1, 0
	var serr error
	if err := rc.Control(func(raw uintptr) {
		if flags, serr = unix.FcntlInt(raw, unix.F_GETFL, 0); serr == nil {
			fd, serr = unix.FcntlInt(raw, unix.F_DUPFD_CLOEXEC, 0)
		}
	}); err != nil {
		// The only failure of RawConn.Control: f is closed.
		return nil, fmt.Errorf("pexec: FromFile: %w (%v)", os.ErrClosed, err)
	}
	if serr != nil {
		return nil, os.NewSyscallError("fcntl", serr)
	}
	if flags&unix.PIDFD_THREAD != 0 {
		unix.Close(fd)
		return nil, fmt.Errorf("pexec: FromFile: %s is a thread pidfd (PIDFD_THREAD), not a process's: %w", f.Name(), os.ErrInvalid)
	}
	pid, err := pidfdPid("FromFile", fd)
	if err != nil {
		unix.Close(fd)
		return nil, err
	}
	return newOwnedHandle(fd, pid, roleOwn), nil
}

// pidfdPid checks that fd is a pidfd and returns its process's PID in the
// caller's PID namespace.
func pidfdPid(op string, fd int) (int, error) {
	if !isPidfd(fd) {
		return 0, fmt.Errorf("pexec: %s: descriptor is not a pidfd: %w", op, os.ErrInvalid)
	}
	pid, ok := fdinfoPid(fd)
	if !ok {
		// No /proc: ask the pidfd itself (Linux 6.13+).
		var info unix.PidfdInfo
		if err := probeGetInfo(); err != nil {
			return 0, fmt.Errorf("pexec: %s: cannot read the pidfd's PID without /proc: %w", op, err)
		}
		switch err := pidfdGetInfo(fd, unix.PIDFD_INFO_PID, &info); {
		case isErrno(err, unix.ESRCH):
			pid = -1
		case err != nil:
			return 0, err
		default:
			pid = int(info.Pid)
		}
	}
	switch {
	case pid < 0:
		return 0, fmt.Errorf("pexec: %s: %w", op, os.ErrProcessDone)
	case pid == 0:
		return 0, fmt.Errorf("pexec: %s: the process is outside this PID namespace: %w", op, os.ErrNotExist)
	}
	return pid, nil
}

// isPidfd reports whether fd is a pidfd: a pidfs file (Linux 6.9+) or, on
// older kernels, the anonymous inode named "[pidfd]".
func isPidfd(fd int) bool {
	var sfs unix.Statfs_t
	if unix.Fstatfs(fd, &sfs) == nil && uint32(sfs.Type) == unix.PID_FS_MAGIC {
		return true
	}
	if probePidfs() == nil {
		return false
	}
	link, err := os.Readlink("/proc/self/fd/" + strconv.Itoa(fd))
	return err == nil && link == "anon_inode:[pidfd]"
}

// fdinfoPid reads the "Pid:" line the kernel shows for a pidfd in
// /proc/self/fdinfo (Linux 5.3+): the PID, -1 once the process has been
// reaped, 0 if it is outside the PID namespace of /proc.
func fdinfoPid(fd int) (int, bool) {
	f, err := os.Open("/proc/self/fdinfo/" + strconv.Itoa(fd))
	if err != nil {
		return 0, false
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "Pid:"); ok {
			n, err := strconv.Atoi(strings.TrimSpace(v))
			return n, err == nil
		}
	}
	return 0, false
}

// probeGetfd checks, once, for pidfd_getfd(2) (Linux 5.6+) by duplicating
// one of the caller's own descriptors.
var probeGetfd = probe.OnceErr(func() error {
	return probeSelf("pidfd_getfd", func(fd int) error {
		nfd, err := unix.PidfdGetfd(fd, fd, 0)
		if err != nil {
			return unsupported("pidfd_getfd", "5.6", os.NewSyscallError("pidfd_getfd", err))
		}
		unix.Close(nfd)
		return nil
	})
})

// GetFD returns a duplicate of the process's file descriptor targetfd, as
// an *os.File the caller owns (close-on-exec set). It wraps pidfd_getfd(2)
// (Linux 5.6+), which needs the same permission as attaching with ptrace
// (PTRACE_MODE_ATTACH_REALCREDS: the same user and no dumpable restriction,
// or CAP_SYS_PTRACE, subject to Yama's ptrace_scope); without it GetFD
// returns an error wrapping [os.ErrPermission] that says so.
//
// A targetfd that is negative returns an error wrapping [os.ErrInvalid];
// one that is not open in the process, an error wrapping syscall.EBADF.
// After the process has exited, GetFD returns an error wrapping
// [os.ErrProcessDone]. In [ModePID] or on older kernels it returns an error
// wrapping [errors.ErrUnsupported].
func (h *Handle) GetFD(targetfd int) (*os.File, error) {
	if err := h.check(); err != nil {
		return nil, err
	}
	if targetfd < 0 || targetfd > math.MaxInt32 {
		return nil, fmt.Errorf("pexec: GetFD(%d): not a file descriptor number: %w", targetfd, os.ErrInvalid)
	}
	if h.mode != ModePidFD {
		return nil, errNoPidfd
	}
	if err := probeGetfd(); err != nil {
		return nil, err
	}
	if h.hasExited() {
		return nil, os.ErrProcessDone
	}
	var nfd int
	var err error
	var gone bool // set only when no descriptor was obtained
	if cerr := h.control(func(fd int) {
		if gone = pidfdReadable(fd); gone {
			return
		}
		nfd, err = unix.PidfdGetfd(fd, targetfd, 0)
		if err == unix.ESRCH {
			gone = pidfdReadable(fd)
		}
	}); cerr != nil {
		return nil, cerr
	}
	switch {
	case gone:
		h.markExited()
		return nil, os.ErrProcessDone
	case err == unix.EPERM:
		return nil, fmt.Errorf("pexec: GetFD(%d) of process %d: needs ptrace permission over it (PTRACE_MODE_ATTACH_REALCREDS: same user, or CAP_SYS_PTRACE): %w", targetfd, h.pid, os.NewSyscallError("pidfd_getfd", err))
	case err == unix.EBADF:
		return nil, fmt.Errorf("pexec: GetFD(%d): process %d has no such open descriptor: %w", targetfd, h.pid, os.NewSyscallError("pidfd_getfd", err))
	case err != nil:
		return nil, os.NewSyscallError("pidfd_getfd", err)
	}
	return os.NewFile(uintptr(nfd), "pid:"+strconv.Itoa(h.pid)+":fd:"+strconv.Itoa(targetfd)), nil
}
