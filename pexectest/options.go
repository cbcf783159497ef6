package pexectest

import (
	"path/filepath"
	"strings"
	"time"
)

// An Option changes what [VerifyNone], [Find], [Main] or [Start] do. Each
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
}

// procKey identifies a process for good: a PID and the process's start time
// (in clock ticks since boot, from /proc/<pid>/stat), since a PID alone is
// reused.
type procKey struct {
	pid   int
	start uint64
}

func buildOptions(opts []Option) *options {
	o := &options{maxWait: defaultMaxWait, grace: defaultGrace}
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
// left or d has passed. The default is one second; it is spent only when
// something is left.
func MaxWait(d time.Duration) Option {
	return optionFunc(func(o *options) { o.maxWait = max(d, 0) })
}

// Grace sets how long [Start]'s clean-up gives the process, after SIGTERM,
// to exit before it sends SIGKILL. The default is three seconds.
func Grace(d time.Duration) Option {
	return optionFunc(func(o *options) { o.grace = max(d, 0) })
}

// ReportOnly makes the leak checks ([VerifyNone], [Main]) report leaks
// and clean them up without failing: VerifyNone logs with t.Log instead of
// t.Error, and Main prints its report but keeps the run's exit code. It is
// meant for adopting the checks in a suite that still leaks, until its
// leaks are fixed.
func ReportOnly() Option {
	return optionFunc(func(o *options) { o.reportOnly = true })
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
