package pexectest_test

import (
	"bufio"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/pexec-dev/pexec/pexec"
	"github.com/pexec-dev/pexec/pexectest"
)

// startReady starts helper cmd bound to tb and waits for its "ready" line.
func startReady(t *testing.T, tb testing.TB, cmd *pexec.Cmd, opts ...pexectest.Option) {
	t.Helper()
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	pexectest.Start(tb, cmd, opts...)
	line, err := bufio.NewReader(out).ReadString('\n')
	if line != "ready\n" {
		t.Fatalf("%s: %q, %v; want ready", cmd, line, err)
	}
}

// cleanupRow is what a row of TestStartCleanup gets on a system where it
// differs (startCleanupHere): the status and log, or why it skips.
type cleanupRow struct{ status, log, skip string }

// The clean-up's stop ladder, and what it reports.
func TestStartCleanup(t *testing.T) {
	tests := []struct {
		name      string
		start     func(t *testing.T, tb testing.TB) *pexec.Cmd
		status    string // how the process ended
		wantErr   string // in the errors reported through tb, "" for none
		wantLog   string // in the logs, "" for none
		waitFirst bool   // the test waits for the exit before the clean-up
	}{
		{"stops gracefully", func(t *testing.T, tb testing.TB) *pexec.Cmd {
			c := pexectest.Command("term-ok")
			startReady(t, tb, c)
			return c
		}, "exit status 0", "", "", false},
		{"kills after the grace period", func(t *testing.T, tb testing.TB) *pexec.Cmd {
			c := pexectest.Command("ignore-term")
			startReady(t, tb, c, pexectest.Grace(50*time.Millisecond))
			return c
		}, "signal: killed", "", "did not exit within 50ms of SIGTERM", false},
		{"unexpected failure", func(t *testing.T, tb testing.TB) *pexec.Cmd {
			c := pexectest.Command("exit", "3")
			pexectest.Start(tb, c)
			return c
		}, "exit status 3", "ended before the end of TestFake, unexpectedly: exit 3", "", true},
		{"unexpected signal", func(t *testing.T, tb testing.TB) *pexec.Cmd {
			c := pexectest.Command("kill-self", "15")
			pexectest.Start(tb, c)
			return c
		}, "signal: terminated", "unexpectedly: signal SIGTERM", "", true},
		{"exit 0 before the clean-up", func(t *testing.T, tb testing.TB) *pexec.Cmd {
			c := pexectest.Command("exit", "0")
			pexectest.Start(tb, c)
			return c
		}, "exit status 0", "", "", true},
		{"the test waited", func(t *testing.T, tb testing.TB) *pexec.Cmd {
			c := pexectest.Command("exit", "4")
			pexectest.Start(tb, c)
			if err := c.Wait(); err == nil {
				t.Error("Wait: nil, want exit status 4")
			}
			return c
		}, "exit status 4", "", "", false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if here, ok := startCleanupHere[tc.name]; ok {
				if here.skip != "" {
					t.Skip(here.skip)
				}
				tc.status, tc.wantLog = here.status, here.log
			}
			tb := &fakeTB{TB: t}
			c := tc.start(t, tb)
			if tc.waitFirst {
				if _, err := c.Handle().WaitContext(testContext(t)); err != nil {
					t.Fatal(err)
				}
			}
			tb.runCleanups()
			if c.ProcessState == nil {
				t.Fatalf("not reaped after the clean-up")
			}
			if got := c.ProcessState.String(); got != tc.status {
				t.Errorf("ended with %s, want %s", got, tc.status)
			}
			check := func(what, got, want string) {
				if (want == "") != (got == "") || !strings.Contains(got, want) {
					t.Errorf("%s: %q, want %q", what, got, want)
				}
			}
			check("errors", tb.errors(), tc.wantErr)
			check("logs", tb.logged(), tc.wantLog)
		})
	}
}

// Parallel subtests each bind their processes; each is stopped and reaped
// when its subtest ends, and none is a leak before that.
func TestStartParallel(t *testing.T) {
	cmds := make([]*pexec.Cmd, 4)
	t.Run("group", func(t *testing.T) {
		for i := range cmds {
			t.Run(fmt.Sprint(i), func(t *testing.T) {
				t.Parallel()
				cmds[i] = pexectest.Command("term-ok")
				startReady(t, t, cmds[i])
				// Bound processes of this and the other subtests are
				// running: none is leaked yet.
				pexectest.VerifyNone(t)
			})
		}
	})
	want := "exit status 0"
	if here, ok := startCleanupHere["stops gracefully"]; ok {
		want = here.status
	}
	for i, c := range cmds {
		if c.ProcessState == nil || c.ProcessState.String() != want {
			t.Errorf("subtest %d: %v after its subtest, want reaped with %s", i, c.ProcessState, want)
		}
	}
	pexectest.VerifyNone(t)
}

// Start fails its test when the command cannot start.
func TestStartFails(t *testing.T) {
	tb := &fakeTB{TB: t}
	tb.inGoroutine(func(tb testing.TB) { pexectest.Start(tb, pexectest.Command("no-such-helper")) })
	if got := tb.errors(); !strings.Contains(got, `pexectest: Start: `) || !strings.Contains(got, `unknown helper "no-such-helper"`) {
		t.Errorf("errors: %q", got)
	}
}
