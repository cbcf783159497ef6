// Package testhelper turns a test binary into the child processes its tests
// need, the way os/exec's own tests do: TestMain calls [Main]; when the
// binary is re-executed with PEXEC_TEST_HELPER=name it runs the named helper
// instead of the tests and exits with its result.
//
// Helpers are plain functions in a registry. The standard ones ([Standard])
// cover what process tests need: sleep, exit with a code, ignore SIGTERM,
// print the PID, spawn a grandchild, echo stdin, write to stderr, list open
// descriptors. A package may add its own; [Main] fails the run if one of a
// package's own helpers is never used by a full (unfiltered) test run.
package testhelper

import (
	"flag"
	"fmt"
	"os"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
)

// EnvVar names the environment variable that selects a helper.
const EnvVar = "PEXEC_TEST_HELPER"

// Func is a helper: it receives the command's arguments after the helper
// name and returns the exit code.
type Func func(args []string) int

var (
	mu       sync.Mutex
	registry = map[string]Func{}
	own      = map[string]bool{} // package-specific helpers, checked for use
	used     = map[string]bool{}
)

// Main runs the helper named by $PEXEC_TEST_HELPER if it is set, and the
// tests otherwise. extra adds package-specific helpers to [Standard]; each of
// them must be used by an unfiltered test run.
func Main(m *testing.M, extra map[string]Func) {
	mu.Lock()
	for name, fn := range Standard {
		registry[name] = fn
	}
	for name, fn := range extra {
		registry[name] = fn
		own[name] = true
	}
	mu.Unlock()
	if name := os.Getenv(EnvVar); name != "" {
		if !flag.Parsed() {
			flag.Parse()
		}
		fn, ok := registry[name]
		if !ok {
			fmt.Fprintf(os.Stderr, "testhelper: unknown helper %q\n", name)
			os.Exit(2)
		}
		os.Exit(fn(flag.Args()))
	}
	code := m.Run()
	if code == 0 && unfiltered() {
		if missing := Unused(); len(missing) > 0 {
			fmt.Fprintf(os.Stderr, "testhelper: helpers never used: %v\n", missing)
			code = 1
		}
	}
	os.Exit(code)
}

func unfiltered() bool {
	for _, name := range []string{"test.run", "test.skip"} {
		if f := flag.Lookup(name); f != nil && f.Value.String() != "" {
			return false
		}
	}
	return !testing.Short()
}

// Register adds a package-specific helper; call it from an init function in
// the test file that uses the helper. Like the extra helpers given to [Main],
// it must be used by an unfiltered test run.
func Register(name string, fn Func) {
	mu.Lock()
	defer mu.Unlock()
	registry[name] = fn
	own[name] = true
}

// Nested records that a test runs the named helpers through another helper
// (which starts them in its own process, out of this registry's sight), so
// they count as used.
func Nested(names ...string) {
	mu.Lock()
	defer mu.Unlock()
	for _, name := range names {
		used[name] = true
	}
}

// Unused returns the package-specific helpers no test has used so far.
func Unused() []string {
	mu.Lock()
	defer mu.Unlock()
	var out []string
	for name := range own {
		if !used[name] {
			out = append(out, name)
		}
	}
	sort.Strings(out)
	return out
}

// Command returns the path, argv and environment that run helper name with
// args in a re-execution of the current test binary. The result feeds
// exec.Command, pexec.Command or os.StartProcess alike. It panics on an
// unregistered name, which is a bug in the test.
//
// The environment adds atexit_sleep_ms=0 to GORACE: under -race a helper
// that exits with code 0 would otherwise sleep a second in the race
// runtime's exit hook.
func Command(name string, args ...string) (path string, argv []string, env []string) {
	mu.Lock()
	_, ok := registry[name]
	used[name] = true
	mu.Unlock()
	if !ok {
		panic("testhelper: unknown helper " + name)
	}
	exe, err := os.Executable()
	if err != nil {
		exe = os.Args[0]
	}
	argv = append([]string{exe, "-test.run=^$", "--"}, args...)
	race := strings.TrimSpace(os.Getenv("GORACE") + " atexit_sleep_ms=0")
	// One GORACE only: os.StartProcess passes duplicates on, and the
	// runtime reads the first.
	env = slices.DeleteFunc(os.Environ(), func(kv string) bool { return strings.HasPrefix(kv, "GORACE=") })
	return exe, argv, append(env, EnvVar+"="+name, "GORACE="+race)
}
