package pexec

import (
	"os"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// si_code values for SIGCHLD (<asm-generic/siginfo.h>); golang.org/x/sys/unix
// does not define them.
const (
	cldExited = 1
	cldKilled = 2
	cldDumped = 3
)

// waitid wraps waitid(2), retrying on EINTR. It reports whether a process
// was found (si_pid != 0) and fills st if so.
func waitid(idtype, id, options int, pid int) (*Status, error) {
	var info siginfoChild
	var ru unix.Rusage
	for {
		err := unix.Waitid(idtype, id, (*unix.Siginfo)(unsafe.Pointer(&info)), options, &ru)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return nil, os.NewSyscallError("waitid", err)
		}
		break
	}
	if info.Pid == 0 {
		return nil, nil
	}
	st := &Status{pid: int(info.Pid)}
	switch info.Code {
	case cldExited:
		st.exited, st.code = true, int(info.Status)
	case cldDumped:
		st.coreDump = true
		fallthrough
	default:
		st.signal = syscall.Signal(info.Status)
	}
	if pid > 0 {
		st.pid = pid
	}
	return st, nil
}

// statusFromWaitStatus converts a wait(2)-style status word, as found in the
// pidfd exit record.
func statusFromWaitStatus(pid int, code int32) *Status {
	ws := syscall.WaitStatus(code)
	st := &Status{
		pid:      pid,
		exited:   ws.Exited(),
		code:     ws.ExitStatus(),
		coreDump: ws.CoreDump(),
	}
	if ws.Signaled() {
		// ws.Signal is -1 for other words, which Signaled would take
		// for a death by signal.
		st.signal = ws.Signal()
	}
	return st
}
