//go:build !linux

package pexec

import (
	"errors"
	"os"
	"syscall"
)

// On systems other than Linux there are no pidfds: every Handle is in
// ModePID and works through the standard library's os.Process, which refuses
// to signal once Wait has reaped the child. Handle.Wait reports the exit once
// Cmd.Wait has reaped the child.

type sysHandle struct {
	proc *os.Process
}

// Supported reports whether pexec can use pidfds on this system: never on
// this one.
func Supported() bool { return false }

func spawnAttr(sys *syscall.SysProcAttr, _ *int) (*syscall.SysProcAttr, *int) { return sys, nil }

func childHandle(p *os.Process, _ int, _ *int) *Handle {
	h := newHandle(p.Pid, ModePID, true)
	h.sys.proc = p
	return h
}

func (h *Handle) sysExited() bool {
	h.gate.RLock()
	defer h.gate.RUnlock()
	return h.reaped || errors.Is(h.sys.proc.Signal(syscall.Signal(0)), os.ErrProcessDone)
}

func (h *Handle) sysSignal(sig syscall.Signal) error {
	h.gate.RLock()
	defer h.gate.RUnlock()
	if h.reaped {
		return os.ErrProcessDone
	}
	return h.sys.proc.Signal(sig)
}

func (h *Handle) sysWatch() bool {
	select {
	case <-h.reapDone:
		return true
	case <-h.closedCh:
		return false
	}
}

func (h *Handle) sysAwaitExit() bool { return false }

func (h *Handle) sysCollect() (*Status, error) {
	return nil, os.NewSyscallError("wait", syscall.ECHILD)
}

func (h *Handle) exitInfo() (*Status, error) { return nil, ErrStatusUnavailable }

func (h *Handle) sysClose() error { return nil }

// Control calls fn with the Handle's pidfd; on this system there is none and
// it returns an error wrapping [errors.ErrUnsupported].
func (h *Handle) Control(fn func(pidfd int)) error {
	if err := h.check(); err != nil {
		return err
	}
	return errNoPidfd
}

// sysGone is never needed here: exitInfo never asks to wait for a reap.
func (h *Handle) sysGone() <-chan struct{} { return nil }
