package pexec

import (
	"os"
	"runtime"
	"strconv"
	"syscall"
)

// Status describes how a process ended. It is what [Handle.Wait] returns and
// carries the same facts as an [os.ProcessState], worded the same way.
//
// A Status is obtained either by reaping the process (then [Status.ProcessState]
// returns the standard library's record too) or, for a process that someone
// else reaped, from the kernel's pidfd exit record (Linux 6.15+).
type Status struct {
	pid      int
	exited   bool
	code     int            // exit code when exited
	signal   syscall.Signal // terminating signal when signaled
	coreDump bool
	state    *os.ProcessState
}

// Pid returns the process ID of the process that ended.
func (s *Status) Pid() int {
	if s == nil {
		return -1
	}
	return s.pid
}

// Exited reports whether the process exited by itself (rather than by a signal).
func (s *Status) Exited() bool { return s != nil && s.exited }

// ExitCode returns the exit code of an exited process, or -1 if the process
// was ended by a signal or s is nil, as [os.ProcessState.ExitCode] does.
func (s *Status) ExitCode() int {
	if s == nil || !s.exited {
		return -1
	}
	return s.code
}

// Success reports whether the process exited with code 0.
func (s *Status) Success() bool { return s != nil && s.exited && s.code == 0 }

// Signaled reports whether the process was ended by a signal.
func (s *Status) Signaled() bool { return s != nil && !s.exited && s.signal != 0 }

// Signal returns the signal that ended the process, or 0 if it was not
// ended by a signal.
func (s *Status) Signal() syscall.Signal {
	if !s.Signaled() {
		return 0
	}
	return s.signal
}

// CoreDump reports whether the process dumped core as it died.
func (s *Status) CoreDump() bool { return s.Signaled() && s.coreDump }

// ProcessState returns the standard library's record of the process, which
// includes resource usage. It is nil when the status did not come from
// reaping the process through an [os.Process] (for example when another
// waiter reaped it and the status was read from the pidfd).
func (s *Status) ProcessState() *os.ProcessState {
	if s == nil {
		return nil
	}
	return s.state
}

// String returns "exit status N", "signal: NAME" or "signal: NAME (core
// dumped)", exactly as [os.ProcessState.String] words it.
func (s *Status) String() string {
	switch {
	case s == nil:
		return "<nil>"
	case s.state != nil:
		return s.state.String()
	case s.exited && runtime.GOOS == "windows" && uint(s.code) >= 1<<16:
		// Windows exit codes are often NTSTATUS values: os words them in
		// hexadecimal.
		return "exit status 0x" + strconv.FormatUint(uint64(s.code), 16)
	case s.exited:
		return "exit status " + strconv.Itoa(s.code)
	case s.coreDump:
		return "signal: " + s.signal.String() + " (core dumped)"
	default:
		return "signal: " + s.signal.String()
	}
}
