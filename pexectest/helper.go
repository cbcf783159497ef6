package pexectest

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"runtime"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/pexec-dev/pexec/pexec"
)

// HelperEnv names the environment variable that makes a re-executed test
// binary run a helper instead of its tests: [Command] sets it to the helper's
// name, and [Main] reads it.
const HelperEnv = "PEXECTEST_HELPER"

// The environment variables of the fault injections ([Jailed],
// [InPIDNamespace], [WithForeignReaper]), read by [Main] in a helper before
// it runs the helper's function, and removed from its environment then.
const (
	jailEnv   = "PEXECTEST_JAIL"
	pidnsEnv  = "PEXECTEST_PIDNS"
	reaperEnv = "PEXECTEST_REAPER"
)

// testEnv names the variable that holds, in a helper's environment, the
// test that started it (or its ancestor): the leak checks read it to name
// the test in their reports. A helper's children inherit it.
const testEnv = "PEXECTEST_TEST"

// helperLogEnv names the variable that holds, in a helper's environment,
// the address of the test process's helper log (see helperlog_linux.go).
const helperLogEnv = "PEXECTEST_HELPER_LOG"

// Errors of the helper registry. [Command] and [CommandContext] put them in
// the returned Cmd's Err field, so that its Start, Run or Output return them
// (as os/exec does for a program that is not found).
var (
	// ErrUnknownHelper reports a helper name that was never passed to
	// [Register], or that was passed only once [Main] had started, too
	// late for the re-executed test binary to know it.
	ErrUnknownHelper = errors.New("pexectest: unknown helper")
	// ErrNoMain reports that the test binary's TestMain does not call
	// [Main], so a re-executed binary would run its tests instead of the
	// helper.
	ErrNoMain = errors.New("pexectest: TestMain does not call pexectest.Main")
)

// HelperFunc is the body of a helper process. It receives the arguments
// given to [Command] after the helper's name and returns the process's exit
// code.
type HelperFunc func(args []string) int

// reservedPrefix starts the names of pexectest's own helpers.
const reservedPrefix = "pexectest."

var (
	registryMu sync.Mutex
	registry   = map[string]HelperFunc{}
	late       = map[string]bool{} // registered after Main started
	// mainCalled is set by Main, in the parent and in every helper.
	mainCalled atomic.Bool
)

// lateHint says where to register helpers.
const lateHint = "register helpers in an init function, or in TestMain before pexectest.Main, so that the re-executed test binary registers them too"

// internalHelpers are pexectest's own helpers, which Register cannot
// replace; they are set by per-OS files.
var internalHelpers = map[string]HelperFunc{}

// Register adds a helper: a function the test binary runs, in a process of
// its own, when [Command] re-executes it with the helper's name. Call it
// from an init function or from TestMain before [Main], so that the
// re-executed binary knows the helper too: a helper registered once [Main]
// has started (inside a test function) is unknown to the re-executed
// binary, which runs no test, so [Command] refuses it with an error that
// says so. Register panics if name is empty, starts with "pexectest.", or
// is already registered, or if fn is nil: these are mistakes in the test
// code.
func Register(name string, fn HelperFunc) {
	if name == "" || strings.HasPrefix(name, reservedPrefix) || fn == nil {
		panic(fmt.Sprintf("pexectest: Register(%q): the name must be non-empty and not start with %q, and fn not nil", name, reservedPrefix))
	}
	registryMu.Lock()
	defer registryMu.Unlock()
	if _, dup := registry[name]; dup {
		panic(fmt.Sprintf("pexectest: Register(%q): helper registered twice", name))
	}
	registry[name] = fn
	if mainCalled.Load() {
		late[name] = true
	}
}

// registeredLate reports whether helper name was registered after Main
// started.
func registeredLate(name string) bool {
	registryMu.Lock()
	defer registryMu.Unlock()
	return late[name]
}

// lookup returns the helper registered as name, if any.
func lookup(name string) HelperFunc {
	if fn := internalHelpers[name]; fn != nil {
		return fn
	}
	registryMu.Lock()
	defer registryMu.Unlock()
	return registry[name]
}

// registered lists the names of the registered helpers, sorted.
func registered() string {
	registryMu.Lock()
	names := make([]string, 0, len(registry))
	for name := range registry {
		names = append(names, name)
	}
	registryMu.Unlock()
	if len(names) == 0 {
		return "none"
	}
	sort.Strings(names)
	return strings.Join(names, ", ")
}

// Command returns a [pexec.Cmd] that runs helper name with args: the test
// binary itself, re-executed with [HelperEnv] set to name. Its Env is the
// current environment prepared for a helper (see below); set Stdin, Stdout,
// Stderr, Dir, SysProcAttr and the rest as for any command.
//
// If name is not registered (or was registered inside a test, see
// [Register]), or TestMain does not call [Main], the Cmd's Err field holds
// an error wrapping [ErrUnknownHelper] (naming the helper and the
// registered ones, and saying where to register it) or [ErrNoMain], and
// its Start returns that error: Command itself never panics.
//
// The helper dies with the test binary: Command sets its
// SysProcAttr.Pdeathsig to SIGKILL (on Linux; pexec makes the signal
// follow the test process, not the thread that started the helper), so a
// helper does not outlive a test binary that crashes, is killed, or panics
// at -test.timeout, whose clean-ups and leak checks never run. Set
// Pdeathsig to 0, or replace SysProcAttr, to let the helper live on. Inside
// a helper, Command leaves Pdeathsig unset: the helper is a program under
// test, whose children behave as any program's do (a helper that
// double-forks leaves its grandchild running when it exits).
//
// The helper is the same binary, so it has the race detector when the tests
// do. Its environment differs from the test's in four ways:
//   - GORACE starts with atexit_sleep_ms=0 (options of the test's GORACE
//     follow, and override it): otherwise a race-enabled helper that exits
//     with code 0 sleeps a second in the race runtime's exit hook. A data race
//     in a helper makes it print the report and exit with code 66.
//   - Under coverage (go test -cover; [testing.CoverMode] is not empty), if
//     the test binary was given -test.gocoverdir, GOCOVERDIR is set to that
//     directory, so the helpers' counters are merged into the test's
//     coverage. go test (Go 1.20+) also sets GOCOVERDIR itself, which
//     helpers inherit. A binary built with -cover and run directly without
//     either gets none, and its helpers print Go's "warning: GOCOVERDIR not
//     set" on stderr. The helper's command line never carries
//     -test.coverprofile or any other test flag, so a helper cannot
//     overwrite the test's profile.
//   - The variables of the fault injections are removed, so a helper
//     started by a jailed or namespaced helper is not itself jailed or
//     namespaced, unless asked.
//   - PEXECTEST_TEST names the test that called Command (the top-level
//     test function, found on the calling goroutine's stack; [Start] and
//     [Run] replace it with the test's full name), and the helper's
//     children inherit it, so that the leak checks can say which test
//     started a leaked process or the ancestor of an orphan.
//
// A helper started through Command counts as a child of the test process
// like any other: start it with [Start] to bind it to the test, or wait for
// it, or the leak checks ([VerifyNone], [Main]) report it.
func Command(name string, args ...string) *pexec.Cmd {
	return command(pexec.Command, name, args)
}

// CommandContext is like [Command] but includes a context, as
// [pexec.CommandContext]: the helper is killed if ctx is done before it
// exits. Like pexec.CommandContext, it panics if ctx is nil.
func CommandContext(ctx context.Context, name string, args ...string) *pexec.Cmd {
	if ctx == nil {
		panic("pexectest: CommandContext: nil Context")
	}
	return command(func(name string, arg ...string) *pexec.Cmd {
		return pexec.CommandContext(ctx, name, arg...)
	}, name, args)
}

// command makes the Cmd of helper name with newCmd (pexec.Command or
// pexec.CommandContext).
func command(newCmd func(name string, arg ...string) *pexec.Cmd, name string, args []string) *pexec.Cmd {
	exe, err := os.Executable()
	if err != nil {
		exe = os.Args[0]
	}
	c := newCmd(exe, append([]string{"-test.run=^$", "--"}, args...)...)
	c.Env = helperEnv(name, os.Environ(), coverDir())
	if os.Getenv(HelperEnv) == "" { // in the test process, not in a helper
		setDeathSignal(c)
		if addr := helperLogAddr(); addr != "" {
			c.Env = append(c.Env, helperLogEnv+"="+addr)
		}
		if test := callerTest(); test != "" {
			c.Env = append(c.Env, testEnv+"="+test)
		}
	}
	switch {
	case !mainCalled.Load():
		c.Err = fmt.Errorf("%w, so the re-executed test binary would not run helper %q: add func TestMain(m *testing.M) { pexectest.Main(m) }", ErrNoMain, name)
	case lookup(name) == nil:
		c.Err = fmt.Errorf("%w %q (registered: %s; %s)", ErrUnknownHelper, name, registered(), lateHint)
	case registeredLate(name):
		c.Err = fmt.Errorf("%w %q to the re-executed test binary: it was registered after pexectest.Main started (inside a test?); %s", ErrUnknownHelper, name, lateHint)
	}
	return c
}

// helperArgs returns the arguments of a helper from its command line, as
// Command made it: what follows "--".
func helperArgs(args []string) []string {
	if len(args) < 3 || args[2] != "--" {
		return nil
	}
	return args[3:]
}

// callerTest returns the name of the top-level test, benchmark or example
// function that the calling goroutine runs (found on its stack below
// testing's runner), or "".
func callerTest() string {
	var pcs [100]uintptr
	n := runtime.Callers(3, pcs[:])
	frames := runtime.CallersFrames(pcs[:n])
	prev := ""
	for {
		f, more := frames.Next()
		switch f.Function {
		case "testing.tRunner", "testing.runExample", "testing.(*B).runN":
			return testFunc(prev)
		}
		prev = f.Function
		if !more {
			return ""
		}
	}
}

// testFunc returns the top-level function of fn, a function's full name
// ("example.com/pkg_test.TestRun.func1.2"): "TestRun".
func testFunc(fn string) string {
	fn = fn[strings.LastIndex(fn, "/")+1:]
	_, fn, _ = strings.Cut(fn, ".")
	fn, _, _ = strings.Cut(fn, ".")
	return fn
}

// coverDir returns the directory a helper must write its coverage counters
// to, or "" to leave GOCOVERDIR as the test's environment has it.
func coverDir() string {
	if testing.CoverMode() == "" {
		return ""
	}
	if f := flag.Lookup("test.gocoverdir"); f != nil {
		return f.Value.String()
	}
	return ""
}

// helperEnv returns the environment of helper name, derived from env (the
// test's).
func helperEnv(name string, env []string, gocoverdir string) []string {
	race := "atexit_sleep_ms=0"
	drop := func(kv string) bool {
		k, v, _ := strings.Cut(kv, "=")
		switch {
		case k == "GORACE":
			if v = strings.TrimSpace(v); v != "" {
				race += " " + v
			}
			return true
		case k == "GOCOVERDIR":
			return gocoverdir != ""
		case k == HelperEnv, k == jailEnv, k == pidnsEnv, k == reaperEnv:
			return true
		}
		return false
	}
	out := slices.DeleteFunc(slices.Clone(env), drop)
	out = append(out, HelperEnv+"="+name, "GORACE="+race)
	if gocoverdir != "" {
		out = append(out, "GOCOVERDIR="+gocoverdir)
	}
	return out
}

// helperName returns the helper a Cmd made by Command runs, or "".
func helperName(c *pexec.Cmd) string {
	if c == nil {
		return ""
	}
	for _, kv := range slices.Backward(c.Env) {
		if v, ok := strings.CutPrefix(kv, HelperEnv+"="); ok {
			return v
		}
	}
	return ""
}

// Main is the body of a test binary's TestMain:
//
//	func TestMain(m *testing.M) { pexectest.Main(m) }
//
// In a test binary that [Command] re-executed as a helper, Main runs the
// helper's function (after setting up the jail, PID namespace or foreign
// reaper asked for) and exits with the code it returns; a helper name that
// is not registered makes it print an error naming the registered helpers
// and exit with code 2.
//
// Otherwise Main runs the tests, then checks, as [VerifyNone] does, that no
// child process is left running or unreaped (ignoring what opts say to
// ignore): it reports each leaked process on stderr, with the test that
// started it where known, kills and reaps it, and exits with code 1 even
// if every test passed (unless [ReportOnly] is given). It then calls the
// function of [AfterRun], if given, and exits.
//
// On Linux, before the tests, Main makes the test process a child
// subreaper (PR_SET_CHILD_SUBREAPER; [NoSubreaper] opts out): a process
// whose parent, a descendant of the test process, exits without waiting
// for it becomes a child of the test process instead of init's, so that
// the leak checks see it (see [Leak]). An orphan that exits is reaped at
// once, as init would. To tell orphans from the test's own children, Main
// keeps the main thread for itself (pexectest locks it in an init
// function) and runs the tests on another goroutine, and it adopts only
// where pidfds work. Main also opens the socket that helpers report to as
// they start (their command line and test, for the reports of helpers
// that have exited).
func Main(m *testing.M, opts ...Option) {
	mainCalled.Store(true)
	if name := os.Getenv(HelperEnv); name != "" {
		os.Exit(runHelper(name))
	}
	o := buildOptions(opts)
	openHelperLog()
	adoptOrphans(o)
	// The tests run on another goroutine: the main goroutine keeps the
	// main thread, which adopts orphans, and must start no process there
	// (see orphans_linux.go).
	codes := make(chan int)
	go func() { codes <- m.Run() }()
	code := <-codes
	leaks, err := findLeaks(o)
	if err != nil && !errors.Is(err, errors.ErrUnsupported) {
		fmt.Fprintln(os.Stderr, "pexectest: leak check:", err)
		code = max(code, 1)
	}
	if len(leaks) > 0 {
		fmt.Fprint(os.Stderr, leakReport(leaks, "after the tests"))
		if cerr := cleanUp(leaks); cerr != nil {
			fmt.Fprintln(os.Stderr, "pexectest: cleaning up:", cerr)
		}
		if !o.reportOnly {
			code = max(code, 1)
		}
	}
	if o.afterRun != nil {
		code = o.afterRun(code)
	}
	os.Exit(code)
}

// runHelper runs helper name in this process and returns its exit code.
func runHelper(name string) int {
	// First, before anything probes for pidfd support: the jail.
	if err := setupHelper(); err != nil {
		fmt.Fprintf(os.Stderr, "pexectest: helper %q: %v\n", name, err)
		return 2
	}
	if !flag.Parsed() {
		flag.Parse()
	}
	fn := lookup(name)
	if fn == nil {
		fmt.Fprintf(os.Stderr, "pexectest: unknown helper %q (registered: %s; %s)\n", name, registered(), lateHint)
		return 2
	}
	reportHelper(name)
	return fn(flag.Args())
}
