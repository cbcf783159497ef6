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

// PID mode on Linux, and the one place where pexec names a process by its
// PID to signal it. A child that has not been reaped keeps its PID, so
// waitid(P_PID, pid, WNOWAIT) and kill(pid) are safe while the child is
// unreaped. Every such call that does not block runs under the read lock of
// the Handle's reap gate, and Cmd.Wait marks the reap under the write lock,
// so no call runs after the reap (when the PID may already belong to
// another process) and every later call refuses. The one blocking call, the
// watcher's waitid(WNOWAIT), holds no lock (a lock held across it would
// queue the reap's write lock behind it, and with it every later Signal,
// including one that would end the child); it needs none, because Cmd.Wait
// reaps only after the watcher has seen the exit. A reap by the child's
// os.Process itself (a direct cmd.Process.Wait) is excluded too: a single
// process is signalled through os.Process.Signal, which refuses once that
// Wait has begun. Nothing can stop another waiter in the same process from
// reaping the child behind pexec's back (a wait4(-1) loop, SIGCHLD
// ignored): that is what pidfds fix.

// reapGate orders every use of a child's PID against Cmd.Wait's reap of the
// child: users hold the read lock, and Cmd.Wait sets reaped under the write
// lock before it reaps.
type reapGate struct {
	mu     sync.RWMutex
	reaped bool
}

// pidState is a ModePID Handle's state.
type pidState struct {
	// proc is the child's os.Process, through which a single process is
	// signalled (see killByPID).
	proc *os.Process

	watchOnce sync.Once
	exitSeen  chan struct{} // closed by the watcher once the child has exited
}

// newPIDHandle returns the ModePID Handle of the child p, a Cmd's child that
// Cmd.Wait will reap. A Process that cannot be signalled by PID without a
// race gives a Handle that refuses everything: one released
// (Process.Release sets Pid to -1) or never started (a Pid of 0 or less)
// is closed (os.ErrClosed); one that its own Wait has already reaped is
// settled (os.ErrProcessDone). Signal 0, sent through killByPID, tells
// which, and sends nothing.
func newPIDHandle(p *os.Process) *Handle {
	h := newHandle(p.Pid, ModePID, roleCmd)
	h.sys.pid.proc = p
	if p.Pid <= 0 {
		h.to(phaseClosed, result{})
		return h
	}
	h.killByPID(0, false)
	return h
}

// killByPID is the only place where pexec calls kill(2), whatever the mode:
// ModePID's Signal, SignalGroup and SignalTree, and TreeGroup's signals on
// kernels without PIDFD_SIGNAL_PROCESS_GROUP. It signals the Handle's
// child, or with group the process group the child leads (kill(-pid)), only
// once it has proven, under the reap gate's read lock, that the target
// cannot be another process:
//
//   - the Handle is a Cmd child's, with a PID greater than 0 (a pid of 0 or
//     less would name the caller's group, or every process);
//   - Cmd.Wait has not reaped it (the gate), nor has its os.Process (whose
//     own Signal refuses once its Wait has begun, and whose Pid Release
//     sets to -1);
//   - waitid(P_PID, pid, WNOHANG|WNOWAIT) finds it as an unreaped child.
//
// A child that has exited is not signalled (os.ErrProcessDone), except its
// group: while the child is a zombie its PID, which is the group's ID,
// stays its own, and members may live on. Once the child has been reaped,
// a group signal returns an error wrapping errors.ErrUnsupported: the
// group's ID could name another group.
func (h *Handle) killByPID(sig syscall.Signal, group bool) error {
	if h == nil || h.role != roleCmd || h.pid <= 0 {
		return os.ErrProcessDone
	}
	g := &h.sys.reap
	g.mu.RLock()
	defer g.mu.RUnlock()
	p := h.proc()
	switch {
	case g.reaped || p == nil:
		return h.refusal(group)
	case p.Pid != h.pid:
		// Released (Pid -1), or changed under pexec: the os.Process no
		// longer vouches for the PID.
		h.to(phaseClosed, result{})
		return fmt.Errorf("pexec: pid %d: the os.Process was released: %w", h.pid, os.ErrClosed)
	}
	st, err := waitid(unix.P_PID, h.pid, unix.WEXITED|unix.WNOHANG|unix.WNOWAIT, 0)
	switch {
	case err != nil:
		// ECHILD: reaped by another waiter, so no longer a child.
		h.markExited()
		return h.refusal(group)
	case st != nil && !group:
		h.markExited()
		return os.ErrProcessDone
	}
	// os.Process.Signal refuses (os.ErrProcessDone) once its own Wait has
	// marked the child done, which it does before reaping, and that Wait
	// waits for the Signal to return. For a group, signal 0 asks it first.
	osSig := sig
	if group {
		osSig = 0
	}
	if err := p.Signal(osSig); errors.Is(err, os.ErrProcessDone) {
		// waitid found a child by that PID, yet the os.Process has
		// reaped its own: the PID has been reused by another child.
		h.ownerReaped()
		return h.refusal(group)
	} else if !group || err != nil {
		return signalError("kill", err)
	}
	return signalError("kill", unix.Kill(-h.pid, unix.Signal(sig)))
}

// refusal is what killByPID returns for a child that cannot be signalled
// any more: os.ErrProcessDone for the child itself; for its group, an
// error wrapping errors.ErrUnsupported, because members may live on.
func (h *Handle) refusal(group bool) error {
	if !group {
		return os.ErrProcessDone
	}
	return fmt.Errorf("pexec: process %d, the group's leader, has been reaped; without PIDFD_SIGNAL_PROCESS_GROUP (Linux 6.9) its group cannot be signalled without a PID race: %w", h.pid, errors.ErrUnsupported)
}

// proc returns the child's os.Process: a Cmd child's pidfd Handle borrows
// it, a PID-mode Handle keeps it for killByPID.
func (h *Handle) proc() *os.Process {
	if h.mode == ModePID {
		return h.sys.pid.proc
	}
	return h.sys.proc
}

// markReaped closes the reap gate: Cmd.Wait calls it before it reaps the
// child, and no signal by PID starts afterwards.
func (h *Handle) markReaped() {
	g := &h.sys.reap
	g.mu.Lock()
	g.reaped = true
	g.mu.Unlock()
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
	g := &h.sys.reap
	g.mu.RLock()
	defer g.mu.RUnlock()
	if g.reaped {
		return true
	}
	st, err := waitid(unix.P_PID, h.pid, unix.WEXITED|unix.WNOHANG|unix.WNOWAIT, 0)
	return st != nil || isErrno(err, syscall.ECHILD)
}

// pidSignal is Signal and SignalGroup in ModePID, and SignalGroup of a Cmd
// child in ModePidFD on kernels without PIDFD_SIGNAL_PROCESS_GROUP.
func (h *Handle) pidSignal(sig syscall.Signal, flags int) error {
	if flags&unix.PIDFD_SIGNAL_PROCESS_GROUP == 0 {
		return h.killByPID(sig, false)
	}
	// Like PIDFD_SIGNAL_PROCESS_GROUP, signal only the group the child
	// leads, and only while the child itself runs. Any other group might
	// be the caller's own.
	if !h.Alive() {
		return os.ErrProcessDone
	}
	pgid, err := unix.Getpgid(h.pid)
	if err != nil {
		return signalError("getpgid", err)
	}
	if pgid != h.pid {
		return errNotGroupLeader(h.pid)
	}
	return h.killByPID(sig, true)
}

// pidSettle records the outcome of the exited child, observed without
// reaping it.
func (h *Handle) pidSettle() error {
	<-h.pidWatch() // returns at once: sysWait has seen the exit through it
	g := &h.sys.reap
	g.mu.RLock()
	defer g.mu.RUnlock()
	if g.reaped {
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
// notice of the exit (Close does not stop it) and records the status.
func (h *Handle) pidBeforeReap() *Status {
	if h.pid <= 0 {
		return nil
	}
	<-h.pidWatch()
	g := &h.sys.reap
	g.mu.RLock()
	st, _ := waitid(unix.P_PID, h.pid, unix.WEXITED|unix.WNOHANG|unix.WNOWAIT, h.pid)
	g.mu.RUnlock()
	if st != nil {
		h.observe(st, nil)
	}
	return st
}
