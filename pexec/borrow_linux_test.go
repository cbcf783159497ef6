package pexec_test

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"golang.org/x/sys/unix"

	"github.com/pexec-dev/pexec/pexec"
)

// borrowedAwaitFrame marks a goroutine waiting for a Cmd child's exit.
const borrowedAwaitFrame = "pexec.(*Handle).awaitEvent"

// untilNoWaiter polls the goroutine stacks until no goroutine is in
// borrowedAwait, or ctx ends (an error then).
func untilNoWaiter(ctx context.Context) error {
	for {
		states := goroutineStates(borrowedAwaitFrame, "")
		if len(states) == 0 {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("goroutines still waiting: %v", states)
		case <-time.After(2 * time.Millisecond):
		}
	}
}

// TestCloseReleasesWaiter: a Handle's watch may be the goroutine reading
// the exit poller for every child. Closing the Handle must still end that
// watch at once (it holds a reference on the os.Process's pidfd), and the
// reading must pass to the next waiter.
func TestCloseReleasesWaiter(t *testing.T) {
	if !pexec.Supported() {
		t.Skip("no pidfds here: waits block a thread in waitid")
	}
	ctx := waitTestContext(t)
	a, releaseA, waitA := gatedChild(t, 3)
	done := a.Handle().Done()
	// The watch is waiting: as the exit poller's reader, or behind one.
	for len(goroutineStates(borrowedAwaitFrame, "")) == 0 {
		select {
		case <-ctx.Done():
			t.Fatal("the Done watch never started waiting")
		case <-time.After(time.Millisecond):
		}
	}
	if err := a.Handle().Close(); err != nil {
		t.Fatal(err)
	}
	if err := untilNoWaiter(ctx); err != nil {
		t.Fatalf("after Close: %v", err)
	}
	select {
	case <-done:
		t.Fatal("Done closed, but the child is still running")
	default:
	}

	// Another child is still waited for (someone else reads now).
	_, releaseB, waitB := gatedChild(t, 4)
	releaseB()
	if err := waitB(); exitCode(err) != 4 {
		t.Errorf("second child: Cmd.Wait = %v; want exit status 4", err)
	}
	releaseA()
	if err := waitA(); exitCode(err) != 3 {
		t.Errorf("closed handle's child: Cmd.Wait = %v; want exit status 3", err)
	}
}

// exitCode returns the exit code in a Cmd.Wait error (0 for nil, -1 if
// there is none).
func exitCode(err error) int {
	var ee *pexec.ExitError
	switch {
	case err == nil:
		return 0
	case errors.As(err, &ee):
		return ee.ExitCode()
	}
	return -1
}

// TestWaitWithoutExitPoller runs every way of waiting where the exit poller
// cannot be used (no epoll): each waiter then blocks a thread in poll(2) on
// the pidfd; and where the netpoller refuses the epoll descriptor: the
// reader then blocks a thread in epoll_wait. The results must be the same.
func TestWaitWithoutExitPoller(t *testing.T) {
	if !pexec.Supported() {
		t.Skip("no pidfds here: the exit poller is never used")
	}
	for _, mode := range []struct {
		name    string
		set     func(bool) func()
		blocked string // the frame of the goroutine blocked in a system call
	}{
		{"no exit poller", pexec.SetNoExitPoller, borrowedAwaitFrame},
		{"reader off the netpoller", pexec.SetNoPark, "pexec.(*exitPoller).park"},
	} {
		t.Run(mode.name, func(t *testing.T) {
			restore := mode.set(true)
			defer restore()
			waitTable(t, mode.blocked)
		})
	}
}

func waitTable(t *testing.T, blockedFrame string) {
	tests := []struct {
		name string
		wait func(ctx context.Context, c *pexec.Cmd, release func(), wait func() error) (code int, err error)
	}{
		{"Cmd.Wait", func(ctx context.Context, c *pexec.Cmd, release func(), wait func() error) (int, error) {
			release()
			return exitCode(wait()), nil
		}},
		{"Handle.Wait", func(ctx context.Context, c *pexec.Cmd, release func(), wait func() error) (int, error) {
			release()
			st, err := c.Handle().Wait()
			if err != nil {
				return 0, err
			}
			return st.ExitCode(), nil
		}},
		{"Handle.Done", func(ctx context.Context, c *pexec.Cmd, release func(), wait func() error) (int, error) {
			d := c.Handle().Done()
			// The watch blocks a thread: in poll(2) on the pidfd, or, as
			// the reader, in epoll_wait (after its spin).
			for goroutineStates(blockedFrame, "")["syscall"] != 1 {
				select {
				case <-ctx.Done():
					return 0, fmt.Errorf("no watch blocked in a system call in %s: %v", blockedFrame, goroutineStates(blockedFrame, ""))
				case <-time.After(time.Millisecond):
				}
			}
			release()
			select {
			case <-d:
			case <-ctx.Done():
				return 0, ctx.Err()
			}
			st, err := c.Handle().Wait()
			if err != nil {
				return 0, err
			}
			return st.ExitCode(), nil
		}},
		{"WaitContext cancelled, then Wait", func(ctx context.Context, c *pexec.Cmd, release func(), wait func() error) (int, error) {
			cctx, cancel := context.WithCancel(ctx)
			cancel()
			if _, err := c.Handle().WaitContext(cctx); !errors.Is(err, context.Canceled) {
				return 0, errors.New("WaitContext with a cancelled context: " + errString(err))
			}
			if !c.Handle().Alive() {
				return 0, errors.New("child not alive after a cancelled WaitContext")
			}
			release()
			st, err := c.Handle().WaitContext(ctx)
			if err != nil {
				return 0, err
			}
			return st.ExitCode(), nil
		}},
		{"Signal, then Wait", func(ctx context.Context, c *pexec.Cmd, release func(), wait func() error) (int, error) {
			if err := c.Handle().Signal(syscall.SIGKILL); err != nil {
				return 0, err
			}
			st, err := c.Handle().Wait()
			if err != nil {
				return 0, err
			}
			if st.Signal() != syscall.SIGKILL {
				return 0, errors.New("status " + st.String() + ", want killed")
			}
			if err := c.Handle().Signal(syscall.SIGTERM); !errors.Is(err, os.ErrProcessDone) {
				return 0, errors.New("Signal after the exit: " + errString(err))
			}
			return 7, nil // the code the table expects
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx := waitTestContext(t)
			c, release, wait := gatedChild(t, 7)
			code, err := tt.wait(ctx, c, release, wait)
			if err != nil {
				t.Fatal(err)
			}
			if code != 7 {
				t.Errorf("exit code %d, want 7", code)
			}
			if err := wait(); exitCode(err) != 7 && !strings.Contains(errString(err), "killed") {
				t.Errorf("Cmd.Wait = %v; want exit status 7 or killed", err)
			}
		})
	}
}

// reapReleased kills and reaps child pid, whose os.Process was released
// (Process.Release): after that neither Cmd.Wait nor Process.Wait reaps it,
// and it would stay a zombie. Until it is reaped the PID names this child
// and no other process, so kill(2) and waitid(P_PID) cannot reach another
// one; the kill does nothing to a child that has already exited, and bounds
// the wait for one that has not.
func reapReleased(t testing.TB, pid int) {
	t.Helper()
	if err := unix.Kill(pid, unix.SIGKILL); err != nil {
		t.Errorf("reaping released child %d: kill: %v (reaped by someone else?)", pid, err)
		return
	}
	var info unix.Siginfo
	for {
		err := unix.Waitid(unix.P_PID, pid, &info, unix.WEXITED, nil)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			t.Errorf("reaping released child %d: waitid: %v", pid, err)
		}
		return
	}
}

// TestBorrowedPidfdGone covers what a Cmd child's Handle answers once the
// os.Process whose pidfd it uses has let it go: reaped by Cmd.Wait, reaped
// by the user's own cmd.Process.Wait, or released.
func TestBorrowedPidfdGone(t *testing.T) {
	if !pexec.Supported() {
		t.Skip("no pidfds here: a PID-mode Handle borrows nothing")
	}
	tests := []struct {
		name string
		end  func(c *pexec.Cmd) error // lets the os.Process's pidfd go
		want map[string]string        // method -> error class
	}{
		{"Cmd.Wait", func(c *pexec.Cmd) error {
			if err := c.Wait(); exitCode(err) != 3 {
				return fmt.Errorf("Cmd.Wait = %v", err)
			}
			return nil
		}, map[string]string{
			"Wait": "exit status 3", "ID": "nil", "Alive": "false", "Signal": "ErrProcessDone",
			"File": "ErrProcessDone", "Control": "ErrProcessDone",
		}},
		{"cmd.Process.Wait, no pexec waiter", func(c *pexec.Cmd) error {
			ps, err := c.Process.Wait()
			if err != nil || ps.ExitCode() != 3 {
				return fmt.Errorf("Process.Wait = %v, %v", ps, err)
			}
			return nil
		}, map[string]string{
			"Wait": "ErrStatusUnavailable+ErrProcessDone", "ID": "nil", "Alive": "false", "Signal": "ErrProcessDone",
			"File": "ErrProcessDone", "Control": "ErrProcessDone",
		}},
		{"cmd.Process.Release", func(c *pexec.Cmd) error { return c.Process.Release() }, map[string]string{
			// The Handle is closed with the os.Process's pidfd.
			"Wait": "ErrClosed", "ID": "ErrClosed", "Alive": "false", "Signal": "ErrClosed",
			"File": "ErrClosed", "Control": "ErrClosed",
		}},
	}
	class := func(err error) string {
		switch {
		case err == nil:
			return "nil"
		case errors.Is(err, pexec.ErrStatusUnavailable) && errors.Is(err, os.ErrProcessDone):
			return "ErrStatusUnavailable+ErrProcessDone"
		case errors.Is(err, os.ErrProcessDone):
			return "ErrProcessDone"
		case errors.Is(err, os.ErrClosed):
			return "ErrClosed"
		case errors.Is(err, errors.ErrUnsupported):
			return "ErrUnsupported"
		}
		return err.Error()
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, release, wait := gatedChild(t, 3)
			h := c.Handle()
			want := maps.Clone(tt.want)
			id, idErr := h.ID()
			if errors.Is(idErr, errors.ErrUnsupported) {
				// No pidfs (before Linux 6.9): no ID, the rest holds.
				t.Logf("ID: %v", idErr)
				if want["ID"] == "nil" {
					want["ID"] = "ErrUnsupported"
				}
			}
			pid := c.Process.Pid // Process.Release sets it to -1
			if tt.name == "cmd.Process.Release" {
				// Released while running, and ended only after the checks.
				// Neither Cmd.Wait (EINVAL: released) nor Process.Wait can
				// reap it any more: reapReleased does.
				defer func() { release(); wait(); reapReleased(t, pid) }()
			} else {
				release()
			}
			if err := tt.end(c); err != nil {
				t.Fatal(err)
			}
			got := map[string]string{}
			st, err := h.Wait()
			if err == nil {
				got["Wait"] = st.String()
			} else {
				got["Wait"] = class(err)
			}
			gotID, err := h.ID()
			got["ID"] = class(err)
			if err == nil && gotID != id {
				t.Errorf("ID changed: %d, then %d", id, gotID)
			}
			got["Alive"] = fmt.Sprint(h.Alive())
			got["Signal"] = class(h.Signal(syscall.SIGTERM))
			f, err := h.File()
			if f != nil {
				f.Close()
			}
			got["File"] = class(err)
			got["Control"] = class(h.Control(func(int) {}))
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("after %s (-want +got):\n%s", tt.name, diff)
			}
		})
	}
}
