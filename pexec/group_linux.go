package pexec

import (
	"errors"
	"fmt"
	"os"
	"sync/atomic"
	"syscall"

	"github.com/pexec-dev/pexec/internal/probe"
	"golang.org/x/sys/unix"
)

// probeGroupSignal checks, once, for PIDFD_SIGNAL_PROCESS_GROUP (Linux
// 6.9+): older kernels reject the flag with EINVAL. The probe sends signal 0
// to the group led by the calling process; ESRCH (it leads none) still
// shows that the flag is understood.
var probeGroupSignal = probe.OnceErr(func() error {
	return probeSelf("PIDFD_SIGNAL_PROCESS_GROUP", func(fd int) error {
		err := unix.PidfdSendSignal(fd, 0, nil, unix.PIDFD_SIGNAL_PROCESS_GROUP)
		if err != nil && err != unix.ESRCH && err != unix.EPERM {
			return unsupported("signalling a process group through a pidfd (PIDFD_SIGNAL_PROCESS_GROUP)", "6.9", os.NewSyscallError("pidfd_send_signal", err))
		}
		return nil
	})
})

// forceNoGroupSignal makes pexec behave as on kernels without
// PIDFD_SIGNAL_PROCESS_GROUP; tests set it through export_linux_test.go.
var forceNoGroupSignal atomic.Bool

// groupSignal reports whether PIDFD_SIGNAL_PROCESS_GROUP can be used.
func groupSignal() error {
	if forceNoGroupSignal.Load() {
		return unsupported("signalling a process group through a pidfd (PIDFD_SIGNAL_PROCESS_GROUP)", "6.9", nil)
	}
	return probeGroupSignal()
}

// errNotGroupLeader is returned by SignalGroup for a process that does not
// lead a process group.
func errNotGroupLeader(pid int) error {
	return fmt.Errorf("pexec: SignalGroup: process %d does not lead a process group (start it with SysProcAttr.Setpgid or Setsid): %w", pid, os.ErrInvalid)
}

// SignalGroup sends sig to the process group that the Handle's process
// leads, as kill(-pid, sig) would, but race-free: in [ModePidFD] it wraps
// pidfd_send_signal(2) with PIDFD_SIGNAL_PROCESS_GROUP (Linux 6.9+), which
// signals the group whose ID is the process's own PID; in [ModePID] (a child
// started by [Cmd]) it calls kill(-pid) only while the child is known to be
// alive and unreaped, so the group ID cannot have been reused.
//
// The process must lead its group (for a child, set SysProcAttr.Setpgid or
// Setsid); otherwise SignalGroup returns an error wrapping [os.ErrInvalid].
// Once the leader has exited (even as a zombie, while other members may
// live on), it returns an error wrapping [os.ErrProcessDone]. On kernels
// without PIDFD_SIGNAL_PROCESS_GROUP (before 6.9) it signals a child
// started by [Cmd] as in ModePID, with kill(-pid) while the child runs, and
// returns an error wrapping [errors.ErrUnsupported] for any other process.
// sig must be a [syscall.Signal].
func (h *Handle) SignalGroup(sig os.Signal) error {
	s, err := h.signalArg(sig)
	if err != nil {
		return err
	}
	if h.mode == ModePidFD {
		if err := groupSignal(); err != nil {
			if h.role != roleCmd {
				return err
			}
			// Before Linux 6.9 a child started by Cmd is signalled as in
			// ModePID: kill(-pid) through killByPID, while it runs.
			if s != syscall.Signal(int32(s)) {
				return os.NewSyscallError("kill", unix.EINVAL) // as signalFlags
			}
			return h.pidSignal(s, unix.PIDFD_SIGNAL_PROCESS_GROUP)
		}
	}
	err = h.signalFlags(s, unix.PIDFD_SIGNAL_PROCESS_GROUP)
	if h.mode == ModePidFD && errors.Is(err, os.ErrProcessDone) && !h.hasExited() && !h.sysExited() {
		// ESRCH from a live process: there is no group with its PID.
		if h.phase() == phaseClosed {
			return os.ErrClosed
		}
		return errNotGroupLeader(h.pid)
	}
	return err
}
