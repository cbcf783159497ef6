package pexec_test

import (
	"context"
	"errors"
	"math"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/pexec-dev/pexec/pexec"
	"github.com/pexec-dev/pexec/pexectest"
	"golang.org/x/sys/unix"
)

// Bad input: every call returns a clear error, never panics, never hangs
// (each runs under proofDeadline).

const badInputDeadline = 30 * time.Second

// pidMax reads /proc/sys/kernel/pid_max.
func pidMax(t testing.TB) int {
	b, err := os.ReadFile("/proc/sys/kernel/pid_max")
	if err != nil {
		t.Fatal(err)
	}
	n, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// kernelThread returns the PID of a kernel thread (PF_KTHREAD in
// /proc/<pid>/stat), preferring kthreadd (2), or 0 if none is visible.
func kernelThread() int {
	isKthread := func(pid int) bool {
		b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
		if err != nil {
			return false
		}
		i := strings.LastIndexByte(string(b), ')')
		if i < 0 {
			return false
		}
		f := strings.Fields(string(b[i+1:]))
		if len(f) < 7 {
			return false
		}
		flags, err := strconv.ParseUint(f[6], 10, 64)
		return err == nil && flags&0x00200000 != 0 // PF_KTHREAD
	}
	if isKthread(2) {
		return 2
	}
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		if pid, err := strconv.Atoi(e.Name()); err == nil && isKthread(pid) {
			return pid
		}
	}
	return 0
}

func TestProofBadOpen(t *testing.T) {
	if !pexec.Supported() {
		t.Skip("Open needs pidfds")
	}
	max := pidMax(t)
	cases := []struct {
		name string
		pid  int
	}{
		{"-1", -1},
		{"0", 0},
		{"MinInt", math.MinInt},
		{"pid_max+1", max + 1},
		{"MaxInt32", math.MaxInt32},
	}
	if strconv.IntSize == 64 {
		big := int64(math.MaxInt32) + 1
		cases = append(cases, struct {
			name string
			pid  int
		}{"MaxInt32+1", int(big)})
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			proofDeadline(t, badInputDeadline, func() {
				h, err := pexec.Open(tc.pid)
				if h != nil || !errors.Is(err, os.ErrInvalid) {
					t.Errorf("Open(%d) = %v, %v; want an error wrapping os.ErrInvalid", tc.pid, h, err)
				}
			})
		})
	}

	// A kernel thread: pidfd_open accepts it (kthreads lead their own
	// thread group), so Open returns a working Handle, as for any process
	// that is not a child. The kernel accepts signals to it and the thread
	// ignores them (only signal 0 is sent here; a user other than root
	// gets EPERM); it never exits, so Wait blocks until its context ends.
	// pexec does not special-case them.
	t.Run("kernel-thread", func(t *testing.T) {
		pid := kernelThread()
		if pid == 0 {
			t.Skip("no kernel thread visible in /proc (a PID namespace?)")
		}
		proofDeadline(t, badInputDeadline, func() {
			h, err := pexec.Open(pid)
			if err != nil {
				t.Errorf("Open(kernel thread %d): %v", pid, err)
				return
			}
			defer h.Close()
			info, ierr := h.Info()
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
			defer cancel()
			_, werr := h.WaitContext(ctx)
			_, iderr := h.ID()
			got := []string{
				"Mode: " + h.Mode().String(),
				"Alive: " + strconv.FormatBool(h.Alive()),
				"Signal(0): " + proofErr(h.Signal(syscall.Signal(0))),
				"Info: " + proofErr(ierr),
				"WaitContext: " + proofErr(werr),
				"ID: " + proofErr(iderr),
				"Close: " + proofErr(h.Close()),
			}
			sig0 := "Signal(0): nil"
			if os.Geteuid() != 0 {
				sig0 = "Signal(0): ErrPermission" // kernel threads belong to root
			}
			id := "ID: nil"
			if !kernel().Pidfs {
				id = "ID: ErrUnsupported" // before pidfs (6.9)
			}
			want := []string{"Mode: pidfd", "Alive: true", sig0, "Info: nil", "WaitContext: DeadlineExceeded", id, "Close: nil"}
			if strings.Join(got, "\n") != strings.Join(want, "\n") {
				t.Errorf("kernel thread %d: got %q, want %q", pid, got, want)
			}
			if ierr == nil && (info.Pid != pid || info.UID != 0) {
				t.Errorf("kernel thread %d: Info %+v", pid, *info)
			}
			t.Logf("Open(kernel thread %d): %q; Info %+v", pid, got, info)
		})
	})

	// A zombie: our own exited, unreaped child. Open succeeds (the process
	// still exists); the Handle reports it gone, and its Wait reaps it.
	t.Run("zombie", func(t *testing.T) {
		proofDeadline(t, badInputDeadline, func() {
			p, err := os.StartProcess("/bin/sh", []string{"sh", "-c", "exit 6"}, &os.ProcAttr{})
			if err != nil {
				t.Error(err)
				return
			}
			defer p.Release()
			var info unix.Siginfo
			if err := unix.Waitid(unix.P_PID, p.Pid, &info, unix.WEXITED|unix.WNOWAIT, nil); err != nil {
				t.Errorf("waitid: %v", err)
				return
			}
			h, err := pexec.Open(p.Pid)
			if err != nil {
				t.Errorf("Open(zombie): %v", err)
				return
			}
			defer h.Close()
			_, ierr := h.Info()
			got := []string{
				"Alive: " + strconv.FormatBool(h.Alive()),
				"Signal(0): " + proofErr(h.Signal(syscall.Signal(0))),
				"Kill: " + proofErr(h.Kill()),
				"SignalGroup: " + proofErr(h.SignalGroup(syscall.SIGTERM)),
				"Info: " + proofErr(ierr),
				"Wait: " + proofWait(h.Wait()),
				"Wait again: " + proofWait(h.Wait()),
			}
			want := []string{
				"Alive: false", "Signal(0): ErrProcessDone", "Kill: ErrProcessDone", "SignalGroup: ErrProcessDone",
				"Info: ErrProcessDone",
				"Wait: exit status 6 [exited=true code=6 success=false signaled=false sig=0]",
				"Wait again: exit status 6 [exited=true code=6 success=false signaled=false sig=0]",
			}
			if strings.Join(got, "\n") != strings.Join(want, "\n") {
				t.Errorf("zombie: got %q, want %q", got, want)
			}
			if _, err := os.Stat("/proc/" + strconv.Itoa(p.Pid)); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("zombie %d still there after Handle.Wait: %v", p.Pid, err)
			}
		})
	})
}

// badSignals returns signal numbers the kernel must refuse, including,
// where int has 64 bits, numbers whose low 32 bits are 0 or SIGKILL.
func badSignals() []int {
	sigs := []int{-1, 65, 1000, math.MaxInt32, math.MinInt32}
	if strconv.IntSize == 64 {
		big := int64(1) << 32
		sigs = append(sigs, int(big), int(big)+9, int(-big)+15)
	}
	return sigs
}

func TestProofBadSignal(t *testing.T) {
	for _, mode := range []string{"pidfd", "forced-pid"} {
		t.Run(mode, func(t *testing.T) {
			if mode == "forced-pid" {
				defer pexec.SetForcePIDMode(true)()
			}
			proofDeadline(t, badInputDeadline, func() {
				ctx, cancel := context.WithTimeout(context.Background(), badInputDeadline)
				defer cancel()
				c := pexectest.CommandContext(ctx, "sleep")
				c.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
				if err := c.Start(); err != nil {
					t.Error(err)
					return
				}
				h := c.Handle()
				for _, s := range badSignals() {
					if err := h.Signal(syscall.Signal(s)); !errors.Is(err, syscall.EINVAL) {
						t.Errorf("Signal(%d) = %v, want EINVAL", s, err)
					}
					if err := h.SignalGroup(syscall.Signal(s)); !errors.Is(err, syscall.EINVAL) {
						t.Errorf("SignalGroup(%d) = %v, want EINVAL", s, err)
					}
				}
				// None of them reached the child.
				if !h.Alive() {
					t.Error("child died of a bad signal number")
				}
				if msg := untouched(c.Process.Pid, c.Path); msg != "" {
					t.Errorf("child touched: %s", msg)
				}
				// SIGHUP: neither TERM nor KILL, which truncated numbers
				// would have become.
				h.Signal(syscall.SIGHUP)
				if err := proofCmdWait(ctx, c); proofErr(err) != "ExitError(signal: hangup)" {
					t.Errorf("child ended with %v, want signal: hangup", err)
				}
			})
		})
	}
}

// TestProofLifecycleErrors calls methods out of order. Where os/exec has
// no sentinel (Start twice, Wait before Start), pexec must return exactly
// os/exec's error.
func TestProofLifecycleErrors(t *testing.T) {
	for _, mode := range []string{"pidfd", "forced-pid"} {
		t.Run(mode, func(t *testing.T) {
			if mode == "forced-pid" {
				defer pexec.SetForcePIDMode(true)()
			}
			proofDeadline(t, badInputDeadline, func() { lifecycleErrors(t) })
		})
	}
}

func lifecycleErrors(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), badInputDeadline)
	defer cancel()
	check := func(what string, err error, target error) {
		t.Helper()
		if !errors.Is(err, target) {
			t.Errorf("%s = %v, want an error wrapping %v", what, err, target)
		}
	}
	same := func(what string, got, want error) {
		t.Helper()
		if got == nil || want == nil || got.Error() != want.Error() {
			t.Errorf("%s = %v, os/exec says %v", what, got, want)
		}
	}

	// Close twice, then everything after Close.
	c := pexectest.CommandContext(ctx, "sleep")
	if err := c.Start(); err != nil {
		t.Error(err)
		return
	}
	h := c.Handle()
	if err := h.Close(); err != nil {
		t.Errorf("Close: %v", err)
	}
	if err := h.Close(); err != nil {
		t.Errorf("second Close: %v, want nil", err)
	}
	_, err := h.Wait()
	check("Wait after Close", err, os.ErrClosed)
	_, err = h.WaitContext(ctx)
	check("WaitContext after Close", err, os.ErrClosed)
	check("Signal after Close", h.Signal(syscall.SIGTERM), os.ErrClosed)
	c.Process.Kill()
	if err := proofCmdWait(ctx, c); proofErr(err) != "ExitError(signal: killed)" {
		t.Errorf("Cmd.Wait after Handle.Close: %v", err)
	}

	// Signal after Wait, before and after the reap; Start twice; Wait twice.
	c = pexectest.CommandContext(ctx, "exit", "0")
	if err := c.Start(); err != nil {
		t.Error(err)
		return
	}
	e := exec.Command("/bin/true")
	if err := e.Start(); err != nil {
		t.Error(err)
		return
	}
	same("second Start", c.Start(), e.Start())
	h = c.Handle()
	if st, err := h.WaitContext(ctx); err != nil || !st.Success() {
		t.Errorf("Wait: %v, %v", st, err)
	}
	check("Signal after Wait", h.Signal(syscall.SIGTERM), os.ErrProcessDone)
	check("Kill after Wait", h.Kill(), os.ErrProcessDone)
	check("SignalGroup after Wait", h.SignalGroup(syscall.SIGTERM), os.ErrProcessDone)
	if err := proofCmdWait(ctx, c); err != nil {
		t.Errorf("Cmd.Wait: %v", err)
	}
	check("Signal after Cmd.Wait", h.Signal(syscall.SIGTERM), os.ErrProcessDone)
	e.Wait()
	same("second Cmd.Wait", c.Wait(), e.Wait())
	same("Start after Wait", c.Start(), e.Start())

	// Zero Cmd, and Wait before Start.
	var zc pexec.Cmd
	var ze exec.Cmd
	same("zero Cmd Wait", zc.Wait(), ze.Wait())
	same("zero Cmd Start", zc.Start(), ze.Start())
	same("zero Cmd Start again", zc.Start(), ze.Start())
	if zc.Handle() != nil {
		t.Error("zero Cmd has a Handle after a failed Start")
	}
	for _, run := range []struct {
		name string
		p, o func() error
	}{
		{"Run", (&pexec.Cmd{}).Run, (&exec.Cmd{}).Run},
		{"Output", func() error { _, err := (&pexec.Cmd{}).Output(); return err }, func() error { _, err := (&exec.Cmd{}).Output(); return err }},
		{"CombinedOutput", func() error { _, err := (&pexec.Cmd{}).CombinedOutput(); return err }, func() error { _, err := (&exec.Cmd{}).CombinedOutput(); return err }},
	} {
		same("zero Cmd "+run.name, run.p(), run.o())
	}
	if zc.String() != ze.String() {
		t.Errorf("zero Cmd String %q, os/exec %q", zc.String(), ze.String())
	}
	// A nil *Cmd has no Handle. (Its other methods panic, as os/exec's do
	// on a nil *exec.Cmd: they dereference the receiver.)
	var nc *pexec.Cmd
	if nc.Handle() != nil {
		t.Error("nil Cmd has a Handle")
	}
}
