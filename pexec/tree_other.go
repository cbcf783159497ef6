//go:build !linux && !windows

package pexec

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"syscall"
)

// Trees need Linux (process groups signalled through a pidfd, or cgroups):
// here TreeAuto gives TreeNone, and TreeGroup and TreeCgroup make Start fail.

// treePlan is never made here.
type treePlan struct{}

// TreeSupport reports whether mode can be used here: TreeNone and TreeAuto
// (which gives TreeNone) can; TreeGroup, TreeCgroup and TreeJob return an
// error wrapping [errors.ErrUnsupported].
func TreeSupport(mode TreeMode) error {
	switch mode {
	case TreeNone, TreeAuto:
		return nil
	case TreeGroup, TreeCgroup:
		return errNotLinux("Cmd.Tree " + mode.String())
	case TreeJob:
		return fmt.Errorf("pexec: Cmd.Tree job needs Windows: %w", errors.ErrUnsupported)
	}
	return fmt.Errorf("pexec: TreeMode(%d): %w", int(mode), os.ErrInvalid)
}

func planTree(mode TreeMode, dieWithParent bool, attr *syscall.SysProcAttr) (*treePlan, *syscall.SysProcAttr, error) {
	if err := TreeSupport(mode); err != nil {
		return nil, nil, err
	}
	if dieWithParent {
		return nil, nil, fmt.Errorf("pexec: Cmd.DieWithParent needs Linux or Windows: %w", errors.ErrUnsupported)
	}
	return nil, attr, nil
}

func (p *treePlan) abort()               {}
func (p *treePlan) attach(*Handle) error { return nil }

// startEngine starts in.
func startEngine(in *exec.Cmd) error { return in.Start() }
