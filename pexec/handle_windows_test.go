package pexec_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"golang.org/x/sys/windows"

	"github.com/pexec-dev/pexec/pexec"
	"github.com/pexec-dev/pexec/pexectest"
)

// testTimeout bounds every wait of the Windows tests: a hang fails the
// test instead of the run.
const testTimeout = 30 * time.Second

func testContext(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(t.Context(), testTimeout)
	t.Cleanup(cancel)
	return ctx
}

// errName names the sentinel err wraps, for tables of outcomes.
func errName(err error) string {
	for _, e := range []struct {
		err  error
		name string
	}{
		{os.ErrProcessDone, "ErrProcessDone"},
		{os.ErrClosed, "ErrClosed"},
		{errors.ErrUnsupported, "ErrUnsupported"},
		{os.ErrInvalid, "ErrInvalid"},
		{os.ErrPermission, "ErrPermission"},
		{context.DeadlineExceeded, "DeadlineExceeded"},
	} {
		if errors.Is(err, e.err) {
			return e.name
		}
	}
	if err == nil {
		return "nil"
	}
	return err.Error()
}

// startChild starts c and kills and reaps it at the end of the test if
// the test has not.
func startChild(t *testing.T, c *pexec.Cmd) {
	t.Helper()
	if err := c.Start(); err != nil {
		t.Fatalf("Start %s: %v", c, err)
	}
	t.Cleanup(func() {
		if c.ProcessState == nil {
			if h := c.Handle(); h.Tree() != pexec.TreeNone {
				h.KillTree()
			}
			c.Process.Kill()
			c.Wait()
		}
	})
}

// processHandle returns the process HANDLE of h, for checks through the
// system; it stays valid until the test ends (the Handle is not closed
// before).
func processHandle(t *testing.T, h *pexec.Handle) windows.Handle {
	t.Helper()
	var ph windows.Handle
	if err := h.Control(func(v int) { ph = windows.Handle(v) }); err != nil {
		t.Fatalf("Control: %v", err)
	}
	return ph
}

// A Cmd child's Handle, through its whole life: what each method reports
// while it runs, once it has exited, once Cmd.Wait has reaped it, and once
// the Handle is closed.
func TestHandleLifeWindows(t *testing.T) {
	c := pexectest.Command("sleep")
	startChild(t, c)
	h := c.Handle()

	// The Handle owns a duplicate of the os.Process's HANDLE.
	var procHandle windows.Handle
	c.Process.WithHandle(func(v uintptr) { procHandle = windows.Handle(v) })
	ph := processHandle(t, h)
	if ph == procHandle {
		t.Errorf("the Handle uses the os.Process's HANDLE %#x, want a duplicate of its own", ph)
	}
	if id, err := windows.GetProcessId(ph); err != nil || int(id) != c.Process.Pid {
		t.Errorf("GetProcessId(the Handle's HANDLE) = %d, %v; want %d", id, err, c.Process.Pid)
	}

	type state struct {
		Mode, Signal0, Kill, Term, Interrupt, Status, Control string
		Alive, Done                                           bool
	}
	observe := func(kill bool) state {
		s := state{
			Mode:      h.Mode().String(),
			Alive:     h.Alive(),
			Signal0:   errName(h.Signal(syscall.Signal(0))),
			Term:      errName(h.Signal(syscall.SIGTERM)),
			Interrupt: errName(h.Signal(os.Interrupt)),
			Control:   errName(h.Control(func(int) {})),
		}
		if kill {
			s.Kill = errName(h.Kill())
			ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
			st, err := h.WaitContext(ctx)
			cancel()
			s.Status = fmt.Sprint(st, " ", errName(err))
		} else {
			s.Kill = errName(h.Signal(os.Kill))
			st, err := h.Wait()
			s.Status = fmt.Sprint(st, " ", errName(err))
		}
		select {
		case <-h.Done():
			s.Done = true
		default:
		}
		return s
	}
	running := observe(true)
	exited := observe(false)
	werr := c.Wait()
	reaped := observe(false)
	closeErrs := []string{errName(h.Close()), errName(h.Close())}
	closed := observe(false)

	want := []state{
		{Mode: "handle", Alive: true, Signal0: "nil", Kill: "nil", Term: "ErrUnsupported", Interrupt: "ErrUnsupported", Control: "nil", Status: "exit status 1 nil", Done: true},
		{Mode: "handle", Alive: false, Signal0: "ErrProcessDone", Kill: "ErrProcessDone", Term: "ErrProcessDone", Interrupt: "ErrProcessDone", Control: "nil", Status: "exit status 1 nil", Done: true},
		{Mode: "handle", Alive: false, Signal0: "ErrProcessDone", Kill: "ErrProcessDone", Term: "ErrProcessDone", Interrupt: "ErrProcessDone", Control: "ErrProcessDone", Status: "exit status 1 nil", Done: true},
		{Mode: "handle", Alive: false, Signal0: "ErrClosed", Kill: "ErrClosed", Term: "ErrClosed", Interrupt: "ErrClosed", Control: "ErrClosed", Status: "<nil> ErrClosed", Done: true},
	}
	if diff := cmp.Diff(want, []state{running, exited, reaped, closed}); diff != "" {
		t.Errorf("running, exited, reaped, closed: (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{"nil", "nil"}, closeErrs); diff != "" {
		t.Errorf("Close, Close: (-want +got):\n%s", diff)
	}
	if werr == nil || werr.Error() != "exit status 1" || c.ProcessState.ExitCode() != 1 {
		t.Errorf("Cmd.Wait: %v (exit code %d), want exit status 1, as os/exec's Kill gives", werr, c.ProcessState.ExitCode())
	}
}

// Handle.Wait reports the exit code, all 32 bits of it, before and after
// Cmd.Wait, as Cmd.Wait's ProcessState does.
func TestHandleExitCodeWindows(t *testing.T) {
	for _, tc := range []struct {
		code int
		text string
	}{
		{0, "exit status 0"},
		{3, "exit status 3"},
		{256, "exit status 256"}, // Unix keeps 8 bits; Windows, 32
		{0x7ffffffe, "exit status 0x7ffffffe"},
	} {
		code := tc.code
		t.Run(strconv.Itoa(code), func(t *testing.T) {
			c := pexectest.Command("exit", strconv.Itoa(code))
			startChild(t, c)
			h := c.Handle()
			before, err := h.WaitContext(testContext(t))
			if err != nil {
				t.Fatal(err)
			}
			c.Wait()
			after, err := h.Wait()
			if err != nil {
				t.Fatal(err)
			}
			got := []string{before.String(), after.String(), c.ProcessState.String()}
			want := tc.text
			if diff := cmp.Diff([]string{want, want, want}, got); diff != "" {
				t.Errorf("Handle.Wait before and after Cmd.Wait, ProcessState: (-want +got):\n%s", diff)
			}
			if before.ExitCode() != code || !before.Exited() || before.Signaled() {
				t.Errorf("status %v: ExitCode %d, Exited %v, Signaled %v", before, before.ExitCode(), before.Exited(), before.Signaled())
			}
		})
	}
}

// WaitContext returns when its context is done, leaving the process
// running and waitable.
func TestWaitContextWindows(t *testing.T) {
	c := pexectest.Command("sleep")
	startChild(t, c)
	h := c.Handle()
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if st, err := h.WaitContext(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("WaitContext = %v, %v; want an error wrapping DeadlineExceeded", st, err)
	}
	if !h.Alive() {
		t.Fatal("not alive after WaitContext returned")
	}
	h.Kill()
	if st, err := h.WaitContext(testContext(t)); err != nil || st.ExitCode() != 1 {
		t.Errorf("WaitContext after Kill = %v, %v; want exit status 1", st, err)
	}
}

// Close while another goroutine uses the HANDLE (inside Control, as every
// method does) does not close it under that goroutine: the HANDLE is
// closed when the last use ends, so its value cannot be recycled under a
// Signal.
func TestCloseWhileInUseWindows(t *testing.T) {
	c := pexectest.Command("sleep")
	startChild(t, c)
	h, err := pexec.Open(c.Process.Pid)
	if err != nil {
		t.Fatal(err)
	}
	var ph windows.Handle
	var during error
	var duringPid uint32
	if err := h.Control(func(v int) {
		ph = windows.Handle(v)
		if err := h.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
		duringPid, during = windows.GetProcessId(ph)
		// A Signal past its checks, as one racing the Close would be:
		// it finds the HANDLE closing and reports it, never using it.
		if err := pexec.SignalPastCheck(h, syscall.SIGKILL); !errors.Is(err, os.ErrClosed) {
			t.Errorf("Signal after Close, during a use: %v, want ErrClosed", err)
		}
	}); err != nil {
		t.Fatal(err)
	}
	if during != nil || int(duringPid) != c.Process.Pid {
		t.Errorf("during the use, after Close: GetProcessId = %d, %v; want %d: the HANDLE was closed under its user", duringPid, during, c.Process.Pid)
	}
	// After the use, the HANDLE is closed: invalid, or by now another
	// object's (never this process's, as far as this Handle goes).
	if id, err := windows.GetProcessId(ph); err == nil && int(id) == c.Process.Pid {
		t.Errorf("after the last use, the HANDLE %#x still refers to the process: not closed", ph)
	}
	if !h.Alive() == false || h.Alive() {
		t.Error("Alive after Close: true")
	}
	if c.Handle().Alive() != true {
		t.Error("closing another Handle ended the child's")
	}
}

// Open on Windows: a Handle to any process by PID; the errors.
func TestOpenWindows(t *testing.T) {
	tests := []struct {
		pid  int
		want string
	}{
		{0, "ErrInvalid"},
		{-4, "ErrInvalid"},
		{1 << 33, "ErrInvalid"},
		{0x7ffffffc, "ErrProcessDone"}, // no such process
	}
	for _, tc := range tests {
		t.Run(strconv.Itoa(tc.pid), func(t *testing.T) {
			h, err := pexec.Open(tc.pid)
			if h != nil {
				h.Close()
			}
			if got := errName(err); got != tc.want {
				t.Errorf("Open(%d) = %v, want %s", tc.pid, err, tc.want)
			}
		})
	}
	t.Run("child", func(t *testing.T) {
		c := pexectest.Command("sleep")
		startChild(t, c)
		h, err := pexec.Open(c.Process.Pid)
		if err != nil {
			t.Fatal(err)
		}
		defer h.Close()
		if h.Mode() != pexec.ModeHandle || !h.Alive() || h.Pid() != c.Process.Pid {
			t.Fatalf("Open: mode %v, alive %v, pid %d", h.Mode(), h.Alive(), h.Pid())
		}
		if err := h.Kill(); err != nil {
			t.Fatal(err)
		}
		st, err := h.WaitContext(testContext(t))
		if err != nil || st.ExitCode() != 1 {
			t.Errorf("Wait = %v, %v; want exit status 1", st, err)
		}
		if err := c.Wait(); err == nil || err.Error() != "exit status 1" {
			t.Errorf("Cmd.Wait = %v, want exit status 1", err)
		}
		// Open's HANDLE keeps the process's ID its own: Wait still
		// answers after the Cmd's reap.
		if st2, err := h.Wait(); err != nil || st2.String() != st.String() {
			t.Errorf("Wait after Cmd.Wait = %v, %v; want %v", st2, err, st)
		}
		// While a HANDLE to it is open, the exited process keeps its ID:
		// Open finds it, exited, and Wait reads its exit code.
		again, err := pexec.Open(c.Process.Pid)
		if err != nil {
			t.Fatalf("Open of the exited process, while h holds it: %v", err)
		}
		defer again.Close()
		if st3, err := again.Wait(); again.Alive() || err != nil || st3.String() != st.String() {
			t.Errorf("Open of the exited process: Alive %v, Wait %v, %v; want false, %v", again.Alive(), st3, err, st)
		}
	})
	t.Run("self", func(t *testing.T) {
		h, err := pexec.Open(os.Getpid())
		if err != nil {
			t.Fatal(err)
		}
		defer h.Close()
		if !h.Alive() || h.Signal(syscall.Signal(0)) != nil {
			t.Error("the test process is not alive through its own Handle")
		}
	})
}

// FromProcess adopts an os.Process started by os/exec, without a PID
// lookup; it observes, and os/exec's Wait still works.
func TestFromProcessWindows(t *testing.T) {
	if _, err := pexec.FromProcess(nil); !errors.Is(err, os.ErrInvalid) {
		t.Errorf("FromProcess(nil) = %v, want ErrInvalid", err)
	}
	c := pexectest.Command("exit", "5")
	x := exec.Command(c.Path, c.Args[1:]...)
	x.Env = c.Env
	if err := x.Start(); err != nil {
		t.Fatal(err)
	}
	h, err := pexec.FromProcess(x.Process)
	if err != nil {
		x.Process.Kill()
		x.Wait()
		t.Fatal(err)
	}
	defer h.Close()
	st, err := h.WaitContext(testContext(t))
	xerr := x.Wait()
	if err != nil || st.ExitCode() != 5 || xerr == nil || x.ProcessState.ExitCode() != 5 {
		t.Errorf("Handle.Wait = %v, %v; exec's Wait = %v; want exit status 5 from both", st, err, xerr)
	}
	if _, err := pexec.FromProcess(x.Process); !errors.Is(err, os.ErrInvalid) {
		t.Errorf("FromProcess after exec's Wait = %v, want ErrInvalid (its HANDLE is released)", err)
	}
}

// What Windows does not have returns errors.ErrUnsupported, never a guess.
func TestUnsupportedWindows(t *testing.T) {
	c := pexectest.Command("sleep")
	startChild(t, c)
	h := c.Handle()
	other, err := pexec.Open(c.Process.Pid)
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	same, err := h.SameProcess(h)
	if !same || err != nil {
		t.Errorf("SameProcess(itself) = %v, %v; want true", same, err)
	}
	tests := []struct {
		name string
		call func() error
	}{
		{"Parent", func() error { _, err := pexec.Parent(); return err }},
		{"FromFile", func() error { _, err := pexec.FromFile(os.Stdin); return err }},
		{"PeerHandle", func() error { _, err := pexec.PeerHandle(nil); return err }},
		{"OpenID", func() error { _, err := pexec.OpenID(c.Process.Pid, 1); return err }},
		{"ID", func() error { _, err := h.ID(); return err }},
		{"Identity", func() error { _, err := h.Identity(); return err }},
		{"SameProcess", func() error { _, err := h.SameProcess(other); return err }},
		{"Info", func() error { _, err := h.Info(); return err }},
		{"File", func() error { _, err := h.File(); return err }},
		{"SignalGroup", func() error { return h.SignalGroup(os.Kill) }},
		{"GetFD", func() error { _, err := h.GetFD(0); return err }},
		{"Signal(SIGHUP)", func() error { return h.Signal(syscall.SIGHUP) }},
		{"Signal(SIGTERM)", func() error { return h.Signal(syscall.SIGTERM) }},
	}
	for _, tc := range tests {
		if got := errName(tc.call()); got != "ErrUnsupported" {
			t.Errorf("%s: %s, want ErrUnsupported", tc.name, got)
		}
	}
	if !h.Alive() {
		t.Error("the child did not survive the unsupported calls")
	}
}

// The Handle owns its HANDLE: cmd.Process.Release, which lets the
// os.Process's go, leaves the Handle working.
func TestReleaseWindows(t *testing.T) {
	c := pexectest.Command("sleep")
	startChild(t, c)
	h := c.Handle()
	if err := c.Process.Release(); err != nil {
		t.Fatal(err)
	}
	if !h.Alive() {
		t.Fatal("not alive after Release")
	}
	if err := h.Kill(); err != nil {
		t.Fatalf("Kill after Release: %v", err)
	}
	if st, err := h.WaitContext(testContext(t)); err != nil || st.ExitCode() != 1 {
		t.Errorf("Wait after Release = %v, %v; want exit status 1", st, err)
	}
}
