package pexec

import (
	"errors"
	"fmt"
	"os"
)

// Errors returned by pexec besides the standard library's sentinels
// ([os.ErrProcessDone], [os.ErrClosed], [os.ErrInvalid],
// [errors.ErrUnsupported]), which pexec uses wherever they fit.
var (
	// ErrStatusUnavailable reports that a process has exited but its exit
	// status cannot be known: it was not the caller's child, or another
	// waiter reaped it, and the kernel has no pidfd exit record
	// (PIDFD_INFO_EXIT, Linux 6.15).
	ErrStatusUnavailable = errors.New("pexec: exit status not available")

	// errNoPidfd is returned by operations that need a pidfd in ModePID.
	errNoPidfd = fmt.Errorf("pexec: handle holds no pidfd (PID mode): %w", errors.ErrUnsupported)

	// errNotReapedYet: the process exited, the kernel keeps exit statuses,
	// but its parent has not reaped it yet.
	errNotReapedYet = errors.New("pexec: exit status not recorded until the parent reaps the process")

	// errNilHandle is returned by every method of a nil or zero Handle.
	errNilHandle = &os.SyscallError{Syscall: "pexec: nil or zero Handle", Err: os.ErrInvalid}
)

// ReapedError is returned by [Cmd.Wait] when the child was reaped by another
// waiter in the same process (a wait4(-1) loop, cgo code, or SIGCHLD set to
// SIG_IGN) before Cmd.Wait could reap it. os/exec returns a bare
// "waitid: no child processes" then; pexec keeps that error (Err, so
// errors.Is(err, syscall.ECHILD) still holds) and adds the true exit status
// read from the pidfd, when the kernel keeps it (Linux 6.15+). Cmd.ProcessState
// stays nil, as in os/exec, because the standard library's record cannot be
// built without reaping.
type ReapedError struct {
	// Status is the process's real exit status, or nil when the kernel
	// cannot report it (then errors.Is(err, ErrStatusUnavailable) holds).
	Status *Status
	// Err is the error the reap itself returned.
	Err error
}

// Error describes the exit status and how it was recovered.
func (e *ReapedError) Error() string {
	if e.Status == nil {
		return "pexec: child reaped by another waiter (" + e.Err.Error() + "); exit status not available"
	}
	return e.Status.String() + " (pexec: child reaped by another waiter; status read from its pidfd)"
}

// ExitCode returns the child's exit code, or -1 if it is unknown or the child
// was killed by a signal.
func (e *ReapedError) ExitCode() int { return e.Status.ExitCode() }

// Unwrap returns the reap's own error, [os.ErrProcessDone] (the child has
// been reaped: nothing can signal or wait for it any more) and, when the
// status is unknown, [ErrStatusUnavailable].
func (e *ReapedError) Unwrap() []error {
	if e.Status == nil {
		return []error{e.Err, os.ErrProcessDone, ErrStatusUnavailable}
	}
	return []error{e.Err, os.ErrProcessDone}
}
