package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/pexec-dev/pexec/pexec"
)

// The supervisor workload: many children at once, each replaced as it
// exits. Each of `slots` goroutines runs `sleep 0.2`, waits for it with
// Cmd.Wait and starts the next, until `total` runs have completed; the
// throughput is total over the time from the first start to the last
// wait. Where spawning cannot keep up with slots/0.2 runs a second, the
// rate of spawning is what is measured, and fewer than `slots` children
// are alive at once: the most seen is reported beside it. Every round runs in a fresh "supervisor" role process
// (role_linux.go), which also samples its OS threads and reads its peak
// RSS: the libraries alternate round by round, ABBA, and each is measured
// in a process the other never touched.

// Environment of the supervisor role, beside libEnv and sleepEnv.
const (
	supSlotsEnv = "PEXEC_BENCH_SLOTS"
	supTotalEnv = "PEXEC_BENCH_TOTAL"
	supSecsEnv  = "PEXEC_BENCH_SLEEP_SECS"
)

// supervisorReport is what a supervisor role process prints as its result.
type supervisorReport struct {
	Lib       string `json:"lib"`
	Slots     int    `json:"slots"`
	Total     int    `json:"total"`
	Completed int    `json:"completed"` // runs that completed
	// MaxLive is the most children started and not yet waited for at
	// once: Slots only if spawning keeps up with the exits.
	MaxLive    int64         `json:"max_live"`
	Elapsed    time.Duration `json:"elapsed_ns"`
	RunsPerSec float64       `json:"runs_per_sec"`
	GOMAXPROCS int           `json:"gomaxprocs"`
	Threads    int64         `json:"threads"`      // the most seen, sampled every 10 ms and at the end
	PeakRSSKiB int64         `json:"peak_rss_kib"` // VmHWM at the end
	Err        string        `json:"err,omitempty"`
}

// supervisorChild is the supervisor role process.
func supervisorChild() int {
	rep := supervisorReport{Lib: os.Getenv(libEnv), GOMAXPROCS: runtime.GOMAXPROCS(0)}
	rep.Slots, _ = strconv.Atoi(os.Getenv(supSlotsEnv))
	rep.Total, _ = strconv.Atoi(os.Getenv(supTotalEnv))
	if err := supervisorMeasure(&rep, os.Getenv(sleepEnv), os.Getenv(supSecsEnv)); err != nil {
		rep.Err = err.Error()
	}
	printResult(rep)
	if rep.Err != "" {
		return 1
	}
	return 0
}

func supervisorMeasure(rep *supervisorReport, sleep, secs string) error {
	if (rep.Lib != libOSExec && rep.Lib != libPexec) || rep.Slots <= 0 || rep.Total <= 0 || sleep == "" || secs == "" {
		return fmt.Errorf("bad supervisor role parameters: lib %q, slots %d, total %d, sleep %q %q", rep.Lib, rep.Slots, rep.Total, sleep, secs)
	}
	// If this process dies, its children die with it; the parent kills
	// and reaps the rest of the group.
	attr := &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	var live, maxLive atomic.Int64
	started := func() {
		n := live.Add(1)
		for m := maxLive.Load(); n > m && !maxLive.CompareAndSwap(m, n); m = maxLive.Load() {
		}
	}
	run := func(args ...string) error {
		var start, wait func() error
		switch rep.Lib {
		case libOSExec:
			c := exec.Command(sleep, args...)
			c.SysProcAttr = attr
			start, wait = c.Start, c.Wait
		default:
			c := pexec.Command(sleep, args...)
			c.SysProcAttr = attr
			start, wait = c.Start, c.Wait
		}
		if err := start(); err != nil {
			return err
		}
		started()
		defer live.Add(-1)
		return wait()
	}
	// One run first, untimed: the libraries' one-time set-up.
	if err := run("0"); err != nil {
		return err
	}
	maxLive.Store(0)

	// The sampler reads Threads until told to stop, then once more.
	stop := make(chan struct{})
	sampled := make(chan int64)
	go func() {
		most := procStatus("Threads")
		tick := time.NewTicker(10 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-tick.C:
				most = max(most, procStatus("Threads"))
			case <-stop:
				sampled <- max(most, procStatus("Threads"))
				return
			}
		}
	}()

	var (
		wg        sync.WaitGroup
		claimed   atomic.Int64
		completed atomic.Int64
		failed    atomic.Bool
		errMu     sync.Mutex
		errs      []error
	)
	start := time.Now()
	for range rep.Slots {
		wg.Go(func() {
			// A slot claims a run before starting it, so that exactly
			// Total are started; after a failure no new run starts.
			for !failed.Load() && claimed.Add(1) <= int64(rep.Total) {
				if err := run(secs); err != nil {
					failed.Store(true)
					errMu.Lock()
					errs = append(errs, err)
					errMu.Unlock()
					return
				}
				completed.Add(1)
			}
		})
	}
	wg.Wait()
	rep.Elapsed = time.Since(start)
	close(stop)
	rep.Threads = <-sampled
	rep.PeakRSSKiB = procStatus("VmHWM")
	rep.Completed = int(completed.Load())
	rep.MaxLive = maxLive.Load()
	rep.RunsPerSec = float64(rep.Completed) / rep.Elapsed.Seconds()
	if len(errs) > 0 {
		return fmt.Errorf("%d of %d runs failed, the first: %w", len(errs), rep.Total, errs[0])
	}
	return nil
}

// supervisorResult is the supervisor phase: rounds pairs of role processes,
// one per library.
type supervisorResult struct {
	Slots  int    `json:"slots"`
	Total  int    `json:"total"` // runs per round
	Sleep  string `json:"sleep"` // the child's argument, seconds
	Rounds int    `json:"rounds"`
	// RunsPerSec is the median of each library's rounds; RoundRatios are
	// pexec's rate over os/exec's in each pair, and Ratio their median.
	RunsPerSec  map[string]float64 `json:"runs_per_sec"`
	RoundRatios []float64          `json:"round_ratios"`
	Ratio       float64            `json:"ratio"`
	// Threads, PeakRSSKiB and MaxLive are the most of each library's
	// rounds.
	Threads    map[string]int64 `json:"threads"`
	MaxLive    map[string]int64 `json:"max_live"`
	PeakRSSKiB map[string]int64 `json:"peak_rss_kib"`
	GOMAXPROCS int              `json:"gomaxprocs"` // of the role processes
	// Failed says why the phase stopped short, if it did.
	Failed string             `json:"failed,omitempty"`
	Runs   []supervisorReport `json:"runs"` // every round, in order
}

// measureSupervisor runs the supervisor rounds, alternating the libraries
// ABBA. A round that fails ends the phase and is reported in Failed: a
// library failing is a result, not a reason to stop the benchmark.
func measureSupervisor(ctx context.Context, sleep string, slots, total, rounds int, secs string, logf func(string, ...any)) (supervisorResult, error) {
	res := supervisorResult{
		Slots: slots, Total: total, Sleep: secs,
		RunsPerSec: map[string]float64{}, Threads: map[string]int64{}, PeakRSSKiB: map[string]int64{}, MaxLive: map[string]int64{},
	}
	rates := map[string][]float64{}
	for r := range rounds {
		order := []string{libOSExec, libPexec}
		if r%4 == 1 || r%4 == 2 {
			order = []string{libPexec, libOSExec}
		}
		rate := map[string]float64{}
		for _, lib := range order {
			rep, err := supervisorRound(ctx, lib, sleep, slots, total, secs)
			if err != nil {
				if ctx.Err() != nil {
					return res, ctx.Err()
				}
				res.Failed = fmt.Sprintf("round %d, %s: %v", r+1, lib, err)
				logf("supervisor: %s", res.Failed)
				return res, nil
			}
			logf("supervisor: round %d of %d, %s: %.0f runs/s in %v, at most %d children alive, %d threads, VmHWM %.1f MiB",
				r+1, rounds, lib, rep.RunsPerSec, rep.Elapsed.Round(time.Millisecond), rep.MaxLive, rep.Threads, float64(rep.PeakRSSKiB)/1024)
			res.Runs = append(res.Runs, rep)
			res.GOMAXPROCS = rep.GOMAXPROCS
			rate[lib] = rep.RunsPerSec
			rates[lib] = append(rates[lib], rep.RunsPerSec)
			res.Threads[lib] = max(res.Threads[lib], rep.Threads)
			res.PeakRSSKiB[lib] = max(res.PeakRSSKiB[lib], rep.PeakRSSKiB)
			res.MaxLive[lib] = max(res.MaxLive[lib], rep.MaxLive)
		}
		res.RoundRatios = append(res.RoundRatios, rate[libPexec]/rate[libOSExec])
		res.Rounds = r + 1
	}
	for lib, rs := range rates {
		res.RunsPerSec[lib] = median(rs)
	}
	res.Ratio = median(res.RoundRatios)
	return res, nil
}

// supervisorRound runs one supervisor role process.
func supervisorRound(ctx context.Context, lib, sleep string, slots, total int, secs string) (supervisorReport, error) {
	var rep supervisorReport
	r, err := runRoleProcess(ctx, "supervisor", 5*time.Minute,
		libEnv+"="+lib, sleepEnv+"="+sleep, supSecsEnv+"="+secs,
		supSlotsEnv+"="+strconv.Itoa(slots), supTotalEnv+"="+strconv.Itoa(total))
	switch {
	case err != nil:
		return rep, err
	case !r.result(&rep) && r.TimedOut != nil:
		return rep, fmt.Errorf("timed out: %w", r.TimedOut)
	case !r.result(&rep):
		return rep, errors.New("crashed: " + crashLine(r.Stderr, r.Err))
	case rep.Err != "":
		return rep, errors.New(rep.Err)
	case r.Err != nil || rep.Completed != total:
		return rep, fmt.Errorf("%d of %d runs completed (%v)", rep.Completed, total, r.Err)
	}
	return rep, nil
}
