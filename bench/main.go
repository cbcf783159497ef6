//go:build linux

// Command bench compares os/exec and pexec, measured in the same run, and
// checks pexec's performance targets. It prints one table (or JSON with
// -json) and exits with status 1 if any target fails:
//
//   - OS threads and peak RSS while N live children are waited for at once
//     (N = 1,000 and 5,000), each run in a fresh subprocess;
//   - N = 12,000, where os/exec meets Go's 10,000-thread limit and pexec
//     must complete (the benchmark raises RLIMIT_NOFILE and, as root,
//     kernel.pid_max and kernel.threads-max if they are too low, says so,
//     and puts the sysctls back);
//   - sequential spawn-and-wait throughput of /bin/true;
//   - exit-notice latency: from reading the byte a child writes as it exits
//     to Cmd.Wait returning, p50 and p99;
//   - a supervisor's workload: 1,000 slots each running `sleep 0.2`,
//     waiting for it and starting the next, until 3,000 runs have
//     completed; throughput, and OS threads and peak RSS, each round in a
//     fresh subprocess;
//   - the cost of Handle.Alive next to Process.Signal(0), and of waiting for
//     a child that has already exited.
//
// Usage:
//
//	go run ./bench [-json] [-quick] [-only phases] [-runs N]
//
// -quick runs a small version (a few hundred children, the thread limit
// lowered to 150 in the subprocesses for the "os/exec cannot" row, 100
// supervisor slots) as a smoke check; its numbers are not the benchmark's.
// -only runs some of the phases costs, throughput, latency, supervisor and
// scale (comma-separated); the targets of the others are not judged.
// -runs N repeats the throughput and latency phases N times, back to back,
// and prints the minimum, median and maximum of their two ratios, so that a
// single run's luck can be told from the spread; their targets are then
// judged on the medians (N >= 10 for a spread worth quoting). The full run
// takes a few minutes on two cores, the supervisor phase a good part of it
// (ten subprocesses of 3,000 spawns each); a run of -runs adds about five
// seconds on an idle machine. Every child is killed and reaped on every
// path, including interruption.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"runtime"
	"slices"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

func main() {
	if role := os.Getenv(roleEnv); role != "" {
		os.Exit(runRole(role))
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// config sizes a run.
type config struct {
	ScaleNs         []int `json:"scale_ns"`
	CrashN          int   `json:"crash_n"`
	CrashMaxThreads int   `json:"crash_max_threads"` // 0: Go's default limit (10,000)
	Runs            int   `json:"runs"`
	Rounds          int   `json:"rounds"`
	Samples         int   `json:"samples"`
	Iters           int   `json:"iters"`
	Reps            int   `json:"reps"`
	WaitBatch       int   `json:"wait_batch"`
	// The supervisor phase: Slots children at once, SupTotal runs of
	// `sleep SupSleep` in all, in SupRounds pairs of subprocesses.
	Slots     int    `json:"slots"`
	SupTotal  int    `json:"sup_total"`
	SupSleep  string `json:"sup_sleep"`
	SupRounds int    `json:"sup_rounds"`
	Repeats   int    `json:"repeats"` // -runs
}

var (
	fullConfig = config{
		ScaleNs: []int{1000, 5000}, CrashN: 12000,
		Runs: 2000, Rounds: 40, Samples: 1000, Iters: 200000, Reps: 5, WaitBatch: 500,
		Slots: 1000, SupTotal: 3000, SupSleep: "0.2", SupRounds: 5,
	}
	quickConfig = config{
		ScaleNs: []int{50, 200}, CrashN: 300, CrashMaxThreads: 150,
		Runs: 100, Rounds: 4, Samples: 50, Iters: 20000, Reps: 3, WaitBatch: 30,
		Slots: 100, SupTotal: 300, SupSleep: "0.2", SupRounds: 2,
	}
)

// The targets, pexec against os/exec measured in the same run (issue #13).
const (
	targetThroughput  = 1.00 // spawn+wait runs/s ratio, at least
	stretchThroughput = 1.03 // printed, not judged
	targetLatencyP50  = 1.05 // exit-notice latency p50 ratio, at most
	targetCmdWait     = 1.10 // Cmd.Wait on an exited child, ns/op ratio, at most
	targetAliveNs     = 1000 // Handle.Alive, ns/op, below (and 0 allocs)
	targetSupervisor  = 1.10 // supervisor runs/s ratio, at least
	threadSlack       = 16   // pexec's OS threads at most GOMAXPROCS + threadSlack
)

// result is everything one run measured; -json prints it.
type result struct {
	Date       string           `json:"date"`
	Kernel     string           `json:"kernel"`
	Go         string           `json:"go"`
	CPUs       int              `json:"cpus"`
	GOMAXPROCS int              `json:"gomaxprocs"`
	Quick      bool             `json:"quick"`
	Config     config           `json:"config"`
	Limits     []limitChange    `json:"limits"`
	Scale      []scaleOutcome   `json:"scale"`
	Throughput throughputResult `json:"throughput"`
	Latency    latencyResult    `json:"latency"`
	Supervisor supervisorResult `json:"supervisor"`
	Alive      map[string]cost  `json:"alive"` // os/exec: Process.Signal(0)
	Wait       waitCosts        `json:"wait"`
	Rows       []row            `json:"rows"`
	Targets    []target         `json:"targets"`
	Notes      []string         `json:"notes,omitempty"`
	Pass       bool             `json:"pass"`
}

// row is one line of the table.
type row struct {
	Measurement string `json:"measurement"`
	OSExec      string `json:"os_exec"`
	Pexec       string `json:"pexec"`
	Ratio       string `json:"ratio"` // pexec / os/exec
	Target      string `json:"target,omitempty"`
}

// target is one of the targets and whether this run met it.
type target struct {
	Name     string  `json:"name"`
	Measured string  `json:"measured"`
	Ratio    float64 `json:"ratio,omitempty"`
	Pass     bool    `json:"pass"`
}

// phases, in the order they run.
var phases = []string{"costs", "throughput", "latency", "supervisor", "scale"}

// run is the program; it returns the exit status: 0 if every target is
// met, 1 if one is not, 2 if the benchmark could not run.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	asJSON := fs.Bool("json", false, "print the results as JSON instead of the table")
	quick := fs.Bool("quick", false, "small smoke run (its numbers are not the benchmark's)")
	only := fs.String("only", strings.Join(phases, ","), "comma-separated phases to run (targets of the others are not judged)")
	runs := fs.Int("runs", 1, "repeat the throughput and latency phases `N` times and print the spread of their ratios")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "bench: unexpected arguments %q\n", fs.Args())
		return 2
	}
	cfg := fullConfig
	if *quick {
		cfg = quickConfig
	}
	if *runs < 1 {
		fmt.Fprintf(stderr, "bench: -runs %d: want at least 1\n", *runs)
		return 2
	}
	cfg.Repeats = *runs
	want := map[string]bool{}
	for _, p := range strings.Split(*only, ",") {
		if !slices.Contains(phases, p) {
			fmt.Fprintf(stderr, "bench: unknown phase %q (phases: %s)\n", p, strings.Join(phases, ","))
			return 2
		}
		want[p] = true
	}
	if *runs > 1 && !want["throughput"] && !want["latency"] {
		fmt.Fprintf(stderr, "bench: -runs repeats the throughput and latency phases, and -only %s selects neither\n", *only)
		return 2
	}
	res, err := measure(ctx, cfg, *quick, want, func(format string, a ...any) {
		fmt.Fprintf(stderr, "bench: "+format+"\n", a...)
	})
	if err != nil {
		fmt.Fprintf(stderr, "bench: %v\n", err)
		return 2
	}
	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		enc.Encode(res)
	} else {
		printTable(stdout, res)
	}
	if !res.Pass {
		return 1
	}
	return 0
}

// measure runs the wanted phases. Errors that stop the benchmark are
// returned; a library failing a scale run is a result, not an error.
func measure(ctx context.Context, cfg config, quick bool, want map[string]bool, logf func(string, ...any)) (*result, error) {
	res := &result{
		Date:       time.Now().UTC().Format("2006-01-02 15:04 MST"),
		Kernel:     kernelRelease(),
		Go:         runtime.Version(),
		CPUs:       runtime.NumCPU(),
		GOMAXPROCS: runtime.GOMAXPROCS(0),
		Quick:      quick,
		Config:     cfg,
	}
	sleep, err := exec.LookPath("sleep")
	if err != nil {
		return nil, err
	}
	truePath, err := exec.LookPath("true")
	if err != nil {
		return nil, err
	}
	echoChild := []string{"/bin/sh", "-c", "printf x"}
	if p, err := exec.LookPath("echo"); err == nil {
		echoChild = []string{p, "-n", "x"}
	}

	if want["costs"] {
		logf("per-call costs: Alive vs Signal(0); Wait on exited children, %d per batch", cfg.WaitBatch)
		if res.Alive, err = liveCosts(sleep, cfg.Iters, cfg.Reps); err != nil {
			return nil, err
		}
		if res.Wait, err = measureWaitCosts(truePath, cfg.WaitBatch, cfg.Iters, cfg.Reps); err != nil {
			return nil, err
		}
		if err := ctx.Err(); err != nil {
			return nil, err
		}
	}
	// -runs: the two phases take turns, so that drift falls on both.
	var tps []throughputResult
	var lats []latencyResult
	for i := range cfg.Repeats {
		if cfg.Repeats > 1 && (want["throughput"] || want["latency"]) {
			logf("run %d of %d", i+1, cfg.Repeats)
		}
		if want["throughput"] {
			logf("spawn-and-wait throughput: %s, %d runs per library in %d alternating rounds", truePath, cfg.Runs, cfg.Rounds)
			tp, err := measureThroughput(ctx, truePath, cfg.Runs, cfg.Rounds)
			if err != nil {
				return nil, err
			}
			tps = append(tps, tp)
		}
		if want["latency"] {
			logf("exit-notice latency: %v, %d samples per library, alternating", echoChild, cfg.Samples)
			lat, err := measureLatency(ctx, echoChild, cfg.Samples)
			if err != nil {
				return nil, err
			}
			lats = append(lats, lat)
		}
	}
	res.Throughput = combineThroughput(tps)
	res.Latency = combineLatency(lats)

	if want["supervisor"] || want["scale"] {
		// Orphans of a crashed role process come to us, to be reaped.
		if err := becomeSubreaper(); err != nil {
			return nil, err
		}
		need := cfg.Slots
		if want["scale"] {
			need = max(need, cfg.CrashN)
		}
		limits, restore, err := raiseLimits(need)
		defer restore()
		if err != nil {
			return nil, err
		}
		res.Limits = limits
		for _, l := range limits {
			logf("limit: %s", l)
		}
	}
	if want["supervisor"] {
		logf("supervisor: %d slots cycling `%s %s` until %d runs, %d rounds per library in alternating subprocesses",
			cfg.Slots, sleep, cfg.SupSleep, cfg.SupTotal, cfg.SupRounds)
		if res.Supervisor, err = measureSupervisor(ctx, sleep, cfg.Slots, cfg.SupTotal, cfg.SupRounds, cfg.SupSleep, logf); err != nil {
			return nil, err
		}
	}
	if want["scale"] {
		for _, n := range append(slices.Clone(cfg.ScaleNs), cfg.CrashN) {
			maxThreads := 0
			if n == cfg.CrashN {
				maxThreads = cfg.CrashMaxThreads
			}
			for _, lib := range []string{libOSExec, libPexec} {
				logf("scale: %s, %d sleeping children waited for at once", lib, n)
				out := runScale(ctx, lib, n, maxThreads, sleep)
				logf("scale: %s, N=%d: %s", lib, n, out.Ended)
				res.Scale = append(res.Scale, out)
				if err := ctx.Err(); err != nil {
					return nil, err
				}
			}
		}
	}
	judge(res)
	return res, nil
}

func kernelRelease() string {
	var u unix.Utsname
	if err := unix.Uname(&u); err != nil {
		return "?"
	}
	return unix.ByteSliceToString(u.Release[:])
}

// judge builds the table and checks the targets of the phases that ran.
func judge(res *result) {
	if len(res.Scale) > 0 {
		judgeScale(res)
	}
	if tp := res.Throughput; tp.Runs > 0 {
		pass := tp.Ratio >= targetThroughput
		stretch := fmt.Sprintf("stretch >= %.2f ", stretchThroughput)
		if tp.Ratio >= stretchThroughput {
			stretch += "reached"
		} else {
			stretch += "not reached"
		}
		label := fmt.Sprintf("spawn+wait /bin/true, runs/s (%s runs each; ratio: median of %d paired rounds)", commas(int64(tp.Runs)), tp.Rounds)
		if tp.Spread != nil {
			label = fmt.Sprintf("spawn+wait /bin/true, runs/s (%s runs each; ratio: median of %d runs, each the median of %d paired rounds)", commas(int64(tp.Runs)), len(tp.Spread.Ratios), tp.Rounds)
		}
		res.Rows = append(res.Rows, row{
			label,
			fmt.Sprintf("%.0f", tp.RunsPerSec[libOSExec]), fmt.Sprintf("%.0f", tp.RunsPerSec[libPexec]),
			fmt.Sprintf("%.3f", tp.Ratio), fmt.Sprintf("%s >= %.2f (%s)", verdict(pass), targetThroughput, stretch),
		})
		res.Targets = append(res.Targets, target{
			Name:     fmt.Sprintf("spawn-and-wait throughput >= %.2fx os/exec", targetThroughput),
			Measured: fmt.Sprintf("%.3fx (%s)", tp.Ratio, stretch),
			Ratio:    tp.Ratio, Pass: pass,
		})
	}
	if lat := res.Latency; lat.Samples > 0 {
		p50 := lat.P50Ratio
		p99 := float64(lat.P99[libPexec]) / float64(lat.P99[libOSExec])
		pass := p50 <= targetLatencyP50
		label := fmt.Sprintf("exit-notice latency p50 (%s samples each)", commas(int64(lat.Samples)))
		if lat.Spread != nil {
			label = fmt.Sprintf("exit-notice latency p50 (%s samples each; median of %d runs)", commas(int64(lat.Samples)), len(lat.Spread.Ratios))
		}
		res.Rows = append(res.Rows,
			row{label, usCell(lat.P50[libOSExec]), usCell(lat.P50[libPexec]), fmt.Sprintf("%.3f", p50), fmt.Sprintf("%s <= %.2f", verdict(pass), targetLatencyP50)},
			row{"exit-notice latency p99", usCell(lat.P99[libOSExec]), usCell(lat.P99[libPexec]), fmt.Sprintf("%.3f", p99), ""})
		res.Targets = append(res.Targets, target{
			Name:     fmt.Sprintf("exit-notice latency p50 <= %.2fx os/exec", targetLatencyP50),
			Measured: fmt.Sprintf("%.3fx (%s vs %s)", p50, usCell(lat.P50[libPexec]), usCell(lat.P50[libOSExec])),
			Ratio:    p50, Pass: pass,
		})
	}
	if sup := res.Supervisor; sup.Rounds > 0 || sup.Failed != "" {
		judgeSupervisor(res)
	}
	if res.Alive != nil {
		ao, ap := res.Alive[libOSExec], res.Alive[libPexec]
		pass := ap.NsPerOp < targetAliveNs && ap.AllocsPerOp == 0
		res.Rows = append(res.Rows,
			row{"liveness check, ns/op: Signal(0) | Alive()", nsCell(ao.NsPerOp), nsCell(ap.NsPerOp), fmt.Sprintf("%.3f", ap.NsPerOp/ao.NsPerOp), verdict(ap.NsPerOp < targetAliveNs) + " < " + nsCell(targetAliveNs)},
			row{"liveness check, allocs/op", allocCell(ao.AllocsPerOp), allocCell(ap.AllocsPerOp), "", verdict(ap.AllocsPerOp == 0) + " = 0"})
		res.Targets = append(res.Targets, target{Name: "Alive() < 1µs and 0 allocs", Measured: fmt.Sprintf("%s, %s allocs/op", nsCell(ap.NsPerOp), allocCell(ap.AllocsPerOp)), Pass: pass})

		w := res.Wait
		o, p := w.CmdWait[libOSExec], w.CmdWait[libPexec]
		ratio := p.NsPerOp / o.NsPerOp
		pass = ratio <= targetCmdWait
		res.Rows = append(res.Rows,
			row{fmt.Sprintf("Cmd.Wait on an exited child (reaps), ns/op (median of %d batches)", w.Batches), nsCell(o.NsPerOp), nsCell(p.NsPerOp), fmt.Sprintf("%.3f", ratio), fmt.Sprintf("%s <= %.2f", verdict(pass), targetCmdWait)},
			row{"Cmd.Wait on an exited child (reaps), allocs/op", allocCell(o.AllocsPerOp), allocCell(p.AllocsPerOp), "", ""})
		res.Targets = append(res.Targets, target{
			Name:     fmt.Sprintf("Cmd.Wait on an exited child <= %.2fx os/exec, ns/op", targetCmdWait),
			Measured: fmt.Sprintf("%.3fx (%s vs %s)", ratio, nsCell(p.NsPerOp), nsCell(o.NsPerOp)),
			Ratio:    ratio, Pass: pass,
		})
		o, p = w.FirstWait[libOSExec], w.FirstWait[libPexec]
		name := "Process.Wait | Handle.Wait, first call on an exited child"
		res.Rows = append(res.Rows,
			row{name + ", ns/op", nsCell(o.NsPerOp), nsCell(p.NsPerOp), fmt.Sprintf("%.3f", p.NsPerOp/o.NsPerOp), ""},
			row{name + ", allocs/op", allocCell(o.AllocsPerOp), allocCell(p.AllocsPerOp), "", ""})
		res.Rows = append(res.Rows,
			row{"Handle.Wait again (status cached), ns/op", "n/a", nsCell(w.CachedWait.NsPerOp), "", ""},
			row{"Handle.Wait again (status cached), allocs/op", "n/a", allocCell(w.CachedWait.AllocsPerOp), "", ""})
	}
	res.Pass = len(res.Targets) > 0
	for _, t := range res.Targets {
		res.Pass = res.Pass && t.Pass
	}
}

// judgeScale adds the scale rows and their two targets.
func judgeScale(res *result) {
	cfg := res.Config
	scale := func(lib string, n int) scaleOutcome {
		for _, o := range res.Scale {
			if o.Lib == lib && o.N == n {
				return o
			}
		}
		return scaleOutcome{Lib: lib, N: n, Ended: "not run"}
	}
	threadsOK := true
	var worst int64 = -1
	worstAt := ""
	limit := int64(res.GOMAXPROCS + threadSlack)
	for _, n := range append(slices.Clone(cfg.ScaleNs), cfg.CrashN) {
		o, p := scale(libOSExec, n), scale(libPexec, n)
		if p.Report != nil {
			limit = int64(p.Report.GOMAXPROCS + threadSlack)
		}
		// Threads are judged wherever they were measured, also when a run
		// stopped short of N (the completion target covers that).
		ok := p.Report != nil && p.Report.Threads > 0 && p.Report.Threads <= limit
		threadsOK = threadsOK && ok
		if p.Report != nil && p.Report.Threads > worst {
			worst, worstAt = p.Report.Threads, commas(int64(p.Report.Started))
		}
		label := "N=" + commas(int64(n))
		if n == cfg.CrashN && cfg.CrashMaxThreads > 0 {
			label += fmt.Sprintf(" (thread limit %d)", cfg.CrashMaxThreads)
		}
		res.Rows = append(res.Rows,
			row{"OS threads, " + label + " children waited", threadsCell(o), threadsCell(p), ratioCell(threadsOf(p), threadsOf(o)),
				fmt.Sprintf("%s <= GOMAXPROCS+%d = %d", verdict(ok), threadSlack, limit)},
			row{"peak RSS (VmHWM), " + label, rssCell(o), rssCell(p), ratioCell(rssOf(p), rssOf(o)), ""})
		if n != cfg.CrashN {
			continue
		}
		pass := p.Completed && !o.Completed
		res.Rows = append(res.Rows, row{"outcome, " + label, outcomeCell(o), outcomeCell(p), "", verdict(pass) + " pexec completes, os/exec cannot"})
		res.Targets = append(res.Targets, target{
			Name:     fmt.Sprintf("pexec completes N=%s where os/exec cannot", commas(int64(n))),
			Measured: fmt.Sprintf("os/exec %s; pexec %s", outcomeCell(o), outcomeCell(p)),
			Pass:     pass,
		})
		for _, x := range []scaleOutcome{o, p} {
			if !x.Completed {
				res.Notes = append(res.Notes, fmt.Sprintf("%s at N=%s: %s, after starting %s children", x.Lib, commas(int64(n)), x.Ended, commas(int64(x.Started))))
			}
		}
	}
	measured := "no pexec run measured"
	if worst >= 0 {
		measured = fmt.Sprintf("max %d (with %s children)", worst, worstAt)
	}
	res.Targets = append([]target{{
		Name:     fmt.Sprintf("pexec threads <= GOMAXPROCS+%d (%d) at every N", threadSlack, limit),
		Measured: measured,
		Pass:     threadsOK,
	}}, res.Targets...)
}

// judgeSupervisor adds the supervisor rows and their two targets.
func judgeSupervisor(res *result) {
	sup := res.Supervisor
	gomaxprocs := sup.GOMAXPROCS
	if gomaxprocs == 0 {
		gomaxprocs = res.GOMAXPROCS
	}
	limit := int64(gomaxprocs + threadSlack)
	label := fmt.Sprintf("supervisor: %s slots cycling sleep %s, %s runs", commas(int64(sup.Slots)), sup.Sleep, commas(int64(sup.Total)))
	if sup.Failed != "" {
		res.Rows = append(res.Rows, row{label, "", "", "", "FAIL: " + sup.Failed})
		res.Notes = append(res.Notes, "supervisor phase stopped: "+sup.Failed)
		res.Targets = append(res.Targets,
			target{Name: fmt.Sprintf("supervisor throughput >= %.2fx os/exec", targetSupervisor), Measured: "not measured: " + sup.Failed},
			target{Name: fmt.Sprintf("supervisor: pexec threads <= GOMAXPROCS+%d (%d)", threadSlack, limit), Measured: "not measured: " + sup.Failed})
		return
	}
	ratioPass := sup.Ratio >= targetSupervisor
	pt, ot := sup.Threads[libPexec], sup.Threads[libOSExec]
	threadsPass := pt > 0 && pt <= limit
	rss := func(lib string) string { return fmt.Sprintf("%.1f MiB", float64(sup.PeakRSSKiB[lib])/1024) }
	res.Rows = append(res.Rows,
		row{fmt.Sprintf("%s, runs/s (ratio: median of %d paired rounds)", label, sup.Rounds),
			fmt.Sprintf("%.0f", sup.RunsPerSec[libOSExec]), fmt.Sprintf("%.0f", sup.RunsPerSec[libPexec]),
			fmt.Sprintf("%.3f", sup.Ratio), fmt.Sprintf("%s >= %.2f", verdict(ratioPass), targetSupervisor)},
		row{"supervisor: children started, not yet waited for (most at once, any round)", commas(sup.MaxLive[libOSExec]), commas(sup.MaxLive[libPexec]), "", ""},
		row{"supervisor: OS threads (most seen in any round)", commas(ot), commas(pt), ratioCell(float64(pt), float64(ot)),
			fmt.Sprintf("%s <= GOMAXPROCS+%d = %d", verdict(threadsPass), threadSlack, limit)},
		row{"supervisor: peak RSS (VmHWM, most of any round)", rss(libOSExec), rss(libPexec),
			ratioCell(float64(sup.PeakRSSKiB[libPexec]), float64(sup.PeakRSSKiB[libOSExec])), ""})
	res.Targets = append(res.Targets,
		target{
			Name:     fmt.Sprintf("supervisor throughput >= %.2fx os/exec", targetSupervisor),
			Measured: fmt.Sprintf("%.3fx (%.0f vs %.0f runs/s)", sup.Ratio, sup.RunsPerSec[libPexec], sup.RunsPerSec[libOSExec]),
			Ratio:    sup.Ratio, Pass: ratioPass,
		},
		target{
			Name:     fmt.Sprintf("supervisor: pexec threads <= GOMAXPROCS+%d (%d)", threadSlack, limit),
			Measured: fmt.Sprintf("max %d (os/exec %d)", pt, ot),
			Pass:     threadsPass,
		})
}

func verdict(ok bool) string {
	if ok {
		return "PASS"
	}
	return "FAIL"
}

func threadsOf(o scaleOutcome) float64 {
	if !o.Completed {
		return -1
	}
	return float64(o.Report.Threads)
}

func rssOf(o scaleOutcome) float64 {
	if !o.Completed {
		return -1
	}
	return float64(o.Report.PeakRSSKiB)
}

// partial says at how many children a run that stopped short was measured.
func partial(o scaleOutcome) string {
	if o.Completed {
		return ""
	}
	return fmt.Sprintf(" (%s: at %s)", shortEnd(o), commas(int64(o.Report.Started)))
}

func threadsCell(o scaleOutcome) string {
	if o.Report == nil || o.Report.Threads <= 0 {
		return shortEnd(o)
	}
	return commas(o.Report.Threads) + partial(o)
}

func rssCell(o scaleOutcome) string {
	if o.Report == nil || o.Report.PeakRSSKiB <= 0 {
		return shortEnd(o)
	}
	return fmt.Sprintf("%.1f MiB", float64(o.Report.PeakRSSKiB)/1024) + partial(o)
}

func outcomeCell(o scaleOutcome) string {
	if o.Completed {
		return "completed"
	}
	return shortEnd(o)
}

// shortEnd names how a scale run failed, briefly (the notes say more).
func shortEnd(o scaleOutcome) string {
	switch {
	case strings.Contains(o.Ended, "-thread limit"):
		return "crashed: thread limit"
	case strings.HasPrefix(o.Ended, "crashed"):
		return "crashed"
	case strings.HasPrefix(o.Ended, "timed out"):
		return "timed out"
	case strings.Contains(o.Ended, "too many open files"):
		return "failed: EMFILE"
	}
	return "failed"
}

func ratioCell(p, o float64) string {
	if p < 0 || o <= 0 {
		return "-"
	}
	return fmt.Sprintf("%.3f", p/o)
}

func usCell(d time.Duration) string { return fmt.Sprintf("%.1f µs", float64(d)/1e3) }

func nsCell(ns float64) string {
	if ns < 100 {
		return fmt.Sprintf("%.1f ns", ns)
	}
	return fmt.Sprintf("%s ns", commas(int64(ns+0.5)))
}

func allocCell(a float64) string {
	if a == float64(int64(a)) {
		return fmt.Sprint(int64(a))
	}
	return fmt.Sprintf("%.2f", a)
}

// commas formats n with thousands separators.
func commas(n int64) string {
	s := fmt.Sprint(n)
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	var b strings.Builder
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	if neg {
		return "-" + b.String()
	}
	return b.String()
}

// printTable prints the run as one table, with the machine above it and the
// verdict below.
func printTable(w io.Writer, res *result) {
	title := "pexec vs os/exec"
	if res.Quick {
		title += " (-quick smoke run: small N, not the benchmark's numbers)"
	}
	fmt.Fprintf(w, "%s: %s, linux %s, %s, %d CPUs, GOMAXPROCS %d\n", title, res.Date, res.Kernel, res.Go, res.CPUs, res.GOMAXPROCS)
	var lim []string
	for _, l := range res.Limits {
		lim = append(lim, l.String())
	}
	if len(lim) == 0 {
		lim = append(lim, "untouched (scale phase not run)")
	}
	fmt.Fprintf(w, "limits: %s\n\n", strings.Join(lim, "; "))

	cells := [][]string{{"measurement", "os/exec", "pexec", "pexec/os", "target"}}
	for _, r := range res.Rows {
		cells = append(cells, []string{r.Measurement, r.OSExec, r.Pexec, r.Ratio, r.Target})
	}
	width := make([]int, 5)
	for _, c := range cells {
		for i, s := range c {
			width[i] = max(width[i], len([]rune(s)))
		}
	}
	line := func(c []string) {
		var b strings.Builder
		for i, s := range c {
			pad := width[i] - len([]rune(s))
			switch {
			case i == 0:
				b.WriteString(s + strings.Repeat(" ", pad))
			case i == len(c)-1:
				b.WriteString("  " + s)
			default:
				b.WriteString("  " + strings.Repeat(" ", pad) + s)
			}
		}
		fmt.Fprintln(w, strings.TrimRight(b.String(), " "))
	}
	line(cells[0])
	var rule []string
	for _, n := range width {
		rule = append(rule, strings.Repeat("-", n))
	}
	line(rule)
	for _, c := range cells[1:] {
		line(c)
	}
	fmt.Fprintln(w)
	if sp := res.Throughput.Spread; sp != nil {
		fmt.Fprintf(w, "spread over %d runs: spawn+wait throughput ratio %s; %d below %.2f, %d below the stretch %.2f\n",
			len(sp.Ratios), sp, sp.count(func(r float64) bool { return r < targetThroughput }), targetThroughput,
			sp.count(func(r float64) bool { return r < stretchThroughput }), stretchThroughput)
	}
	if sp := res.Latency.Spread; sp != nil {
		fmt.Fprintf(w, "spread over %d runs: exit-notice latency p50 ratio %s; %d above %.2f\n",
			len(sp.Ratios), sp, sp.count(func(r float64) bool { return r > targetLatencyP50 }), targetLatencyP50)
	}
	if res.Throughput.Spread != nil || res.Latency.Spread != nil {
		fmt.Fprintln(w)
	}
	for _, n := range res.Notes {
		fmt.Fprintf(w, "note: %s\n", n)
	}
	failed := 0
	for _, t := range res.Targets {
		fmt.Fprintf(w, "%s  %s: %s\n", verdict(t.Pass), t.Name, t.Measured)
		if !t.Pass {
			failed++
		}
	}
	if failed == 0 {
		fmt.Fprintf(w, "all %d targets met\n", len(res.Targets))
	} else {
		fmt.Fprintf(w, "%d of %d targets FAILED\n", failed, len(res.Targets))
	}
}
