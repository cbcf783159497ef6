//go:build linux

package main

import (
	"bytes"
	"context"
	"errors"
	"os"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// TestMain lets the test binary play the demo's re-executed roles.
func TestMain(m *testing.M) {
	if role := os.Getenv(roleEnv); role != "" {
		os.Exit(runRole(role))
	}
	os.Exit(m.Run())
}

// TestHandleRefusesAfterReap runs the part of the demo that needs no
// privilege: once the worker has been reaped, its Handle refuses to signal.
func TestHandleRefusesAfterReap(t *testing.T) {
	var out bytes.Buffer
	res, err := unprivileged(&out)
	if err != nil {
		t.Fatal(err)
	}
	got := Result{WorkerStatus: res.WorkerStatus, HandleErr: res.HandleErr, HandleRefused: res.HandleRefused}
	want := Result{WorkerStatus: "exit status 0", HandleErr: os.ErrProcessDone.Error(), HandleRefused: true}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("unprivileged part (-want +got):\n%s\noutput:\n%s", diff, &out)
	}
	if res.PID <= 0 {
		t.Errorf("worker PID = %d", res.PID)
	}
}

// TestForcedReuse runs the whole demo in a private PID namespace: the
// newcomer gets the worker's PID, the PID-based kill reaches it, and the
// worker's Handle refuses with os.ErrProcessDone without touching it.
func TestForcedReuse(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	var out bytes.Buffer
	res, err := inNamespace(ctx, &out)
	if errors.Is(err, errNoNamespace) {
		if os.Geteuid() != 0 {
			t.Skipf("forcing PID reuse needs root, or an unprivileged user namespace, which this system refuses: %v", err)
		}
		t.Skipf("running as root, but this system (a container without CAP_SYS_ADMIN?) cannot set up a PID namespace: %v", err)
	}
	if err != nil {
		t.Fatalf("demo failed: %v\noutput:\n%s", err, &out)
	}
	want := Result{
		Forced:         true,
		PID:            res.PID,
		WorkerStatus:   "exit status 0",
		HandleErr:      os.ErrProcessDone.Error(),
		HandleRefused:  true,
		NewcomerPID:    res.PID, // the newcomer got the worker's PID...
		Attempts:       res.Attempts,
		NewcomerAlive:  true,                 // ...the Handle did not touch it...
		KillErr:        "",                   // ...the PID-based kill reached it...
		NewcomerStatus: "signal: terminated", // ...and killed it.
	}
	if diff := cmp.Diff(want, *res); diff != "" {
		t.Errorf("demo outcome (-want +got):\n%s\noutput:\n%s", diff, &out)
	}
	t.Logf("output:\n%s", &out)
}

// TestDemoIsShort runs the demo as the README does and checks that it
// succeeds and stays readable at a glance.
func TestDemoIsShort(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	var out bytes.Buffer
	if _, err := demo(ctx, &out); err != nil {
		t.Fatalf("demo: %v\noutput:\n%s", err, &out)
	}
	if n := strings.Count(out.String(), "\n"); n > 12 {
		t.Errorf("demo printed %d lines, want at most 12:\n%s", n, &out)
	}
}
