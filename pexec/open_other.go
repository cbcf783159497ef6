//go:build !linux && !windows

package pexec

import "os"

// Open returns a Handle to any process on Linux and Windows; on this
// system it returns an error wrapping [errors.ErrUnsupported].
func Open(pid int) (*Handle, error) { return nil, errNotLinux("Open") }

// FromProcess returns a Handle for an os.Process on Linux and Windows; on
// this system it returns an error wrapping [errors.ErrUnsupported].
func FromProcess(p *os.Process) (*Handle, error) { return nil, errNotLinux("FromProcess") }
