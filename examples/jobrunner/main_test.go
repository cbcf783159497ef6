package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/pexec-dev/pexec/pexec"
	"github.com/pexec-dev/pexec/pexectest"
)

// The helpers stand in for the jobs: the test binary, re-executed.
func init() {
	pexectest.Register("print", printJob)
	pexectest.Register("on-term", onTerm)
	pexectest.Register("ignore-term", ignoreTerm)
	pexectest.Register("leave", leave)
	pexectest.Register("hold", hold)
	pexectest.Register("nap", nap)
}

// TestMain runs the helpers, and the demo's jobs, in re-executions of the
// test binary, and fails the run if a test leaves a process behind (the
// test process adopts orphans, so a grandchild that outlives its job is
// seen).
func TestMain(m *testing.M) {
	if role := os.Getenv(demoEnv); role != "" {
		os.Exit(demoJob(role))
	}
	pexectest.Main(m)
}

// printJob prints its arguments after the first, one a line, to stdout
// (to stderr those that start with "!"), and exits with the code its first
// argument gives.
func printJob(args []string) int {
	for _, a := range args[1:] {
		if s, ok := strings.CutPrefix(a, "!"); ok {
			fmt.Fprintln(os.Stderr, s)
		} else {
			fmt.Println(a)
		}
	}
	code, _ := strconv.Atoi(args[0])
	return code
}

// onTerm is a job that cleans up on SIGTERM: it says "ready" once it
// handles SIGTERM, then waits for it, says so and exits with the code its
// argument gives.
func onTerm(args []string) int {
	stop := notifyStop()
	fmt.Println("ready")
	select {
	case sig := <-stop:
		fmt.Printf("got %s\n", sigName(sig))
	case <-time.After(maxLife):
		return 99
	}
	code, _ := strconv.Atoi(args[0])
	return code
}

// ignoreTerm is a job that ignores SIGTERM: it says "ready" once it
// catches SIGTERM, and then says so at each SIGTERM, until it is killed.
func ignoreTerm([]string) int {
	stop := notifyStop()
	fmt.Println("ready")
	deadline := time.After(maxLife)
	for {
		select {
		case sig := <-stop:
			fmt.Printf("got %s: ignoring it\n", sigName(sig))
		case <-deadline:
			return 99
		}
	}
}

// leave is a job that leaves a grandchild of the runner behind, holding
// its standard output: helper "hold", given args[0] ("term" or "ignore").
// With args[1] "setsid", the grandchild runs in a session of its own (out
// of a process-group tree). leave waits until the grandchild is ready, says
// so, and exits 0; with args[1] "wait", it waits for SIGTERM first.
func leave(args []string) int {
	mode, how := args[0], ""
	if len(args) > 1 {
		how = args[1]
	}
	c := pexectest.Command("hold", mode)
	c.Stdout = os.Stdout // the job's stdout, the runner's pipe
	if how == "setsid" {
		setsid(c)
	}
	ready, err := c.StderrPipe()
	if err == nil {
		err = c.Start()
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	if line, err := bufio.NewReader(ready).ReadString('\n'); line != "ready\n" {
		fmt.Fprintf(os.Stderr, "hold said %q: %v\n", line, err)
		return 1
	}
	fmt.Println("left a grandchild")
	if how == "wait" {
		select {
		case <-notifyStop():
		case <-time.After(maxLife):
			return 99
		}
	}
	return 0
}

// hold is the grandchild that leave leaves: it holds the job's standard
// output, says so, tells leave on stderr that it is ready, and waits: on
// SIGTERM it leaves with args[0] "term", and says it ignores it with
// "ignore", until it is killed.
func hold(args []string) int {
	stop := notifyStop()
	fmt.Println("hold: holding stdout")
	fmt.Fprintln(os.Stderr, "ready")
	deadline := time.After(maxLife)
	for {
		select {
		case sig := <-stop:
			if args[0] == "term" {
				fmt.Printf("hold: got %s\n", sigName(sig))
				return 0
			}
			fmt.Printf("hold: ignoring %s\n", sigName(sig))
		case <-deadline:
			return 99
		}
	}
}

// nap sleeps for the duration its argument gives, and exits 0.
func nap(args []string) int {
	d, err := time.ParseDuration(args[0])
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	time.Sleep(d)
	return 0
}

// helperJob returns the job called name that runs helper with args.
func helperJob(name string, timeout time.Duration, helper string, args ...string) Job {
	c := pexectest.Command(helper, args...)
	return Job{Name: name, Args: c.Args, Env: c.Env, Timeout: timeout}
}

// outcome is what the tests compare of a Result.
type outcome struct {
	Status                            string // the ProcessState's, "" without one
	TimedOut, Interrupted, LeftBehind bool
	Err                               string
}

func outcomeOf(r Result) outcome {
	o := outcome{TimedOut: r.TimedOut, Interrupted: r.Interrupted, LeftBehind: r.LeftBehind}
	if r.State != nil {
		o.Status = r.State.String()
	}
	if r.Err != nil {
		o.Err = r.Err.Error()
	}
	return o
}

// autoTree is the tree that TreeAuto gives here.
func autoTree() pexec.TreeMode {
	for _, m := range []pexec.TreeMode{pexec.TreeJob, pexec.TreeCgroup, pexec.TreeGroup} {
		if pexec.TreeSupport(m) == nil {
			return m
		}
	}
	return pexec.TreeNone
}

// output is the runner's Out in a test: it keeps what is written, and
// closes seen once a line is match.
type output struct {
	mu    sync.Mutex
	buf   bytes.Buffer
	match string
	once  sync.Once
	seen  chan struct{}
}

func newOutput(match string) *output { return &output{match: match, seen: make(chan struct{})} }

func (o *output) Write(p []byte) (int, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.match != "" && strings.TrimSuffix(string(p), "\n") == o.match {
		o.once.Do(func() { close(o.seen) })
	}
	return o.buf.Write(p)
}

func (o *output) String() string {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.buf.String()
}

// streams splits the runner's output by prefix: "[job]" for a job's
// standard output, "[job stderr]" for its standard error, each with its
// lines in the order they came.
func streams(out string) map[string][]string {
	m := map[string][]string{}
	for line := range strings.Lines(out) {
		prefix, text, ok := strings.Cut(strings.TrimSuffix(line, "\n"), "] ")
		if !ok || !strings.HasPrefix(prefix, "[") {
			m["unprefixed"] = append(m["unprefixed"], line)
			continue
		}
		m[prefix+"]"] = append(m[prefix+"]"], text)
	}
	return m
}

const (
	grace    = 300 * time.Millisecond // the Runner's Grace in the tests
	timeout  = 3 * time.Second        // the timeout of the jobs that outlive it
	noExpiry = time.Minute            // the timeout of the jobs that end first
)

// TestRunner runs jobs played by helpers and checks how each ended, what
// it printed, with which prefix, and that nothing of it is left. The jobs
// that outlive their timeout are stopped gracefully first (their SIGTERM
// handler runs), and killed after the grace if they ignore SIGTERM; a
// grandchild that holds a job's output open, left behind or ignoring
// SIGTERM, does not hold up the runner, and is gone when it returns. The
// rows run in parallel; the leak check follows them all.
func TestRunner(t *testing.T) {
	missing := filepath.Join("no-such-dir", "no-such-program")
	notFound := pexec.Command(missing).Start()
	if notFound == nil {
		t.Fatalf("%s started", missing)
	}
	tests := []struct {
		name        string
		parallel    int // the Runner's Parallel; 0: 4
		jobs        []Job
		interruptOn string // the line on which the test interrupts the runner
		graceful    bool   // needs a graceful step that a Go program can catch: SIGTERM
		cgroup      bool   // needs a cgroup tree
		want        []outcome
		lines       map[string][]string      // by prefix
		atLeast     map[string]time.Duration // a job's least Time
	}{{
		name: "exit codes and output",
		jobs: []Job{
			helperJob("ok", noExpiry, "print", "0", "hello", "!warning", "bye"),
			helperJob("fail", noExpiry, "print", "3", "!boom"),
		},
		want: []outcome{{Status: "exit status 0"}, {Status: "exit status 3"}},
		lines: map[string][]string{
			"[ok]": {"hello", "bye"}, "[ok stderr]": {"warning"},
			"[fail stderr]": {"boom"},
		},
	}, {
		name: "not found",
		jobs: []Job{{Name: "missing", Args: []string{missing}}},
		want: []outcome{{Err: notFound.Error()}},
	}, {
		name:     "timeouts: SIGTERM to the tree, SIGKILL after the grace",
		graceful: true,
		jobs: []Job{
			helperJob("graceful", timeout, "on-term", "7"),
			helperJob("stubborn", timeout, "ignore-term"),
			helperJob("tree", timeout, "leave", "ignore", "wait"),
		},
		want: []outcome{
			{Status: "exit status 7", TimedOut: true}, // its own exit, on SIGTERM
			{Status: killedStatus, TimedOut: true},
			{Status: "exit status 0", TimedOut: true}, // its own; its grandchild was killed
		},
		lines: map[string][]string{
			"[graceful]": {"ready", "got SIGTERM"},
			"[stubborn]": {"ready", "got SIGTERM: ignoring it"},
			"[tree]":     {"hold: holding stdout", "left a grandchild", "hold: ignoring SIGTERM"},
		},
		atLeast: map[string]time.Duration{"graceful": timeout, "stubborn": timeout + grace, "tree": timeout + grace},
	}, {
		name:     "grandchildren left holding stdout: stopped, or killed after the grace",
		graceful: true,
		jobs: []Job{
			helperJob("daemon", noExpiry, "leave", "term"),
			helperJob("stubborn", noExpiry, "leave", "ignore"),
		},
		want: []outcome{{Status: "exit status 0", LeftBehind: true}, {Status: "exit status 0", LeftBehind: true}},
		lines: map[string][]string{
			"[daemon]":   {"hold: holding stdout", "left a grandchild", "hold: got SIGTERM"},
			"[stubborn]": {"hold: holding stdout", "left a grandchild", "hold: ignoring SIGTERM"},
		},
		atLeast: map[string]time.Duration{"daemon": settle, "stubborn": settle + grace},
	}, {
		name:     "a grandchild in a session of its own is stopped (cgroup)",
		graceful: true,
		cgroup:   true,
		jobs:     []Job{helperJob("setsid", noExpiry, "leave", "term", "setsid")},
		want:     []outcome{{Status: "exit status 0", LeftBehind: true}},
		lines:    map[string][]string{"[setsid]": {"hold: holding stdout", "left a grandchild", "hold: got SIGTERM"}},
	}, {
		name:        "interrupted: the running job is stopped, the next not started",
		graceful:    true,
		parallel:    1,
		interruptOn: "[first] ready",
		jobs: []Job{
			helperJob("first", noExpiry, "on-term", "0"),
			helperJob("second", noExpiry, "print", "0", "never printed"),
		},
		want:  []outcome{{Status: "exit status 0", Interrupted: true}, {Interrupted: true}},
		lines: map[string][]string{"[first]": {"ready", "got SIGTERM"}},
	}}
	t.Run("rows", func(t *testing.T) {
		for _, tc := range tests {
			t.Run(tc.name, func(t *testing.T) {
				if tc.graceful && runtime.GOOS == "windows" {
					t.Skip("the row expects a graceful step (SIGTERM); on Windows that is CTRL_BREAK_EVENT, which Wine, where CI runs these tests, cannot send")
				}
				if tc.cgroup {
					requireCgroup(t)
				}
				t.Parallel()
				ctx, cancel := context.WithCancel(t.Context())
				defer cancel()
				out := newOutput(tc.interruptOn)
				if tc.interruptOn != "" {
					go func() {
						select {
						case <-out.seen:
							cancel()
						case <-ctx.Done():
						}
					}()
				}
				r := &Runner{Parallel: tc.parallel, Timeout: time.Hour, Grace: grace, Out: out}
				if r.Parallel == 0 {
					r.Parallel = 4
				}
				results := r.Run(ctx, tc.jobs)

				var got []outcome
				for i, res := range results {
					got = append(got, outcomeOf(res))
					if res.Job != tc.jobs[i].Name {
						t.Errorf("result %d is job %q's; want %q's", i, res.Job, tc.jobs[i].Name)
					}
					if !res.Start.IsZero() && res.Tree != autoTree() {
						t.Errorf("%s got tree %v; want %v (what TreeAuto gives here)", res.Job, res.Tree, autoTree())
					}
					if least := tc.atLeast[res.Job]; res.Time < least {
						t.Errorf("%s took %v; want at least %v", res.Job, res.Time, least)
					}
				}
				if diff := cmp.Diff(tc.want, got); diff != "" {
					t.Errorf("outcomes (-want +got):\n%s\noutput:\n%s", diff, out)
				}
				if tc.lines == nil {
					tc.lines = map[string][]string{}
				}
				if diff := cmp.Diff(tc.lines, streams(out.String())); diff != "" {
					t.Errorf("output lines (-want +got):\n%s\noutput:\n%s", diff, out)
				}
			})
		}
	})
	// Every process of every job is gone: no child of the test process
	// (which adopts orphans) is left.
	pexectest.VerifyNone(t)
}

// requireCgroup skips t where cgroup trees are not available, if the test
// does not run as root; as root, they must be.
func requireCgroup(t *testing.T) {
	t.Helper()
	err := pexec.TreeSupport(pexec.TreeCgroup)
	switch {
	case err == nil:
	case os.Geteuid() != 0 || errors.Is(err, errors.ErrUnsupported):
		t.Skipf("needs a cgroup tree (a process group does not hold a descendant that calls setsid): %v", err)
	default:
		t.Fatalf("no cgroup tree as root: %v", err)
	}
}

// TestParallel checks that no more than Parallel jobs run at once: each
// job's run, from its Start to its end, holds one of the runner's slots.
func TestParallel(t *testing.T) {
	defer pexectest.VerifyNone(t)
	const parallel = 2
	var jobs []Job
	for i := range 5 {
		jobs = append(jobs, helperJob("nap"+strconv.Itoa(i), noExpiry, "nap", "200ms"))
	}
	out := newOutput("")
	results := (&Runner{Parallel: parallel, Out: out}).Run(t.Context(), jobs)
	type edge struct {
		at    time.Time
		delta int
	}
	var edges []edge
	for _, r := range results {
		if !r.OK() {
			t.Fatalf("%s: %v\noutput:\n%s", r.Job, r, out)
		}
		edges = append(edges, edge{r.Start, +1}, edge{r.Start.Add(r.Time), -1})
	}
	// At equal times, an end before a start: a slot is freed before it is
	// taken again.
	sortEdges := func(a, b edge) int {
		if c := a.at.Compare(b.at); c != 0 {
			return c
		}
		return a.delta - b.delta
	}
	slices.SortFunc(edges, sortEdges)
	running, most := 0, 0
	for _, e := range edges {
		running += e.delta
		most = max(most, running)
	}
	if most > parallel {
		t.Errorf("%d jobs ran at once; want at most %d", most, parallel)
	}
}

// TestParseJobs checks the jobs made of the command line's arguments.
func TestParseJobs(t *testing.T) {
	tests := []struct {
		args []string
		want []Job
		err  string
	}{
		{[]string{"build=make all", " vet = go vet ./... "}, []Job{{Name: "build", Args: shell("make all")}, {Name: "vet", Args: shell("go vet ./...")}}, ""},
		{[]string{"x=echo a=b"}, []Job{{Name: "x", Args: shell("echo a=b")}}, ""},
		{[]string{"make all"}, nil, `job "make all": want name=command line`},
		{[]string{"=make"}, nil, `job "=make": want name=command line`},
		{[]string{"x="}, nil, `job "x=": want name=command line`},
		{[]string{"my job=true"}, nil, `job "my job=true": a name is one word, without brackets`},
		{[]string{"x=true", "x=false"}, nil, `job "x=false": two jobs are called x`},
		{nil, nil, "no job"},
	}
	for _, tc := range tests {
		got, err := parseJobs(tc.args)
		gotErr := ""
		if err != nil {
			gotErr = err.Error()
		}
		if diff := cmp.Diff(tc.want, got); diff != "" || gotErr != tc.err {
			t.Errorf("parseJobs(%q) = error %q, jobs (-want +got):\n%s; want error %q", tc.args, gotErr, diff, tc.err)
		}
	}
}

// TestSummary checks the summary's table and its count of failures.
func TestSummary(t *testing.T) {
	status := func(code string) *os.ProcessState {
		c := pexectest.Command("print", code)
		c.Run()
		return c.ProcessState
	}
	start := time.Now()
	results := []Result{
		{Job: "ok", Tree: pexec.TreeCgroup, State: status("0"), Start: start, Time: 1234 * time.Millisecond},
		{Job: "fail", Tree: pexec.TreeGroup, State: status("3"), Start: start, Time: 12 * time.Millisecond},
		{Job: "slow", Tree: pexec.TreeJob, State: status("0"), TimedOut: true, Start: start, Time: 2 * time.Second},
		{Job: "daemon", Tree: pexec.TreeCgroup, State: status("0"), LeftBehind: true, Start: start, Time: 1001 * time.Millisecond},
		{Job: "missing", Err: errors.New(`exec: "nope": executable file not found in $PATH`)},
		{Job: "first", Tree: pexec.TreeNone, State: status("0"), Interrupted: true, Start: start, Time: 5 * time.Millisecond},
		{Job: "second", Interrupted: true},
	}
	var b strings.Builder
	failed := summary(&b, results)
	want := `JOB      TREE    TIME   OUTCOME
ok       cgroup  1.23s  exit status 0
fail     group   10ms   exit status 3
slow     job     2s     timed out; exit status 0
daemon   cgroup  1s     exit status 0; stopped what it left running
missing  -       -      error: exec: "nope": executable file not found in $PATH
first    none    10ms   interrupted; exit status 0
second   -       -      not started: interrupted
2 of 7 jobs succeeded.
`
	if diff := cmp.Diff(want, b.String()); diff != "" || failed != 5 {
		t.Errorf("summary: %d failed (want 5), (-want +got):\n%s", failed, diff)
	}
}

// TestDemo runs the demo, as go run ./examples/jobrunner does, and checks
// that it went as it expects (each job's outcome), and that the output of
// the jobs that are stopped shows the graceful step.
func TestDemo(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("the demo's graceful job needs a graceful step (SIGTERM); on Windows that is CTRL_BREAK_EVENT, which Wine, where CI runs these tests, cannot send")
	}
	defer pexectest.VerifyNone(t)
	// The demo's jobs are the test binary, which under the race detector
	// sleeps a second on exiting with code 0, unless told not to
	// (pexectest's helpers are told so).
	t.Setenv("GORACE", "atexit_sleep_ms=0")
	out := newOutput("")
	r := &Runner{Out: out}
	demoSettings(r, nil)
	// A longer timeout than the demo's own, which the jobs that do not
	// outlive it must beat by a wide margin on a busy machine: the
	// demo's expectations hold for any.
	r.Timeout = 3 * time.Second
	if err := demo(t.Context(), r, true); err != nil {
		t.Fatalf("%v\noutput:\n%s", err, out)
	}
	got := streams(out.String())
	want := map[string][]string{
		"[count]":        {"line 1", "line 2", "line 3"},
		"[count stderr]": {"a line on stderr"},
		"[fail stderr]":  {"something went wrong"},
		"[graceful]":     {"working until stopped", "got SIGTERM: cleaning up and exiting"},
		"[stubborn]":     {"working until killed", "got SIGTERM: ignoring it"},
	}
	for prefix, lines := range want {
		if diff := cmp.Diff(lines, got[prefix]); diff != "" {
			t.Errorf("%s lines (-want +got):\n%s\noutput:\n%s", prefix, diff, out)
		}
	}
	if daemon := got["[daemon]"]; len(daemon) != 3 || daemon[2] != "grandchild: got SIGTERM: leaving" {
		t.Errorf("[daemon] lines %q; want the grandchild's, the job's, and the grandchild's SIGTERM\noutput:\n%s", daemon, out)
	}
}

// TestShell runs the command lines of jobs given on the command line as
// code written for os/exec, which builds its own *exec.Cmd, is tested:
// through pexec.Wrap. pexectest.Run gives the command a tree, so that the
// timeout of a line that starts a background job takes the background job
// too.
func TestShell(t *testing.T) {
	for _, tc := range shellTests {
		t.Run(tc.line, func(t *testing.T) {
			defer pexectest.VerifyNone(t)
			jobs, err := parseJobs([]string{"job=" + tc.line})
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithTimeout(t.Context(), tc.timeout)
			defer cancel()
			got := pexectest.Run(ctx, pexec.Wrap(exec.Command(jobs[0].Args[0], jobs[0].Args[1:]...)))
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
}
