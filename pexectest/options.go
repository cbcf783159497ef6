package pexectest

import (
	"path/filepath"
	"strings"
	"time"

	"github.com/pexec-dev/pexec/pexec"
)

// An Option changes what [VerifyNone], [Find], [Main], [Start] or [Run] do. Each
// option's documentation says which of them it applies to; the others
// ignore it.
type Option interface {
	apply(*options)
}

type optionFunc func(*options)

func (f optionFunc) apply(o *options) { f(o) }

// Defaults of the options.
const (
	defaultMaxWait = time.Second
	defaultGrace   = 3 * time.Second
)

type options struct {
	ignorePIDs  map[int]bool
	ignoreCmds  []string
	ignoreProcs map[procKey]bool // IgnoreCurrent's snapshot
	maxWait     time.Duration
	grace       time.Duration
	afterRun    func(code int) int
	reportOnly  bool
	tree        pexec.TreeMode
	requireTree bool // tree is required: RequireTree
	deathSignal bool // DieWithTestBinary
	noSubreaper bool
}

// procKey identifies a process for good: a PID and the process's start time
// (in clock ticks since boot, from /proc/<pid>/stat), since a PID alone is
// reused.
type procKey struct {
	pid   int
	start uint64
}

func buildOptions(opts []Option) *options {
	o := &options{maxWait: defaultMaxWait, grace: defaultGrace, tree: pexec.TreeAuto}
	for _, opt := range opts {
		if opt != nil {
			opt.apply(o)
		}
	}
	return o
}

// IgnorePID makes the leak checks ([VerifyNone], [Find], [Main]) ignore the
// processes with these PIDs, and leave them alone.
func IgnorePID(pids ...int) Option {
	return optionFunc(func(o *options) {
		if o.ignorePIDs == nil {
			o.ignorePIDs = map[int]bool{}
		}
		for _, pid := range pids {
			o.ignorePIDs[pid] = true
		}
	})
}

// IgnoreCommand makes the leak checks ([VerifyNone], [Find], [Main]) ignore
// the processes running the program name, and leave them alone: a process
// matches if the first word of its command line is name or ends in "/" +
// name, or, for a helper started by [Command], if its helper's name is name.
// (For a process that has exited, whose command line is gone, the kernel's
// 15-byte name of its program is compared with the start of name's last
// element.)
func IgnoreCommand(name string) Option {
	return optionFunc(func(o *options) { o.ignoreCmds = append(o.ignoreCmds, name) })
}

// IgnoreCurrent makes the leak checks ([VerifyNone], [Find], [Main]) ignore
// the child processes that exist when IgnoreCurrent is called, identified by
// PID and start time (so that a later process reusing a PID is not
// ignored). Call it where the known processes already run, for example in
// TestMain after starting a long-lived fixture:
//
//	pexectest.Main(m, pexectest.IgnoreCurrent())
//
// On systems without /proc (other than Linux) it ignores nothing.
func IgnoreCurrent() Option {
	current := currentChildren()
	return optionFunc(func(o *options) {
		if o.ignoreProcs == nil {
			o.ignoreProcs = map[procKey]bool{}
		}
		for _, k := range current {
			o.ignoreProcs[k] = true
		}
	})
}

// MaxWait sets how long the leak checks ([VerifyNone], [Find], [Main]) give
// child processes to go away by themselves before calling them leaked: a
// child that is exiting, or that another goroutine is about to reap, is not
// a leak. The checks look again and again, with back-off, until none is
// left or d has passed. For [Start], it is how long the clean-up gives the
// tree of a process that has ended to empty before it reports the members
// left as leaked (see [Tree]); for [Run], how long it gives them before it
// kills them. The default is one second; it is spent only when something
// is left.
func MaxWait(d time.Duration) Option {
	return optionFunc(func(o *options) { o.maxWait = max(d, 0) })
}

// Grace sets how long [Start]'s clean-up gives the process (and its tree,
// see [Tree]), after SIGTERM, to exit before it sends SIGKILL. The default
// is three seconds.
func Grace(d time.Duration) Option {
	return optionFunc(func(o *options) { o.grace = max(d, 0) })
}

// ReportOnly makes the leak checks ([VerifyNone], [Main], and [Start]'s
// check of the tree a process leaves behind) report leaks and clean them
// up without failing: VerifyNone and Start log with t.Log instead of
// t.Error, and Main prints its report but keeps the run's exit code. It is
// meant for adopting the checks in a suite that still leaks, until its
// leaks are fixed.
func ReportOnly() Option {
	return optionFunc(func(o *options) { o.reportOnly = true })
}

// Tree sets the containment ([pexec.TreeMode]) that [Start] and [Run] give
// a command whose Cmd.Tree is [pexec.TreeNone], the zero value; a Tree the
// caller set is kept. The default is [pexec.TreeAuto]: the process and every
// process it starts are held together, in a cgroup of their own where the
// test may create one (root, or a delegated cgroup) and in a process group
// of their own otherwise, so that Start's clean-up stops the whole tree and
// reports what a process that ended left running (see Start), and Run's
// timeout kills the whole tree. Start logs which tree it got, and why
// (a process group, from which a descendant can escape with setsid, where
// no cgroup can be made); [RequireTree] skips the test instead where the
// tree it needs is not available.
//
// Tree(pexec.TreeNone) keeps os/exec's behaviour: the clean-up stops the
// process alone, and its descendants are on their own. Use it for a
// process that must stay in the test's process group: in the process
// group fallback the process leads a group of its own, so a Ctrl-C typed
// at the terminal reaches the test binary but not the tree. To insist on a
// mode (a cgroup, failing where there is none), set Cmd.Tree instead.
func Tree(mode pexec.TreeMode) Option {
	return optionFunc(func(o *options) { o.tree, o.requireTree = mode, false })
}

// RequireTree is [Tree] for a test that is meaningful only with mode (a
// test of code that relies on every descendant being contained, which a
// process group cannot promise): [Start] skips the test, with
// [testing.TB.Skipf] and the reason [pexec.TreeSupport] gives, where mode
// is not available, instead of running it with a weaker tree or none.
// [pexec.TreeAuto] requires a tree of either kind (there is none elsewhere
// than Linux). A Cmd.Tree that the caller set to another mode than mode
// fails the test. [Run], which has no test to skip, takes RequireTree as
// Tree.
func RequireTree(mode pexec.TreeMode) Option {
	return optionFunc(func(o *options) { o.tree, o.requireTree = mode, true })
}

// DieWithTestBinary makes [Start] and [Run] ask the kernel to kill the
// process with SIGKILL when the test binary dies (SysProcAttr.Pdeathsig,
// on Linux), so that it does not outlive a test binary that crashes, is
// killed, or panics at -test.timeout, whose clean-ups never run. Helpers
// made by [Command] in the test binary have it already (see Command);
// this option is for other commands. A Pdeathsig that the caller set is
// kept. Elsewhere than Linux it does nothing.
//
// pexec starts a child with Pdeathsig from a thread that never exits, so
// that the signal follows the test binary's life, not a thread's; the
// signal reaches the process, not its descendants (with a cgroup tree,
// they are still in the cgroup, which nothing kills once the test binary
// is gone).
func DieWithTestBinary() Option {
	return optionFunc(func(o *options) { o.deathSignal = true })
}

// NoSubreaper makes [Main] leave the test process an ordinary parent
// instead of a child subreaper (see Main): orphaned descendants then go to
// init, or to another subreaper, and the leak checks do not see them.
func NoSubreaper() Option {
	return optionFunc(func(o *options) { o.noSubreaper = true })
}

// AfterRun makes [Main] call f with the exit code of the run (after its
// leak check), and exit with the code f returns: a place for checks of your
// own at the end of a run.
func AfterRun(f func(code int) int) Option {
	return optionFunc(func(o *options) { o.afterRun = f })
}

// ignoredCommand reports whether a process is ignored by IgnoreCommand.
// argv0 is the first word of its command line ("" once it has exited),
// comm the kernel's name of its program, helper its helper's name.
func (o *options) ignoredCommand(argv0, comm, helper string) bool {
	for _, name := range o.ignoreCmds {
		switch {
		case name == "":
		case helper != "" && helper == name:
			return true
		case argv0 != "" && (argv0 == name || strings.HasSuffix(argv0, "/"+name)):
			return true
		case argv0 == "" && comm != "":
			base := filepath.Base(name)
			if len(base) > 15 {
				base = base[:15]
			}
			if comm == base {
				return true
			}
		}
	}
	return false
}
