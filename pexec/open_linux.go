package pexec

import (
	"bufio"
	"errors"
	"fmt"
	"math"
	"os"
	"strconv"
	"strings"

	"github.com/pexec-dev/pexec/internal/probe"
	"golang.org/x/sys/unix"
)

// errOpenPIDMode is returned by the constructors of non-child handles when
// pidfds are not available: a PID alone cannot name a process that is not
// the caller's unreaped child without racing against PID reuse.
var errOpenPIDMode = fmt.Errorf("pexec: a handle to a process that is not a child started by Cmd needs pidfds (Linux 5.3+); without them it could refer to whatever process reused the PID: %w", errors.ErrUnsupported)

// unsupported returns the error for a capability the running kernel (or a
// seccomp filter) lacks; probeErr is what the probe saw, if anything. A
// probeErr that is transient ([probe.Transient]) says nothing about the
// kernel: the answer is then [transientError].
func unsupported(what, kernel string, probeErr error) error {
	if probe.Transient(probeErr) {
		return transientError(what, probeErr)
	}
	if probeErr == nil {
		return fmt.Errorf("pexec: %s needs Linux %s or later: %w", what, kernel, errors.ErrUnsupported)
	}
	return fmt.Errorf("pexec: %s needs Linux %s or later (%v): %w", what, kernel, probeErr, errors.ErrUnsupported)
}

// transientError returns the error of a probe for what that failed for want
// of a resource at the time (no descriptor free, no memory, EINTR): it
// wraps err, not [errors.ErrUnsupported], and is not kept (see
// [probe.Once]), so the next call probes again.
func transientError(what string, err error) error {
	return fmt.Errorf("pexec: cannot check for %s now: a transient failure, not remembered (the next call checks again): %w", what, err)
}

// probeSelf runs fn with a pidfd of the calling process, for the probe of
// what.
func probeSelf(what string, fn func(fd int) error) error {
	fd, err := unix.PidfdOpen(os.Getpid(), 0)
	if probe.Transient(err) {
		return transientError(what, os.NewSyscallError("pidfd_open", err))
	}
	if err != nil {
		return os.NewSyscallError("pidfd_open", err)
	}
	defer unix.Close(fd)
	return fn(fd)
}

// Open returns a Handle to the process with ID pid, which need not be a
// child of the caller. It wraps pidfd_open(2) (Linux 5.3+). The Handle's
// Alive, Signal, Kill, Done, Wait and WaitContext work on any process:
// Done and Wait wait on Go's netpoller. If the process is the caller's
// child, [Handle.Wait] reaps it (do not call it for a child that something
// else, such as os/exec, will wait for); otherwise Wait returns once the
// process has exited, with its real exit status when its parent has reaped
// it and the kernel keeps the record (PIDFD_INFO_EXIT, Linux 6.15+), and
// otherwise with an error wrapping [ErrStatusUnavailable] — never a made-up
// status.
//
// Open cannot close one race: a PID names a process only until that
// process is reaped, so if the process the caller has in mind has already
// exited and been reaped, pid may now belong to another process and Open
// returns a Handle to that one. Once Open has returned, the Handle refers to
// the process it opened for ever. To close the race, obtain the Handle
// without going through a PID: start the process with [Cmd] ([Cmd.Handle]),
// receive a pidfd ([FromFile], [PeerHandle]), or open your own unreaped
// child (whose PID cannot be reused); or compare [Handle.ID] with an ID
// recorded while the process was known to be the right one.
//
// Errors: pid <= 0 or above the kernel's pid_max wraps [os.ErrInvalid], as
// does the ID of a thread that is not its process's main thread; a process
// that no longer exists (including one that exited a moment ago, for which
// pidfd_open reports EINVAL on older kernels) wraps [os.ErrProcessDone].
// When pidfds are unavailable ([Supported] is false), Open returns an error
// wrapping [errors.ErrUnsupported] rather than a PID-only Handle, which
// could signal a stranger that reused the PID.
func Open(pid int) (*Handle, error) {
	return open("Open", pid)
}

func open(op string, pid int) (*Handle, error) {
	if pid <= 0 {
		return nil, fmt.Errorf("pexec: %s(%d): process IDs are positive: %w", op, pid, os.ErrInvalid)
	}
	if pid > math.MaxInt32 {
		return nil, fmt.Errorf("pexec: %s(%d): above the largest possible process ID: %w", op, pid, os.ErrInvalid)
	}
	if !Supported() {
		return nil, fmt.Errorf("pexec: %s(%d): %w", op, pid, errOpenPIDMode)
	}
	fd, err := unix.PidfdOpen(pid, 0)
	if err != nil {
		return nil, openError(op, pid, err)
	}
	return newOwnedHandle(fd, pid, roleOwn), nil
}

// openError interprets a pidfd_open error.
func openError(op string, pid int, err error) error {
	switch err {
	case unix.ESRCH:
		if max, ok := pidMax(); ok && pid > max {
			return fmt.Errorf("pexec: %s(%d): above the kernel's pid_max (%d): %w", op, pid, max, os.ErrInvalid)
		}
		return fmt.Errorf("pexec: %s(%d): %w", op, pid, os.ErrProcessDone)
	case unix.EINVAL, unix.ENOENT:
		// Older kernels report EINVAL both for a process that exited a
		// moment ago and for the ID of a thread other than the main one;
		// newer ones (6.18 here) report ENOENT for such a thread ID.
		if tgid, ok := threadGroup(pid); ok && tgid != pid {
			return fmt.Errorf("pexec: %s(%d): a thread of process %d, not a process: %w", op, pid, tgid, os.ErrInvalid)
		}
		return fmt.Errorf("pexec: %s(%d): %w", op, pid, os.ErrProcessDone)
	}
	return os.NewSyscallError("pidfd_open", err)
}

// pidMax reads the kernel's largest PID plus one (/proc/sys/kernel/pid_max).
func pidMax() (int, bool) {
	b, err := os.ReadFile("/proc/sys/kernel/pid_max")
	if err != nil {
		return 0, false
	}
	n, err := strconv.Atoi(strings.TrimSpace(string(b)))
	return n, err == nil
}

// threadGroup returns the ID of the process that thread id belongs to.
func threadGroup(id int) (tgid int, ok bool) {
	f, err := os.Open("/proc/" + strconv.Itoa(id) + "/status")
	if err != nil {
		return 0, false
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, found := strings.CutPrefix(sc.Text(), "Tgid:"); found {
			n, err := strconv.Atoi(strings.TrimSpace(v))
			return n, err == nil
		}
	}
	return 0, false
}

// parentHook, when set by tests, runs between Parent's pidfd_open and its
// check that the parent is still the same.
var parentHook func()

// Parent returns a Handle to the calling process's parent. It opens the
// parent with pidfd_open(2) (Linux 5.3+) and then checks that getppid(2)
// still names it: if the parent died in between, the PID might already
// belong to another process, and Parent returns an error wrapping
// [os.ErrProcessDone] instead of a Handle to that process. Being reparented
// (to init or to a child subreaper) counts as the parent being gone.
//
// A worker can select on the Handle's [Handle.Done] to notice that its
// supervisor is gone. If the parent died before Parent was called, the
// worker has already been reparented and Parent returns the new parent; a
// worker that must not miss that should compare the Handle's Pid or
// [Handle.ID] with what its supervisor told it (or use PR_SET_PDEATHSIG).
//
// When the parent is outside the caller's PID namespace, getppid returns 0
// and Parent returns an error wrapping [os.ErrNotExist]. Without pidfds it
// returns an error wrapping [errors.ErrUnsupported], as [Open] does.
func Parent() (*Handle, error) {
	ppid := unix.Getppid()
	if ppid == 0 {
		return nil, fmt.Errorf("pexec: Parent: the parent process is outside this PID namespace: %w", os.ErrNotExist)
	}
	h, err := open("Parent", ppid)
	if err != nil {
		return nil, err
	}
	if parentHook != nil {
		parentHook()
	}
	if now := unix.Getppid(); now != ppid {
		h.Close()
		return nil, fmt.Errorf("pexec: Parent: parent process %d exited (now reparented to %d): %w", ppid, now, os.ErrProcessDone)
	}
	return h, nil
}
