package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/pexec-dev/pexec/pexec"
)

// The scale runs: N sleeping children, each waited for by its own goroutine
// in Cmd.Wait, the way a supervisor would. Each run happens in a fresh
// re-execution of this program (the "scale" role), because a Go process
// never gives back a thread it has created and VmHWM only grows: measured in
// one process, one run would pollute the next. The subprocess leads a
// process group of its own that its children join, so that whatever way it
// ends (including Go's "program exceeds 10000-thread limit" crash), the
// parent kills the whole group and, being a child subreaper, reaps every
// orphan.

// Environment of the scale role.
const (
	roleEnv       = "PEXEC_BENCH_ROLE"
	scaleLibEnv   = "PEXEC_BENCH_LIB"
	scaleNEnv     = "PEXEC_BENCH_N"
	scaleMaxThEnv = "PEXEC_BENCH_MAXTHREADS"
	scaleSleepEnv = "PEXEC_BENCH_SLEEP"
)

// Library names, as printed.
const (
	libOSExec = "os/exec"
	libPexec  = "pexec"
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

// runRole runs the re-executed roles of this program.
func runRole(role string) int {
	switch role {
	case "scale":
		return scaleChild()
	}
	fmt.Fprintf(os.Stderr, "bench: unknown role %q\n", role)
	return 2
}

// scaleChild is the scale subprocess. It prints "progress STARTED" lines as
// it starts children and a final "result {json}" line.
func scaleChild() int {
	rep := scaleReport{Lib: os.Getenv(scaleLibEnv), GOMAXPROCS: runtime.GOMAXPROCS(0)}
	rep.N, _ = strconv.Atoi(os.Getenv(scaleNEnv))
	if m, _ := strconv.Atoi(os.Getenv(scaleMaxThEnv)); m > 0 {
		debug.SetMaxThreads(m)
	}
	if err := scaleMeasure(&rep, os.Getenv(scaleSleepEnv)); err != nil {
		rep.Err = err.Error()
	}
	b, _ := json.Marshal(rep)
	fmt.Printf("result %s\n", b)
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
	exe, err := os.Executable()
	if err != nil {
		out.Ended = "not run: " + err.Error()
		return out
	}
	ctx, cancel := context.WithTimeout(ctx, 15*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, exe)
	cmd.Env = append(os.Environ(),
		roleEnv+"=scale", scaleLibEnv+"="+lib, scaleNEnv+"="+strconv.Itoa(n),
		scaleMaxThEnv+"="+strconv.Itoa(maxThreads), scaleSleepEnv+"="+sleep)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	stdout := &headBuffer{max: 1 << 20}
	stderr := &headBuffer{max: 16 << 10}
	cmd.Stdout, cmd.Stderr = stdout, stderr
	runErr := cmd.Run()
	if cmd.Process != nil {
		killGroup(cmd.Process.Pid)
	}

	sc := bufio.NewScanner(bytes.NewReader(stdout.buf))
	for sc.Scan() {
		line := sc.Text()
		if v, ok := strings.CutPrefix(line, "progress "); ok {
			out.Started, _ = strconv.Atoi(v)
		} else if v, ok := strings.CutPrefix(line, "result "); ok {
			var rep scaleReport
			if json.Unmarshal([]byte(v), &rep) == nil {
				out.Report = &rep
				out.Started = rep.Started
			}
		}
	}
	switch {
	case runErr == nil && out.Report != nil && out.Report.Err == "" && out.Report.Started == n && out.Report.Killed == n:
		out.Completed, out.Ended = true, "completed"
		return out
	case ctx.Err() != nil:
		out.Ended = "timed out: " + ctx.Err().Error()
	case out.Report != nil && out.Report.Err != "":
		out.Ended = fmt.Sprintf("failed: %s (%d descriptors open, RLIMIT_NOFILE %d)", out.Report.Err, out.Report.Fds, out.Report.NofileLimit)
	case out.Report != nil:
		out.Ended = fmt.Sprintf("failed: only %d of %d waiters saw the kill", out.Report.Killed, out.Report.Started)
	default:
		out.Ended = "crashed: " + crashLine(stderr.buf, runErr)
	}
	out.Stderr = firstLines(stderr.buf, 6)
	return out
}

// crashLine picks the runtime's own words from a crashed Go program's
// stderr ("runtime: program exceeds 10000-thread limit"), with the exit
// status.
func crashLine(stderr []byte, runErr error) string {
	var msg []string
	for _, line := range strings.Split(string(stderr), "\n") {
		if strings.HasPrefix(line, "runtime: ") || strings.HasPrefix(line, "fatal error: ") {
			msg = append(msg, strings.TrimSpace(line))
		}
		if len(msg) == 2 {
			break
		}
	}
	if len(msg) == 0 {
		msg = append(msg, "no runtime message")
	}
	return fmt.Sprintf("%s (%v)", strings.Join(msg, "; "), runErr)
}

func firstLines(b []byte, n int) string {
	lines := strings.SplitN(string(b), "\n", n+1)
	return strings.Join(lines[:min(n, len(lines))], "\n")
}

// killGroup kills every process left in process group pgid and reaps them:
// orphans of a crashed scale subprocess are reparented to this process,
// which is a child subreaper.
func killGroup(pgid int) {
	unix.Kill(-pgid, unix.SIGKILL)
	for {
		var info unix.Siginfo
		err := unix.Waitid(unix.P_PGID, pgid, &info, unix.WEXITED, nil)
		if err == unix.EINTR {
			continue
		}
		if err != nil { // ECHILD: none left
			return
		}
	}
}

// headBuffer keeps the first max bytes written to it and discards the rest.
type headBuffer struct {
	mu  sync.Mutex
	buf []byte
	max int
}

func (h *headBuffer) Write(p []byte) (int, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if room := h.max - len(h.buf); room > 0 {
		h.buf = append(h.buf, p[:min(room, len(p))]...)
	}
	return len(p), nil
}
