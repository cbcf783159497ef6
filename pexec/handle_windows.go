package pexec

import (
	"errors"
	"fmt"
	"os"
	"runtime"
	"syscall"

	"golang.org/x/sys/windows"
)

// On Windows every Handle is in ModeHandle: it owns a process HANDLE, a
// duplicate of the child's os.Process's for a Cmd child (through
// os.Process.WithHandle, never reopened from the PID), of the os.Process's
// for FromProcess, or OpenProcess's for Open. Windows does not reuse a
// process's ID while a HANDLE to it is open, so the Handle refers to one
// process for ever, and so does its PID while the Handle holds it. Every
// use of the HANDLE holds a reference (ownedHandle), so Close racing a
// Signal never uses a recycled HANDLE value. Every wait goes through the
// exit waiter (exitwait_windows.go). The exit status is the process's exit
// code, which GetExitCodeProcess reads at any time after the exit: there
// is no reaping, so Handle.Wait reports it for any process, child or not.

// sysHandle is the Windows part of a Handle.
type sysHandle struct {
	own  *ownedHandle // the process HANDLE; nil if it could not be had (err)
	err  error        // why own is nil
	proc *os.Process  // a Cmd child's, kept only when own is nil, to kill it

	// group: the process leads a console process group of its own
	// (started with CREATE_NEW_PROCESS_GROUP), which os.Interrupt
	// reaches (GenerateConsoleCtrlEvent with CTRL_BREAK_EVENT).
	group bool
}

// killExitCode is the exit code of a process that Kill, KillTree or a
// context's cancellation ended: 1, as os.Process.Kill gives it.
const killExitCode = 1

// Supported reports whether pexec can use pidfds on this system: never on
// Windows, whose Handles are in [ModeHandle] instead.
func Supported() bool { return false }

// newOwnedHandle returns a ModeHandle Handle owning ph, the HANDLE of
// process pid. The HANDLE is closed by Close, by Cmd.Wait's reap for a Cmd
// child, or when the Handle is garbage collected.
func newOwnedHandle(ph windows.Handle, pid int, r role) *Handle {
	h := newHandle(pid, ModeHandle, r)
	h.sys.own = &ownedHandle{h: ph}
	runtime.AddCleanup(h, func(o *ownedHandle) { o.close() }, h.sys.own)
	return h
}

// childHandle builds the Handle of a child that Cmd.Wait will reap, on a
// duplicate of its os.Process's HANDLE. If none can be had (the
// os.Process was released, or the system is out of HANDLEs), every method
// of the Handle returns the error, and so does Cmd.Start (see
// treePlan.attach).
func childHandle(p *os.Process) *Handle {
	var dup windows.Handle
	var derr error
	err := p.WithHandle(func(ph uintptr) { dup, derr = duplicate(windows.Handle(ph)) })
	if err == nil && derr == nil {
		return newOwnedHandle(dup, p.Pid, roleCmd)
	}
	h := newHandle(p.Pid, ModeHandle, roleCmd)
	h.sys.proc = p
	if err != nil {
		h.sys.err = fmt.Errorf("pexec: pid %d: no HANDLE from its os.Process: %w", p.Pid, err)
	} else {
		h.sys.err = os.NewSyscallError("DuplicateHandle", derr)
	}
	return h
}

// childMode is the mode of a Cmd child's Handle here.
func childMode() Mode { return ModeHandle }

// errReleased is what control reports once Cmd.Wait has reaped a Cmd
// child and let its HANDLE go (or a Handle was made for a child already
// reaped, by Wrap): the outcome is settled.
var errReleased = errors.New("pexec: the process HANDLE was released after the reap")

// control runs fn with the process HANDLE while holding a reference to
// it. Once the HANDLE is closing it reports os.ErrClosed after Close, and
// errReleased after Cmd.Wait's reap.
func (h *Handle) control(fn func(ph windows.Handle)) error {
	o := h.sys.own
	switch {
	case o == nil && h.sys.err != nil:
		return h.sys.err
	case o == nil:
		return errReleased
	}
	if !o.acquire() {
		if h.phase() == phaseClosed {
			return os.ErrClosed
		}
		return errReleased
	}
	defer o.release()
	fn(o.h)
	return nil
}

// hasEnded reports whether the process of ph has exited: its HANDLE is
// signalled.
func hasEnded(ph windows.Handle) bool {
	s, _ := windows.WaitForSingleObject(ph, 0)
	return s == windows.WAIT_OBJECT_0
}

func (h *Handle) sysExited() bool {
	exited := false
	err := h.control(func(ph windows.Handle) { exited = hasEnded(ph) })
	return exited || err == errReleased
}

// sysSignal sends what Windows has of sig: os.Kill terminates the process
// (TerminateProcess, exit code 1, as os.Process.Kill); os.Interrupt sends
// CTRL_BREAK_EVENT to the console process group the process leads, if it
// was started with CREATE_NEW_PROCESS_GROUP (a Go program sees it as
// os.Interrupt, a C program as SIGBREAK); 0 checks that the process has
// not exited. Any other signal returns an error wrapping
// errors.ErrUnsupported.
func (h *Handle) sysSignal(sig syscall.Signal) error {
	switch sig {
	case 0, syscall.SIGKILL:
	case syscall.SIGINT:
		if !h.sys.group {
			return errNoCtrlGroup(h.pid)
		}
	default:
		return errNoSignal(sig)
	}
	var err error
	cerr := h.control(func(ph windows.Handle) {
		if hasEnded(ph) {
			err = os.ErrProcessDone
			return
		}
		switch sig {
		case syscall.SIGKILL:
			err = terminate(ph)
		case syscall.SIGINT:
			// The group's ID is the PID of the process that leads it,
			// which no other process can have while ph is open.
			err = ctrlBreak(h.pid)
		}
	})
	switch {
	case cerr == errReleased:
		return os.ErrProcessDone
	case cerr != nil:
		return cerr
	case err == os.ErrProcessDone:
		h.markExited()
	}
	return err
}

// terminate wraps TerminateProcess. A process that exits meanwhile (the
// call then fails with access denied) is os.ErrProcessDone.
func terminate(ph windows.Handle) error {
	err := windows.TerminateProcess(ph, killExitCode)
	if err != nil && hasEnded(ph) {
		return os.ErrProcessDone
	}
	return os.NewSyscallError("TerminateProcess", err)
}

// ctrlBreak sends CTRL_BREAK_EVENT to the console process group led by
// process pid (GenerateConsoleCtrlEvent). It reaches the members of the
// group that share the caller's console.
func ctrlBreak(pid int) error {
	return os.NewSyscallError("GenerateConsoleCtrlEvent", windows.GenerateConsoleCtrlEvent(windows.CTRL_BREAK_EVENT, uint32(pid)))
}

// errNoSignal is Signal's error for a signal Windows does not have.
func errNoSignal(sig syscall.Signal) error {
	return fmt.Errorf("pexec: signal %v: Windows has no signals but os.Kill (TerminateProcess) and os.Interrupt (CTRL_BREAK_EVENT, to a process started with CREATE_NEW_PROCESS_GROUP): %w", sig, errors.ErrUnsupported)
}

// errNoCtrlGroup is Signal(os.Interrupt)'s error for a process that leads
// no console process group.
func errNoCtrlGroup(pid int) error {
	return fmt.Errorf("pexec: signal interrupt: pid %d was not started with CREATE_NEW_PROCESS_GROUP, so no CTRL_BREAK_EVENT can reach it alone: %w", pid, errors.ErrUnsupported)
}

// exitPollMsec bounds each wait of a waiter that could not use the exit
// waiter (no event could be made for a batch): it blocks a thread in
// WaitForSingleObject that long at most, then notices stop and retries.
const exitPollMsec = 50

// awaitExit returns nil once the process has exited, or errStopped once
// stop or closed is closed first; a nil channel never stops it. It waits
// through the exit waiter, holding no thread of its own.
func (h *Handle) awaitExit(stop, closed <-chan struct{}) error {
	o := h.sys.own
	if o == nil {
		if err := h.control(nil); err != errReleased {
			return err
		}
		return nil // made for a reaped child: it has exited
	}
	for {
		ch, err := o.watch()
		switch {
		case err == nil:
			select {
			case <-ch:
				return nil
			case <-stop:
			case <-closed:
			}
			return errStopped
		case err == errHandleClosing:
			if h.phase() == phaseClosed {
				return errStopped
			}
			return nil // released after Cmd.Wait's reap: exited
		}
		exited := false
		if cerr := h.control(func(ph windows.Handle) {
			s, _ := windows.WaitForSingleObject(ph, exitPollMsec)
			exited = s != uint32(windows.WAIT_TIMEOUT)
		}); cerr != nil {
			continue // closing: watch says which way
		}
		if exited {
			return nil
		}
		if isClosed(stop) || isClosed(closed) {
			return errStopped
		}
	}
}

// sysWait waits for the process to exit and records its outcome, or
// returns errStopped if stop or the Handle's closing ends the wait first.
func (h *Handle) sysWait(stop <-chan struct{}) error {
	if h.phase() == phaseRunning {
		if err := h.awaitExit(stop, h.closedC()); err != nil {
			return err
		}
		h.markExited()
	}
	var st *Status
	var serr error
	switch err := h.control(func(ph windows.Handle) { st, serr = exitStatus(h.pid, ph) }); {
	case err == errReleased:
		return nil // Cmd.Wait has settled the outcome
	case err != nil:
		return err
	}
	h.observe(st, serr)
	return nil
}

// exitStatus reads the exit code of the exited process of ph.
func exitStatus(pid int, ph windows.Handle) (*Status, error) {
	var code uint32
	if err := windows.GetExitCodeProcess(ph, &code); err != nil {
		return nil, os.NewSyscallError("GetExitCodeProcess", err)
	}
	return &Status{pid: pid, exited: true, code: int(code)}, nil
}

// observe records an outcome seen by a Handle waiter: it never replaces
// one that Cmd.Wait's reap is about to record (phaseReaping).
func (h *Handle) observe(st *Status, err error) {
	h.move(phaseSettled, phaseExited, result{st: st, err: err})
}

// beforeReap is called by Cmd.Wait before the standard library's wait: it
// waits for the exit through the exit waiter, so that os.Process.Wait's
// WaitForSingleObject then returns at once and no thread blocks per child.
// With capture (os/exec's Wait will also wait for I/O copying), it records
// the status first, so that Handle waiters have it at once. If the Handle
// is closed meanwhile, it returns and lets os.Process.Wait wait.
func (h *Handle) beforeReap(capture bool) *Status {
	var st *Status
	if h.awaitExit(nil, h.closedC()) == nil && capture {
		var serr error
		if h.control(func(ph windows.Handle) { st, serr = exitStatus(h.pid, ph) }) == nil {
			h.observe(st, serr)
		}
	}
	return st
}

// reaping is called by Cmd.Wait right before the standard library's wait:
// from now on the outcome is Cmd.Wait's to record.
func (h *Handle) reaping() { h.move(phaseReaping, phaseExited, result{}) }

// afterReap records the outcome of Cmd.Wait's reap and lets the HANDLE go
// (a tree keeps its own reference until it is empty): the outcome is
// settled, and nothing needs the process any more.
func (h *Handle) afterReap(r result) {
	h.to(phaseSettled, r)
	if o := h.sys.own; o != nil {
		o.close()
	}
}

// foreignStatus returns the status recorded, if any: nothing reaps a
// Windows process behind Cmd.Wait's back.
func (h *Handle) foreignStatus() *Status {
	st, _ := h.outcome()
	return st
}

// sysClose closes the HANDLE once nobody uses it.
func (h *Handle) sysClose() error {
	if o := h.sys.own; o != nil {
		o.close()
	}
	return nil
}

// Control calls fn with the Handle's process HANDLE (a
// golang.org/x/sys/windows.Handle, passed as an int), for system calls
// pexec does not wrap, while holding a reference that keeps the HANDLE
// from being closed, and its value reused, until fn returns. fn must not
// close it or keep it after returning. Once [Cmd.Wait] has reaped a Cmd
// child, Control returns [os.ErrProcessDone].
func (h *Handle) Control(fn func(handle int)) error {
	if err := h.check(); err != nil {
		return err
	}
	err := h.control(func(ph windows.Handle) { fn(int(ph)) })
	if err == errReleased {
		return os.ErrProcessDone
	}
	return err
}
