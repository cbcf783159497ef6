//go:build linux

package pexec_test

import (
	"os"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/pexec-dev/pexec/pexec"
	"github.com/pexec-dev/pexec/pexectest"
)

// otherSignal is an os.Signal that is not a syscall.Signal.
type otherSignal struct{}

func (otherSignal) String() string { return "other" }
func (otherSignal) Signal()        {}

// groupOf starts, in a new process group, the grandchild helper (which
// starts a sleeping child of its own) and returns it with the PID of that
// child, the group's other member.
func groupOf(t *testing.T, pidMode bool) (*lined, int) {
	t.Helper()
	c := pexectest.Command("grandchild")
	c.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	p := startIn(t, pidMode, c)
	l := p.line()
	member, err := strconv.Atoi(l)
	if err != nil {
		t.Fatalf("grandchild helper printed %q: %v", l, err)
	}
	killLater(t, member)
	return p, member
}

// startIn starts c with startLined, its Handle in PID mode if pidMode.
func startIn(t *testing.T, pidMode bool, c *pexec.Cmd) *lined {
	t.Helper()
	defer pexec.SetForcePIDMode(pidMode)()
	return startLined(t, c)
}

// killLater kills pid (through a pidfd) at the end of the test.
func killLater(t *testing.T, pid int) *pexec.Handle {
	t.Helper()
	h := mustOpen(t, pid)
	t.Cleanup(func() { h.Kill() })
	return h
}

func TestSignalGroup(t *testing.T) {
	skipNoPidfd(t)
	type observed struct {
		Err        string
		LeaderDead bool
		MemberDead bool
	}
	tests := []struct {
		name string
		// setup returns the Handle to signal and Handles of the leader
		// and of another member of its group, to watch.
		setup   func(t *testing.T) (h, leader, member *pexec.Handle)
		pidMode bool // the Handle to signal is in PID mode
		sig     os.Signal
		want    observed
		// wantOld, if not nil, replaces want on kernels without
		// PIDFD_SIGNAL_PROCESS_GROUP (before 6.9): a child started by
		// Cmd is signalled as in PID mode, any other process not at all.
		wantOld *observed
	}{
		{
			name: "child leader",
			setup: func(t *testing.T) (*pexec.Handle, *pexec.Handle, *pexec.Handle) {
				p, member := groupOf(t, false)
				p.endedByTest()
				return p.Handle(), p.Handle(), mustOpen(t, member)
			},
			sig:  syscall.SIGKILL,
			want: observed{Err: "<nil>", LeaderDead: true, MemberDead: true},
		},
		{
			name: "non-child leader",
			setup: func(t *testing.T) (*pexec.Handle, *pexec.Handle, *pexec.Handle) {
				mid := startLined(t, pexectest.Command("spawn", "-setpgid", "grandchild"))
				leader, member := 0, 0
				for leader == 0 || member == 0 {
					l := mid.line()
					if v, ok := strings.CutPrefix(l, "spawned "); ok {
						leader, _ = strconv.Atoi(v)
					} else if member, _ = strconv.Atoi(l); member == 0 {
						t.Fatalf("unexpected output %q", l)
					}
				}
				killLater(t, member)
				h := killLater(t, leader)
				return h, h, mustOpen(t, member)
			},
			sig:     syscall.SIGKILL,
			want:    observed{Err: "<nil>", LeaderDead: true, MemberDead: true},
			wantOld: &observed{Err: "ErrUnsupported"},
		},
		{
			name: "child not a leader",
			setup: func(t *testing.T) (*pexec.Handle, *pexec.Handle, *pexec.Handle) {
				h := startSleep(t).Handle()
				return h, h, nil
			},
			sig:  syscall.Signal(0),
			want: observed{Err: "ErrInvalid"},
		},
		{
			name: "non-child not a leader",
			setup: func(t *testing.T) (*pexec.Handle, *pexec.Handle, *pexec.Handle) {
				_, member := groupOf(t, false)
				h := mustOpen(t, member)
				return h, nil, h
			},
			sig:     syscall.Signal(0),
			want:    observed{Err: "ErrInvalid"},
			wantOld: &observed{Err: "ErrUnsupported"},
		},
		{
			name: "zombie leader",
			setup: func(t *testing.T) (*pexec.Handle, *pexec.Handle, *pexec.Handle) {
				c := pexectest.Command("exit", "3")
				c.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
				p := startLined(t, c)
				p.endedByTest()
				awaitDone(t, p.Handle())
				return p.Handle(), nil, nil
			},
			sig:  syscall.SIGKILL,
			want: observed{Err: "ErrProcessDone"},
		},
		{
			name: "reaped leader",
			setup: func(t *testing.T) (*pexec.Handle, *pexec.Handle, *pexec.Handle) {
				c := pexectest.Command("exit", "3")
				c.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
				p := startLined(t, c)
				h := mustOpen(t, p.Process.Pid)
				p.wait()
				return h, nil, nil
			},
			sig:     syscall.SIGKILL,
			want:    observed{Err: "ErrProcessDone"},
			wantOld: &observed{Err: "ErrUnsupported"},
		},
		{
			name: "closed",
			setup: func(t *testing.T) (*pexec.Handle, *pexec.Handle, *pexec.Handle) {
				p, _ := groupOf(t, false)
				h := mustOpen(t, p.Process.Pid)
				h.Close()
				return h, nil, nil
			},
			sig:  syscall.SIGKILL,
			want: observed{Err: "ErrClosed"},
		},
		{
			name: "not a syscall.Signal",
			setup: func(t *testing.T) (*pexec.Handle, *pexec.Handle, *pexec.Handle) {
				p, _ := groupOf(t, false)
				return p.Handle(), nil, nil
			},
			sig:  otherSignal{},
			want: observed{Err: "ErrUnsupported"},
		},
		{
			name:    "PID mode leader",
			pidMode: true,
			setup: func(t *testing.T) (*pexec.Handle, *pexec.Handle, *pexec.Handle) {
				p, member := groupOf(t, true)
				p.endedByTest()
				return p.Handle(), p.Handle(), mustOpen(t, member)
			},
			sig:  syscall.SIGKILL,
			want: observed{Err: "<nil>", LeaderDead: true, MemberDead: true},
		},
		{
			name:    "PID mode not a leader",
			pidMode: true,
			setup: func(t *testing.T) (*pexec.Handle, *pexec.Handle, *pexec.Handle) {
				h := startIn(t, true, pexectest.Command("sleep")).Handle()
				return h, h, nil
			},
			sig:  syscall.Signal(0),
			want: observed{Err: "ErrInvalid"},
		},
		{
			name:    "PID mode reaped leader",
			pidMode: true,
			setup: func(t *testing.T) (*pexec.Handle, *pexec.Handle, *pexec.Handle) {
				c := pexectest.Command("exit", "3")
				c.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
				p := startIn(t, true, c)
				p.wait()
				return p.Handle(), nil, nil
			},
			sig:  syscall.SIGKILL,
			want: observed{Err: "ErrProcessDone"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			want := tt.want
			if !tt.pidMode && tt.wantOld != nil && !kernel().GroupSignal {
				want = *tt.wantOld
			}
			h, leader, member := tt.setup(t)
			if tt.pidMode && h.Mode() != pexec.ModePID {
				t.Fatalf("handle in mode %v, want pid", h.Mode())
			}
			err := h.SignalGroup(tt.sig)
			got := observed{Err: errIs(err)}
			if err == nil {
				// Both must die; the deadline catches a survivor.
				awaitDone(t, leader)
				awaitDone(t, member)
			}
			got.LeaderDead = leader != nil && !leader.Alive()
			got.MemberDead = member != nil && !member.Alive()
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("SignalGroup (-want +got):\n%s", diff)
			}
		})
	}
}
