package pexectest_test

import (
	"context"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/pexec-dev/pexec/pexec"
	"github.com/pexec-dev/pexec/pexectest"
)

func TestRun(t *testing.T) {
	tests := []struct {
		name    string
		cmd     func() *pexec.Cmd
		timeout time.Duration
		want    pexectest.Outcome
	}{
		{"success", func() *pexec.Cmd { return pexectest.Command("greet", "you") }, 0,
			pexectest.Outcome{Stdout: "hello, you\n"}},
		{"exit code and output", func() *pexec.Cmd { return pexectest.Command("exit", "3", "out", "err") }, 0,
			pexectest.Outcome{Exit: 3, Stdout: "out", Stderr: "err"}},
		{"killed by a signal", func() *pexec.Cmd { return pexectest.Command("kill-self", strconv.Itoa(int(syscall.SIGKILL))) }, 0,
			killedOutcome},
		{"timed out", func() *pexec.Cmd { return pexectest.Command("sleep") }, 50 * time.Millisecond,
			timedOut(killedOutcome)},
		{"no such program", func() *pexec.Cmd { return pexec.Command("/nonexistent/prog") }, 0,
			pexectest.Outcome{Exit: -1, Err: noSuchProgram("/nonexistent/prog")}},
		{"output already taken", func() *pexec.Cmd {
			c := pexectest.Command("exit", "0", "out", "err")
			c.Stdout = new(discard)
			return c
		}, 0, pexectest.Outcome{Stderr: "err"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ctx := testContext(t)
			if tc.timeout > 0 {
				var cancel context.CancelFunc
				ctx, cancel = context.WithTimeout(ctx, tc.timeout)
				defer cancel()
			}
			if diff := cmp.Diff(tc.want, pexectest.Run(ctx, tc.cmd())); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
}

// timedOut is o, the outcome of a killed process, as Run reports it when
// it killed the process and its tree because its context was done.
func timedOut(o pexectest.Outcome) pexectest.Outcome {
	o.TimedOut, o.Killed = true, pexectest.KilledTree
	return o
}

type discard struct{}

func (*discard) Write(p []byte) (int, error) { return len(p), nil }

func TestOutcomeString(t *testing.T) {
	for _, tc := range []struct {
		o    pexectest.Outcome
		want string
	}{
		{pexectest.Outcome{}, "exit 0"},
		{pexectest.Outcome{Exit: 3, Stderr: "boom\n"}, `exit 3; stderr "boom\n"`},
		{pexectest.Outcome{Exit: -1, Signal: "SIGKILL", TimedOut: true}, "signal SIGKILL (timed out)"},
		{pexectest.Outcome{Exit: -1, Signal: "SIGKILL", TimedOut: true, Killed: "tree"}, "signal SIGKILL (timed out, tree killed)"},
		{pexectest.Outcome{Killed: "tree"}, "exit 0 (tree killed)"},
		{pexectest.Outcome{Exit: -1, Signal: "SIGABRT", CoreDump: true, Stdout: "x"}, `signal SIGABRT (core dumped); stdout "x"`},
		{pexectest.Outcome{Exit: -1, Err: "fork/exec x: no such file"}, "error: fork/exec x: no such file"},
		{pexectest.Outcome{Exit: 1, Err: "exec: WaitDelay expired before I/O complete"}, "exit 1; error: exec: WaitDelay expired before I/O complete"},
	} {
		if got := tc.o.String(); got != tc.want {
			t.Errorf("%#v.String() = %q, want %q", tc.o, got, tc.want)
		}
	}
}
