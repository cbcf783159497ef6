//go:build linux

package main

import (
	"bytes"
	"context"
	"errors"
	"os"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/pexec-dev/pexec/pexec"
)

// TestMain lets the test binary play the supervisor and its workers.
func TestMain(m *testing.M) {
	switch os.Getenv(roleEnv) {
	case "supervisor":
		os.Exit(supervisorMain())
	case "worker":
		os.Exit(workerMain())
	case "grandchild":
		os.Exit(grandchildMain())
	}
	os.Exit(m.Run())
}

// timelines turns the events into one timeline per process tree member
// ("supervisor", "w1", ..., "w2 child" for a worker's child), each entry
// "what#generation detail", where the generation numbers a worker's
// successive processes (1, 2, ...).
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
		case e.What == "grandchild":
			name += " child"
			gens[e.Pid] = gen{name, count[e.Worker]}
		case e.What == "gone" || e.What == "survived":
			name += " child"
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
		case "crashed", "stopped", "reaped", "gone", "survived":
			entry += " " + e.Detail
		case "stop":
			entry += " " + e.Tree
		}
		tl[name] = append(tl[name], entry)
	}
	return tl
}

// treeModes are the containments the tests run the workers with, each
// where the system allows it; TreeNone shows what they change.
var treeModes = []pexec.TreeMode{pexec.TreeCgroup, pexec.TreeGroup, pexec.TreeNone}

// skipTree skips t where mode cannot be used.
func skipTree(t *testing.T, mode pexec.TreeMode) {
	t.Helper()
	if err := pexec.TreeSupport(mode); err != nil {
		if os.Geteuid() == 0 && !errors.Is(err, errors.ErrUnsupported) {
			t.Fatalf("%v unusable as root: %v", mode, err)
		}
		t.Skip(err) // it names the mode: "cgroup: ..."
	}
}

// autoTree is what TreeAuto gives here.
func autoTree() pexec.TreeMode {
	if pexec.TreeSupport(pexec.TreeCgroup) == nil {
		return pexec.TreeCgroup
	}
	return pexec.TreeGroup
}

// TestScenario plays the example's scenario in each containment mode and
// checks what happened: the crash was noticed and the worker restarted;
// the hung worker was stopped with Handle.Stop (SIGTERM, then SIGKILL to
// its tree) and its child, which ignored SIGTERM too, died with it, as the
// director saw through the child's pidfd (without a tree the child
// survives, and the director kills it); after the supervisor was killed,
// every orphan left by itself and no process survived.
func TestScenario(t *testing.T) {
	for _, mode := range treeModes {
		t.Run(mode.String(), func(t *testing.T) {
			skipTree(t, mode)
			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			defer cancel()
			var buf bytes.Buffer
			out, err := scenario(ctx, &buf, mode)
			if err != nil {
				t.Fatalf("scenario: %v\noutput:\n%s", err, &buf)
			}
			child := "gone#1 signal: killed" // killed with w2, by the SIGKILL to its tree
			if mode == pexec.TreeNone {
				child = "survived#1 signal: killed" // killed by the director
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
					"stop#1 " + mode.String(), "stopped#1 signal: killed", // TERM, then KILL
					"ready#2",
					"orphaned#2", "reaped#2 exit status 0",
				},
				"w2 child": {"grandchild#1", child},
				"w3":       {"ready#1", "orphaned#1", "reaped#1 exit status 0"},
			}
			if diff := cmp.Diff(want, timelines(out)); diff != "" {
				t.Errorf("events (-want +got):\n%s\noutput:\n%s", diff, &buf)
			}
			if len(out.Leftover) > 0 {
				t.Errorf("processes survived: %v", out.Leftover)
			}
		})
	}
}

// TestShutdown stops the supervisor with SIGTERM: it stops each worker
// with Handle.Stop (they comply with the SIGTERM), then exits, leaving
// nothing behind. The workers have the default, TreeAuto.
func TestShutdown(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	var buf bytes.Buffer
	d, sup, _, err := launch(ctx, &buf, pexec.TreeAuto)
	if err != nil {
		t.Fatal(err)
	}
	defer stopped(sup)
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
			sort.Strings(tl) // a worker's "leaving" and the supervisor's "stop" race
		}
	}
	stop := []string{"leaving#1", "ready#1", "stop#1 " + autoTree().String(), "stopped#1 exit status 0"}
	want := map[string][]string{
		"supervisor": {"up", "died exit status 0"},
		"w1":         stop, "w2": stop, "w3": stop,
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("events (-want +got):\n%s\noutput:\n%s", diff, &buf)
	}
}
