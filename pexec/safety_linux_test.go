package pexec_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/pexec-dev/pexec/internal/procfs"
	"github.com/pexec-dev/pexec/internal/testhelper"
	"github.com/pexec-dev/pexec/pexec"
	"github.com/pexec-dev/pexec/pexectest"
	"golang.org/x/sys/unix"
)

// Regression tests for issue #17: no path may signal a stranger. Each
// failed on dddc71a.

func init() {
	testhelper.Register("safety-release", safetyReleaseHelper)
}

// bothModes runs fn as a subtest in the pidfd mode (where pidfds work) and
// in the PID mode.
func bothModes(t *testing.T, fn func(t *testing.T)) {
	for _, mode := range []string{"pidfd", "pid"} {
		t.Run(mode, func(t *testing.T) {
			if mode == "pidfd" {
				skipNoPidfd(t)
			} else {
				t.Cleanup(pexec.SetForcePIDMode(true))
			}
			fn(t)
		})
	}
}

// handleAnswers is what every method of a Handle answers, as sentinel
// names (proofErr).
type handleAnswers struct {
	Mode, Alive, Signal0, SignalUSR1, Kill, SignalGroup, Stop, Wait, Done string
}

func answers(h *pexec.Handle) handleAnswers {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_, werr := h.WaitContext(ctx)
	_, serr := h.Stop(ctx, time.Millisecond)
	return handleAnswers{
		Mode:        h.Mode().String(),
		Alive:       fmt.Sprint(h.Alive()),
		Signal0:     proofErr(h.Signal(syscall.Signal(0))),
		SignalUSR1:  proofErr(h.Signal(syscall.SIGUSR1)),
		Kill:        proofErr(h.Kill()),
		SignalGroup: proofErr(h.SignalGroup(syscall.SIGUSR1)),
		Stop:        proofErr(serr),
		Wait:        proofErr(werr),
		Done:        doneState(h.Done()),
	}
}

// TestWrapReleased (item 1): Wrap of a command whose Process was released
// (Pid -1) gave a PID-mode Handle on pid -1, whose Signal was kill(-1,
// sig). It must answer os.ErrClosed everywhere, in its own mode.
func TestWrapReleased(t *testing.T) {
	bothModes(t, func(t *testing.T) {
		c := exec.Command("sleep", "5")
		if err := c.Start(); err != nil {
			t.Fatal(err)
		}
		pid := c.Process.Pid
		t.Cleanup(func() {
			// Released: this test reaps its child by PID itself.
			unix.Kill(pid, unix.SIGKILL)
			var ws unix.WaitStatus
			unix.Wait4(pid, &ws, 0, nil)
		})
		if err := c.Process.Release(); err != nil {
			t.Fatal(err)
		}
		h := pexec.Wrap(c).Handle()
		mode := "pid"
		if pexec.Supported() {
			mode = "pidfd"
		}
		want := handleAnswers{Mode: mode, Alive: "false", Signal0: "ErrClosed", SignalUSR1: "ErrClosed", Kill: "ErrClosed",
			SignalGroup: "ErrClosed", Stop: "ErrClosed", Wait: "ErrClosed", Done: "open"}
		if diff := cmp.Diff(want, answers(h)); diff != "" {
			t.Errorf("Wrap after Release (-want +got):\n%s", diff)
		}
		if !procAlive(pid) {
			t.Errorf("the released child %d is gone: something signalled it", pid)
		}
	})
}

// TestWrapReleasedSignalsNoStranger runs item 1's recipe for real, inside
// a PID namespace of its own (where kill(-1) reaches only the namespace):
// a canary process must survive every method of the Handle of a released
// child.
func TestWrapReleasedSignalsNoStranger(t *testing.T) {
	for _, mode := range []string{"pidfd", "pid"} {
		t.Run(mode, func(t *testing.T) {
			if mode == "pidfd" {
				skipNoPidfd(t)
			}
			ctx, cancel := context.WithTimeout(context.Background(), proofTimeout)
			defer cancel()
			cmd := pexectest.CommandContext(ctx, "safety-release", mode)
			testhelper.Uses("safety-release")
			pexectest.InPIDNamespace(t, cmd)
			var rep releaseReport
			testhelper.RunReportCmd(ctx, t, cmd, &rep)
			if rep.Setup != "" {
				t.Fatalf("helper setup: %s", rep.Setup)
			}
			want := releaseReport{CanaryAlive: true, VictimAlive: true}
			if diff := cmp.Diff(want, rep); diff != "" {
				t.Errorf("after every method of the released child's Handle (-want +got):\n%s", diff)
			}
		})
	}
}

// releaseReport is what the safety-release helper saw.
type releaseReport struct {
	Setup       string
	CanaryAlive bool // the unrelated process
	VictimAlive bool // the released child itself
}

// safetyReleaseHelper (pidfd|pid), PID 1 of its own namespace: a canary,
// a released child, and every signalling method of the child's Wrap'd
// Handle.
func safetyReleaseHelper(args []string) int {
	var rep releaseReport
	if os.Getpid() != 1 {
		rep.Setup = "not PID 1 of a PID namespace"
		return testhelper.Report(rep)
	}
	if argAt(args, 0) == "pid" {
		pexec.SetForcePIDMode(true)
	}
	canary := exec.Command("/bin/sleep", "100")
	victim := exec.Command("/bin/sleep", "100")
	for _, c := range []*exec.Cmd{canary, victim} {
		if err := c.Start(); err != nil {
			rep.Setup = err.Error()
			return testhelper.Report(rep)
		}
	}
	vpid := victim.Process.Pid
	victim.Process.Release()
	h := pexec.Wrap(victim).Handle()
	for _, sig := range []syscall.Signal{syscall.SIGUSR1, syscall.SIGTERM, syscall.SIGKILL} {
		h.Signal(sig)
		h.SignalGroup(sig)
	}
	h.Kill()
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	h.Stop(ctx, 10*time.Millisecond)
	cancel()
	time.Sleep(50 * time.Millisecond) // a signal sent is delivered by now; none should be
	rep.CanaryAlive, rep.VictimAlive = procAlive(canary.Process.Pid), procAlive(vpid)
	canary.Process.Kill()
	canary.Wait()
	unix.Kill(vpid, unix.SIGKILL)
	var ws unix.WaitStatus
	unix.Wait4(vpid, &ws, 0, nil)
	return testhelper.Report(rep)
}

// TestWrapWaited (item 2): Wrap of a command whose Process.Wait reaped the
// child gave a PID-mode Handle on the reaped PID. It must answer
// os.ErrProcessDone (its forced-reuse proof is TestProofPIDReuse's "wrap"
// mode); a Wrap of a command that c.Wait reaped answers with its status.
func TestWrapWaited(t *testing.T) {
	bothModes(t, func(t *testing.T) {
		mode := "pid"
		if pexec.Supported() {
			mode = "pidfd"
		}
		c := exec.Command("sh", "-c", "exit 7")
		if err := c.Start(); err != nil {
			t.Fatal(err)
		}
		if _, err := c.Process.Wait(); err != nil {
			t.Fatal(err)
		}
		want := handleAnswers{Mode: mode, Alive: "false", Signal0: "ErrProcessDone", SignalUSR1: "ErrProcessDone", Kill: "ErrProcessDone",
			SignalGroup: "ErrProcessDone", Stop: "ErrProcessDone", Wait: "ErrProcessDone", Done: "closed"}
		if mode == "pid" {
			// Without a pidfd pexec cannot tell the os.Process's reap
			// from another waiter's: either is a ReapedError.
			want.Stop, want.Wait = "ReapedError(<nil status>)", "ReapedError(<nil status>)"
		}
		w := pexec.Wrap(c)
		if diff := cmp.Diff(want, answers(w.Handle())); diff != "" {
			t.Errorf("Wrap after Process.Wait (-want +got):\n%s", diff)
		}
		if _, err := w.Handle().Wait(); !errors.Is(err, pexec.ErrStatusUnavailable) {
			t.Errorf("Handle.Wait = %v; want an error wrapping ErrStatusUnavailable too", err)
		}

		c = exec.Command("sh", "-c", "exit 7")
		if err := c.Run(); err == nil {
			t.Fatal("exit 7 succeeded")
		}
		w = pexec.Wrap(c)
		want.Wait, want.Stop = "nil", "nil"
		if diff := cmp.Diff(want, answers(w.Handle())); diff != "" {
			t.Errorf("Wrap after Cmd.Wait (-want +got):\n%s", diff)
		}
		if st, err := w.Handle().Wait(); err != nil || st.ExitCode() != 7 || st.ProcessState() != c.ProcessState {
			t.Errorf("Handle.Wait = %v, %v; want exit status 7 with c's ProcessState", st, err)
		}
	})
}

// TestWaitedThenCmdWait (item 6): after a direct cmd.Process.Wait, both
// Handle.Wait and Cmd.Wait say the status is unavailable, and the Handle's
// error wraps os.ErrProcessDone as the README says.
func TestWaitedThenCmdWait(t *testing.T) {
	bothModes(t, func(t *testing.T) {
		c := pexec.Command("sh", "-c", "exit 7")
		if err := c.Start(); err != nil {
			t.Fatal(err)
		}
		if _, err := c.Process.Wait(); err != nil {
			t.Fatal(err)
		}
		cerr := c.Wait()
		var re *pexec.ReapedError
		if !errors.As(cerr, &re) || re.Status != nil {
			t.Errorf("Cmd.Wait = %v; want a *ReapedError without a status", cerr)
		}
		_, err := c.Handle().Wait()
		for _, target := range []error{os.ErrProcessDone, pexec.ErrStatusUnavailable} {
			if !errors.Is(err, target) {
				t.Errorf("Handle.Wait = %v; want an error wrapping %v", err, target)
			}
		}
	})
}

// TestStatusNotLostToProcessWait (item 5): with a Handle waiter parked, a
// direct cmd.Process.Wait racing Cmd.Wait lost the status (both returned
// a ReapedError without one) when Cmd.Wait moved the Handle on before the
// waiter's observation. A waiter in progress when the child exits holds
// its pidfd, so it can read the status, before the reap or from the exit
// record after it: the status must reach both where the kernel keeps exit
// records (Linux 6.15+). Where it does not, the user's Process.Wait,
// blocked in the kernel when the child exits, often reaps before the
// waiter can look (19 of 60 rounds on 6.1 under QEMU): then both say
// ErrStatusUnavailable, never a wrong status.
func TestStatusNotLostToProcessWait(t *testing.T) {
	skipNoPidfd(t)
	rounds := 300
	if testing.Short() {
		rounds = 60
	}
	records := pidfdInfoExit(t)
	lost, unavailable := 0, 0
	for i := range rounds {
		c := pexec.Command("sh", "-c", "read x; exit 5")
		stdin, err := c.StdinPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := c.Start(); err != nil {
			t.Fatal(err)
		}
		h := c.Handle()
		hw := make(chan error, 1)
		go func() {
			st, err := h.Wait()
			if err == nil && st.ExitCode() != 5 {
				err = fmt.Errorf("status %v", st)
			}
			hw <- err
		}()
		// The waiter is in progress: it holds the pidfd.
		for deadline := time.Now().Add(waitTestTimeout); pexec.Observers(h) == 0; time.Sleep(time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatal("the Handle waiter never started waiting")
			}
		}
		stdin.Close()
		pw := make(chan struct{})
		go func() { c.Process.Wait(); close(pw) }()
		if i%2 == 0 {
			runtime.Gosched()
		}
		cerr := c.Wait()
		<-pw
		herr := <-hw
		var re *pexec.ReapedError
		cmdLost := errors.As(cerr, &re) && re.Status == nil
		if !records && errors.Is(herr, pexec.ErrStatusUnavailable) && cmdLost {
			unavailable++
			continue
		}
		if herr != nil || cmdLost && records {
			lost++
			if lost <= 5 {
				t.Errorf("round %d: Cmd.Wait = %v, Handle.Wait = %v; want exit status 5 from Handle.Wait (and from Cmd.Wait where the kernel keeps exit records: %v)", i, cerr, herr, records)
			}
		}
	}
	if lost > 0 {
		t.Errorf("status lost in %d of %d rounds", lost, rounds)
	}
	if !records {
		t.Logf("on %s, without exit records (PIDFD_INFO_EXIT, 6.15): the user's reap came first, and both waits said ErrStatusUnavailable, in %d of %d rounds", kernelRelease(), unavailable, rounds)
	}
}

// procAlive reports whether process pid exists and is not a zombie.
func procAlive(pid int) bool {
	st, err := procfs.ReadStat(pid)
	return err == nil && !st.Exited()
}

// TestReleaseWhileWaiting (item 6): cmd.Process.Release closes the
// child's Handle when pexec next uses the pidfd: a call after the Release
// reports os.ErrClosed, and so does a wait in progress from then on; a wait
// in progress that sees the exit first, holding the descriptor, returns
// the status.
func TestReleaseWhileWaiting(t *testing.T) {
	skipNoPidfd(t)
	for _, tc := range []struct {
		name     string
		touch    bool // call the Handle after the Release
		wantWait string
	}{
		{"call after Release", true, "ErrClosed"},
		{"exit after Release", false, "nil 4"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := pexec.Command("sh", "-c", "read x; exit 4")
			stdin, err := c.StdinPipe()
			if err != nil {
				t.Fatal(err)
			}
			if err := c.Start(); err != nil {
				t.Fatal(err)
			}
			pid := c.Process.Pid
			t.Cleanup(func() {
				stdin.Close()
				var ws unix.WaitStatus
				unix.Wait4(pid, &ws, 0, nil) // released: reaped by PID
			})
			h := c.Handle()
			hw := make(chan string, 1)
			go func() {
				st, err := h.Wait()
				if err != nil {
					hw <- proofErr(err)
					return
				}
				hw <- fmt.Sprint("nil ", st.ExitCode())
			}()
			for deadline := time.Now().Add(waitTestTimeout); pexec.Observers(h) == 0; time.Sleep(time.Millisecond) {
				if time.Now().After(deadline) {
					t.Fatal("the Handle waiter never started waiting")
				}
			}
			if err := c.Process.Release(); err != nil {
				t.Fatal(err)
			}
			if tc.touch {
				if err := h.Signal(syscall.Signal(0)); !errors.Is(err, os.ErrClosed) {
					t.Errorf("Signal(0) after Release = %v; want os.ErrClosed", err)
				}
			} else {
				stdin.Close()
			}
			if got := <-hw; got != tc.wantWait {
				t.Errorf("the wait in progress = %s; want %s", got, tc.wantWait)
			}
			if _, err := h.Wait(); !errors.Is(err, os.ErrClosed) && tc.touch {
				t.Errorf("Wait after Release = %v; want os.ErrClosed", err)
			}
		})
	}
}

// TestCmdWaitDropsEntry (item 6): Cmd.Wait takes its child's pidfd out of
// the exit poller; before, the entry stayed for as long as a duplicate of
// the descriptor (FromProcess) lived.
func TestCmdWaitDropsEntry(t *testing.T) {
	skipNoPidfd(t)
	const dups = 20
	c := pexec.Command("sh", "-c", "read x; true")
	stdin, err := c.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Start(); err != nil {
		t.Fatal(err)
	}
	done := c.Handle().Done() // registers the child's own pidfd
	var hs []*pexec.Handle
	for range dups {
		d, err := pexec.FromProcess(c.Process)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { d.Close() })
		hs = append(hs, d)
		d.Done() // registers the duplicate
	}
	for deadline := time.Now().Add(waitTestTimeout); pexec.ExitPollerEntries() < dups+2; time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("%d exit-poller entries; want the child's, %d duplicates' and the eventfd", pexec.ExitPollerEntries(), dups)
		}
	}
	before := pexec.ExitPollerEntries()
	stdin.Close()
	if err := c.Wait(); err != nil {
		t.Fatal(err)
	}
	<-done
	for _, d := range hs {
		<-d.Done()
	}
	if got := pexec.ExitPollerEntries(); got > before-1 {
		t.Errorf("%d exit-poller entries after Cmd.Wait (%d before, with %d duplicates alive); want the child's own gone", got, before, dups)
	}
}

// TestWaitStepAfterClose: a WaitContext that has read the phase (running)
// just before a Close must end with the Close, while the child runs on. In
// PID mode that wait step took "not running" for "exited" and waited for
// the exit with no way out: TestProofConcurrentHandles/forced-pid hung
// there once in 60 runs, on a child whose Kill the Close had refused.
func TestWaitStepAfterClose(t *testing.T) {
	bothModes(t, func(t *testing.T) {
		ctx := waitTestContext(t)
		c := pexec.Command("sleep", "600") // outlives the test's deadline
		if err := c.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Process.Kill(); c.Wait() })
		h := c.Handle()
		if err := h.Close(); err != nil {
			t.Fatal(err)
		}
		done := make(chan error, 1)
		go func() { done <- pexec.WaitPastCheck(h, nil) }()
		select {
		case err := <-done:
			if err == nil {
				t.Error("the wait step after Close returned nil; want it stopped by the Close")
			}
		case <-ctx.Done():
			t.Fatal("the wait step after Close still waits for the child, which runs on")
		}
		if !procAlive(c.Process.Pid) {
			t.Error("the child is gone: the Close or the wait touched it")
		}
	})
}
