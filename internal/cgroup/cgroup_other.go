//go:build !linux

package cgroup

import (
	"errors"
	"fmt"
	"syscall"
)

var errNoCgroup = fmt.Errorf("cgroup: cgroup v2 exists only on Linux: %w", errors.ErrUnsupported)

// Root returns an error wrapping [errors.ErrUnsupported]: cgroup v2 exists
// only on Linux.
func Root() (mount, dir string, err error) { return "", "", errNoCgroup }

// A Leaf is a cgroup2 cgroup for one process tree; on this system none can
// be made.
type Leaf struct{}

// New returns an error wrapping [errors.ErrUnsupported].
func New() (*Leaf, error) { return nil, errNoCgroup }

// Supported returns an error wrapping [errors.ErrUnsupported].
func Supported() error { return errNoCgroup }

// CleanStale returns an error wrapping [errors.ErrUnsupported].
func CleanStale() (removed []string, err error) { return nil, errNoCgroup }

// FD returns -1.
func (l *Leaf) FD() int { return -1 }

// EventsFD returns -1.
func (l *Leaf) EventsFD() int { return -1 }

// Path returns "".
func (l *Leaf) Path() string { return "" }

// ID returns an error wrapping [errors.ErrUnsupported].
func (l *Leaf) ID() (uint64, error) { return 0, errNoCgroup }

// Populated returns an error wrapping [errors.ErrUnsupported].
func (l *Leaf) Populated() (bool, error) { return false, errNoCgroup }

// Kill returns an error wrapping [errors.ErrUnsupported].
func (l *Leaf) Kill() error { return errNoCgroup }

// Signal returns an error wrapping [errors.ErrUnsupported].
func (l *Leaf) Signal(sig syscall.Signal) error { return errNoCgroup }

// Remove does nothing.
func (l *Leaf) Remove() error { return nil }

// ProcessID returns an error wrapping [errors.ErrUnsupported].
func ProcessID(procDir string) (uint64, error) { return 0, errNoCgroup }

// Holds reports false: there are no leaves here.
func (l *Leaf) Holds(pid int) bool { return false }

// PopulatedNow returns an error wrapping [errors.ErrUnsupported].
func (l *Leaf) PopulatedNow() (bool, error) { return false, errNoCgroup }
