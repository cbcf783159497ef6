//go:build linux

package pexec_test

import (
	"os"
	"testing"

	"github.com/google/go-cmp/cmp"
	"golang.org/x/sys/unix"

	"github.com/pexec-dev/pexec/pexec"
)

// pidfsID returns the inode number fstat reports for h's pidfd.
func pidfsID(t *testing.T, h *pexec.Handle) uint64 {
	t.Helper()
	var st unix.Stat_t
	var err error
	if cerr := h.Control(func(fd int) { err = unix.Fstat(fd, &st) }); cerr != nil || err != nil {
		t.Fatalf("fstat of the pidfd: %v %v", cerr, err)
	}
	return uint64(st.Ino)
}

func TestID(t *testing.T) {
	skipNoPidfd(t)
	pidfs := kernel().Pidfs
	type observed struct {
		Err         string
		MatchesStat bool // ID equals the pidfd's st_ino
		SameAsOpen  bool // equal to the ID through a second handle
		DiffersSelf bool // differs from this process's ID
		StableExit  bool // unchanged after the process exits and is reaped
	}
	self, err := mustOpen(t, os.Getpid()).ID()
	if err != nil && pidfs {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		handle  func(t *testing.T) (*pexec.Handle, *pexec.Cmd)
		pidMode bool
		want    observed
	}{
		{
			name:   "child",
			handle: func(t *testing.T) (*pexec.Handle, *pexec.Cmd) { c := startSleep(t); return c.Handle(), c.Cmd },
			want:   observed{Err: "<nil>", MatchesStat: true, SameAsOpen: true, DiffersSelf: true, StableExit: true},
		},
		{
			name: "non-child",
			handle: func(t *testing.T) (*pexec.Handle, *pexec.Cmd) {
				pid, _ := grandchild(t)
				return mustOpen(t, pid), nil
			},
			want: observed{Err: "<nil>", MatchesStat: true, SameAsOpen: true, DiffersSelf: true, StableExit: true},
		},
		{
			name:   "self",
			handle: func(t *testing.T) (*pexec.Handle, *pexec.Cmd) { return mustOpen(t, os.Getpid()), nil },
			want:   observed{Err: "<nil>", MatchesStat: true, SameAsOpen: true},
		},
		{
			name:   "zombie",
			handle: func(t *testing.T) (*pexec.Handle, *pexec.Cmd) { c := exitedChild(t); return c.Handle(), c },
			want:   observed{Err: "<nil>", MatchesStat: true, SameAsOpen: true, DiffersSelf: true, StableExit: true},
		},
		{
			name: "closed",
			handle: func(t *testing.T) (*pexec.Handle, *pexec.Cmd) {
				h := mustOpen(t, os.Getpid())
				h.Close()
				return h, nil
			},
			want: observed{Err: "ErrClosed"},
		},
		{
			name:    "PID mode",
			handle:  func(t *testing.T) (*pexec.Handle, *pexec.Cmd) { c := startSleep(t); return c.Handle(), nil },
			pidMode: true,
			want:    observed{Err: "ErrUnsupported"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.pidMode {
				restore := pexec.SetForcePIDMode(true)
				defer restore()
			}
			h, c := tt.handle(t)
			if tt.pidMode && h.Mode() != pexec.ModePID {
				t.Fatalf("handle in mode %v, want pid", h.Mode())
			}
			want := tt.want
			if !pidfs && want.Err == "<nil>" {
				want = observed{Err: "ErrUnsupported"} // no IDs before pidfs (6.9)
			}
			id, err := h.ID()
			got := observed{Err: errIs(err)}
			if err == nil {
				got.MatchesStat = id == pidfsID(t, h)
				other := mustOpen(t, h.Pid())
				oid, err := other.ID()
				if err != nil {
					t.Fatal(err)
				}
				got.SameAsOpen = oid == id
				got.DiffersSelf = id != self
				if c != nil {
					c.Process.Kill()
					waitCmd(t, c)
					after, err := h.ID()
					got.StableExit = err == nil && after == id
				} else if h.Pid() != os.Getpid() {
					h.Kill()
					awaitDone(t, h)
					after, err := h.ID()
					got.StableExit = err == nil && after == id
				}
			}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("ID (-want +got):\n%s", diff)
			}
		})
	}
}

func TestSameProcess(t *testing.T) {
	skipNoPidfd(t)
	a := startSleep(t)
	b := startSleep(t)
	zombie := exitedChild(t)
	zombieOpen := mustOpen(t, zombie.Process.Pid)
	closed := mustOpen(t, os.Getpid())
	closed.Close()
	type observed struct {
		Same bool
		Err  string
	}
	fixed := func(h *pexec.Handle) func(*testing.T) *pexec.Handle {
		return func(*testing.T) *pexec.Handle { return h }
	}
	openA := func(t *testing.T) *pexec.Handle { return mustOpen(t, a.Process.Pid) }
	tests := []struct {
		name    string
		h, o    func(t *testing.T) *pexec.Handle
		noPidfs bool // behave as on kernels before pidfs (6.9)
		want    observed
		// wantOld, if not nil, replaces want on kernels without pidfs:
		// what SameProcess can still tell without IDs.
		wantOld *observed
	}{
		{name: "same handle", h: fixed(a.Handle()), o: fixed(a.Handle()), want: observed{Same: true, Err: "<nil>"}},
		{name: "child and Open", h: fixed(a.Handle()), o: openA, want: observed{Same: true, Err: "<nil>"}},
		{name: "two children", h: fixed(a.Handle()), o: fixed(b.Handle()), want: observed{Err: "<nil>"}},
		{name: "zombie and Open", h: fixed(zombie.Handle()), o: fixed(zombieOpen), want: observed{Same: true, Err: "<nil>"}, wantOld: &observed{Err: "ErrUnsupported"}},
		{name: "closed", h: fixed(a.Handle()), o: fixed(closed), want: observed{Err: "ErrClosed"}},
		{name: "nil", h: fixed(a.Handle()), o: fixed(nil), want: observed{Err: "ErrInvalid"}},
		{name: "no pidfs: both alive", h: fixed(a.Handle()), o: openA, noPidfs: true, want: observed{Same: true, Err: "<nil>"}},
		{name: "no pidfs: different PIDs", h: fixed(a.Handle()), o: fixed(b.Handle()), noPidfs: true, want: observed{Err: "<nil>"}},
		{name: "no pidfs: exited", h: fixed(zombie.Handle()), o: fixed(zombieOpen), noPidfs: true, want: observed{Err: "ErrUnsupported"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h, o := tt.h(t), tt.o(t)
			if tt.noPidfs {
				defer pexec.SetForceNoPidfs(true)()
			}
			want := tt.want
			if tt.wantOld != nil && !kernel().Pidfs {
				want = *tt.wantOld
			}
			same, err := h.SameProcess(o)
			if diff := cmp.Diff(want, observed{same, errIs(err)}); diff != "" {
				t.Errorf("SameProcess (-want +got):\n%s", diff)
			}
		})
	}
}

func TestInfo(t *testing.T) {
	skipNoPidfd(t)
	me, err := mustOpen(t, os.Getpid()).Info()
	if err != nil {
		t.Fatal(err)
	}
	if me.CgroupID == 0 {
		t.Logf("no cgroup v2 ID here")
	}
	// The helpers below run in this process's cgroup, as this user.
	like := func(pid, ppid int) *pexec.Info {
		return &pexec.Info{Pid: pid, PPid: ppid, UID: os.Getuid(), EUID: os.Geteuid(), GID: os.Getgid(), EGID: os.Getegid(), CgroupID: me.CgroupID}
	}
	type result struct {
		Info *pexec.Info
		Err  string
	}
	tests := []struct {
		name    string
		pidMode bool
		// run returns a Handle and the result wanted from its Info.
		run func(t *testing.T) (*pexec.Handle, result)
	}{
		{
			name: "child",
			run: func(t *testing.T) (*pexec.Handle, result) {
				c := startSleep(t)
				return c.Handle(), result{like(c.Process.Pid, os.Getpid()), "<nil>"}
			},
		},
		{
			name: "child with other credentials",
			run: func(t *testing.T) (*pexec.Handle, result) {
				if os.Getuid() != 0 {
					t.Skip("changing credentials needs root")
				}
				c := helperAs(t, 65534, 65533, "sleep")
				p := startLined(t, c)
				want := like(p.Process.Pid, os.Getpid())
				want.UID, want.EUID, want.GID, want.EGID = 65534, 65534, 65533, 65533
				return p.Handle(), result{want, "<nil>"}
			},
		},
		{
			name: "non-child",
			run: func(t *testing.T) (*pexec.Handle, result) {
				pid, mid := grandchild(t)
				return mustOpen(t, pid), result{like(pid, mid.Process.Pid), "<nil>"}
			},
		},
		{
			name: "self",
			run: func(t *testing.T) (*pexec.Handle, result) {
				return mustOpen(t, os.Getpid()), result{like(os.Getpid(), os.Getppid()), "<nil>"}
			},
		},
		{
			name: "zombie",
			run: func(t *testing.T) (*pexec.Handle, result) {
				return mustOpen(t, exitedChild(t).Process.Pid), result{nil, "ErrProcessDone"}
			},
		},
		{
			name: "reaped",
			run: func(t *testing.T) (*pexec.Handle, result) {
				c := exitedChild(t)
				h := mustOpen(t, c.Process.Pid)
				waitCmd(t, c)
				return h, result{nil, "ErrProcessDone"}
			},
		},
		{
			name: "closed",
			run: func(t *testing.T) (*pexec.Handle, result) {
				h := mustOpen(t, os.Getpid())
				h.Close()
				return h, result{nil, "ErrClosed"}
			},
		},
		{
			name:    "PID mode child",
			pidMode: true,
			run: func(t *testing.T) (*pexec.Handle, result) {
				c := startSleep(t)
				return c.Handle(), result{like(c.Process.Pid, os.Getpid()), "<nil>"}
			},
		},
		{
			name:    "PID mode zombie",
			pidMode: true,
			run: func(t *testing.T) (*pexec.Handle, result) {
				return exitedChild(t).Handle(), result{nil, "ErrProcessDone"}
			},
		},
		{
			name:    "PID mode reaped",
			pidMode: true,
			run: func(t *testing.T) (*pexec.Handle, result) {
				c := exitedChild(t)
				waitCmd(t, c)
				return c.Handle(), result{nil, "ErrProcessDone"}
			},
		},
	}
	for _, source := range []string{"PIDFD_GET_INFO", "/proc"} {
		t.Run(source, func(t *testing.T) {
			if source == "/proc" {
				defer pexec.SetForceProcInfo(true)()
			} else if _, err := mustOpen(t, os.Getpid()).Info(); err != nil {
				t.Skipf("no PIDFD_GET_INFO: %v", err)
			}
			for _, tt := range tests {
				t.Run(tt.name, func(t *testing.T) {
					if tt.pidMode {
						defer pexec.SetForcePIDMode(true)()
					}
					h, want := tt.run(t)
					info, err := h.Info()
					if diff := cmp.Diff(want, result{info, errIs(err)}); diff != "" {
						t.Errorf("Info (-want +got):\n%s", diff)
					}
				})
			}
		})
	}
}

// TestInfoSourcesAgree checks that PIDFD_GET_INFO and /proc describe the
// same process identically, including its cgroup ID.
func TestInfoSourcesAgree(t *testing.T) {
	skipNoPidfd(t)
	h := startSleep(t).Handle()
	fromKernel, err := h.Info()
	if err != nil {
		t.Fatal(err)
	}
	restore := pexec.SetForceProcInfo(true)
	fromProc, err := h.Info()
	restore()
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(fromKernel, fromProc); diff != "" {
		t.Errorf("Info from PIDFD_GET_INFO and from /proc differ (-kernel +proc):\n%s", diff)
	}
}
