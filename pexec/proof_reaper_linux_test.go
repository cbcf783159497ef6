package pexec_test

import (
	"context"
	"errors"
	"fmt"
	"os/exec"
	"os/signal"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/pexec-dev/pexec/internal/testhelper"
	"github.com/pexec-dev/pexec/pexec"
	"github.com/pexec-dev/pexec/pexectest"
)

// Foreign reapers. Library code runs in hosts that reap children behind
// its back. In a helper process (so the rest of the suite is undisturbed)
// started with pexectest.WithForeignReaper, either goroutines call
// wait4(-1) in a loop (pexectest.ReaperWait4), or SIGCHLD is ignored (the
// kernel then reaps every child itself: pexectest.ReaperIgnoreSIGCHLD).
// 1,000 children exit with varied codes or die by varied signals; every
// pexec Handle.Wait and Cmd.Wait must report each one's true status exactly
// (PIDFD_INFO_EXIT, Linux 6.15+), and os/exec's losses are counted beside
// it. On older kernels a status the foreigner took before pexec saw it is
// lost: Handle.Wait and Cmd.Wait must then say so (ErrStatusUnavailable),
// and report every status they do give exactly.

func init() {
	testhelper.Register("proof-reaper", proofReaperHelper)
}

// reaperReport is what the foreign-reaper helper observed.
type reaperReport struct {
	Setup    string
	Children int
	// pexec: children whose Handle.Wait and Cmd.Wait were both right, and
	// how Cmd.Wait found each: reaped by pexec or by the foreigner.
	PexecRight, PexecWrong int
	ByPexec, ByForeigner   int
	// Without exit records: Handle.Waits and Cmd.Waits (of those, in
	// PexecRight) that said ErrStatusUnavailable, as they must.
	HandleUnavailable, CmdUnavailable int
	Failures                          []string
	// os/exec, the same children: right status, ECHILD (lost), other.
	OSRight, OSLost, OSWrong int
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
// args[0], "wait4" or "sigchld-ignored", which pexectest.WithForeignReaper
// has set up; args[2] says whether the kernel keeps exit statuses
// (PIDFD_INFO_EXIT), as the test found out.
func proofReaperHelper(args []string) int {
	var rep reaperReport
	if len(args) != 3 {
		rep.Setup = fmt.Sprintf("usage: proof-reaper wait4|sigchld-ignored children keeps, got %q", args)
		return testhelper.Report(rep)
	}
	n, _ := strconv.Atoi(args[1])
	keeps := args[2] == "true"
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	if ignored := signal.Ignored(syscall.SIGCHLD); ignored != (args[0] == "sigchld-ignored") {
		rep.Setup = fmt.Sprintf("reaper %s, but SIGCHLD ignored: %t: start the helper with pexectest.WithForeignReaper", args[0], ignored)
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
		hLost := !keeps && herr != nil && errors.Is(herr, pexec.ErrStatusUnavailable)
		switch {
		case hLost:
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
			cLost := !keeps && re.Status == nil && errors.Is(cerr, pexec.ErrStatusUnavailable)
			if !cLost && (re.Status == nil || re.Status.String() != want || re.ExitCode() != code) || c.ProcessState != nil || !errors.Is(cerr, syscall.ECHILD) {
				fail("child %d: Cmd.Wait: %v (ExitCode %d, ProcessState %v), want %s", i, cerr, re.ExitCode(), c.ProcessState, want)
				return
			}
			mu.Lock()
			rep.ByForeigner++
			if cLost {
				rep.CmdUnavailable++
			}
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
		if hLost {
			rep.HandleUnavailable++
		}
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
	return testhelper.Report(rep)
}

func TestProofForeignReaper(t *testing.T) {
	n := 1000
	if testing.Short() {
		n = 100
	}
	for _, r := range []pexectest.Reaper{pexectest.ReaperWait4, pexectest.ReaperIgnoreSIGCHLD} {
		reaper := r.String()
		t.Run(reaper, func(t *testing.T) {
			keeps := pidfdInfoExit(t)
			start := time.Now()
			ctx, cancel := context.WithTimeout(context.Background(), proofTimeout)
			defer cancel()
			cmd := pexectest.CommandContext(ctx, "proof-reaper", reaper, strconv.Itoa(n), strconv.FormatBool(keeps))
			testhelper.Uses("proof-reaper") // used, even where WithForeignReaper skips
			pexectest.WithForeignReaper(t, cmd, r)
			var rep reaperReport
			testhelper.RunReportCmd(ctx, t, cmd, &rep)
			if rep.Setup != "" {
				t.Fatalf("helper setup: %s", rep.Setup)
			}
			for _, f := range rep.Failures {
				t.Error(f)
			}
			if rep.PexecRight != n || rep.PexecWrong != 0 {
				t.Errorf("pexec: %d of %d children right, %d wrong", rep.PexecRight, n, rep.PexecWrong)
			}
			if rep.ByForeigner == 0 {
				t.Error("Cmd.Wait never met a child reaped by the foreigner: the test did not test")
			}
			what := "as *ReapedError with the true status (the pidfd's exit record, PIDFD_INFO_EXIT)"
			if !keeps {
				what = fmt.Sprintf("as *ReapedError, %d of them without a status, matching ErrStatusUnavailable (no PIDFD_INFO_EXIT: what pexec had not seen before the foreign reap is lost); Handle.Wait said ErrStatusUnavailable %d times; no status ever wrong", rep.CmdUnavailable, rep.HandleUnavailable)
			}
			t.Logf("%s on %s: pexec right %d of %d (Cmd.Wait: %d reaped by pexec, %d by the foreigner, %s)",
				reaper, kernelRelease(), rep.PexecRight, n, rep.ByPexec, rep.ByForeigner, what)
			t.Logf("%s: os/exec lost %d of %d (right %d, other %d); helper %v, test %v",
				reaper, rep.OSLost, n, rep.OSRight, rep.OSWrong, rep.Elapsed, time.Since(start))
		})
	}
}
