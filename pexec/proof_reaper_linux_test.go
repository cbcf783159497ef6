package pexec_test

import (
	"context"
	"errors"
	"fmt"
	"os/exec"
	"os/signal"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/pexec-dev/pexec/internal/testhelper"
	"github.com/pexec-dev/pexec/pexec"
	"golang.org/x/sys/unix"
)

// Foreign reapers. Library code runs in hosts that reap children behind
// its back. In a helper process (so the rest of the suite is undisturbed),
// either goroutines call wait4(-1) in a tight loop, or SIGCHLD is ignored
// (the kernel then reaps every child itself). 1,000 children exit with
// varied codes or die by varied signals; every pexec Handle.Wait and
// Cmd.Wait must report each one's true status exactly (PIDFD_INFO_EXIT,
// Linux 6.15+), and os/exec's losses are counted beside it.

func init() {
	testhelper.Register("proof-reaper", proofReaperHelper)
}

// reaperReport is what the foreign-reaper helper observed.
type reaperReport struct {
	Setup       string
	Unsupported string // why the kernel cannot keep exit statuses, if it cannot
	Children    int
	// pexec: children whose Handle.Wait and Cmd.Wait were both right, and
	// how Cmd.Wait found each: reaped by pexec or by the foreigner.
	PexecRight, PexecWrong int
	ByPexec, ByForeigner   int
	Failures               []string
	// os/exec, the same children: right status, ECHILD (lost), other.
	OSRight, OSLost, OSWrong int
	ForeignReaps             int64 // children the wait4 loop reaped
	Elapsed                  time.Duration
}

// reaperChild returns the shell script for child i and the status it must
// end with: exit codes 0..255, and every eighth child killed by a signal.
func reaperChild(i int) (script, want string, code int) {
	if i%8 == 7 {
		// Signals whose default action ends the process without a core
		// dump, and which a shell or nohup never leaves ignored (as a
		// non-interactive shell does SIGINT for background jobs).
		sigs := []syscall.Signal{syscall.SIGTERM, syscall.SIGKILL, syscall.SIGUSR1, syscall.SIGUSR2,
			syscall.SIGALRM, syscall.SIGPIPE, syscall.SIGVTALRM, syscall.SIGPROF}
		s := sigs[(i/8)%len(sigs)]
		return fmt.Sprintf("kill -%d $$", int(s)), "signal: " + s.String(), -1
	}
	c := i % 256
	return fmt.Sprintf("exit %d", c), "exit status " + strconv.Itoa(c), c
}

// proofReaperHelper runs args[1] children under the foreign reaper named by
// args[0]: "wait4" or "sigchld-ignored".
func proofReaperHelper(args []string) int {
	var rep reaperReport
	if len(args) != 2 {
		rep.Setup = fmt.Sprintf("usage: proof-reaper wait4|sigchld-ignored children, got %q", args)
		return testhelper.Report(rep)
	}
	n, _ := strconv.Atoi(args[1])
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()

	// Can the kernel keep an exit status past a foreign reap?
	probe := pexec.Command("/bin/true")
	if err := probe.Start(); err != nil {
		rep.Setup = err.Error()
		return testhelper.Report(rep)
	}
	// Through a Handle of its own (Open), which records nothing before the
	// reap, unlike a wait on the Cmd's Handle: only the kernel can answer.
	// (The child is unreaped, so its PID is still its own.)
	oh, err := pexec.Open(probe.Process.Pid)
	if err != nil {
		rep.Unsupported = fmt.Sprintf("Open: %v", err)
		probe.Wait()
		return testhelper.Report(rep)
	}
	<-oh.Done()
	var ws unix.WaitStatus
	if _, err := unix.Wait4(probe.Process.Pid, &ws, 0, nil); err != nil {
		rep.Setup = "wait4: " + err.Error()
		return testhelper.Report(rep)
	}
	if _, err := oh.Wait(); err != nil {
		rep.Unsupported = fmt.Sprintf("Handle.Wait after a foreign reap: %v (mode %s)", err, oh.Mode())
		probe.Wait()
		return testhelper.Report(rep)
	}
	oh.Close()
	probe.Wait()

	var foreign atomic.Int64
	switch args[0] {
	case "wait4":
		for range 2 {
			go func() {
				var ws unix.WaitStatus
				for {
					pid, err := unix.Wait4(-1, &ws, 0, nil)
					if pid > 0 {
						foreign.Add(1)
					} else if err == unix.ECHILD {
						runtime.Gosched()
					}
				}
			}()
		}
	case "sigchld-ignored":
		signal.Ignore(syscall.SIGCHLD)
	default:
		rep.Setup = "unknown reaper " + args[0]
		return testhelper.Report(rep)
	}

	start := time.Now()
	rep.Children = n
	var mu sync.Mutex
	fail := func(format string, a ...any) {
		mu.Lock()
		defer mu.Unlock()
		rep.PexecWrong++
		if len(rep.Failures) < 20 {
			rep.Failures = append(rep.Failures, fmt.Sprintf(format, a...))
		}
	}
	runAll := func(each func(i int)) {
		idx := make(chan int)
		var wg sync.WaitGroup
		for range 4 {
			wg.Go(func() {
				for i := range idx {
					each(i)
				}
			})
		}
		for i := range n {
			idx <- i
		}
		close(idx)
		wg.Wait()
	}

	runAll(func(i int) {
		script, want, code := reaperChild(i)
		c := pexec.Command("/bin/sh", "-c", script)
		if err := c.Start(); err != nil {
			fail("child %d: start: %v", i, err)
			return
		}
		h := c.Handle()
		defer h.Close()
		var st *pexec.Status
		var herr, cerr error
		if i%2 == 0 { // Handle.Wait first, then Cmd.Wait
			st, herr = h.WaitContext(ctx)
			cerr = proofCmdWait(ctx, c)
		} else {
			cerr = proofCmdWait(ctx, c)
			st, herr = h.WaitContext(ctx)
		}
		switch {
		case herr != nil:
			fail("child %d (%s): Handle.Wait: %v", i, want, herr)
			return
		case st.String() != want || st.ExitCode() != code:
			fail("child %d: Handle.Wait: %s code %d, want %s code %d", i, st, st.ExitCode(), want, code)
			return
		}
		var ee *exec.ExitError
		var re *pexec.ReapedError
		switch {
		case errors.As(cerr, &re):
			if re.Status == nil || re.Status.String() != want || re.ExitCode() != code || c.ProcessState != nil || !errors.Is(cerr, syscall.ECHILD) {
				fail("child %d: Cmd.Wait: %v (ExitCode %d, ProcessState %v), want %s", i, cerr, re.ExitCode(), c.ProcessState, want)
				return
			}
			mu.Lock()
			rep.ByForeigner++
			mu.Unlock()
		case cerr == nil && code == 0, errors.As(cerr, &ee):
			if c.ProcessState == nil || c.ProcessState.String() != want || c.ProcessState.ExitCode() != code {
				fail("child %d: Cmd.Wait: %v (ProcessState %v), want %s", i, cerr, c.ProcessState, want)
				return
			}
			mu.Lock()
			rep.ByPexec++
			mu.Unlock()
		default:
			fail("child %d: Cmd.Wait: %v, want %s", i, cerr, want)
			return
		}
		mu.Lock()
		rep.PexecRight++
		mu.Unlock()
	})

	runAll(func(i int) {
		script, want, _ := reaperChild(i)
		c := exec.CommandContext(ctx, "/bin/sh", "-c", script)
		err := c.Run()
		mu.Lock()
		defer mu.Unlock()
		switch {
		case c.ProcessState != nil && c.ProcessState.String() == want:
			rep.OSRight++
		case errors.Is(err, syscall.ECHILD):
			rep.OSLost++
		default:
			rep.OSWrong++
		}
	})
	rep.Elapsed = time.Since(start)
	rep.ForeignReaps = foreign.Load()
	return testhelper.Report(rep)
}

func TestProofForeignReaper(t *testing.T) {
	n := 1000
	if testing.Short() {
		n = 100
	}
	for _, reaper := range []string{"wait4", "sigchld-ignored"} {
		t.Run(reaper, func(t *testing.T) {
			start := time.Now()
			ctx, cancel := context.WithTimeout(context.Background(), proofTimeout)
			defer cancel()
			var rep reaperReport
			testhelper.RunReport(ctx, t, nil, &rep, "proof-reaper", reaper, strconv.Itoa(n))
			if rep.Setup != "" {
				t.Fatalf("helper setup: %s", rep.Setup)
			}
			if rep.Unsupported != "" {
				t.Skipf("this kernel does not keep exit statuses for pidfds (PIDFD_INFO_EXIT, Linux 6.15+): %s", rep.Unsupported)
			}
			for _, f := range rep.Failures {
				t.Error(f)
			}
			if rep.PexecRight != n || rep.PexecWrong != 0 {
				t.Errorf("pexec: %d of %d children right, %d wrong", rep.PexecRight, n, rep.PexecWrong)
			}
			if reaper == "wait4" && rep.ForeignReaps == 0 {
				t.Error("the wait4(-1) loop reaped nothing: the test did not test")
			}
			if rep.ByForeigner == 0 {
				t.Error("Cmd.Wait never met a child reaped by the foreigner: the test did not test")
			}
			t.Logf("%s: pexec right %d of %d (Cmd.Wait: %d reaped by pexec, %d by the foreigner, as *ReapedError with the true status); wait4 loop reaped %d",
				reaper, rep.PexecRight, n, rep.ByPexec, rep.ByForeigner, rep.ForeignReaps)
			t.Logf("%s: os/exec lost %d of %d (right %d, other %d); helper %v, test %v",
				reaper, rep.OSLost, n, rep.OSRight, rep.OSWrong, rep.Elapsed, time.Since(start))
		})
	}
}
