//go:build !linux

package pexec

import (
	"errors"
	"fmt"
	"net"
	"os"
)

// errNotLinux is returned by the capabilities that need Linux pidfds.
func errNotLinux(op string) error {
	return fmt.Errorf("pexec: %s needs Linux pidfds: %w", op, errors.ErrUnsupported)
}

// Parent returns a Handle to the calling process's parent on Linux; on this
// system it returns an error wrapping [errors.ErrUnsupported].
func Parent() (*Handle, error) { return nil, errNotLinux("Parent") }

// FromFile builds a Handle from a pidfd on Linux; on this system it returns
// an error wrapping [errors.ErrUnsupported].
func FromFile(f *os.File) (*Handle, error) { return nil, errNotLinux("FromFile") }

// PeerHandle returns a Handle for a Unix socket's peer on Linux; on this
// system it returns an error wrapping [errors.ErrUnsupported].
func PeerHandle(c *net.UnixConn) (*Handle, error) { return nil, errNotLinux("PeerHandle") }

// OpenID opens a process by PID and unique ID on Linux; on this system it
// returns an error wrapping [errors.ErrUnsupported].
func OpenID(pid int, id uint64) (*Handle, error) { return nil, errNotLinux("OpenID") }

// ID returns the kernel's unique process identifier on Linux 6.9+; on this
// system it returns an error wrapping [errors.ErrUnsupported].
func (h *Handle) ID() (uint64, error) {
	if err := h.check(); err != nil {
		return 0, err
	}
	return 0, errNotLinux("Handle.ID")
}

// SameProcess reports whether h and o refer to the same process. On this
// system it can tell only that a Handle is the same as itself; otherwise it
// returns an error wrapping [errors.ErrUnsupported].
func (h *Handle) SameProcess(o *Handle) (bool, error) {
	if err := h.check(); err != nil {
		return false, err
	}
	if err := o.check(); err != nil {
		return false, err
	}
	if h == o {
		return true, nil
	}
	return false, errNotLinux("Handle.SameProcess")
}

// Info returns the process's IDs and cgroup on Linux; on this system it
// returns an error wrapping [errors.ErrUnsupported].
func (h *Handle) Info() (*Info, error) {
	if err := h.check(); err != nil {
		return nil, err
	}
	return nil, errNotLinux("Handle.Info")
}

// File returns a duplicate of the Handle's pidfd on Linux; on this system it
// returns an error wrapping [errors.ErrUnsupported].
func (h *Handle) File() (*os.File, error) {
	if err := h.check(); err != nil {
		return nil, err
	}
	return nil, errNotLinux("Handle.File")
}

// SignalGroup signals the process group the process leads on Linux; on this
// system it returns an error wrapping [errors.ErrUnsupported].
func (h *Handle) SignalGroup(sig os.Signal) error {
	if err := h.check(); err != nil {
		return err
	}
	return errNotLinux("Handle.SignalGroup")
}

// GetFD duplicates a descriptor out of the process on Linux; on this system
// it returns an error wrapping [errors.ErrUnsupported].
func (h *Handle) GetFD(targetfd int) (*os.File, error) {
	if err := h.check(); err != nil {
		return nil, err
	}
	return nil, errNotLinux("Handle.GetFD")
}
