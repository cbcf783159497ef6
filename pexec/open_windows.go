package pexec

import (
	"errors"
	"fmt"
	"math"
	"os"

	"golang.org/x/sys/windows"
)

// openAccess is what a Handle from Open asks of the process: to wait for
// it, read its exit code, and terminate it.
const openAccess = windows.SYNCHRONIZE | windows.PROCESS_QUERY_LIMITED_INFORMATION | windows.PROCESS_TERMINATE

// Open returns a Handle to the process with ID pid, which need not be a
// child of the caller. On Windows it wraps OpenProcess, asking to wait for
// the process, read its exit code and terminate it (or, where terminating
// is denied, only the first two: Kill then returns an error for which
// errors.Is(err, [os.ErrPermission]) holds). Alive, Signal, Kill, Done,
// Wait and WaitContext work on any process, and Wait returns its exit code
// whoever its parent is: Windows has no reaping.
//
// Open is as racy as any lookup by PID: if the process the caller has in
// mind has exited and nothing holds a HANDLE to it, Windows may have given
// pid to another process, and Open returns a Handle to that one. (While
// some HANDLE to an exited process is open, its PID stays its own, and
// Open returns a Handle to it, exited: Wait then returns its exit code.)
// Once Open has returned, the Handle refers to the process it opened for
// ever. To close the race, obtain the Handle without going through a PID:
// start the process with [Cmd] ([Cmd.Handle]), or adopt an os.Process with
// [FromProcess].
//
// Errors: pid <= 0 or above the largest process ID wraps [os.ErrInvalid];
// a process that does not exist (any more) wraps [os.ErrProcessDone]; one
// the caller may not open wraps [os.ErrPermission].
func Open(pid int) (*Handle, error) {
	if pid <= 0 || pid > math.MaxUint32 {
		return nil, fmt.Errorf("pexec: Open(%d): process IDs are positive 32-bit numbers: %w", pid, os.ErrInvalid)
	}
	ph, err := windows.OpenProcess(openAccess, false, uint32(pid))
	if err == windows.ERROR_ACCESS_DENIED {
		ph, err = windows.OpenProcess(openAccess&^windows.PROCESS_TERMINATE, false, uint32(pid))
	}
	switch {
	case err == windows.ERROR_INVALID_PARAMETER:
		return nil, fmt.Errorf("pexec: Open(%d): no such process: %w", pid, os.ErrProcessDone)
	case err != nil:
		return nil, os.NewSyscallError("OpenProcess", err)
	}
	return newOwnedHandle(ph, pid, roleOwn), nil
}

// FromProcess returns a race-free Handle for p, a process that other code
// started through os/exec or os.StartProcess. On Windows the os.Process
// holds the HANDLE that CreateProcess returned, and FromProcess duplicates
// it through os.Process.WithHandle, so the Handle never derives from a
// PID. The Handle observes: p's own Wait is the one the code that started
// p calls, and returns what it would have returned without pexec. Wait,
// WaitContext and Done go through pexec's exit waiter, and Wait returns
// the exit code at any time after the exit. The Handle owns its duplicate,
// so it keeps working after p.Release or p.Wait, until [Handle.Close] (or
// its garbage collection).
//
// Errors: a nil p wraps [os.ErrInvalid], as does one that was released or
// waited for (os.Process lets its HANDLE go then).
func FromProcess(p *os.Process) (*Handle, error) {
	if p == nil {
		return nil, fmt.Errorf("pexec: FromProcess: nil *os.Process: %w", os.ErrInvalid)
	}
	var dup windows.Handle
	var derr error
	err := p.WithHandle(func(ph uintptr) { dup, derr = duplicate(windows.Handle(ph)) })
	switch {
	case errors.Is(err, os.ErrProcessDone):
		return nil, fmt.Errorf("pexec: FromProcess(pid %d): %w", p.Pid, os.ErrProcessDone)
	case err != nil:
		return nil, fmt.Errorf("pexec: FromProcess(pid %d): %v (released, or waited for): %w", p.Pid, err, os.ErrInvalid)
	case derr != nil:
		return nil, os.NewSyscallError("DuplicateHandle", derr)
	}
	return newOwnedHandle(dup, p.Pid, roleObserve), nil
}
