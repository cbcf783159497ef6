package pexectest

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
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

// Errors of the helper registry. [Command] and [CommandContext] put them in
// the returned Cmd's Err field, so that its Start, Run or Output return them
// (as os/exec does for a program that is not found).
var (
	// ErrUnknownHelper reports a helper name that was never passed to
	// [Register].
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
	// mainCalled is set by Main, in the parent and in every helper.
	mainCalled atomic.Bool
)

// internalHelpers are pexectest's own helpers, which Register cannot
// replace; they are set by per-OS files.
var internalHelpers = map[string]HelperFunc{}

// Register adds a helper: a function the test binary runs, in a process of
// its own, when [Command] re-executes it with the helper's name. Call it
// from an init function or from TestMain before [Main], so that the
// re-executed binary knows the helper too. Register panics if name is empty,
// starts with "pexectest.", or is already registered, or if fn is nil: these
// are mistakes in the test code.
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
// If name is not registered, or TestMain does not call [Main], the Cmd's Err
// field holds an error wrapping [ErrUnknownHelper] (naming the helper and the
// registered ones) or [ErrNoMain], and its Start returns that error: Command
// itself never panics.
//
// The helper is the same binary, so it has the race detector when the tests
// do. Its environment differs from the test's in three ways:
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
	switch {
	case !mainCalled.Load():
		c.Err = fmt.Errorf("%w, so the re-executed test binary would not run helper %q: add func TestMain(m *testing.M) { pexectest.Main(m) }", ErrNoMain, name)
	case lookup(name) == nil:
		c.Err = fmt.Errorf("%w %q (registered: %s)", ErrUnknownHelper, name, registered())
	}
	return c
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
// ignore): it reports each leaked process on stderr, kills and reaps it,
// and exits with code 1 even if every test passed (unless [ReportOnly]
// is given). It then calls the
// function of [AfterRun], if given, and exits.
func Main(m *testing.M, opts ...Option) {
	mainCalled.Store(true)
	if name := os.Getenv(HelperEnv); name != "" {
		os.Exit(runHelper(name))
	}
	o := buildOptions(opts)
	code := m.Run()
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
		fmt.Fprintf(os.Stderr, "pexectest: unknown helper %q (registered: %s)\n", name, registered())
		return 2
	}
	return fn(flag.Args())
}
