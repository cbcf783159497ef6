//go:build linux

package pexec

import (
	"errors"
	"fmt"
	"os"
	"sync"
	"syscall"

	"golang.org/x/sys/unix"
)

// PID mode on Linux. A child that has not been reaped keeps its PID, so
// waitid(P_PID, pid, WNOWAIT) and kill(pid) are safe while the child is
// unreaped. Every such call that does not block runs under the read lock of
// gate, and Cmd.Wait marks the reap under the write lock, so no call runs
// after the reap (when the PID may already belong to another process) and
// every later call refuses. The one blocking call, the watcher's
// waitid(WNOWAIT), holds no lock (a lock held across it would queue the
// reap's write lock behind it, and with it every later Signal, including
// one that would end the child); it needs none, because Cmd.Wait reaps only
// after the watcher has seen the exit. Nothing can stop another waiter in
// the same process from reaping the child behind pexec's back: that is what
// pidfds fix.

// pidState is a ModePID Handle's state.
type pidState struct {
	gate   sync.RWMutex
	reaped bool // set by Cmd.Wait, under gate's write lock, before it reaps

	watchOnce sync.Once
	exitSeen  chan struct{} // closed by the watcher once the child has exited
}

func newPIDHandle(pid int) *Handle {
	return newHandle(pid, ModePID, roleCmd)
}

// pidWatch starts, once, the watcher: a goroutine that blocks a thread in
// waitid(WNOWAIT) until the child exits, as os/exec's Wait does. It returns
// the channel the watcher closes then.
func (h *Handle) pidWatch() <-chan struct{} {
	s := &h.sys.pid
	s.watchOnce.Do(func() {
		s.exitSeen = make(chan struct{})
		go func() {
			waitid(unix.P_PID, h.pid, unix.WEXITED|unix.WNOWAIT, 0)
			close(s.exitSeen)
		}()
	})
	return s.exitSeen
}

func (h *Handle) pidAwaitExit(stop, closed <-chan struct{}) error {
	select {
	case <-h.pidWatch():
		return nil
	case <-stop:
	case <-closed:
	}
	return errStopped
}

// pidExited reports whether the child has exited, without reaping it.
func (h *Handle) pidExited() bool {
	s := &h.sys.pid
	s.gate.RLock()
	defer s.gate.RUnlock()
	if s.reaped {
		return true
	}
	st, err := waitid(unix.P_PID, h.pid, unix.WEXITED|unix.WNOHANG|unix.WNOWAIT, 0)
	return st != nil || isErrno(err, syscall.ECHILD)
}

func (h *Handle) pidSignal(sig syscall.Signal, flags int) error {
	s := &h.sys.pid
	s.gate.RLock()
	defer s.gate.RUnlock()
	if s.reaped {
		return os.ErrProcessDone
	}
	st, err := waitid(unix.P_PID, h.pid, unix.WEXITED|unix.WNOHANG|unix.WNOWAIT, 0)
	if st != nil || isErrno(err, syscall.ECHILD) {
		h.markExited()
		return os.ErrProcessDone
	}
	target := h.pid
	if flags&unix.PIDFD_SIGNAL_PROCESS_GROUP != 0 {
		// Like PIDFD_SIGNAL_PROCESS_GROUP, signal only the group the child
		// leads: its ID is the unreaped child's PID, so it cannot have been
		// reused. Any other group might be the caller's own.
		pgid, err := unix.Getpgid(h.pid)
		if err != nil {
			return signalError("getpgid", err)
		}
		if pgid != h.pid {
			return errNotGroupLeader(h.pid)
		}
		target = -pgid
	}
	return signalError("kill", unix.Kill(target, unix.Signal(sig)))
}

// pidSignalTree signals the process group the child leads (TreeGroup):
// kill(-pgid) while the child is unreaped, even as a zombie, when its PID,
// which is the group's ID, cannot have been reused. Once Cmd.Wait has
// reaped it, the group cannot be signalled without a PID race: an error
// wrapping errors.ErrUnsupported, never os.ErrProcessDone while members may
// live.
func (h *Handle) pidSignalTree(sig syscall.Signal) error {
	s := &h.sys.pid
	s.gate.RLock()
	defer s.gate.RUnlock()
	if s.reaped {
		return fmt.Errorf("pexec: SignalTree: process %d, the group's leader, has been reaped; without pidfds its group cannot be signalled without a PID race: %w", h.pid, errors.ErrUnsupported)
	}
	return signalError("kill", unix.Kill(-h.pid, unix.Signal(sig)))
}

// pidSettle records the outcome of the exited child, observed without
// reaping it.
func (h *Handle) pidSettle() error {
	<-h.pidWatch() // returns at once: the exit was seen through it
	s := &h.sys.pid
	s.gate.RLock()
	defer s.gate.RUnlock()
	if s.reaped {
		return nil // Cmd.Wait, in phaseReaping or later, records it
	}
	st, err := waitid(unix.P_PID, h.pid, unix.WEXITED|unix.WNOHANG|unix.WNOWAIT, h.pid)
	switch {
	case st != nil:
		h.observe(st, nil)
	case err == nil || isErrno(err, syscall.ECHILD):
		// The watcher saw the exit, yet the child cannot be waited for:
		// another waiter in this process has reaped it.
		h.observe(nil, h.unavailable())
	default:
		h.observe(nil, err)
	}
	return nil
}

// pidBeforeReap is beforeReap in ModePID: it waits for the watcher's
// notice of the exit (Close does not stop it), records the status, and
// marks the reap so that no PID-mode call runs from now on.
func (h *Handle) pidBeforeReap() *Status {
	<-h.pidWatch()
	s := &h.sys.pid
	s.gate.RLock()
	st, _ := waitid(unix.P_PID, h.pid, unix.WEXITED|unix.WNOHANG|unix.WNOWAIT, h.pid)
	s.gate.RUnlock()
	if st != nil {
		h.observe(st, nil)
	}
	h.move(phaseReaping, phaseExited, result{})
	s.gate.Lock()
	s.reaped = true
	s.gate.Unlock()
	return st
}
