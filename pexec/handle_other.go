//go:build !linux && !windows

package pexec

import (
	"errors"
	"os"
	"sync"
	"syscall"
)

// On systems other than Linux there are no pidfds: every Handle is in
// ModePID and works through the standard library's os.Process, which refuses
// to signal once Wait has reaped the child; gate makes Signal and the reap
// exclude each other. Handle.Wait reports the exit once Cmd.Wait has reaped
// the child.

type sysHandle struct {
	proc   *os.Process
	gate   sync.RWMutex
	reaped bool
}

// Supported reports whether pexec can use pidfds on this system: never on
// this one.
func Supported() bool { return false }

// childHandle returns the Handle of a Cmd's child. A Process with no
// PID to signal (released: Pid -1; never started: 0) gives a closed Handle.
func childHandle(p *os.Process) *Handle {
	h := newHandle(p.Pid, ModePID, roleCmd)
	h.sys.proc = p
	if p.Pid <= 0 {
		h.to(phaseClosed, result{})
	}
	return h
}

func (h *Handle) sysExited() bool {
	h.sys.gate.RLock()
	defer h.sys.gate.RUnlock()
	return h.sys.reaped || errors.Is(h.sys.proc.Signal(syscall.Signal(0)), os.ErrProcessDone)
}

func (h *Handle) sysSignal(sig syscall.Signal) error {
	h.sys.gate.RLock()
	defer h.sys.gate.RUnlock()
	if h.sys.reaped {
		return os.ErrProcessDone
	}
	return h.sys.proc.Signal(sig)
}

// awaitExit waits for Cmd.Wait's reap, the only way to learn of the exit
// here.
func (h *Handle) awaitExit(stop, closed <-chan struct{}) error {
	_, settled, _ := h.waitChans()
	select {
	case <-settled:
		return nil
	case <-stop:
	case <-closed:
	}
	return errStopped
}

// sysWait waits for Cmd.Wait's reap, the only way to learn of the exit
// here.
func (h *Handle) sysWait(stop <-chan struct{}) error { return h.awaitExit(stop, h.closedC()) }

func (h *Handle) beforeReap(bool) *Status { return nil }

// reaping is called by Cmd.Wait right before it reaps the child: from now
// on the outcome is Cmd.Wait's, and no signal is sent.
func (h *Handle) reaping() {
	h.move(phaseReaping, phaseExited, result{})
	h.sys.gate.Lock()
	h.sys.reaped = true
	h.sys.gate.Unlock()
}

func (h *Handle) afterReap(r result) { h.to(phaseSettled, r) }

// foreignStatus is nil here: there is no exit record without a pidfd.
func (h *Handle) foreignStatus() *Status { return nil }

func (h *Handle) sysClose() error { return nil }

// Control calls fn with the Handle's pidfd; on this system there is none and
// it returns an error wrapping [errors.ErrUnsupported].
func (h *Handle) Control(fn func(pidfd int)) error {
	if err := h.check(); err != nil {
		return err
	}
	return errNoPidfd
}

// childMode is the mode of a Cmd child's Handle here.
func childMode() Mode { return ModePID }
