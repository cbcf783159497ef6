//go:build linux

package pexec_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"reflect"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"golang.org/x/sys/unix"

	"github.com/pexec-dev/pexec/internal/testhelper"
	"github.com/pexec-dev/pexec/pexec"
	"github.com/pexec-dev/pexec/pexectest"
)

// Tests of waiting on Linux, where Done, Wait and WaitContext observe the
// exit through the pidfd (or waitid in PID mode) without waiting for
// Cmd.Wait: no OS thread is held while waiting, WaitContext gives up cleanly,
// Done works in select, a direct os.Process.Wait still blocks (the
// O_NONBLOCK trap), and concurrent waiters agree.

// waitTestTimeout bounds every test in this file that could block.
const waitTestTimeout = 2 * time.Minute

// waitTestContext returns the deadline of a test in this file.
func waitTestContext(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(t.Context(), waitTestTimeout)
	t.Cleanup(cancel)
	return ctx
}

// gatedChild starts the "echo" helper, which exits with code once its
// standard input is closed: the test decides when the child exits, so no
// step depends on timing. release closes the input (idempotent); wait is
// c.Wait run once (later calls return the first result), so the cleanup,
// which kills and reaps the child if the test has not, never calls Cmd.Wait
// concurrently with the test.
func gatedChild(t *testing.T, code int) (c *pexec.Cmd, release func(), wait func() error) {
	t.Helper()
	c = pexectest.Command("echo", fmt.Sprint(code))
	c.Stdout = io.Discard
	stdin, err := c.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Start(); err != nil {
		t.Fatal(err)
	}
	release = sync.OnceFunc(func() { stdin.Close() })
	wait = sync.OnceValue(c.Wait)
	t.Cleanup(func() {
		release()
		c.Process.Kill()
		wait()
	})
	return c, release, wait
}

// waitWithin runs wait (a gatedChild's), killing the child if ctx ends
// first so that a hang fails the test instead of stalling it.
func waitWithin(ctx context.Context, t *testing.T, c *pexec.Cmd, wait func() error) error {
	t.Helper()
	return waitBounded(ctx, t, wait, func() { c.Process.Kill() })
}

// waitBounded runs wait, failing the test if ctx ends first, after
// calling giveUp (if not nil) to end what wait waits for.
func waitBounded(ctx context.Context, t *testing.T, wait func() error, giveUp func()) error {
	t.Helper()
	errc := make(chan error, 1)
	go func() { errc <- wait() }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
		if giveUp != nil {
			giveUp()
		}
		t.Fatalf("wait still blocked at the deadline: %v", ctx.Err())
		return nil
	}
}

// statusFacts is everything a Status reports except its os.ProcessState
// (present only when the status comes from the reap), for cmp.Diff.
type statusFacts struct {
	Pid      int
	Exited   bool
	ExitCode int
	Success  bool
	Signaled bool
	Signal   int
	String   string
}

func factsOf(st *pexec.Status) statusFacts {
	return statusFacts{
		Pid: st.Pid(), Exited: st.Exited(), ExitCode: st.ExitCode(), Success: st.Success(),
		Signaled: st.Signaled(), Signal: int(st.Signal()), String: st.String(),
	}
}

// factsOfState is factsOf for the os/exec record of the same exit.
func factsOfState(ps *os.ProcessState) statusFacts {
	f := statusFacts{
		Pid: ps.Pid(), Exited: ps.Exited(), ExitCode: ps.ExitCode(), Success: ps.Success(),
		String: ps.String(),
	}
	if ws, ok := ps.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
		f.Signaled, f.Signal = true, int(ws.Signal())
	}
	return f
}

// TestWaitContextCanceled checks that WaitContext gives up with an error
// wrapping ctx.Err() when its context ends first, and leaves the process
// running and waitable: Done is still open, Alive is true, and the later
// Handle.Wait and Cmd.Wait report the real exit status.
func TestWaitContextCanceled(t *testing.T) {
	tests := []struct {
		name string
		want error
		// wait calls WaitContext with a context that ends before the child
		// can exit (it is blocked on its standard input).
		wait func(ctx context.Context, h *pexec.Handle) (*pexec.Status, error)
	}{
		{"canceled before the call", context.Canceled, func(ctx context.Context, h *pexec.Handle) (*pexec.Status, error) {
			ctx, cancel := context.WithCancel(ctx)
			cancel()
			return h.WaitContext(ctx)
		}},
		{"canceled while waiting", context.Canceled, func(ctx context.Context, h *pexec.Handle) (*pexec.Status, error) {
			ctx, cancel := context.WithCancel(ctx)
			type result struct {
				st  *pexec.Status
				err error
			}
			res := make(chan result, 1)
			go func() {
				st, err := h.WaitContext(ctx)
				res <- result{st, err}
			}()
			cancel()
			r := <-res // the cancellation bounds this receive
			return r.st, r.err
		}},
		{"deadline exceeded", context.DeadlineExceeded, func(ctx context.Context, h *pexec.Handle) (*pexec.Status, error) {
			ctx, cancel := context.WithTimeout(ctx, time.Millisecond)
			defer cancel()
			return h.WaitContext(ctx)
		}},
		{"deadline in the past", context.DeadlineExceeded, func(ctx context.Context, h *pexec.Handle) (*pexec.Status, error) {
			ctx, cancel := context.WithDeadline(ctx, time.Now().Add(-time.Hour))
			defer cancel()
			return h.WaitContext(ctx)
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			ctx := waitTestContext(t)
			const code = 7
			c, release, wait := gatedChild(t, code)
			h := c.Handle()

			st, err := tt.wait(ctx, h)
			if !errors.Is(err, tt.want) || st != nil {
				t.Fatalf("WaitContext = %v, %v; want nil and an error wrapping %v", st, err, tt.want)
			}
			if !h.Alive() {
				t.Error("Alive() = false after WaitContext gave up; want the process left running")
			}
			if err := h.Signal(syscall.Signal(0)); err != nil {
				t.Errorf("Signal(0) after WaitContext gave up: %v; want nil (process running)", err)
			}
			select {
			case <-h.Done():
				t.Error("Done() closed after WaitContext gave up on a running process")
			default:
			}

			release()
			st, err = h.WaitContext(ctx)
			if err != nil {
				t.Fatalf("WaitContext after the exit: %v", err)
			}
			if got := st.ExitCode(); got != code {
				t.Errorf("Handle status %v: exit code %d, want %d", st, got, code)
			}
			var ee *pexec.ExitError
			if err := waitWithin(ctx, t, c, wait); !errors.As(err, &ee) || ee.ExitCode() != code {
				t.Errorf("Cmd.Wait = %v; want an *ExitError with code %d", err, code)
			}
			if st, err := h.Wait(); err != nil || st.ExitCode() != code {
				t.Errorf("Handle.Wait after Cmd.Wait = %v, %v; want exit status %d", st, err, code)
			}
		})
	}
}

// TestDoneClosesOnExit checks that Done is closed by the exit itself (no
// Wait needed), stays closed, and agrees with Alive and Wait.
func TestDoneClosesOnExit(t *testing.T) {
	ctx := waitTestContext(t)
	c, release, wait := gatedChild(t, 3)
	h := c.Handle()
	done := h.Done()
	select {
	case <-done:
		t.Fatal("Done() closed while the child runs")
	default:
	}
	release()
	select {
	case <-done:
	case <-ctx.Done():
		t.Fatalf("Done() not closed after the child exited: %v", ctx.Err())
	}
	if h.Done() != done {
		t.Error("Done() returned a different channel on the second call")
	}
	<-h.Done() // closed for ever
	if h.Alive() {
		t.Error("Alive() = true after Done() closed")
	}
	if err := h.Signal(os.Kill); !errors.Is(err, os.ErrProcessDone) {
		t.Errorf("Signal after Done() closed = %v; want os.ErrProcessDone", err)
	}
	if st, err := h.WaitContext(ctx); err != nil || st.ExitCode() != 3 {
		t.Errorf("WaitContext after Done() closed = %v, %v; want exit status 3", st, err)
	}
	var ee *pexec.ExitError
	if err := waitWithin(ctx, t, c, wait); !errors.As(err, &ee) || ee.ExitCode() != 3 {
		t.Errorf("Cmd.Wait = %v; want exit status 3", err)
	}
}

// TestDoneSelectMany selects over the Done channels of many children and
// lets them exit one at a time, in an order of the test's choosing: each
// select must wake for exactly the child that exited. Every child exits with
// its own code, which Handle.Wait and Cmd.Wait must then report.
func TestDoneSelectMany(t *testing.T) {
	ctx := waitTestContext(t)
	const n = 16
	cmds := make([]*pexec.Cmd, n)
	releases := make([]func(), n)
	waits := make([]func() error, n)
	cases := make([]reflect.SelectCase, n+1)
	for i := range n {
		cmds[i], releases[i], waits[i] = gatedChild(t, 10+i)
		cases[i] = reflect.SelectCase{Dir: reflect.SelectRecv, Chan: reflect.ValueOf(cmds[i].Handle().Done())}
	}
	cases[n] = reflect.SelectCase{Dir: reflect.SelectRecv, Chan: reflect.ValueOf(ctx.Done())}

	// Release in an order that is neither start order nor its reverse.
	var order []int
	for i := 0; i < n; i += 2 {
		order = append(order, i)
	}
	for i := n - 1; i > 0; i -= 2 {
		order = append(order, i)
	}
	for _, i := range order {
		releases[i]()
		chosen, _, _ := reflect.Select(cases)
		if chosen == n {
			t.Fatalf("no Done() closed after child %d exited: %v", i, ctx.Err())
		}
		if chosen != i {
			t.Fatalf("select woke for child %d after releasing child %d (only it has exited)", chosen, i)
		}
		cases[i].Chan = reflect.Value{} // a zero Chan is ignored by reflect.Select
	}

	// A plain select over a few of them sees closed channels at once.
	select {
	case <-cmds[0].Handle().Done():
	case <-cmds[1].Handle().Done():
	case <-cmds[n-1].Handle().Done():
	case <-ctx.Done():
		t.Fatal("closed Done() channels not selectable")
	}

	var want, got []int
	for i, c := range cmds {
		want = append(want, 10+i)
		st, err := c.Handle().WaitContext(ctx)
		if err != nil {
			t.Fatalf("child %d: WaitContext: %v", i, err)
		}
		got = append(got, st.ExitCode())
		var ee *pexec.ExitError
		if err := waitWithin(ctx, t, c, waits[i]); !errors.As(err, &ee) || ee.ExitCode() != 10+i {
			t.Errorf("child %d: Cmd.Wait = %v; want exit status %d", i, err, 10+i)
		}
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("exit codes by child (-want +got):\n%s", diff)
	}
}

// TestWaitConcurrentSameStatus has many goroutines wait for one child at
// once, through Handle.Wait, Handle.WaitContext, Done and (once, as os/exec
// allows) Cmd.Wait, plus late waiters after the reap: all must report the
// same status, and it must be the one os/exec's ProcessState records.
func TestWaitConcurrentSameStatus(t *testing.T) {
	tests := []struct {
		name string
		end  func(c *pexec.Cmd, release func()) error // makes the child exit
	}{
		{"exit code", func(c *pexec.Cmd, release func()) error { release(); return nil }},
		{"killed", func(c *pexec.Cmd, release func()) error { return c.Handle().Kill() }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			ctx := waitTestContext(t)
			c, release, wait := gatedChild(t, 9)
			h := c.Handle()

			const waiters = 64
			var wg sync.WaitGroup
			facts := make([]statusFacts, 2*waiters)
			errs := make([]error, 2*waiters)
			for i := range waiters {
				wg.Go(func() {
					st, err := h.Wait()
					facts[i], errs[i] = factsOf(st), err
				})
				wg.Go(func() {
					st, err := h.WaitContext(ctx)
					facts[waiters+i], errs[waiters+i] = factsOf(st), err
				})
			}
			doneWaiters := make(chan struct{})
			for range waiters {
				go func() {
					select {
					case <-h.Done():
					case <-ctx.Done():
						return
					}
					doneWaiters <- struct{}{}
				}()
			}
			cmdErr := make(chan error, 1)
			go func() { cmdErr <- wait() }()

			if err := tt.end(c, release); err != nil {
				t.Fatal(err)
			}
			allDone := make(chan struct{})
			go func() { wg.Wait(); close(allDone) }()
			var err error
			for i := 0; i < waiters+2; i++ {
				select {
				case <-doneWaiters:
				case <-allDone:
					allDone = nil
				case err = <-cmdErr:
					cmdErr = nil
				case <-ctx.Done():
					c.Process.Kill()
					t.Fatalf("waiters still blocked at the deadline: %v", ctx.Err())
				}
			}
			if c.ProcessState == nil {
				t.Fatalf("Cmd.Wait = %v with no ProcessState", err)
			}
			want := factsOfState(c.ProcessState)
			if (err == nil) != want.Success {
				t.Errorf("Cmd.Wait = %v for %v", err, c.ProcessState)
			}
			for i := range 2 * waiters {
				if errs[i] != nil {
					t.Fatalf("waiter %d: %v", i, errs[i])
				}
				if diff := cmp.Diff(want, facts[i]); diff != "" {
					t.Fatalf("waiter %d saw another status than Cmd.ProcessState (-want +got):\n%s", i, diff)
				}
			}
			// Late waiters, after the reap, see the same.
			for range 4 {
				st, err := h.Wait()
				if err != nil {
					t.Fatalf("Handle.Wait after the reap: %v", err)
				}
				if diff := cmp.Diff(want, factsOf(st)); diff != "" {
					t.Errorf("Handle.Wait after the reap (-want +got):\n%s", diff)
				}
			}
		})
	}
}

// TestProcessWaitDirectBlocks covers the O_NONBLOCK trap. The runtime's
// os.Process keeps a dup of the pidfd pexec spawns with, and the child's
// Handle uses it; a dup shares the open file description and so its
// O_NONBLOCK flag, and waitid on a non-blocking pidfd fails with EAGAIN
// instead of waiting. A user who calls cmd.Process.Wait() directly, as
// os/exec allows, must still block until the exit and get the right status,
// whatever pexec has done with the Handle before. A pexec wait in progress
// meanwhile records the status the user's reap consumes, read from the
// pidfd after it (Linux 6.15+); on older kernels the user's reap, blocked in
// the kernel, comes first, and pexec reports ErrStatusUnavailable.
//
// Not parallel: it waits for the Handle's watch by its function's name.
func TestProcessWaitDirectBlocks(t *testing.T) {
	keepsExit := pidfdInfoExit(t)
	canceled, cancel := context.WithCancel(context.Background())
	cancel()
	tests := []struct {
		name string
		use  func(ctx context.Context, t *testing.T, h *pexec.Handle)
	}{
		{"handle untouched", func(context.Context, *testing.T, *pexec.Handle) {}},
		{"after Alive and Signal(0)", func(_ context.Context, t *testing.T, h *pexec.Handle) {
			if !h.Alive() {
				t.Fatal("Alive() = false for a running child")
			}
			if err := h.Signal(syscall.Signal(0)); err != nil {
				t.Fatalf("Signal(0): %v", err)
			}
		}},
		{"after Done", func(_ context.Context, t *testing.T, h *pexec.Handle) {
			select { // starts the Handle's watch (through the exit poller)
			case <-h.Done():
				t.Fatal("Done() closed while the child runs")
			default:
			}
		}},
		{"after WaitContext gave up", func(_ context.Context, t *testing.T, h *pexec.Handle) {
			if _, err := h.WaitContext(canceled); !errors.Is(err, context.Canceled) {
				t.Fatalf("WaitContext(canceled) = %v; want context.Canceled", err)
			}
		}},
	}
	// Not parallel: blockedIn identifies the goroutine by its function.
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx := waitTestContext(t)
			const code = 5
			c, release, wait := gatedChild(t, code)
			h := c.Handle()
			tt.use(ctx, t, h)
			if h.Mode() == pexec.ModePidFD {
				var flags int
				var ferr error
				if err := h.Control(func(fd int) { flags, ferr = unix.FcntlInt(uintptr(fd), unix.F_GETFL, 0) }); err != nil || ferr != nil {
					t.Fatalf("F_GETFL on the pidfd: %v, %v", err, ferr)
				}
				if flags&unix.O_NONBLOCK != 0 {
					t.Errorf("the pidfd's open file description is O_NONBLOCK (flags %#x): os.Process's dup shares it", flags)
				}
			}

			// A Handle waiter in flight at the same time must not disturb
			// the user's reap either.
			type handleResult struct {
				st  *pexec.Status
				err error
			}
			hres := make(chan handleResult, 1)
			go func() {
				st, err := h.WaitContext(ctx)
				hres <- handleResult{st, err}
			}()
			if h.Mode() == pexec.ModePidFD {
				// In progress: the watch holds the pidfd and waits.
				for len(goroutineStates(borrowedAwaitFrame, "")) == 0 {
					select {
					case <-ctx.Done():
						t.Fatal("the Handle's watch never started waiting")
					case <-time.After(time.Millisecond):
					}
				}
			}

			res := make(chan processWaitResult, 1)
			go processWaitBlocked(c.Process, res)
			// Release the child only once Process.Wait is blocked in the
			// kernel: a non-blocking pidfd would have made it return.
			if err := untilBlocked(ctx, "processWaitBlocked", 1, func(states map[string]int) bool {
				return states["syscall"] == 1
			}, res); err != nil {
				t.Fatal(err)
			}
			release()
			var r processWaitResult
			select {
			case r = <-res:
			case <-ctx.Done():
				c.Process.Kill()
				t.Fatalf("Process.Wait still blocked at the deadline: %v", ctx.Err())
			}
			if r.err != nil {
				t.Fatalf("cmd.Process.Wait() = %v; want the exit status", r.err)
			}
			if got := r.ps.ExitCode(); got != code {
				t.Errorf("cmd.Process.Wait() = %v; want exit status %d", r.ps, code)
			}

			// pexec after the user's reap: Done closes, the Handle reports
			// the status from the pidfd, Cmd.Wait a ReapedError.
			hr := <-hres // bounded by ctx
			okStatus := func(what string, st *pexec.Status, err error) {
				t.Helper()
				switch {
				case errors.Is(err, pexec.ErrStatusUnavailable) && !keepsExit:
					t.Logf("%s: %v (kernel without PIDFD_INFO_EXIT)", what, err)
				case err != nil:
					t.Errorf("%s: %v", what, err)
				case st.ExitCode() != code:
					t.Errorf("%s = %v; want exit status %d", what, st, code)
				}
			}
			okStatus("Handle.WaitContext in flight", hr.st, hr.err)
			st, err := h.WaitContext(ctx)
			okStatus("Handle.WaitContext afterwards", st, err)
			select {
			case <-h.Done():
			default:
				t.Error("Done() not closed after the exit")
			}
			var re *pexec.ReapedError
			err = waitWithin(ctx, t, c, wait)
			switch {
			case !errors.As(err, &re) || !errors.Is(err, syscall.ECHILD):
				t.Errorf("Cmd.Wait after the user's reap = %v; want a *ReapedError wrapping ECHILD", err)
			case re.Status == nil && !keepsExit:
				t.Logf("Cmd.Wait: %v (kernel without PIDFD_INFO_EXIT)", err)
			case re.Status == nil:
				t.Errorf("Cmd.Wait = %v; want the status recorded by the Handle's wait", err)
			case re.ExitCode() != code:
				t.Errorf("Cmd.Wait = %v; want exit status %d in the ReapedError", err, code)
			}
		})
	}
}

type processWaitResult struct {
	ps  *os.ProcessState
	err error
}

// processWaitBlocked calls p.Wait; its name marks the goroutine for
// untilBlocked.
//
//go:noinline
func processWaitBlocked(p *os.Process, res chan<- processWaitResult) {
	ps, err := p.Wait()
	res <- processWaitResult{ps, err}
}

// goroutineStates counts, by scheduler state ("IO wait", "select",
// "syscall", "running", ...), the goroutines whose stack mentions marker and,
// if exclude is not empty, does not mention exclude. It reads the stacks of
// all goroutines, as a panic would print them.
func goroutineStates(marker, exclude string) map[string]int {
	buf := make([]byte, 1<<20)
	for {
		n := runtime.Stack(buf, true)
		if n < len(buf) {
			buf = buf[:n]
			break
		}
		buf = make([]byte, 2*len(buf))
	}
	states := map[string]int{}
	for _, g := range strings.Split(string(buf), "\n\n") {
		if !strings.Contains(g, marker) || exclude != "" && strings.Contains(g, exclude) {
			continue
		}
		// "goroutine 18 [select, 2 minutes]:"
		header, _, _ := strings.Cut(g, "\n")
		_, state, _ := strings.Cut(header, " [")
		state, _, _ = strings.Cut(state, "]")
		state, _, _ = strings.Cut(state, ",")
		states[state]++
	}
	return states
}

// untilBlocked polls goroutineStates(marker, "") until n goroutines show it
// and ok accepts their states. It fails if ctx ends first, or if a result
// arrives on early: the call that should have blocked returned.
func untilBlocked(ctx context.Context, marker string, n int, ok func(map[string]int) bool, early <-chan processWaitResult) error {
	for {
		states := goroutineStates(marker, "")
		total := 0
		for _, k := range states {
			total += k
		}
		if total == n && ok(states) {
			return nil
		}
		select {
		case r := <-early:
			return fmt.Errorf("%s returned before the child exited, without blocking: %v, %v", marker, r.ps, r.err)
		case <-ctx.Done():
			return fmt.Errorf("goroutines running %s not blocked at the deadline (states %v): %w", marker, states, ctx.Err())
		case <-time.After(time.Millisecond):
		}
	}
}

func init() {
	testhelper.Register("wait-threads", waitThreadsHelper)
}

// threadsReport is what the wait-threads helper observed.
type threadsReport struct {
	Mode       string
	N          int
	GOMAXPROCS int
	Before     int            // OS threads before the children were started
	Threads    int            // OS threads while N waiters were blocked
	Waiters    map[string]int // states of the waiting goroutines
	PexecGs    map[string]int // states of pexec's own goroutines (the watches)
	Killed     int            // waiters that then saw the child die of SIGKILL
	Err        string
}

// waitModes are the ways of waiting the no-thread test checks; "os/exec" is
// the baseline.
var waitModes = []string{"Cmd.Wait", "Handle.Wait", "Handle.WaitContext", "Handle.Done", "os/exec"}

// TestWaitHoldsNoThread has 200 sleeping children waited for at once, in
// each way of waiting, in a helper process of its own (the Go runtime never
// gives back a thread it has created, so the count must start fresh). Once
// every waiter is blocked it counts the process's OS threads: waiting on the
// netpoller must hold none per child, where os/exec holds one per child
// blocked in waitid. The bound is generous; the goroutine states are the
// precise check.
func TestWaitHoldsNoThread(t *testing.T) {
	if !pexec.Supported() {
		t.Skip("no pidfds here: in PID mode each waiter blocks a thread in waitid, as os/exec does")
	}
	t.Parallel()
	const n = 200
	for _, mode := range waitModes {
		t.Run(mode, func(t *testing.T) {
			var rep threadsReport
			testhelper.RunReport(waitTestContext(t), t, nil, &rep, "wait-threads", mode, strconv.Itoa(n))
			if rep.Err != "" {
				t.Fatalf("helper: %s", rep.Err)
			}
			t.Logf("%s: %d OS threads with %d waiters blocked (%d before the children; GOMAXPROCS %d); waiters %v, pexec goroutines %v",
				mode, rep.Threads, n, rep.Before, rep.GOMAXPROCS, rep.Waiters, rep.PexecGs)
			if rep.Killed != n {
				t.Errorf("%d of %d waiters saw their child die of SIGKILL", rep.Killed, n)
			}
			if mode == "os/exec" {
				return // the baseline: logged, not judged
			}
			if limit := rep.GOMAXPROCS + 40; rep.Threads >= limit {
				t.Errorf("%d OS threads while %d children were waited for with %s; want fewer than GOMAXPROCS+40 = %d", rep.Threads, n, mode, limit)
			}
			if k := rep.Waiters["syscall"] + rep.PexecGs["syscall"]; k > 0 {
				t.Errorf("%d goroutines blocked in a system call (each holds an OS thread); want them parked", k)
			}
			// Every waiter parked: on a channel, or (one of them, or one
			// Handle watch) on the netpoller, reading pexec's exit poller
			// for all the children.
			parked := 0
			for _, state := range []string{"select", "chan receive", "IO wait"} {
				parked += rep.Waiters[state]
			}
			if parked != n {
				t.Errorf("%d of %d waiters parked; states %v", parked, n, rep.Waiters)
			}
			if got := rep.Waiters["IO wait"] + rep.PexecGs["IO wait"]; got != 1 {
				t.Errorf("%d goroutines on the netpoller (IO wait); want 1, the exit poller's reader for all %d children", got, n)
			}
		})
	}
}

// waitThreadsHelper (mode n) starts n sleeping children, blocks one
// goroutine per child waiting the given way, counts OS threads once all are
// blocked, then kills the children and checks every waiter saw it.
func waitThreadsHelper(args []string) int {
	rep := threadsReport{GOMAXPROCS: runtime.GOMAXPROCS(0)}
	if len(args) == 2 {
		rep.Mode = args[0]
		rep.N, _ = strconv.Atoi(args[1])
	}
	rep.Before = osThreads()
	if err := measureWaitThreads(&rep); err != nil {
		rep.Err = err.Error()
	}
	return testhelper.Report(rep)
}

func measureWaitThreads(rep *threadsReport) (err error) {
	if !slices.Contains(waitModes, rep.Mode) && rep.Mode != "FromProcess" && rep.Mode != sharedMode || rep.N <= 0 {
		return fmt.Errorf("usage: wait-threads {%s} n", strings.Join(waitModes, "|"))
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	// /bin/sleep is far lighter than a helper re-execution of this binary.
	path, argv, env := "", []string{"3600"}, []string(nil)
	if p, err := exec.LookPath("sleep"); err == nil {
		path = p
	} else {
		sleep := pexectest.Command("sleep")
		path, argv, env = sleep.Path, sleep.Args[1:], sleep.Env
	}

	var (
		wg     sync.WaitGroup
		killed atomic.Int32
		kills  []func() error
		reaps  []func() error
	)
	defer func() {
		for _, kill := range kills {
			kill()
		}
		done := make(chan struct{})
		go func() { wg.Wait(); close(done) }()
		select {
		case <-done:
		case <-ctx.Done():
			err = errors.Join(err, fmt.Errorf("waiters still blocked after the kill: %w", ctx.Err()))
			return
		}
		for _, reap := range reaps {
			reap()
		}
		rep.Killed = int(killed.Load())
	}()
	var shared *exec.Cmd // sharedMode's one child
	for range rep.N {
		if rep.Mode == sharedMode {
			if shared == nil {
				shared = exec.Command(path, argv...)
				shared.Env = env
				if err := shared.Start(); err != nil {
					return err
				}
				kills = append(kills, shared.Process.Kill)
				reaps = append(reaps, shared.Wait)
			}
			h, err := pexec.FromProcess(shared.Process)
			if err != nil {
				return err
			}
			wg.Go(func() {
				blockedInWait(&killed, func() bool {
					st, err := h.Wait()
					return err == nil && st.Signal() == syscall.SIGKILL
				})
			})
			continue
		}
		if rep.Mode == "os/exec" {
			c := exec.Command(path, argv...)
			c.Env = env
			if err := c.Start(); err != nil {
				return err
			}
			kills = append(kills, c.Process.Kill)
			wg.Go(func() { blockedInWait(&killed, func() bool { return killedBySIGKILL(c.Wait()) }) })
			continue
		}
		if rep.Mode == "FromProcess" {
			// A child started by "a library", adopted.
			c := exec.Command(path, argv...)
			c.Env = env
			if err := c.Start(); err != nil {
				return err
			}
			h, err := pexec.FromProcess(c.Process)
			if err != nil {
				c.Process.Kill()
				c.Wait()
				return err
			}
			kills = append(kills, h.Kill)
			reaps = append(reaps, c.Wait)
			wg.Go(func() {
				blockedInWait(&killed, func() bool {
					st, err := h.Wait()
					return err == nil && st.Signal() == syscall.SIGKILL
				})
			})
			continue
		}
		c := pexec.Command(path, argv...)
		c.Env = env
		if err := c.Start(); err != nil {
			return err
		}
		h := c.Handle()
		kills = append(kills, h.Kill)
		if rep.Mode == "Cmd.Wait" {
			wg.Go(func() { blockedInWait(&killed, func() bool { return killedBySIGKILL(c.Wait()) }) })
			continue
		}
		reaps = append(reaps, c.Wait)
		wait := map[string]func() (*pexec.Status, error){
			"Handle.Wait":        h.Wait,
			"Handle.WaitContext": func() (*pexec.Status, error) { return h.WaitContext(ctx) },
			"Handle.Done": func() (*pexec.Status, error) {
				select {
				case <-h.Done():
					return h.Wait() // returns at once
				case <-ctx.Done():
					return nil, ctx.Err()
				}
			},
		}[rep.Mode]
		wg.Go(func() {
			blockedInWait(&killed, func() bool {
				st, err := wait()
				return err == nil && st.Signal() == syscall.SIGKILL
			})
		})
	}

	// Settle: every waiter blocked, none of pexec's goroutines about to
	// run, and none in a system call: the exit poller's reader blocks in
	// epoll_wait for at most a few milliseconds before it parks (a waiter
	// still in a system call at the deadline fails the test).
	const pexecFrames = "github.com/pexec-dev/pexec/pexec."
	for {
		rep.Waiters = goroutineStates("blockedInWait", "")
		rep.PexecGs = goroutineStates(pexecFrames, "blockedInWait")
		blocked := 0
		for state, k := range rep.Waiters {
			if state != "running" && state != "runnable" {
				blocked += k
			}
		}
		// In sharedMode the exit poller may not park (see
		// TestSharedDescriptionBoundedThreads): its one reader blocks in
		// epoll_wait.
		inSyscall := map[string]int{"os/exec": rep.N, sharedMode: 1}[rep.Mode]
		if blocked == rep.N && rep.PexecGs["running"]+rep.PexecGs["runnable"] == 0 &&
			rep.Waiters["syscall"]+rep.PexecGs["syscall"] <= inSyscall {
			break
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("waiters not all blocked (waiters %v, pexec goroutines %v): %w", rep.Waiters, rep.PexecGs, ctx.Err())
		case <-time.After(5 * time.Millisecond):
		}
	}
	rep.Threads = osThreads()
	return nil
}

// sharedMode is the wait-threads helper's mode in which all N Handles
// are FromProcess duplicates of one child's pidfd: one file description.
const sharedMode = "FromProcess-shared"

// TestSharedDescriptionBoundedThreads (issue #17 item 3): 1,000 Handles
// whose pidfds share one file description, all waiting. While pexec's epoll
// instance sits in the netpoller's, the kernel allows 500 wake-up paths per
// file, and EPOLL_CTL_ADD fails with EINVAL beyond: each further waiter used
// to block a thread in poll(2) (1,000 waiters: 505 threads). Whatever the
// sharing, the waiters must hold a bounded number of threads.
func TestSharedDescriptionBoundedThreads(t *testing.T) {
	if !pexec.Supported() {
		t.Skip("no pidfds here: no exit poller")
	}
	t.Parallel()
	const n = 1000
	var rep threadsReport
	testhelper.RunReport(waitTestContext(t), t, nil, &rep, "wait-threads", sharedMode, strconv.Itoa(n))
	if rep.Err != "" {
		t.Fatalf("helper: %s", rep.Err)
	}
	t.Logf("%d OS threads with %d waiters on one file description (%d before; GOMAXPROCS %d); waiters %v, pexec goroutines %v",
		rep.Threads, n, rep.Before, rep.GOMAXPROCS, rep.Waiters, rep.PexecGs)
	if rep.Killed != n {
		t.Errorf("%d of %d waiters saw the child die of SIGKILL", rep.Killed, n)
	}
	if limit := rep.GOMAXPROCS + 16; rep.Threads > limit {
		t.Errorf("%d OS threads while %d Handles on one description waited; want at most GOMAXPROCS+16 = %d", rep.Threads, n, limit)
	}
}

// blockedInWait runs wait, counting in killed whether it reported a death by
// SIGKILL; its name marks the waiting goroutines.
//
//go:noinline
func blockedInWait(killed *atomic.Int32, wait func() bool) {
	if wait() {
		killed.Add(1)
	}
}

// killedBySIGKILL reports whether err is the Cmd.Wait error of a child that
// SIGKILL ended.
func killedBySIGKILL(err error) bool {
	var ee *exec.ExitError
	if !errors.As(err, &ee) {
		return false
	}
	ws, ok := ee.Sys().(syscall.WaitStatus)
	return ok && ws.Signaled() && ws.Signal() == syscall.SIGKILL
}

// osThreads returns the number of OS threads of the calling process
// (Threads: in /proc/self/status), or -1 if it cannot be read.
func osThreads() int {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return -1
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "Threads:"); ok {
			if n, err := strconv.Atoi(strings.TrimSpace(v)); err == nil {
				return n
			}
		}
	}
	return -1
}
