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
// thread limit where pexec completes, and pexec's thread count stays flat.
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
	for _, name := range []string{"threads", "completes"} {
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
	if n := len(res.Targets); n != 5 {
		t.Errorf("%d targets judged, want 5", n)
	}
	for _, want := range []string{"OS threads", "peak RSS", "outcome", "spawn+wait", "latency p50", "latency p99", "liveness", "Cmd.Wait on an exited child", "status cached"} {
		if !strings.Contains(table.String(), want) {
			t.Errorf("table has no %q row", want)
		}
	}
	if res.Alive[libPexec].AllocsPerOp != 0 {
		t.Errorf("Alive allocates: %v allocs/op", res.Alive[libPexec].AllocsPerOp)
	}
}
