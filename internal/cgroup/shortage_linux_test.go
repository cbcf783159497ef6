package cgroup_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"syscall"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/pexec-dev/pexec/internal/cgroup"
	"github.com/pexec-dev/pexec/internal/testhelper"
	"golang.org/x/sys/unix"
)

// A shortage of descriptors at the first use of a cached lookup must not
// decide its answer for the rest of the process's life (issue 18, item 7).

func init() {
	testhelper.Register("cgroup-shortage", shortageHelper)
}

// answer is what a lookup returned, as a helper reports it.
type answer struct {
	Err      string // "" for nil
	EMFILE   bool   // the error wraps EMFILE
	Sentinel string // the sentinel Supported promises that it wraps, if any
}

func answerOf(err error) answer {
	a := answer{EMFILE: errors.Is(err, unix.EMFILE)}
	if err != nil {
		a.Err = err.Error()
	}
	for _, s := range []error{os.ErrPermission, errors.ErrUnsupported} {
		if errors.Is(err, s) {
			a.Sentinel = s.Error()
		}
	}
	return a
}

// lookups asks the package's cached lookups, by name.
func lookups() map[string]answer {
	_, _, rootErr := cgroup.Root()
	_, idErr := cgroup.Identity()
	return map[string]answer{
		"Root":            answerOf(rootErr),
		"identity":        answerOf(idErr),
		"probeCgroupInfo": answerOf(cgroup.ProbeCgroupInfo()),
		"Supported":       answerOf(cgroup.Supported()),
	}
}

// shortageReport is what the cgroup-shortage helper observed.
type shortageReport struct {
	Opened        int               // descriptors it opened to fill the table
	During, After map[string]answer // the lookups' answers
}

// shortageHelper asks the lookups for the first time while no descriptor
// is free, then again once the descriptors are closed.
func shortageHelper([]string) int {
	r, w, err := os.Pipe() // set up the netpoller while descriptors are free
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	r.Close()
	w.Close()
	var rep shortageReport
	opened, release, err := testhelper.ExhaustFDs(256)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	rep.During = lookups()
	release()
	rep.Opened = opened
	rep.After = lookups()
	return testhelper.Report(rep)
}

// TestShortageNotKept: in a helper process, the first use of each cached
// lookup (the own cgroup from /proc/self/mountinfo and /proc/self/cgroup,
// the identity leaves are named after, the PIDFD_GET_INFO probe, the clone3
// probe behind Supported) happens with the descriptor table full: each
// must fail with EMFILE, Supported saying the failure is transient and
// wrapping neither ErrPermission nor ErrUnsupported; once descriptors are
// free, each must give the answer it gives here. Before the fix each kept
// its EMFILE for good.
func TestShortageNotKept(t *testing.T) {
	t.Parallel()
	want := lookups()
	var rep shortageReport
	testhelper.RunReport(context.Background(), t, nil, &rep, "cgroup-shortage")
	t.Logf("the helper filled its table with %d descriptors", rep.Opened)
	for name, here := range want {
		during, after := rep.During[name], rep.After[name]
		t.Logf("%s: here %q; during the shortage %q; after %q", name, here.Err, during.Err, after.Err)
		if here.Err == "" && !during.EMFILE {
			t.Errorf("%s during the shortage = %q; want an error wrapping EMFILE (was it looked up before?)", name, during.Err)
		}
		if (after.Err == "") != (here.Err == "") || after.Sentinel != here.Sentinel {
			t.Errorf("%s once descriptors were free = %q; want %q, as in a process without a shortage (the shortage's answer was kept)", name, after.Err, here.Err)
		}
	}
	if d := rep.During["Supported"]; d.EMFILE && (d.Sentinel != "" || !strings.Contains(d.Err, "transient")) {
		t.Errorf("Supported during the shortage = %q (wraps %q); want an error that says it is transient and wraps no sentinel", d.Err, d.Sentinel)
	}
}

// TestSupportError: every answer of Supported wraps os.ErrPermission or
// errors.ErrUnsupported, except a transient failure, which wraps its errno
// only and says so.
func TestSupportError(t *testing.T) {
	dir := "/sys/fs/cgroup/x"
	tests := []struct {
		name      string
		err       error
		sentinel  error // nil: none
		errno     syscall.Errno
		transient bool
	}{
		{"EMFILE opening the leaf", &os.PathError{Op: "open", Path: dir, Err: unix.EMFILE}, nil, unix.EMFILE, true},
		{"ENFILE", &os.PathError{Op: "open", Path: "/proc/self/mountinfo", Err: unix.ENFILE}, nil, unix.ENFILE, true},
		{"pids limit", cgroup.CloneError(unix.EAGAIN, dir), nil, unix.EAGAIN, true},
		{"ENOMEM in clone3", cgroup.CloneError(unix.ENOMEM, dir), nil, unix.ENOMEM, true},
		{"EACCES", cgroup.CloneError(unix.EACCES, dir), os.ErrPermission, unix.EACCES, false},
		{"ENOSYS", cgroup.CloneError(unix.ENOSYS, dir), errors.ErrUnsupported, unix.ENOSYS, false},
		{"no cgroup2", fmt.Errorf("cgroup: no cgroup2 mount: %w", errors.ErrUnsupported), errors.ErrUnsupported, 0, false},
		{"ENOENT (own cgroup gone)", &os.PathError{Op: "mkdir", Path: dir, Err: unix.ENOENT}, errors.ErrUnsupported, unix.ENOENT, false},
		{"EEXIST", &os.PathError{Op: "mkdir", Path: dir, Err: unix.EEXIST}, errors.ErrUnsupported, unix.EEXIST, false},
		{"ENOSPC", cgroup.CloneError(unix.ENOSPC, dir), errors.ErrUnsupported, unix.ENOSPC, false},
		{"not an errno", errors.New("cgroup: cgroup.events has no \"populated\" line"), errors.ErrUnsupported, 0, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := cgroup.SupportError(tt.err)
			type view struct {
				Permission, Unsupported, Errno, SaysTransient bool
			}
			got := view{errors.Is(err, os.ErrPermission), errors.Is(err, errors.ErrUnsupported), tt.errno == 0 || errors.Is(err, tt.errno), strings.Contains(fmt.Sprint(err), "transient")}
			want := view{tt.sentinel == os.ErrPermission, tt.sentinel == errors.ErrUnsupported, true, tt.transient}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("SupportError(%v) = %v (-want +got):\n%s", tt.err, err, diff)
			}
		})
	}
	if err := cgroup.SupportError(nil); err != nil {
		t.Errorf("SupportError(nil) = %v", err)
	}
}
