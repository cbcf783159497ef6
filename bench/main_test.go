//go:build linux

package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"strings"
	"testing"
	"time"
)

// TestMain lets the test binary play the benchmark's re-executed roles.
func TestMain(m *testing.M) {
	if role := os.Getenv(roleEnv); role != "" {
		os.Exit(runRole(role))
	}
	os.Exit(m.Run())
}

// TestQuick runs the benchmark's smoke version end to end and checks what
// does not depend on timing: every row is there, os/exec meets the (lowered)
// thread limit where pexec completes, and pexec's thread count stays flat,
// with children waited for at once and with children cycling (supervisor).
// The timing targets are the benchmark's business, not this test's.
func TestQuick(t *testing.T) {
	if testing.Short() {
		t.Skip("starts about a thousand processes")
	}
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Minute)
	defer cancel()
	var stdout, stderr bytes.Buffer
	code := run(ctx, []string{"-quick", "-json"}, &stdout, &stderr)
	if code == 2 {
		t.Fatalf("bench -quick could not run:\n%s", &stderr)
	}
	var res result
	if err := json.Unmarshal(stdout.Bytes(), &res); err != nil {
		t.Fatalf("bench -quick -json: %v\n%s", err, &stdout)
	}
	var table bytes.Buffer
	printTable(&table, &res)
	t.Logf("exit status %d\n%s", code, &table)

	if got, want := len(res.Scale), 2*(len(quickConfig.ScaleNs)+1); got != want {
		t.Fatalf("%d scale runs, want %d", got, want)
	}
	if got, want := len(res.Supervisor.Runs), 2*quickConfig.SupRounds; got != want || res.Supervisor.Failed != "" {
		t.Fatalf("%d supervisor rounds, want %d (failed: %q)", got, want, res.Supervisor.Failed)
	}
	for _, r := range res.Supervisor.Runs {
		if r.Completed != quickConfig.SupTotal || r.Threads <= 0 || r.PeakRSSKiB <= 0 || r.MaxLive <= 0 || r.MaxLive > int64(quickConfig.Slots) {
			t.Errorf("supervisor round %+v: want %d runs completed, threads and VmHWM read, 1 to %d children alive at once", r, quickConfig.SupTotal, quickConfig.Slots)
		}
	}
	for _, name := range []string{"threads <= GOMAXPROCS", "completes"} {
		var found bool
		for _, tg := range res.Targets {
			if strings.Contains(tg.Name, name) {
				found = true
				if !tg.Pass {
					t.Errorf("target %q failed: %s", tg.Name, tg.Measured)
				}
			}
		}
		if !found {
			t.Errorf("no target about %q in %+v", name, res.Targets)
		}
	}
	// threads and completion at scale, throughput, latency, the supervisor's
	// throughput and threads, Alive, Cmd.Wait.
	if n := len(res.Targets); n != 8 {
		t.Errorf("%d targets judged, want 8", n)
	}
	for _, want := range []string{"OS threads", "peak RSS", "outcome", "spawn+wait", "stretch >= 1.03", "latency p50", "latency p99",
		"supervisor: 100 slots", "supervisor: children started, not yet waited", "supervisor: OS threads", "supervisor: peak RSS", "liveness", "Cmd.Wait on an exited child", "status cached"} {
		if !strings.Contains(table.String(), want) {
			t.Errorf("table has no %q row", want)
		}
	}
	if res.Alive[libPexec].AllocsPerOp != 0 {
		t.Errorf("Alive allocates: %v allocs/op", res.Alive[libPexec].AllocsPerOp)
	}
}

// TestRuns checks -runs: the throughput and latency phases run that many
// times and their spread is printed.
func TestRuns(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a few hundred processes")
	}
	var stdout, stderr bytes.Buffer
	code := run(t.Context(), []string{"-quick", "-json", "-only", "throughput,latency", "-runs", "3"}, &stdout, &stderr)
	if code == 2 {
		t.Fatalf("bench -quick -runs 3 could not run:\n%s", &stderr)
	}
	var res result
	if err := json.Unmarshal(stdout.Bytes(), &res); err != nil {
		t.Fatalf("bench -json: %v\n%s", err, &stdout)
	}
	for name, sp := range map[string]*spread{"throughput": res.Throughput.Spread, "latency": res.Latency.Spread} {
		if sp == nil || len(sp.Ratios) != 3 || sp.Min > sp.Median || sp.Median > sp.Max {
			t.Errorf("%s spread %+v, want 3 ordered ratios", name, sp)
		}
	}
	if res.Throughput.Ratio != res.Throughput.Spread.Median || res.Latency.P50Ratio != res.Latency.Spread.Median {
		t.Errorf("ratios %v, %v are not the medians of the runs", res.Throughput.Ratio, res.Latency.P50Ratio)
	}
	if n := len(res.Targets); n != 2 {
		t.Errorf("%d targets judged, want 2: %+v", n, res.Targets)
	}
	var table bytes.Buffer
	printTable(&table, &res)
	t.Logf("exit status %d\n%s", code, &table)
	for _, want := range []string{"spread over 3 runs: spawn+wait throughput ratio min", "spread over 3 runs: exit-notice latency p50 ratio min", "median of 3 runs"} {
		if !strings.Contains(table.String(), want) {
			t.Errorf("table has no %q", want)
		}
	}
}

// TestBadFlags checks that what cannot be run is refused before anything
// starts, with status 2.
func TestBadFlags(t *testing.T) {
	for _, args := range [][]string{
		{"-runs", "0"},
		{"-runs", "10", "-only", "costs,scale"},
		{"-only", "nosuchphase"},
		{"extra"},
	} {
		t.Run(strings.Join(args, " "), func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			if code := run(t.Context(), args, &stdout, &stderr); code != 2 {
				t.Errorf("exit status %d, want 2 (stderr %q)", code, &stderr)
			}
			if stdout.Len() > 0 || stderr.Len() == 0 {
				t.Errorf("stdout %q, stderr %q: want only an error on stderr", &stdout, &stderr)
			}
		})
	}
}
