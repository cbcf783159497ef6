package pexectest_test

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/pexec-dev/pexec/pexec"
	"github.com/pexec-dev/pexec/pexectest"
)

// testTimeout bounds every run of a helper in the tests.
const testTimeout = time.Minute

func testContext(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(t.Context(), testTimeout)
	t.Cleanup(cancel)
	return ctx
}

func TestCommandRunsHelper(t *testing.T) {
	got := pexectest.Run(testContext(t), pexectest.Command("greet", "world"))
	if diff := cmp.Diff(pexectest.Outcome{Stdout: "hello, world\n"}, got); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
}

// An unregistered helper: the parent's Start fails with an error naming
// the helper and the registered ones; Command itself does not panic.
func TestCommandUnknownHelper(t *testing.T) {
	c := pexectest.Command("no-such-helper", "x")
	err := c.Start()
	if !errors.Is(err, pexectest.ErrUnknownHelper) {
		t.Fatalf("Start: %v, want an error wrapping ErrUnknownHelper", err)
	}
	for _, want := range []string{`"no-such-helper"`, "registered: ", "greet", "sleep"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("Start: %q does not contain %q", err, want)
		}
	}
	if c.Process != nil {
		t.Errorf("a process was started: pid %d", c.Process.Pid)
	}
	got := pexectest.Run(testContext(t), pexectest.Command("no-such-helper"))
	if got != (pexectest.Outcome{Exit: -1, Err: err.Error()}) {
		t.Errorf("Run: %+v, want only Exit -1 and Err %q", got, err)
	}
}

// Without Main in TestMain, a re-executed binary would run its tests
// instead of the helper: Start says so.
func TestCommandWithoutMain(t *testing.T) {
	restore := pexectest.SetMainCalled(false)
	c := pexectest.Command("greet")
	restore()
	if err := c.Start(); !errors.Is(err, pexectest.ErrNoMain) || !strings.Contains(err.Error(), "pexectest.Main(m)") {
		t.Errorf("Start: %v, want an error wrapping ErrNoMain that says what to add", err)
	}
}

// A re-executed binary asked for a helper it does not know says so and
// exits with code 2 (a stale binary, or a name registered only in the
// parent).
func TestUnknownHelperInChild(t *testing.T) {
	c := pexectest.Command("greet")
	c.Env = append(c.Env, pexectest.HelperEnv+"=no-such-helper")
	got := pexectest.Run(testContext(t), c)
	if got.Exit != 2 || !strings.HasPrefix(got.Stderr, `pexectest: unknown helper "no-such-helper" (registered: `) || got.Stdout != "" {
		t.Errorf("got %v, want exit 2 and the error on stderr", got)
	}
}

// The helper is the same binary, race detector included: a data race in
// it is reported and makes it exit with code 66.
func TestHelperInheritsRace(t *testing.T) {
	got := pexectest.Run(testContext(t), pexectest.Command("race"))
	if raceEnabled {
		if got.Exit != 66 || !strings.Contains(got.Stderr, "WARNING: DATA RACE") {
			t.Errorf("under -race, the racy helper: %v; want exit 66 and a race report", got)
		}
		return
	}
	if got != (pexectest.Outcome{}) {
		t.Errorf("without -race, the racy helper: %v, want exit 0 and no output", got)
	}
}

// What a helper's command line and environment hold.
func TestHelperEnvironment(t *testing.T) {
	t.Setenv("GORACE", "halt_on_error=0")
	t.Setenv("PEXECTEST_JAIL", "no-pidfd") // not inherited: only Jailed jails
	t.Setenv(fixtureEnv, "kept")
	c := pexectest.Command("report-env", "a b", "-x", "--")
	out := pexectest.Run(testContext(t), c)
	var got envReport
	if err := json.Unmarshal([]byte(out.Stdout), &got); err != nil || out.Exit != 0 {
		t.Fatalf("report-env: %v (%v)", out, err)
	}
	// A binary run by go test -cover gets -test.gocoverdir and GOCOVERDIR;
	// either way the helper writes its counters there.
	wantCover := os.Getenv("GOCOVERDIR")
	if f := flag.Lookup("test.gocoverdir"); testing.CoverMode() != "" && f != nil && f.Value.String() != "" {
		wantCover = f.Value.String()
	}
	want := envReport{
		Args:       []string{"a b", "-x", "--"},
		Argv:       []string{"-test.run=^$", "--", "a b", "-x", "--"},
		GORACE:     "atexit_sleep_ms=0 halt_on_error=0",
		GOCOVERDIR: wantCover,
		Fixture:    "kept",
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
	if exe, _ := os.Executable(); c.Path != exe {
		t.Errorf("Path %q, want the test binary %q", c.Path, exe)
	}
}

func TestHelperEnv(t *testing.T) {
	base := []string{"HOME=/root", "GORACE=log_path=/tmp/r", "GOCOVERDIR=/cov", "PEXECTEST_HELPER=old", "PEXECTEST_PIDNS=1", "PEXECTEST_REAPER=wait4", "PEXECTEST_JAIL=no-pidfd"}
	tests := []struct {
		name       string
		env        []string
		gocoverdir string
		want       []string
	}{
		{"inherits", base, "", []string{"HOME=/root", "GOCOVERDIR=/cov", "PEXECTEST_HELPER=h", "GORACE=atexit_sleep_ms=0 log_path=/tmp/r"}},
		{"coverdir flag", base, "/flag", []string{"HOME=/root", "PEXECTEST_HELPER=h", "GORACE=atexit_sleep_ms=0 log_path=/tmp/r", "GOCOVERDIR=/flag"}},
		{"empty", nil, "", []string{"PEXECTEST_HELPER=h", "GORACE=atexit_sleep_ms=0"}},
		{"empty GORACE", []string{"GORACE="}, "", []string{"PEXECTEST_HELPER=h", "GORACE=atexit_sleep_ms=0"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if diff := cmp.Diff(tc.want, pexectest.HelperEnvFor("h", tc.env, tc.gocoverdir)); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
}

func TestRegisterRejects(t *testing.T) {
	noop := func([]string) int { return 0 }
	for _, tc := range []struct {
		name string
		fn   pexectest.HelperFunc
	}{
		{"", noop},
		{"pexectest.mine", noop},
		{"greet", noop}, // registered twice
		{"nil-func", nil},
	} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("Register(%q) did not panic", tc.name)
				}
			}()
			pexectest.Register(tc.name, tc.fn)
		}()
	}
}

// CommandContext's context kills the helper, as pexec.CommandContext's.
func TestCommandContext(t *testing.T) {
	ctx, cancel := context.WithCancel(t.Context())
	c := pexectest.CommandContext(ctx, "sleep")
	if err := c.Start(); err != nil {
		t.Fatal(err)
	}
	cancel()
	err := c.Wait()
	var ee *pexec.ExitError
	if !errors.As(err, &ee) || ee.String() != killedStatus {
		t.Errorf("Wait: %v, want %s", err, killedStatus)
	}
}
