// Package testhelper holds what pexec's own tests need and users do not:
// the project's policy that every helper a package registers is used, the
// standard helpers ([Standard]), a JSON report protocol between a helper
// and its test ([Report], [RunReport]), probes of the pidfd system calls
// ([ProbePidfdSyscalls]), a descriptor shortage ([ExhaustFDs]), and
// children with the default signal actions under nohup
// ([DefaultChildSignals]).
//
// Everything else is public, in package pexectest, and pexec's tests use
// it directly, as any user would: helper commands ([pexectest.Command],
// [pexectest.CommandContext]), processes bound to a test
// ([pexectest.Start]), outcomes ([pexectest.Run]), the leak checks, and
// the fault injections (the seccomp jail, PID namespaces, foreign
// reapers).
//
// TestMain calls [Main], which registers the helpers and runs
// [pexectest.Main]: when the binary is re-executed as a helper it runs the
// helper instead of the tests; otherwise it fails the run if it leaves
// child processes running or unreaped, and, after a full (unfiltered) run,
// if one of a package's own helpers ([Register]) was never used: it never
// ran, and no test said that it uses it ([Uses]).
package testhelper

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"

	"github.com/pexec-dev/pexec/pexectest"
)

// Func is a helper: it receives the command's arguments after the helper
// name and returns the exit code.
type Func = pexectest.HelperFunc

var (
	mu   sync.Mutex
	own  = map[string]bool{} // package-specific helpers, checked for use
	used = map[string]bool{} // helpers named by Uses, Nested, Command or RunReport
)

// ranDirEnv names a directory, made by Main, in which each package-specific
// helper leaves a file named after itself when it runs: so a helper counts
// as used however it was started (pexectest.Command, from another helper).
const ranDirEnv = "PEXEC_TESTHELPER_RAN_DIR"

// Main runs the helper named by $PEXECTEST_HELPER if it is set, and the
// tests otherwise, through [pexectest.Main], whose leak check fails the run
// if it leaves a child process behind, running or unreaped (a test that
// releases a child with Process.Release must reap it itself). extra adds
// package-specific helpers to [Standard]; each of them must be used by an
// unfiltered test run. It gives children the default action for the
// signals the binary may have been started ignoring
// ([DefaultChildSignals]).
func Main(m *testing.M, extra map[string]Func) {
	DefaultChildSignals()
	for name, fn := range Standard {
		pexectest.Register(name, fn)
	}
	for name, fn := range extra {
		Register(name, fn)
	}
	if os.Getenv(pexectest.HelperEnv) == "" {
		if dir, err := os.MkdirTemp("", "testhelper-ran-"); err == nil {
			os.Setenv(ranDirEnv, dir)
		}
	}
	pexectest.Main(m, pexectest.AfterRun(func(code int) int {
		defer os.RemoveAll(os.Getenv(ranDirEnv))
		if code == 0 && unfiltered() {
			if missing := Unused(); len(missing) > 0 {
				fmt.Fprintf(os.Stderr, "testhelper: helpers never used: %v\n", missing)
				code = 1
			}
		}
		return code
	}))
}

func unfiltered() bool {
	for _, name := range []string{"test.run", "test.skip"} {
		if f := flag.Lookup(name); f != nil && f.Value.String() != "" {
			return false
		}
	}
	return !testing.Short()
}

// Register adds a package-specific helper ([pexectest.Register]); call it
// from an init function in the test file that uses the helper. Like the
// extra helpers given to [Main], it must be used by an unfiltered test run.
func Register(name string, fn Func) {
	pexectest.Register(name, func(args []string) int {
		if dir := os.Getenv(ranDirEnv); dir != "" && !strings.ContainsAny(name, `/\`) {
			os.WriteFile(filepath.Join(dir, name), nil, 0o644)
		}
		return fn(args)
	})
	mu.Lock()
	defer mu.Unlock()
	own[name] = true
}

// Uses records that a test uses the named helpers, so that they count as
// used although they do not run where the unused-helper check can see it:
// the test skips before it starts them (the fault injection it needs is
// not allowed here, the kernel lacks what it tests), or the helper runs as
// a user that cannot leave its mark in the run's directory. A helper that
// runs needs no Uses.
func Uses(names ...string) {
	mu.Lock()
	defer mu.Unlock()
	for _, name := range names {
		used[name] = true
	}
}

// Nested is [Uses] for helpers that a test runs through another helper,
// which starts them in its own process.
func Nested(names ...string) { Uses(names...) }

// Unused returns the package-specific helpers no test has used so far: a
// helper is used once it has run, however it was started
// ([pexectest.Command], from another helper, ...), or once a test has
// named it to [Uses], [Nested], [Command] or [RunReport].
func Unused() []string {
	ran := map[string]bool{}
	if dir := os.Getenv(ranDirEnv); dir != "" {
		ents, _ := os.ReadDir(dir)
		for _, e := range ents {
			ran[e.Name()] = true
		}
	}
	mu.Lock()
	defer mu.Unlock()
	var out []string
	for name := range own {
		if !used[name] && !ran[name] {
			out = append(out, name)
		}
	}
	sort.Strings(out)
	return out
}

// Command returns the path, argv and environment that run helper name with
// args in a re-execution of the current test binary: those of
// [pexectest.Command], for os/exec or os.StartProcess. It marks the helper
// used. It panics on an unregistered name, which is a bug in the test.
// (pexec's tests use pexectest.Command's Cmd, or its Path, Args and Env,
// directly.)
func Command(name string, args ...string) (path string, argv []string, env []string) {
	c := pexectest.Command(name, args...)
	if c.Err != nil {
		panic("testhelper: " + c.Err.Error())
	}
	Uses(name)
	return c.Path, c.Args, c.Env
}
