//go:build linux

package cgroup

import (
	"errors"
	"fmt"
	"os"
	"syscall"

	"github.com/pexec-dev/pexec/internal/probe"
	"golang.org/x/sys/unix"
)

// Supported reports whether this process can give a child a leaf of its
// own: it creates a leaf with [New] and starts a child in it through
// clone3 with CLONE_INTO_CGROUP, then removes the leaf. It returns nil if
// both worked, an error wrapping [os.ErrPermission] if the caller may not
// create the leaf or move a child into it, and an error wrapping
// [errors.ErrUnsupported] if the system cannot do it (no cgroup2, clone3
// missing or filtered by seccomp, a kernel before 5.7, a threaded own
// cgroup, or any other failure that says the same each time).
//
// The answer is found once and kept, except a transient failure: a
// shortage at the time of the probe ([probe.Transient]: no descriptor free,
// EMFILE or ENFILE; ENOMEM or ENOBUFS; EAGAIN, a pids limit; EINTR). That
// error wraps the errno, and neither ErrPermission nor ErrUnsupported, says
// that it is transient, and is not kept: the next call probes again.
func Supported() error { return supported() }

var supported = probe.OnceErr(func() error { return supportError(probeClone()) })

// supportError words the probe's error as Supported promises.
func supportError(err error) error {
	switch {
	case err == nil:
		return nil
	case probe.Transient(err):
		return fmt.Errorf("cgroup: cannot tell now whether a child can have a leaf: a transient failure, not remembered (the next call tries again): %w", err)
	case errors.Is(err, os.ErrPermission), errors.Is(err, errors.ErrUnsupported):
		return err
	}
	return fmt.Errorf("cgroup: a child cannot have a leaf here: %w: %w", errors.ErrUnsupported, err)
}

// probeClone creates a leaf and starts a child in it.
//
// The child must not run Go code forked by hand, so it is started with
// os.StartProcess, set up to fail after clone3 has succeeded: it is to
// change its working directory to the leaf's cgroup.procs, a regular
// file, which fails with ENOTDIR, an errno clone3 never returns. (Executing
// "/" would fail with EACCES, which clone3 also returns when the caller
// may not write the cgroup.) Go reports the child's error as the result of
// os.StartProcess and reaps the child itself.
func probeClone() error {
	l, err := New()
	if err != nil {
		return err
	}
	defer l.Remove()
	attr := &os.ProcAttr{
		Dir: l.Path() + "/cgroup.procs",
		Sys: &syscall.SysProcAttr{UseCgroupFD: true, CgroupFD: l.FD()},
	}
	p, err := os.StartProcess("/", []string{"/"}, attr)
	if err == nil {
		// Cannot happen; if it does, the child ran in the leaf.
		p.Kill()
		p.Wait()
		return nil
	}
	return cloneError(err, l.Path())
}

// cloneError classifies the error of starting a child in the leaf dir:
// nil if the child was created (and failed later, in chdir, as the probe
// intends).
func cloneError(err error, dir string) error {
	var errno syscall.Errno
	if !errors.As(err, &errno) {
		return err
	}
	why := ""
	switch errno {
	case unix.ENOTDIR:
		return nil
	case unix.EACCES, unix.EPERM:
		// EACCES: the leaf's or the own cgroup's cgroup.procs is not
		// writable. EPERM: a security module, or an old seccomp profile
		// (Docker before 20.10) that denies clone3.
		return fmt.Errorf("cgroup: clone3 may not start a child in %s (is this process's own cgroup.procs writable by it? a seccomp filter?): %w: %w", dir, os.ErrPermission, err)
	case unix.ENOSYS:
		why = "clone3 is missing (Linux < 5.3) or filtered by seccomp"
	case unix.E2BIG, unix.EINVAL:
		why = "the kernel lacks CLONE_INTO_CGROUP (Linux < 5.7)"
	case unix.EOPNOTSUPP:
		why = "the cgroup cannot hold processes (\"domain invalid\", under a threaded cgroup)"
	case unix.EBUSY:
		why = "the cgroup has controllers enabled in its cgroup.subtree_control (no internal processes)"
	case unix.EBADF:
		why = "the descriptor is not a cgroup2 directory"
	default:
		return fmt.Errorf("cgroup: starting a child in %s: %w", dir, err)
	}
	return fmt.Errorf("cgroup: cannot start a child in %s: %s: %w: %w", dir, why, errors.ErrUnsupported, err)
}
