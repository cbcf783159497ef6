package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"os/exec"
	"runtime"
	"slices"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/pexec-dev/pexec/pexec"
)

// The in-process measurements: spawn-and-wait throughput, exit-notice
// latency, and the per-call costs. The two libraries alternate throughout,
// so that drift in the machine's load falls on both.

// runFunc starts and waits for one command with one library.
type runFunc func(name string, args ...string) error

var runners = map[string]runFunc{
	libOSExec: func(name string, args ...string) error { return exec.Command(name, args...).Run() },
	libPexec:  func(name string, args ...string) error { return pexec.Command(name, args...).Run() },
}

// throughputResult is sequential spawn-and-wait of /bin/true.
type throughputResult struct {
	Runs       int                `json:"runs"`   // per library
	Rounds     int                `json:"rounds"` // blocks per library
	RunsPerSec map[string]float64 `json:"runs_per_sec"`
	// RoundRatios are pexec's rate over os/exec's in each round (a block
	// of each, run back to back); Ratio is their median.
	RoundRatios []float64 `json:"round_ratios"`
	Ratio       float64   `json:"ratio"`
	// Spread is set when the phase ran more than once (-runs); then
	// RunsPerSec and Ratio are the medians of the runs, and RoundRatios
	// those of every run, in order.
	Spread *spread `json:"spread,omitempty"`
}

// measureThroughput runs true `runs` times with each library, in `rounds`
// pairs of blocks. The order within a pair alternates ABBA, so neither
// library always goes first.
func measureThroughput(ctx context.Context, truePath string, runs, rounds int) (throughputResult, error) {
	res := throughputResult{Rounds: rounds, RunsPerSec: map[string]float64{}}
	block := runs / rounds
	total := map[string]time.Duration{}
	runBlock := func(lib string, n int) (time.Duration, error) {
		run := runners[lib]
		start := time.Now()
		for range n {
			if err := run(truePath); err != nil {
				return 0, fmt.Errorf("%s: %s: %w", lib, truePath, err)
			}
		}
		return time.Since(start), ctx.Err()
	}
	for _, lib := range []string{libOSExec, libPexec} { // warm up
		if _, err := runBlock(lib, max(block/5, 5)); err != nil {
			return res, err
		}
	}
	for r := range rounds {
		order := []string{libOSExec, libPexec}
		if r%4 == 1 || r%4 == 2 {
			order = []string{libPexec, libOSExec}
		}
		rate := map[string]float64{}
		for _, lib := range order {
			d, err := runBlock(lib, block)
			if err != nil {
				return res, err
			}
			total[lib] += d
			rate[lib] = float64(block) / d.Seconds()
		}
		res.RoundRatios = append(res.RoundRatios, rate[libPexec]/rate[libOSExec])
	}
	for lib, d := range total {
		res.RunsPerSec[lib] = float64(block*rounds) / d.Seconds()
	}
	res.Runs = block * rounds
	res.Ratio = median(res.RoundRatios)
	return res, nil
}

// latencyResult is the exit-notice latency: from the parent reading the
// byte the child writes as it exits to Cmd.Wait returning.
type latencyResult struct {
	Samples int                      `json:"samples"` // per library
	Child   string                   `json:"child"`
	P50     map[string]time.Duration `json:"p50_ns"`
	P99     map[string]time.Duration `json:"p99_ns"`
	// P50Ratio is pexec's p50 over os/exec's.
	P50Ratio float64 `json:"p50_ratio"`
	// Spread is set when the phase ran more than once (-runs); then P50,
	// P99 and P50Ratio are the medians of the runs.
	Spread *spread `json:"spread,omitempty"`
}

// measureLatency alternates the libraries sample by sample. The child is
// `echo -n x` with its stdout on a pipe: coreutils echo writes the byte as
// it exits (stdio's flush at exit), so the byte is its last act.
func measureLatency(ctx context.Context, child []string, samples int) (latencyResult, error) {
	res := latencyResult{Samples: samples, Child: fmt.Sprint(child), P50: map[string]time.Duration{}, P99: map[string]time.Duration{}}
	got := map[string][]time.Duration{}
	for i := range 2 * (samples + samples/10) {
		lib := []string{libOSExec, libPexec}[i%2]
		d, err := exitNotice(lib, child)
		if err != nil {
			return res, err
		}
		if err := ctx.Err(); err != nil {
			return res, err
		}
		if i >= 2*(samples/10) { // the first tenth warms up
			got[lib] = append(got[lib], d)
		}
	}
	for lib, ds := range got {
		slices.Sort(ds)
		res.P50[lib] = ds[len(ds)*50/100]
		res.P99[lib] = ds[min(len(ds)-1, len(ds)*99/100)]
	}
	res.P50Ratio = float64(res.P50[libPexec]) / float64(res.P50[libOSExec])
	return res, nil
}

// spread is how a ratio varied over the runs of -runs N.
type spread struct {
	Ratios []float64 `json:"ratios"` // one a run, in order
	Min    float64   `json:"min"`
	Median float64   `json:"median"`
	Max    float64   `json:"max"`
}

func newSpread(ratios []float64) *spread {
	return &spread{Ratios: ratios, Min: slices.Min(ratios), Median: median(ratios), Max: slices.Max(ratios)}
}

func (s *spread) String() string {
	return fmt.Sprintf("min %.3f, median %.3f, max %.3f", s.Min, s.Median, s.Max)
}

// count returns how many of the ratios satisfy f.
func (s *spread) count(f func(float64) bool) int {
	n := 0
	for _, r := range s.Ratios {
		if f(r) {
			n++
		}
	}
	return n
}

// combineThroughput folds the runs of -runs into one result with their
// spread; a single run is returned as it is.
func combineThroughput(runs []throughputResult) throughputResult {
	if len(runs) <= 1 {
		if len(runs) == 0 {
			return throughputResult{}
		}
		return runs[0]
	}
	res := runs[0]
	res.RunsPerSec = map[string]float64{}
	res.RoundRatios = nil
	var ratios []float64
	for _, lib := range []string{libOSExec, libPexec} {
		var rates []float64
		for _, r := range runs {
			rates = append(rates, r.RunsPerSec[lib])
		}
		res.RunsPerSec[lib] = median(rates)
	}
	for _, r := range runs {
		ratios = append(ratios, r.Ratio)
		res.RoundRatios = append(res.RoundRatios, r.RoundRatios...)
	}
	res.Spread = newSpread(ratios)
	res.Ratio = res.Spread.Median
	return res
}

// combineLatency is combineThroughput for the latency runs.
func combineLatency(runs []latencyResult) latencyResult {
	if len(runs) <= 1 {
		if len(runs) == 0 {
			return latencyResult{}
		}
		return runs[0]
	}
	res := runs[0]
	res.P50, res.P99 = map[string]time.Duration{}, map[string]time.Duration{}
	for _, lib := range []string{libOSExec, libPexec} {
		var p50, p99 []float64
		for _, r := range runs {
			p50 = append(p50, float64(r.P50[lib]))
			p99 = append(p99, float64(r.P99[lib]))
		}
		res.P50[lib], res.P99[lib] = time.Duration(median(p50)), time.Duration(median(p99))
	}
	var ratios []float64
	for _, r := range runs {
		ratios = append(ratios, r.P50Ratio)
	}
	res.Spread = newSpread(ratios)
	res.P50Ratio = res.Spread.Median
	return res
}

// exitNotice runs child once with lib and returns the time from reading
// its byte to Wait returning.
func exitNotice(lib string, child []string) (time.Duration, error) {
	r, w, err := os.Pipe()
	if err != nil {
		return 0, err
	}
	defer r.Close()
	var start func() error
	var wait func() error
	var kill func() error
	switch lib {
	case libOSExec:
		c := exec.Command(child[0], child[1:]...)
		c.Stdout = w
		start, wait = c.Start, c.Wait
		kill = func() error { return c.Process.Kill() }
	case libPexec:
		c := pexec.Command(child[0], child[1:]...)
		c.Stdout = w
		start, wait = c.Start, c.Wait
		kill = func() error { return c.Process.Kill() }
	}
	err = start()
	w.Close()
	if err != nil {
		return 0, err
	}
	var b [1]byte
	if _, err := io.ReadFull(r, b[:]); err != nil {
		kill()
		wait()
		return 0, fmt.Errorf("%s: reading the child's byte: %w", lib, err)
	}
	t0 := time.Now()
	err = wait()
	d := time.Since(t0)
	if err != nil {
		return 0, fmt.Errorf("%s: %v: %w", lib, child, err)
	}
	return d, nil
}

// cost is the per-call cost of one operation.
type cost struct {
	NsPerOp     float64 `json:"ns_per_op"`
	AllocsPerOp float64 `json:"allocs_per_op"`
	Ops         int     `json:"ops"`
}

// loopCosts measures fs side by side: reps rounds, each timing iters calls
// of every f in turn, so that load changes fall on all of them. It returns,
// for each, the median time per call and the allocations per call counted
// as testing.B does: mallocs (of the whole process) over calls, rounded
// down.
func loopCosts(iters, reps int, fs ...func()) []cost {
	for _, f := range fs {
		for range min(iters, 1000) {
			f()
		}
	}
	ns := make([][]float64, len(fs))
	mallocs := make([]uint64, len(fs))
	for range reps {
		for i, f := range fs {
			runtime.GC()
			var m0, m1 runtime.MemStats
			runtime.ReadMemStats(&m0)
			t0 := time.Now()
			for range iters {
				f()
			}
			d := time.Since(t0)
			runtime.ReadMemStats(&m1)
			ns[i] = append(ns[i], float64(d.Nanoseconds())/float64(iters))
			mallocs[i] += m1.Mallocs - m0.Mallocs
		}
	}
	out := make([]cost, len(fs))
	for i := range fs {
		out[i] = cost{NsPerOp: median(ns[i]), AllocsPerOp: float64(mallocs[i] / uint64(iters*reps)), Ops: iters * reps}
	}
	return out
}

// liveCosts measures the liveness checks on a live child: pexec's
// Handle.Alive and os/exec's Process.Signal(0).
func liveCosts(sleep string, iters, reps int) (map[string]cost, error) {
	oc := exec.Command(sleep, "3600")
	if err := oc.Start(); err != nil {
		return nil, err
	}
	defer func() { oc.Process.Kill(); oc.Wait() }()
	pc := pexec.Command(sleep, "3600")
	if err := pc.Start(); err != nil {
		return nil, err
	}
	defer func() { pc.Process.Kill(); pc.Wait() }()
	h := pc.Handle()

	var failed error
	cs := loopCosts(iters, reps, func() {
		if err := oc.Process.Signal(syscall.Signal(0)); err != nil && failed == nil {
			failed = err
		}
	}, func() {
		if !h.Alive() && failed == nil {
			failed = errors.New("pexec: Alive() = false for a sleeping child")
		}
	})
	return map[string]cost{libOSExec: cs[0], libPexec: cs[1]}, failed
}

// batchCost starts k children of truePath with lib, waits until all have
// exited (waitid with WNOWAIT, which leaves them unreaped), then times op
// on each: the cost of a first Wait on an exited child, which can be
// measured only once per child. after runs untimed, to reap. AllocsPerOp
// is not rounded, so that batches can be added up.
func batchCost[C any](k int, start func() (C, int, error), op func(C) error, after func(C)) (cost, error) {
	cs := make([]C, 0, k)
	defer func() {
		for _, c := range cs {
			after(c)
		}
	}()
	for range k {
		c, pid, err := start()
		if err != nil {
			return cost{}, err
		}
		cs = append(cs, c)
		var info unix.Siginfo
		for {
			err := unix.Waitid(unix.P_PID, pid, &info, unix.WEXITED|unix.WNOWAIT, nil)
			if err != unix.EINTR {
				if err != nil {
					return cost{}, os.NewSyscallError("waitid", err)
				}
				break
			}
		}
	}
	runtime.GC()
	var m0, m1 runtime.MemStats
	runtime.ReadMemStats(&m0)
	t0 := time.Now()
	var failed error
	for _, c := range cs {
		if err := op(c); err != nil && failed == nil {
			failed = err
		}
	}
	d := time.Since(t0)
	runtime.ReadMemStats(&m1)
	return cost{NsPerOp: float64(d.Nanoseconds()) / float64(k), AllocsPerOp: float64(m1.Mallocs-m0.Mallocs) / float64(k), Ops: k}, failed
}

// waitCosts are the costs of waiting for children that have already
// exited.
type waitCosts struct {
	Batches    int             `json:"batches"`     // per library and operation, alternating
	CmdWait    map[string]cost `json:"cmd_wait"`    // exec.Cmd.Wait / pexec Cmd.Wait (both reap)
	FirstWait  map[string]cost `json:"first_wait"`  // os.Process.Wait (reaps) / pexec Handle.Wait (observes)
	CachedWait cost            `json:"cached_wait"` // pexec Handle.Wait once the status is known
}

func measureWaitCosts(truePath string, k, iters, reps int) (waitCosts, error) {
	res := waitCosts{CmdWait: map[string]cost{}, FirstWait: map[string]cost{}}
	startOS := func() (*exec.Cmd, int, error) {
		c := exec.Command(truePath)
		if err := c.Start(); err != nil {
			return nil, 0, err
		}
		return c, c.Process.Pid, nil
	}
	startP := func() (*pexec.Cmd, int, error) {
		c := pexec.Command(truePath)
		if err := c.Start(); err != nil {
			return nil, 0, err
		}
		return c, c.Process.Pid, nil
	}
	// after reaps whatever the timed operation left (or, on an early
	// error, every child started); a second Wait just returns an error.
	reapOS := func(c *exec.Cmd) { c.Wait() }
	reapP := func(c *pexec.Cmd) { c.Wait() }
	// reps batches of each, alternating ABBA; the median of the batches'
	// ns/op, and the allocations of all of them over all their calls.
	var errs []error
	pair := func(osOp func(*exec.Cmd) error, pOp func(*pexec.Cmd) error) map[string]cost {
		ns := map[string][]float64{}
		mallocs := map[string]float64{}
		for r := range reps {
			order := []string{libOSExec, libPexec}
			if r%4 == 1 || r%4 == 2 {
				order = []string{libPexec, libOSExec}
			}
			for _, lib := range order {
				var c cost
				var err error
				if lib == libOSExec {
					c, err = batchCost(k, startOS, osOp, reapOS)
				} else {
					c, err = batchCost(k, startP, pOp, reapP)
				}
				if err != nil {
					errs = append(errs, err)
					return nil // the benchmark stops: no figures needed
				}
				ns[lib] = append(ns[lib], c.NsPerOp)
				mallocs[lib] += c.AllocsPerOp * float64(k)
			}
		}
		out := map[string]cost{}
		for lib := range ns {
			out[lib] = cost{NsPerOp: median(ns[lib]), AllocsPerOp: math.Floor(mallocs[lib]/float64(k*reps) + 1e-9), Ops: k * reps}
		}
		return out
	}
	res.Batches = reps
	res.CmdWait = pair((*exec.Cmd).Wait, (*pexec.Cmd).Wait)
	res.FirstWait = pair(
		func(c *exec.Cmd) error { _, err := c.Process.Wait(); return err },
		func(c *pexec.Cmd) error { _, err := c.Handle().Wait(); return err })

	c, _, err := startP()
	if err != nil {
		return res, errors.Join(append(errs, err)...)
	}
	if err := c.Wait(); err != nil {
		errs = append(errs, err)
	}
	h := c.Handle()
	var failed error
	res.CachedWait = loopCosts(iters, reps, func() {
		if _, err := h.Wait(); err != nil && failed == nil {
			failed = err
		}
	})[0]
	return res, errors.Join(append(errs, failed)...)
}

func median(xs []float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}
