package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/pexec-dev/pexec/pexec"
)

// The scale runs: N sleeping children, each waited for by its own goroutine
// in Cmd.Wait, the way a supervisor would, each run in a fresh "scale" role
// process (role_linux.go says why and how).

// Environment of the scale role, beside libEnv and sleepEnv.
const (
	scaleNEnv     = "PEXEC_BENCH_N"
	scaleMaxThEnv = "PEXEC_BENCH_MAXTHREADS"
)

// scaleReport is what a scale subprocess writes as its last line.
type scaleReport struct {
	Lib         string `json:"lib"`
	N           int    `json:"n"`
	Started     int    `json:"started"`
	GOMAXPROCS  int    `json:"gomaxprocs"`
	Threads     int64  `json:"threads"`      // while all N waiters are blocked
	PeakRSSKiB  int64  `json:"peak_rss_kib"` // VmHWM at that moment
	Killed      int    `json:"killed"`       // waiters that saw their child die of SIGKILL
	Fds         int    `json:"fds"`          // open descriptors, counted only when a start failed
	NofileLimit uint64 `json:"nofile_limit"` // RLIMIT_NOFILE (soft)
	Err         string `json:"err,omitempty"`
}

// scaleChild is the scale subprocess. It prints "progress STARTED" lines as
// it starts children and a final "result {json}" line.
func scaleChild() int {
	rep := scaleReport{Lib: os.Getenv(libEnv), GOMAXPROCS: runtime.GOMAXPROCS(0)}
	rep.N, _ = strconv.Atoi(os.Getenv(scaleNEnv))
	if m, _ := strconv.Atoi(os.Getenv(scaleMaxThEnv)); m > 0 {
		debug.SetMaxThreads(m)
	}
	if err := scaleMeasure(&rep, os.Getenv(sleepEnv)); err != nil {
		rep.Err = err.Error()
	}
	printResult(rep)
	if rep.Err != "" {
		return 1
	}
	return 0
}

func scaleMeasure(rep *scaleReport, sleep string) (err error) {
	if (rep.Lib != libOSExec && rep.Lib != libPexec) || rep.N <= 0 || sleep == "" {
		return fmt.Errorf("bad scale role parameters: lib %q, n %d, sleep %q", rep.Lib, rep.N, sleep)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	var (
		wg      sync.WaitGroup
		entered atomic.Int64
		killed  atomic.Int64
		kills   []func() error
	)
	// On every path: kill the children, let the waiters reap them.
	defer func() {
		for _, kill := range kills {
			kill()
		}
		done := make(chan struct{})
		go func() { wg.Wait(); close(done) }()
		select {
		case <-done:
			rep.Killed = int(killed.Load())
		case <-ctx.Done():
			err = errors.Join(err, fmt.Errorf("waiters still blocked after the kill: %w", ctx.Err()))
		}
	}()
	// If this process dies, its children die with it.
	attr := &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	wait := func(waitFn func() error) {
		entered.Add(1)
		if killedBySIGKILL(waitFn()) {
			killed.Add(1)
		}
	}
	// A child that cannot be started ends the run, but what was reached
	// is still measured.
	var startErr error
	every := max(1, rep.N/100)
	for i := range rep.N {
		if i%every == 0 {
			fmt.Printf("progress %d\n", i)
		}
		switch rep.Lib {
		case libOSExec:
			c := exec.Command(sleep, "3600")
			c.SysProcAttr = attr
			if startErr = c.Start(); startErr == nil {
				kills = append(kills, c.Process.Kill)
				wg.Go(func() { wait(c.Wait) })
			}
		case libPexec:
			c := pexec.Command(sleep, "3600")
			c.SysProcAttr = attr
			if startErr = c.Start(); startErr == nil {
				kills = append(kills, c.Handle().Kill)
				wg.Go(func() { wait(c.Wait) })
			}
		}
		if startErr != nil {
			startErr = fmt.Errorf("starting child %d: %w", i+1, startErr)
			break
		}
		rep.Started = i + 1
	}
	fmt.Printf("progress %d\n", rep.Started)

	// Settle: every waiter has called Wait and nothing is left to run, on
	// three polls in a row.
	samples := []metrics.Sample{
		{Name: "/sched/goroutines/runnable:goroutines"},
		{Name: "/sched/goroutines/running:goroutines"},
	}
	for calm := 0; calm < 3; {
		select {
		case <-ctx.Done():
			return fmt.Errorf("waiters never all blocked: %w", ctx.Err())
		case <-time.After(10 * time.Millisecond):
		}
		metrics.Read(samples)
		if entered.Load() == int64(rep.Started) && samples[0].Value.Uint64() == 0 && samples[1].Value.Uint64() <= 1 {
			calm++
		} else {
			calm = 0
		}
	}
	rep.Threads = procStatus("Threads")
	rep.PeakRSSKiB = procStatus("VmHWM")
	if startErr != nil {
		// For the failure message only: a directory of N entries.
		if ents, err := os.ReadDir("/proc/self/fd"); err == nil {
			rep.Fds = len(ents)
		}
	}
	var rl unix.Rlimit
	if unix.Getrlimit(unix.RLIMIT_NOFILE, &rl) == nil {
		rep.NofileLimit = rl.Cur
	}
	return startErr
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

// scaleOutcome is how one scale subprocess ended, seen from the parent.
type scaleOutcome struct {
	Lib        string       `json:"lib"`
	N          int          `json:"n"`
	MaxThreads int          `json:"max_threads,omitempty"` // debug.SetMaxThreads in the subprocess, 0 for Go's default
	Completed  bool         `json:"completed"`
	Ended      string       `json:"ended"` // "completed", or how it failed
	Started    int          `json:"started"`
	Report     *scaleReport `json:"report,omitempty"`
	Stderr     string       `json:"stderr,omitempty"` // first lines, when it failed
}

// runScale runs one scale subprocess and cleans up after it.
func runScale(ctx context.Context, lib string, n, maxThreads int, sleep string) (out scaleOutcome) {
	out = scaleOutcome{Lib: lib, N: n, MaxThreads: maxThreads}
	r, err := runRoleProcess(ctx, "scale", 15*time.Minute,
		libEnv+"="+lib, scaleNEnv+"="+strconv.Itoa(n),
		scaleMaxThEnv+"="+strconv.Itoa(maxThreads), sleepEnv+"="+sleep)
	if err != nil {
		out.Ended = "not run: " + err.Error()
		return out
	}
	r.eachLine(func(key, rest string) {
		if key == "progress" {
			out.Started, _ = strconv.Atoi(rest)
		}
	})
	var rep scaleReport
	if r.result(&rep) {
		out.Report = &rep
		out.Started = rep.Started
	}
	switch {
	case r.Err == nil && out.Report != nil && out.Report.Err == "" && out.Report.Started == n && out.Report.Killed == n:
		out.Completed, out.Ended = true, "completed"
		return out
	case r.TimedOut != nil:
		out.Ended = "timed out: " + r.TimedOut.Error()
	case out.Report != nil && out.Report.Err != "":
		out.Ended = fmt.Sprintf("failed: %s (%d descriptors open, RLIMIT_NOFILE %d)", out.Report.Err, out.Report.Fds, out.Report.NofileLimit)
	case out.Report != nil:
		out.Ended = fmt.Sprintf("failed: only %d of %d waiters saw the kill", out.Report.Killed, out.Report.Started)
	default:
		out.Ended = "crashed: " + crashLine(r.Stderr, r.Err)
	}
	out.Stderr = firstLines(r.Stderr, 6)
	return out
}
