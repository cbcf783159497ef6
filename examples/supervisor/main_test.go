//go:build linux

package main

import (
	"bytes"
	"context"
	"os"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// TestMain lets the test binary play the supervisor and its workers.
func TestMain(m *testing.M) {
	switch os.Getenv(roleEnv) {
	case "supervisor":
		os.Exit(supervisorMain())
	case "worker":
		os.Exit(workerMain())
	}
	os.Exit(m.Run())
}

// timelines turns the events into one timeline per process tree member
// ("supervisor", "w1", ...), each entry "what#generation detail", where the
// generation numbers a worker's successive processes (1, 2, ...).
func timelines(out *Outcome) map[string][]string {
	type gen struct {
		name string
		n    int
	}
	gens := map[int]gen{} // worker PID -> its name and generation
	count := map[string]int{}
	tl := map[string][]string{}
	for _, e := range out.Events {
		name := e.Worker
		switch {
		case e.What == "up" || e.What == "died":
			tl["supervisor"] = append(tl["supervisor"], strings.TrimSpace(e.What+" "+e.Detail))
			continue
		case e.What == "ready":
			count[name]++
			gens[e.Pid] = gen{name, count[name]}
		case name == "":
			name = gens[e.Pid].name // director events name only the PID
		}
		g, ok := gens[e.Pid]
		if !ok || g.name != name {
			tl[name] = append(tl[name], "unknown pid "+strconv.Itoa(e.Pid)+": "+e.What)
			continue
		}
		entry := e.What + "#" + strconv.Itoa(g.n)
		switch e.What {
		case "crashed", "kill", "stopped", "reaped":
			entry += " " + e.Detail
		}
		tl[name] = append(tl[name], entry)
	}
	return tl
}

// TestScenario plays the example's scenario and checks what happened: the
// crash was noticed and the worker restarted, the hung worker got SIGTERM
// then SIGKILL, and after the supervisor was killed every orphan left by
// itself and no process survived.
func TestScenario(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	var buf bytes.Buffer
	out, err := scenario(ctx, &buf)
	if err != nil {
		t.Fatalf("scenario: %v\noutput:\n%s", err, &buf)
	}
	want := map[string][]string{
		"supervisor": {"up", "died signal: killed"},
		"w1": {
			"ready#1", "crashed#1 exit status 3", // the crash is noticed...
			"ready#2", // ...and the worker restarted
			"orphaned#2", "reaped#2 exit status 0",
		},
		"w2": {
			"ready#1", "hanging#1",
			"term#1", "kill#1 " + termTimeout.String(), "stopped#1 signal: killed", // TERM, then KILL
			"ready#2",
			"orphaned#2", "reaped#2 exit status 0",
		},
		"w3": {"ready#1", "orphaned#1", "reaped#1 exit status 0"},
	}
	if diff := cmp.Diff(want, timelines(out)); diff != "" {
		t.Errorf("events (-want +got):\n%s\noutput:\n%s", diff, &buf)
	}
	if len(out.Leftover) > 0 {
		t.Errorf("processes survived: %v", out.Leftover)
	}
}

// TestShutdown stops the supervisor with SIGTERM: it stops each worker with
// SIGTERM (they comply), then exits, leaving nothing behind.
func TestShutdown(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	var buf bytes.Buffer
	d, sup, _, err := launch(ctx, &buf)
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		if sup.ProcessState == nil {
			sup.Handle().Kill()
			sup.Wait()
		}
	}()
	if _, err := d.expect(ctx, Event{What: "ready", Worker: "w1"}, Event{What: "ready", Worker: "w2"}, Event{What: "ready", Worker: "w3"}); err != nil {
		t.Fatalf("%v\noutput:\n%s", err, &buf)
	}
	if err := sup.Handle().Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if _, err := d.expect(ctx, Event{What: "stopped", Worker: "w1"}, Event{What: "stopped", Worker: "w2"}, Event{What: "stopped", Worker: "w3"}); err != nil {
		t.Fatalf("%v\noutput:\n%s", err, &buf)
	}
	if err := d.supervisorEnded(sup); err != nil {
		t.Fatalf("%v\noutput:\n%s", err, &buf)
	}
	if err := d.finish(ctx); err != nil {
		t.Fatalf("%v\noutput:\n%s", err, &buf)
	}
	got := timelines(d.out)
	for name, tl := range got {
		if name != "supervisor" {
			sort.Strings(tl) // a worker's "leaving" and the supervisor's "term" race
		}
	}
	stopped := []string{"leaving#1", "ready#1", "stopped#1 exit status 0", "term#1"}
	want := map[string][]string{
		"supervisor": {"up", "died exit status 0"},
		"w1":         stopped, "w2": stopped, "w3": stopped,
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("events (-want +got):\n%s\noutput:\n%s", diff, &buf)
	}
}
