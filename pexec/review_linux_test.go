package pexec_test

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/pexec-dev/pexec/internal/testhelper"
	"github.com/pexec-dev/pexec/pexec"
	"github.com/pexec-dev/pexec/pexectest"
	"golang.org/x/sys/unix"
)

// Regression tests for the defects an adversarial review found (issue
// #10). Each one failed before its fix.

func init() {
	testhelper.Register("review-shortage", reviewShortageHelper)
	testhelper.Register("review-tracer", reviewTracerHelper)
}

// shortageReport is what the review-shortage helper observed.
type shortageReport struct {
	Free         int    // descriptors left free for the first Run
	FirstRun     string // its error, if any
	PollerAfter  bool   // whether the exit poller existed after it
	PollerLater  bool   // whether it existed once descriptors were free again
	Threads      threadsReport
	SetupFailure string
}

// TestExitPollerRetried: a descriptor shortage while the exit poller is
// first set up must not turn thread-free waiting off for the rest of the
// program (review item 1). In a fresh helper process, the first Cmd.Wait
// runs with no descriptor to spare for epoll; once descriptors are free
// again, 100 children waited for by Cmd.Wait must hold no thread each.
func TestExitPollerRetried(t *testing.T) {
	if !pexec.Supported() {
		t.Skip("no pidfds here: PID mode has no exit poller")
	}
	t.Parallel()
	var rep shortageReport
	testhelper.RunReport(waitTestContext(t), t, nil, &rep, "review-shortage", "100")
	if rep.SetupFailure != "" {
		t.Fatalf("helper: %s", rep.SetupFailure)
	}
	t.Logf("first Run with %d free descriptors: err %q, poller up after it: %v; later: %v; %d threads for %d waiters (GOMAXPROCS %d)",
		rep.Free, rep.FirstRun, rep.PollerAfter, rep.PollerLater, rep.Threads.Threads, rep.Threads.N, rep.Threads.GOMAXPROCS)
	if rep.FirstRun != "" {
		t.Errorf("the first Run, short of descriptors for the poller only, failed: %s", rep.FirstRun)
	}
	if rep.PollerAfter {
		t.Errorf("the exit poller was set up during the shortage: the test did not exercise the retry")
	}
	if !rep.PollerLater {
		t.Errorf("the exit poller was never set up once descriptors were free again")
	}
	if rep.Threads.Err != "" {
		t.Fatalf("waiting: %s", rep.Threads.Err)
	}
	if limit := rep.Threads.GOMAXPROCS + 16; rep.Threads.Threads > limit {
		t.Errorf("%d OS threads while %d children were waited for after the shortage; want at most GOMAXPROCS+16 = %d", rep.Threads.Threads, rep.Threads.N, limit)
	}
	if rep.Threads.Killed != rep.Threads.N {
		t.Errorf("%d of %d waiters saw their child die of SIGKILL", rep.Threads.Killed, rep.Threads.N)
	}
}

// reviewShortageHelper (n): fills the descriptor table, frees exactly what
// a Start needs, runs /bin/true while no descriptor is left for the exit
// poller, frees the table, then measures n children waited for by Cmd.Wait.
func reviewShortageHelper(args []string) int {
	var rep shortageReport
	n, _ := strconv.Atoi(argAt(args, 0))
	r, w, err := os.Pipe() // warm the netpoller
	if err != nil {
		rep.SetupFailure = err.Error()
		return testhelper.Report(rep)
	}
	r.Close()
	w.Close()
	pexec.Supported()
	var fillers []*os.File
	fill := func() {
		for {
			f, err := os.Open(os.DevNull)
			if err != nil {
				break
			}
			fillers = append(fillers, f)
		}
	}
	fill()
	if len(fillers) < 4 {
		rep.SetupFailure = fmt.Sprintf("only %d descriptors could be opened", len(fillers))
		return testhelper.Report(rep)
	}
	// Start needs three (the exec status pipe and the pidfd) and then gives
	// two back; take those again before Wait, so that epoll_create1 or
	// eventfd fails.
	rep.Free = 3
	for _, f := range fillers[len(fillers)-rep.Free:] {
		f.Close()
	}
	fillers = fillers[:len(fillers)-rep.Free]
	c := pexec.Command("/bin/true")
	c.Stdin, c.Stdout, c.Stderr = os.Stdin, os.Stdout, os.Stderr
	err = c.Start()
	if err == nil {
		fill()
		err = c.Wait()
	}
	if err != nil {
		rep.FirstRun = err.Error()
	}
	rep.PollerAfter = pexec.ExitPollerUp()
	for _, f := range fillers {
		f.Close()
	}
	rep.Threads = threadsReport{Mode: "Cmd.Wait", N: n, GOMAXPROCS: runtime.GOMAXPROCS(0), Before: osThreads()}
	if err := measureWaitThreads(&rep.Threads); err != nil {
		rep.Threads.Err = err.Error()
	}
	rep.PollerLater = pexec.ExitPollerUp()
	return testhelper.Report(rep)
}

func argAt(args []string, i int) string {
	if i < len(args) {
		return args[i]
	}
	return ""
}

// TestHandleWaitIsTheProcesss: the Handle's status is the process's, not
// the I/O's (review item 2). A shell exits with 3 while its background
// grandchild keeps the stdout pipe open, so Cmd.Wait, copying output, does
// not return; Handle.Wait and WaitContext must return exit status 3, in
// whatever order they are called, and a WaitContext whose context ends
// must return at once with the context's error.
func TestHandleWaitIsTheProcesss(t *testing.T) {
	tests := []struct {
		name string
		wait func(ctx context.Context, h *pexec.Handle) (*pexec.Status, error)
	}{
		{"Wait", func(_ context.Context, h *pexec.Handle) (*pexec.Status, error) { return h.Wait() }},
		{"WaitContext", func(ctx context.Context, h *pexec.Handle) (*pexec.Status, error) { return h.WaitContext(ctx) }},
		{"Done then WaitContext", func(ctx context.Context, h *pexec.Handle) (*pexec.Status, error) {
			select {
			case <-h.Done():
			case <-ctx.Done():
				return nil, ctx.Err()
			}
			return h.WaitContext(ctx)
		}},
	}
	for _, mode := range []string{"pidfd", "pid"} {
		for _, tt := range tests {
			t.Run(mode+"/"+tt.name, func(t *testing.T) {
				if mode == "pidfd" {
					skipNoPidfd(t)
				} else {
					t.Cleanup(pexec.SetForcePIDMode(true))
				}
				ctx := waitTestContext(t)
				out := &lockedBuffer{line: make(chan struct{})}
				c := pexec.Command("sh", "-c", "sleep 3600 & echo $!; exit 3")
				c.Stdout = out
				if err := c.Start(); err != nil {
					t.Fatal(err)
				}
				h := c.Handle()
				cmdDone := make(chan error, 1)
				go func() { cmdDone <- c.Wait() }()
				var grandchild *pexec.Handle
				t.Cleanup(func() {
					if grandchild != nil {
						grandchild.Kill()
						grandchild.Close()
					}
					<-cmdDone
				})
				st, err := tt.wait(ctx, h)
				// The grandchild's PID, printed before the exit: open it to
				// end it (it is alive, so the PID is still its own).
				select {
				case <-out.line:
				case <-ctx.Done():
					t.Fatal("the shell never printed its grandchild's PID")
				}
				line, _, _ := strings.Cut(out.String(), "\n")
				if pid, perr := strconv.Atoi(line); perr == nil && pexec.Supported() {
					grandchild, _ = pexec.Open(pid)
				} else if perr == nil {
					t.Cleanup(func() { syscall.Kill(pid, syscall.SIGKILL) })
				}
				if err != nil {
					t.Fatalf("%s with the grandchild holding stdout: %v", tt.name, err)
				}
				if st.ExitCode() != 3 {
					t.Fatalf("%s = %v; want exit status 3", tt.name, st)
				}
				select {
				case err := <-cmdDone:
					cmdDone <- err
					t.Fatalf("Cmd.Wait returned (%v) while the grandchild holds stdout: the test proves nothing", err)
				default:
				}
				// A context that ends while Cmd.Wait still copies output.
				canceled, cancel := context.WithCancel(ctx)
				cancel()
				if st2, err := h.WaitContext(canceled); err != nil && !errors.Is(err, context.Canceled) || err == nil && st2 != st {
					t.Errorf("WaitContext(canceled) after the exit = %v, %v; want the same status or context.Canceled", st2, err)
				}
			})
		}
	}
}

// lockedBuffer is a bytes.Buffer safe for the copying goroutine of os/exec
// and the test to use at once; line is closed once a whole line is in.
type lockedBuffer struct {
	mu   sync.Mutex
	b    bytes.Buffer
	line chan struct{}
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	had := bytes.IndexByte(l.b.Bytes(), '\n') >= 0
	n, err := l.b.Write(p)
	if !had && bytes.IndexByte(l.b.Bytes(), '\n') >= 0 {
		close(l.line)
	}
	return n, err
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// TestFromFileLeavesFlags: FromFile must not touch the file status flags of
// a description it shares (review item 4): an os/exec Process.Wait blocked
// on a duplicate of the same pidfd must get the real status, never EAGAIN,
// while FromFile and Close run in a loop beside it.
func TestFromFileLeavesFlags(t *testing.T) {
	skipNoPidfd(t)
	t.Parallel()
	for round := range 20 {
		var pidfd int = -1
		c := exec.Command("sh", "-c", "read x; exit 4")
		c.SysProcAttr = &syscall.SysProcAttr{PidFD: &pidfd}
		stdin, err := c.StdinPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := c.Start(); err != nil {
			t.Fatal(err)
		}
		f := os.NewFile(uintptr(pidfd), "pidfd")
		stop := make(chan struct{})
		loops := make(chan int)
		warm := make(chan struct{})
		go func() {
			n := 0
			for {
				select {
				case <-stop:
					loops <- n
					return
				default:
				}
				if h, err := pexec.FromFile(f); err == nil {
					h.Close()
				}
				if n++; n == 100 {
					close(warm)
				}
			}
		}()
		// Process.Wait enters its blocking waitid while the loop runs:
		// had the description been O_NONBLOCK at that moment, it would
		// fail with EAGAIN.
		<-warm
		waited := make(chan error, 1)
		go func() { _, err := c.Process.Wait(); waited <- err }()
		// Meanwhile, watch the flags of the shared description.
		sawNonblock := make(chan bool, 1)
		go func() {
			saw := false
			for i := 0; i < 20000 && !saw; i++ {
				flags, err := unix.FcntlInt(f.Fd(), unix.F_GETFL, 0)
				saw = err == nil && flags&unix.O_NONBLOCK != 0
			}
			sawNonblock <- saw
		}()
		if <-sawNonblock {
			close(stop)
			<-loops
			stdin.Close()
			<-waited
			f.Close()
			t.Fatalf("round %d: the pidfd's shared description was O_NONBLOCK while FromFile ran", round)
		}
		stdin.Close()
		err = <-waited
		close(stop)
		n := <-loops
		flags, ferr := unix.FcntlInt(f.Fd(), unix.F_GETFL, 0)
		f.Close()
		if err != nil {
			t.Fatalf("round %d: os/exec Process.Wait beside %d FromFile/Close: %v", round, n, err)
		}
		if ferr == nil && flags&unix.O_NONBLOCK != 0 {
			t.Fatalf("round %d: the shared pidfd description is O_NONBLOCK after FromFile", round)
		}
	}
}

// TestWaitTracedChild: a child held by a tracer that never waits for it is
// readable (exited) but not yet waitable; Handle.Wait must wait, never
// return EAGAIN (review item 5), and return the status once the tracer lets
// go. Cmd.Wait blocks meanwhile, as in os/exec.
func TestWaitTracedChild(t *testing.T) {
	for _, mode := range []string{"pidfd", "pid"} {
		t.Run(mode, func(t *testing.T) {
			if mode == "pidfd" {
				skipNoPidfd(t)
			} else {
				t.Cleanup(pexec.SetForcePIDMode(true))
			}
			ctx := waitTestContext(t)
			c := pexec.Command("sh", "-c", "read x; exit 6")
			stdin, err := c.StdinPipe()
			if err != nil {
				t.Fatal(err)
			}
			if err := c.Start(); err != nil {
				t.Fatal(err)
			}
			h := c.Handle()
			cmdDone := make(chan error, 1)
			go func() { cmdDone <- c.Wait() }()
			defer func() { h.Kill(); stdin.Close(); <-cmdDone }()

			tracer := pexectest.Command("review-tracer", strconv.Itoa(c.Process.Pid))
			tracerIn, err := tracer.StdinPipe()
			if err != nil {
				t.Fatal(err)
			}
			tracerOut, err := tracer.StdoutPipe()
			if err != nil {
				t.Fatal(err)
			}
			var tracerErr bytes.Buffer
			tracer.Stderr = &tracerErr
			if err := tracer.Start(); err != nil {
				t.Fatal(err)
			}
			defer func() { tracerIn.Close(); tracer.Wait() }()
			if line, _ := bufio.NewReader(tracerOut).ReadString('\n'); line != "attached\n" {
				tracer.Wait()
				t.Skipf("cannot trace the child here: %q %s", line, tracerErr.Bytes())
			}
			stdin.Close() // the child exits; the tracer is told, and keeps it
			if mode == "pidfd" {
				// The pidfd reports the exit at once (in PID mode only
				// waitid can tell, once the child is waitable).
				select {
				case <-h.Done():
				case <-ctx.Done():
					t.Fatal("Done never reported the traced child's exit")
				}
			}
			short, cancel := context.WithTimeout(ctx, 100*time.Millisecond)
			st, err := h.WaitContext(short)
			cancel()
			switch {
			case err == nil:
				// The tracer let go early: the status must be right.
				if st.ExitCode() != 6 {
					t.Fatalf("WaitContext = %v; want exit status 6", st)
				}
			case !errors.Is(err, context.DeadlineExceeded):
				t.Fatalf("WaitContext on a traced, exited child = %v; want a wait (context.DeadlineExceeded), never EAGAIN", err)
			}
			tracerIn.Close() // the tracer exits, detaching: the child is ours
			st, err = h.WaitContext(ctx)
			if err != nil || st.ExitCode() != 6 {
				t.Fatalf("Handle.WaitContext after the tracer left = %v, %v; want exit status 6", st, err)
			}
			var ee *exec.ExitError
			if err := <-cmdDone; !errors.As(err, &ee) || ee.ExitCode() != 6 {
				t.Errorf("Cmd.Wait = %v; want exit status 6", err)
			}
			cmdDone <- nil
		})
	}
}

// reviewTracerHelper (pid): attaches to pid with PTRACE_SEIZE, says
// "attached", and holds the tracee, never waiting for it, until its stdin
// closes.
func reviewTracerHelper(args []string) int {
	pid, err := strconv.Atoi(argAt(args, 0))
	if err != nil {
		fmt.Fprintln(os.Stderr, "usage: review-tracer pid")
		return 2
	}
	runtime.LockOSThread()
	if err := unix.PtraceSeize(pid); err != nil {
		fmt.Println("seize:", err)
		return 1
	}
	fmt.Println("attached")
	io.Copy(io.Discard, os.Stdin)
	return 0
}

// TestAliveAfterRelease: Alive is false for a zombie and for a closed
// Handle, also on the first call after cmd.Process.Release closed the pidfd
// the Handle used (review item 6), and in a Close race for an Open Handle.
func TestAliveAfterRelease(t *testing.T) {
	skipNoPidfd(t)
	t.Run("Release", func(t *testing.T) {
		c := pexec.Command("sh", "-c", "exit 0")
		if err := c.Start(); err != nil {
			t.Fatal(err)
		}
		pid := c.Process.Pid
		waitZombie(t, pid)
		h := c.Handle()
		if err := c.Process.Release(); err != nil {
			t.Fatal(err)
		}
		if h.Alive() {
			t.Error("Alive() = true for an exited child whose os.Process was released")
		}
		var st unix.Siginfo
		unix.Waitid(unix.P_PID, pid, &st, unix.WEXITED, nil) // reap it
	})
	t.Run("Close race", func(t *testing.T) {
		c := exitedChild(t)
		for range 200 {
			h := mustOpen(t, c.Process.Pid)
			go h.Close()
			if h.Alive() {
				t.Fatal("Alive() = true for a zombie, racing Close")
			}
		}
		waitCmd(t, c)
	})
}

// waitZombie waits until the child pid has exited, without reaping it.
func waitZombie(t *testing.T, pid int) {
	t.Helper()
	var info unix.Siginfo
	if err := unix.Waitid(unix.P_PID, pid, &info, unix.WEXITED|unix.WNOWAIT, nil); err != nil {
		t.Fatal(err)
	}
}

// TestPIDModeKillNotBehindReap: in PID mode, a Kill that passed the
// Handle's checks just before a Close must still be delivered while
// Cmd.Wait waits for the child and a Done watcher blocks in waitid (review
// item 8). The watcher holds no lock across its blocking waitid and
// Cmd.Wait takes the reap lock only after the exit, so the Kill cannot
// queue behind them; before, it could wait for ever for the exit it would
// cause.
func TestPIDModeKillNotBehindReap(t *testing.T) {
	t.Cleanup(pexec.SetForcePIDMode(true))
	ctx := waitTestContext(t)
	c, _, wait := gatedChild(t, 0)
	h := c.Handle()
	select {
	case <-h.Done(): // starts the watcher, blocked in waitid
		t.Fatal("Done closed while the child runs")
	default:
	}
	if err := h.Close(); err != nil {
		t.Fatal(err)
	}
	cmdDone := make(chan error, 1)
	go func() { cmdDone <- wait() }()
	blocked := func(states map[string]int) bool { return states["chan receive"] == 1 }
	if err := untilBlocked(ctx, "pexec.(*Cmd).Wait", 1, blocked, nil); err != nil {
		t.Fatal(err)
	}
	killed := make(chan error, 1)
	go func() { killed <- pexec.SignalPastCheck(h, syscall.SIGKILL) }()
	select {
	case err := <-killed:
		if err != nil {
			t.Fatalf("the Kill in flight = %v", err)
		}
	case <-ctx.Done():
		t.Fatal("the Kill in flight is blocked behind Cmd.Wait's reap")
	}
	var ee *exec.ExitError
	if err := <-cmdDone; !errors.As(err, &ee) || ee.ProcessState.Sys().(syscall.WaitStatus).Signal() != syscall.SIGKILL {
		t.Errorf("Cmd.Wait = %v; want killed by SIGKILL", err)
	}
}
