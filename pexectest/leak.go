package pexectest

import (
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"
)

// Leak describes a process that a leak check found left behind. A leak is
// a child process of the test process (one whose parent is the test
// process) that is still running, stopped, or has exited but was not reaped:
// a zombie, which keeps its PID and a slot in the process table until its
// parent waits for it, is a leak too, reported with how it ended, and
// reaped by the clean-up. A child that goes away by itself within
// [MaxWait] is not a leak, nor one ignored by an option, nor one that
// [Start] has bound to a test whose clean-up has not run yet. Those below a
// leaked child are reported with it, as its Descendants, and killed with
// it.
//
// Under [Main], the test process is a child subreaper: a descendant whose
// parent exits (a daemon a helper double-forked, a shell's background job,
// a process that escaped its process-group tree with setsid) becomes its
// child, an orphan, instead of init's. A running orphan is a leak
// (Orphaned is set); one that has exited is reaped at once, as init would,
// and is not. Without Main (or with [NoSubreaper]) orphans are out of
// sight, except those in a tree of a process that Start started.
//
// A process that [Start] started with a tree (see [Tree]) answers for its
// descendants, orphans included: when it has ended and its tree still
// holds processes, the Leak describes it (State "exited (exit status 0);
// its tree (cgroup) is not empty") with the processes left in its tree as
// Descendants, whoever adopted them (with a cgroup, every process started
// below it; with a process group, those that did not leave the group).
// Start's clean-up reports such a tree; the leak checks report it again if
// the clean-up could not empty it.
type Leak struct {
	// PID is the process ID.
	PID int
	// Command is the process's command line, from /proc/<pid>/cmdline
	// (for a program run through a binfmt_misc interpreter such as
	// qemu-user, without what the kernel put in front of it: the
	// interpreter and the program's path).
	// Once a process has exited its command line is gone: Command then is
	// the one recorded when it started (by [Start], or, for a helper, by
	// the helper itself, as it started, for the test process), if known,
	// or else the kernel's name of the program in brackets ("[sleep]").
	Command string
	// Helper is the name of the helper the process runs, if [Command]
	// started it.
	Helper string
	// State is "running", "stopped", or, for a zombie, "exited (exit
	// status 3), not reaped" or "exited (signal SIGKILL), not reaped"; for
	// a process whose tree outlived it, "exited (exit status 0); its tree
	// (group) is not empty".
	State string
	// Orphaned reports that the process is an orphan the test process
	// adopted (see above): its parent was a descendant of the test process
	// and exited without waiting for it. (The kernel moves a child of a
	// thread of the test process that exited, a goroutine that locked its
	// thread and returned, the same way; it is reported as an orphan too.)
	Orphaned bool
	// Test names the test that started the process, or, for an orphan or
	// a descendant of a helper, the test that started its ancestor, where
	// known: the test that [Start] or [Run] bound it to, or, for a helper,
	// the top-level test function that called [Command] (see Command).
	Test string
	// Descendants are the processes the leaked process started that were
	// still its children (and theirs, recursively); for a process that
	// Start started with a tree, the live processes of its tree.
	Descendants []Leak
}

// String describes the leak in one line, without its descendants:
//
//	pid 4242, running: helper "sleep": /tmp/x.test -test.run=^$ -- 1h; started by TestServe
//	pid 4243, running (orphaned): sleep 60; started by TestDaemon
func (l Leak) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "pid %d, %s", l.PID, l.State)
	if l.Orphaned {
		b.WriteString(" (orphaned)")
	}
	b.WriteString(": ")
	if l.Helper != "" {
		fmt.Fprintf(&b, "helper %q: ", l.Helper)
	}
	b.WriteString(l.Command)
	if l.Test != "" {
		b.WriteString("; started by " + l.Test)
	}
	return b.String()
}

// leaked is a Leak with what the clean-up needs.
type leaked struct {
	Leak
	key    procKey
	zombie bool
	// tree is set for the tree of a process Start started, which has
	// ended, and members are the processes found in it.
	tree    *tree
	members []member
}

// leakReport words what a check found, when, for a test failure or stderr.
func leakReport(leaks []leaked, when string) string {
	var b strings.Builder
	var tree func(ls []Leak, indent string)
	tree = func(ls []Leak, indent string) {
		for _, l := range ls {
			fmt.Fprintf(&b, "%s%s\n", indent, l)
			tree(l.Descendants, indent+"    ")
		}
	}
	list := func(ls []leaked, one, many, what string) {
		if len(ls) == 0 {
			return
		}
		n := "1 " + one
		if len(ls) > 1 {
			n = fmt.Sprintf("%d %s", len(ls), many)
		}
		fmt.Fprintf(&b, "pexectest: %s (found %s); %s:\n", n, when, what)
		for _, l := range ls {
			tree([]Leak{l.Leak}, "    ")
		}
	}
	var children, orphans, trees []leaked
	for _, l := range leaks {
		switch {
		case l.tree != nil:
			trees = append(trees, l)
		case l.Orphaned:
			orphans = append(orphans, l)
		default:
			children = append(children, l)
		}
	}
	list(children, "child process leaked", "child processes leaked", "killed and reaped now")
	list(orphans, "orphaned process leaked", "orphaned processes leaked", "their parents exited without waiting for them, and the test process adopted them; killed and reaped now")
	list(trees, "process tree left behind by a process that ended", "process trees left behind by processes that ended", "killed now")
	return b.String()
}

// VerifyNone fails t, with [testing.TB.Error], if the test process has a
// child process left running or unreaped (see [Leak]). Call it at the end
// of a test, typically with defer:
//
//	defer pexectest.VerifyNone(t)
//
// Children that are exiting get [MaxWait] to go away first. The failure
// names each leaked process (PID, state, command line, helper, the test that
// started it when known, and its descendants); VerifyNone then kills and
// reaps them, so one leak does not fail the tests that follow. The kill is
// race-free where pidfds work: each process is opened with pidfd_open while
// it is verified to be an unreaped child (whose PID cannot be reused), and
// signalled through the pidfd; the leaked process is stopped first, so that
// its own children can be found and killed with it. Without pidfds
// (seccomp, old kernels) it falls back to kill(2) and wait4(2) on the
// unreaped child.
//
// VerifyNone sees every child of the process, not only those of the
// calling test: with parallel tests, whose children are running, either
// check in [Main] only, or start children with [Start], whose children are
// not leaks until their test's clean-up has run. A leaked child's Cmd.Wait
// returns an error afterwards (its child was reaped by the check). Under
// [Main], which makes the test process adopt orphans, VerifyNone sees the
// orphans too: what a helper double-forked, or what left a process-group
// tree (see [Leak]).
//
// VerifyNone needs Linux's /proc; elsewhere it logs that it checked nothing.
func VerifyNone(t testing.TB, opts ...Option) {
	t.Helper()
	o := buildOptions(opts)
	leaks, err := findLeaks(o)
	switch {
	case errors.Is(err, errors.ErrUnsupported):
		t.Log(err)
		return
	case err != nil:
		t.Errorf("pexectest: VerifyNone: %v", err)
		return
	case len(leaks) == 0:
		return
	}
	msg := leakReport(leaks, "at the end of "+t.Name())
	if err := cleanUp(leaks); err != nil {
		msg += "pexectest: cleaning up: " + err.Error() + "\n"
	}
	if o.reportOnly {
		t.Log(msg)
		return
	}
	t.Error(msg)
}

// Find returns the child processes of the test process that are leaked, as
// [VerifyNone] sees them after giving them [MaxWait] to go away, but leaves
// them alone. The error wraps [errors.ErrUnsupported] on systems without
// Linux's /proc.
func Find(opts ...Option) ([]Leak, error) {
	leaks, err := findLeaks(buildOptions(opts))
	out := make([]Leak, len(leaks))
	for i, l := range leaks {
		out[i] = l.Leak
	}
	return out, err
}

// testHookScan, set by tests, is called after each scan that found leaks,
// with the scan's number (1 for the first).
var testHookScan func(scan int)

// findLeaks scans for leaks until none is left or o.maxWait has passed.
func findLeaks(o *options) ([]leaked, error) {
	deadline := time.Now().Add(o.maxWait)
	delay := time.Millisecond
	for scan := 1; ; scan++ {
		leaks, err := scanChildren(o)
		if err != nil {
			return nil, err
		}
		leaks = append(leaks, scanTrees()...)
		if len(leaks) == 0 {
			return nil, nil
		}
		if testHookScan != nil {
			testHookScan(scan)
		}
		left := time.Until(deadline)
		if left <= 0 {
			describeDescendants(leaks)
			return leaks, nil
		}
		time.Sleep(min(delay, left))
		delay = min(2*delay, 100*time.Millisecond)
	}
}

// cleanUp kills and reaps leaked processes and their descendants.
func cleanUp(leaks []leaked) error {
	var errs []error
	for _, l := range leaks {
		kill := killLeak
		if l.tree != nil {
			kill = killTreeLeak
		}
		if err := kill(l); err != nil {
			errs = append(errs, fmt.Errorf("pid %d: %w", l.PID, err))
		}
	}
	return errors.Join(errs...)
}

// bound records the children started by Start whose clean-up has not run:
// the leak checks skip them (they are not leaked yet), and name the test
// that started them.
var bound = struct {
	sync.Mutex
	m map[procKey]boundChild
}{m: map[procKey]boundChild{}}

type boundChild struct {
	test    string
	command string
	helper  string
	tree    *tree // its tree, if it has one
	pending bool  // the test's clean-up has not run yet
}

func bind(k procKey, b boundChild) {
	bound.Lock()
	defer bound.Unlock()
	bound.m[k] = b
}

func unbind(k procKey) {
	bound.Lock()
	defer bound.Unlock()
	delete(bound.m, k)
}

func boundTo(k procKey) (boundChild, bool) {
	bound.Lock()
	defer bound.Unlock()
	b, ok := bound.m[k]
	return b, ok
}

// boundChildren returns the children bound now.
func boundChildren() []boundChild {
	bound.Lock()
	defer bound.Unlock()
	out := make([]boundChild, 0, len(bound.m))
	for _, b := range bound.m {
		out = append(out, b)
	}
	return out
}
