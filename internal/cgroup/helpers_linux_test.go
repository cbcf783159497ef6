//go:build linux

package cgroup_test

import (
	"errors"
	"fmt"
	"os"
	"syscall"

	"github.com/pexec-dev/pexec/internal/cgroup"
	"github.com/pexec-dev/pexec/internal/testhelper"
	"golang.org/x/sys/unix"
)

// helpers are this package's helper processes (see testhelper.Main).
var helpers = map[string]testhelper.Func{
	"cgroup-unprivileged": unprivilegedHelper,
	"cgroup-seccomp":      seccompHelper,
	"cgroup-threaded":     threadedHelper,
}

// helperNames lists helpers for skipped tests to account for (a run where
// cgroups are unavailable must not fail testhelper.Main's unused check).
func helperNames() []string {
	var names []string
	for name := range helpers {
		names = append(names, name)
	}
	return names
}

// errName returns the errno name in err, or its text.
var errName = testhelper.ErrnoName

// unprivilegedReport is what unprivilegedHelper observed.
type unprivilegedReport struct {
	UID                 int
	NewErr              string
	NewPermission       bool
	CloneErrno          string
	CloneErr            string
	ClonePermission     bool
	SupportedErr        string
	SupportedPermission bool
}

// unprivilegedHelper <leaf>: opens the leaf (a root-owned cgroup), drops
// to uid and gid 65534 (nobody), and reports what New, a clone3 into the
// leaf and Supported give.
func unprivilegedHelper(args []string) int {
	if len(args) != 1 {
		return 2
	}
	fd, err := unix.Open(args[0], unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		fmt.Fprintln(os.Stderr, "open:", err)
		return 1
	}
	for _, step := range []func() error{
		func() error { return syscall.Setgroups(nil) },
		func() error { return syscall.Setgid(65534) },
		func() error { return syscall.Setuid(65534) },
	} {
		if err := step(); err != nil {
			fmt.Fprintln(os.Stderr, "dropping privileges:", err)
			return 1
		}
	}
	var r unprivilegedReport
	r.UID = os.Geteuid()
	l, err := cgroup.New()
	if err == nil {
		l.Remove()
	}
	r.NewErr, r.NewPermission = fmt.Sprint(err), errors.Is(err, os.ErrPermission)
	_, err = os.StartProcess("/", []string{"/"}, &os.ProcAttr{
		Dir: args[0] + "/cgroup.procs",
		Sys: &syscall.SysProcAttr{UseCgroupFD: true, CgroupFD: fd},
	})
	r.CloneErrno = errName(err)
	cerr := cgroup.CloneError(err, args[0])
	r.CloneErr, r.ClonePermission = fmt.Sprint(cerr), errors.Is(cerr, os.ErrPermission)
	err = cgroup.Supported()
	r.SupportedErr, r.SupportedPermission = fmt.Sprint(err), errors.Is(err, os.ErrPermission)
	return testhelper.Report(r)
}

// seccompReport is what seccompHelper observed.
type seccompReport struct {
	Jail                 map[string]string
	Kind                 string
	SupportedErr         string
	SupportedUnsupported bool
	SupportedErrno       string
	SignalErr            string
	SignalUnsupported    bool
	KillErr              string
	KillUnsupported      bool
	HasKillFile          bool // cgroup.kill exists (Linux 5.14+)
	RemoveErr            string
	StillPopulated       bool
}

// seccompHelper enters testhelper's seccomp jail, where clone3 and the
// pidfd system calls fail with ENOSYS, and reports what Supported gives,
// how a leaf is named, and what Signal and Kill do to a member moved into
// the leaf through cgroup.procs.
func seccompHelper(args []string) int {
	if err := testhelper.DenyPidfd(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	var r seccompReport
	r.Jail = testhelper.ProbePidfdSyscalls()
	err := cgroup.Supported()
	r.SupportedErr, r.SupportedUnsupported, r.SupportedErrno = fmt.Sprint(err), errors.Is(err, errors.ErrUnsupported), errName(err)
	id, err := cgroup.Identity()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	r.Kind = string(id.Kind)

	l, err := cgroup.New()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer l.Remove()
	path, argv, env := testhelper.Command("sleep")
	p, err := os.StartProcess(path, argv, &os.ProcAttr{Env: env})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	if err := os.WriteFile(l.Path()+"/cgroup.procs", fmt.Append(nil, p.Pid), 0); err != nil {
		p.Kill()
		p.Wait()
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	err = l.Signal(syscall.SIGTERM)
	r.SignalErr, r.SignalUnsupported = fmt.Sprint(err), errors.Is(err, errors.ErrUnsupported)
	_, err = os.Stat(l.Path() + "/cgroup.kill")
	r.HasKillFile = err == nil
	err = l.Kill()
	r.KillErr, r.KillUnsupported = fmt.Sprint(err), errors.Is(err, errors.ErrUnsupported)
	if r.KillErr != "<nil>" {
		p.Kill()
	}
	// p is our child: once Wait returns, it has left the leaf.
	p.Wait()
	r.StillPopulated, _ = l.Populated()
	r.RemoveErr = fmt.Sprint(l.Remove())
	return testhelper.Report(r)
}

// threadedReport is what threadedHelper observed.
type threadedReport struct {
	Dir          string
	NewErr       string
	Unsupported  bool
	LeavesLeft   []string
	CgroupOfSelf string
}

// threadedHelper <cgroup dir>: moves itself into the cgroup (a threaded
// one) and reports what New gives there.
func threadedHelper(args []string) int {
	if len(args) != 1 {
		return 2
	}
	if err := os.WriteFile(args[0]+"/cgroup.procs", fmt.Append(nil, os.Getpid()), 0); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	var r threadedReport
	b, _ := os.ReadFile("/proc/self/cgroup")
	r.CgroupOfSelf = string(b)
	_, r.Dir, _ = cgroup.Root()
	l, err := cgroup.New()
	if err == nil {
		l.Remove()
	}
	r.NewErr, r.Unsupported = fmt.Sprint(err), errors.Is(err, errors.ErrUnsupported)
	ents, _ := os.ReadDir(args[0])
	for _, e := range ents {
		if e.IsDir() {
			r.LeavesLeft = append(r.LeavesLeft, e.Name())
		}
	}
	return testhelper.Report(r)
}
