package pexec

import (
	"errors"
	"fmt"
	"math"
	"os"

	"golang.org/x/sys/unix"
)

// FromProcess returns a race-free Handle for p, a process that other code
// started through os/exec or os.StartProcess: a library that takes an
// *exec.Cmd (pty.Start, go-plugin, gexec), or code that cannot change. Since
// Go 1.23 such an os.Process holds a pidfd born with the child (the runtime
// spawns with CLONE_PIDFD), and FromProcess duplicates it through
// os.Process.WithHandle, so the Handle never derives from a PID.
//
// The Handle observes and never reaps: p's own Wait, which the code that
// started p calls, reaps the child and returns what it would have returned
// without pexec. Wait, WaitContext and Done hold no OS thread. The status
// is recorded if a Handle waiter is waiting when the child exits; otherwise,
// once p.Wait has reaped it, it is read from the pidfd's exit record
// (PIDFD_INFO_EXIT, Linux 6.15+); otherwise Wait returns an error wrapping
// [ErrStatusUnavailable]. Signal, Kill and Alive refuse once the child has
// exited.
//
// The Handle owns its duplicate, so it keeps working after p.Release or
// after p is garbage collected; the cost is one descriptor per adopted
// process until [Handle.Close] (or the Handle's garbage collection).
//
// Errors: a nil p wraps [os.ErrInvalid], as do a released one (Pid -1), the
// zero os.Process and any other whose Pid is not a process ID (0 or less,
// or above what a pid_t holds); where pidfds are unavailable ([Supported]
// is false: kernels before 5.4, a seccomp filter, QEMU user mode without
// CLONE_PIDFD: Go then falls back to PIDs), and for an os.Process that
// holds no pidfd although Go uses them (one that os.FindProcess could not
// open a pidfd for), the error wraps [errors.ErrUnsupported]; one that
// p.Wait has already reaped wraps [os.ErrProcessDone].
func FromProcess(p *os.Process) (*Handle, error) {
	if p == nil {
		return nil, fmt.Errorf("pexec: FromProcess: nil *os.Process: %w", os.ErrInvalid)
	}
	switch pid := p.Pid; {
	case pid == -1:
		return nil, fmt.Errorf("pexec: FromProcess: the os.Process was released (Pid -1): %w", os.ErrInvalid)
	case pid == 0:
		return nil, fmt.Errorf("pexec: FromProcess: an os.Process with Pid 0 (the zero os.Process?) names no process: %w", os.ErrInvalid)
	case pid < 0 || pid > math.MaxInt32:
		return nil, fmt.Errorf("pexec: FromProcess: an os.Process with Pid %d names no process: %w", pid, os.ErrInvalid)
	}
	if !Supported() {
		return nil, fmt.Errorf("pexec: FromProcess(pid %d): %w", p.Pid, errOpenPIDMode)
	}
	fd := -1
	var derr error
	err := p.WithHandle(func(h uintptr) { fd, derr = unix.FcntlInt(h, unix.F_DUPFD_CLOEXEC, 0) })
	switch {
	case errors.Is(err, os.ErrNoHandle):
		// Go uses pidfds here (Supported), so os made p without one:
		// FindProcess found pidfd_open failing (no descriptor free, say),
		// or p was not made by os at all.
		return nil, fmt.Errorf("pexec: FromProcess(pid %d): the os.Process holds no pidfd (os.FindProcess could not open one, or os did not make it): %w", p.Pid, errors.ErrUnsupported)
	case errors.Is(err, os.ErrProcessDone):
		return nil, fmt.Errorf("pexec: FromProcess(pid %d): %w", p.Pid, os.ErrProcessDone)
	case err != nil:
		return nil, fmt.Errorf("pexec: FromProcess(pid %d): %v: %w", p.Pid, err, os.ErrInvalid)
	case derr != nil:
		return nil, os.NewSyscallError("fcntl", derr)
	}
	h := newOwnedHandle(fd, p.Pid, roleObserve)
	if pidfsSupported() == nil {
		h.sys.id, _ = pidfdID(fd)
	}
	return h, nil
}

// OpenID returns a Handle to the process with ID pid only if it is still
// the process whose [Handle.ID] was id: it opens the PID first and then
// compares the ID of what it opened, so the answer cannot be about a
// process that reused the PID in between. A PID that now names another
// process, or none, returns an error wrapping [os.ErrProcessDone]. See
// [Identity] for storing the pair. An id of 0, which no process has, returns
// an error wrapping [os.ErrInvalid]. It needs pidfs (Linux 6.9+); otherwise,
// and without pidfds, it returns an error wrapping [errors.ErrUnsupported].
// Other errors are [Open]'s.
func OpenID(pid int, id uint64) (*Handle, error) {
	if id == 0 {
		return nil, fmt.Errorf("pexec: OpenID(%d, 0): no process has the ID 0: %w", pid, os.ErrInvalid)
	}
	if err := pidfsSupported(); err != nil && Supported() {
		return nil, err
	}
	h, err := open("OpenID", pid)
	if err != nil {
		return nil, err
	}
	got, err := h.ID()
	if err != nil {
		h.Close()
		return nil, err
	}
	if got != id {
		h.Close()
		return nil, fmt.Errorf("pexec: OpenID(%d, %d): PID %d now names another process (ID %d): %w", pid, id, pid, got, os.ErrProcessDone)
	}
	return h, nil
}
