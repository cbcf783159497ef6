package pexectest

import (
	"context"
	"errors"
	"os"
	"syscall"
	"testing"
	"time"

	"github.com/pexec-dev/pexec/pexec"
)

// Start starts cmd and binds the process to the test t: when t's clean-up
// runs (after the test or subtest and its subtests end, see
// [testing.T.Cleanup]), the process is stopped if it still runs and is
// reaped. Start fails t with Fatal if cmd cannot start, so call it from the
// test's own goroutine. It works with parallel tests and subtests alike:
// each process belongs to the t it was started with.
//
// The clean-up stops the process gracefully: SIGTERM through its
// [pexec.Handle] (which can never reach another process that reused the
// PID), up to [Grace] (three seconds by default) for it to exit, then
// SIGKILL, and reaps it with cmd.Wait. Being stopped that way is expected,
// whatever status it ends with (a SIGKILL after the grace period is
// logged). What is unexpected, and reported with t.Errorf naming the
// [Outcome], is a process that ended by itself before the clean-up with a
// failure (a non-zero exit code or a signal) that the test did not wait
// for. A test that wants to see a failure waits for the process itself:
// once cmd.Wait has returned, the clean-up has nothing to do. (Call
// cmd.Wait from the test, not from a goroutine still running when the
// test ends: a Cmd must not be waited for twice at once.)
//
// Until the process's clean-up has run, the leak checks do not count it as
// leaked, and afterwards they name t as the test that started it.
func Start(t testing.TB, cmd *pexec.Cmd, opts ...Option) {
	t.Helper()
	o := buildOptions(opts)
	if err := cmd.Start(); err != nil {
		t.Fatalf("pexectest: Start: %s: %v", cmd, err)
	}
	key := procKey{cmd.Process.Pid, procStart(cmd.Process.Pid)}
	bind(key, t.Name(), cmd.String())
	t.Cleanup(func() {
		if cmd.ProcessState != nil { // the test waited for it
			unbind(key)
			return
		}
		how, err := stopProcess(cmd, o.grace)
		if errors.Is(err, errWaitHung) {
			bound.Lock()
			bound.m[key] = boundChild{test: t.Name(), command: cmd.String()}
			bound.Unlock()
			t.Errorf("pexectest: %s: %v", cmd, err)
			return
		}
		unbind(key)
		if how == waitedBefore {
			return
		}
		out := outcomeOf(cmd, err)
		switch {
		case how == exitedBefore && out != (Outcome{}):
			t.Errorf("pexectest: %s ended before the end of %s, unexpectedly: %s", cmd, t.Name(), out)
		case how == killed:
			t.Logf("pexectest: %s did not exit within %v of SIGTERM (or cannot get SIGTERM here); killed", cmd, o.grace)
		}
	})
}

// How stopProcess found or ended the process.
type stopHow int

const (
	exitedBefore stopHow = iota // it had exited by itself
	terminated                  // it exited after SIGTERM
	killed                      // it was killed after the grace period
	waitedBefore                // the test had called cmd.Wait
)

// errWaitHung reports a cmd.Wait that did not return in time (its output
// pipes held open by a grandchild, for one).
var errWaitHung = errors.New("pexectest: Wait did not return within 10s after the process ended")

// stopProcess ends cmd's process if it still runs and reaps it, returning
// how and what cmd.Wait returned.
//
// TODO(pexec): this is the stop ladder that Handle.Stop(ctx, grace) will
// provide (and Handle.KillTree, for a Cmd whose Tree contains its
// descendants); switch to them once they land. Keep it the only place that
// signals a Start-bound process.
func stopProcess(cmd *pexec.Cmd, grace time.Duration) (stopHow, error) {
	h := cmd.Handle()
	how := exitedBefore
	switch err := h.Signal(syscall.SIGTERM); {
	case err == nil:
		how = terminated
		ctx, cancel := context.WithTimeout(context.Background(), grace)
		_, werr := h.WaitContext(ctx)
		cancel()
		if werr != nil && h.Kill() == nil {
			how = killed
		}
	case errors.Is(err, os.ErrProcessDone):
	default:
		// SIGTERM unsupported (Windows) or the Handle closed by the test:
		// the os.Process is race-free too (pidfd-based on Linux).
		if cmd.Process.Kill() == nil {
			how = killed
		}
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil && cmd.ProcessState == nil && err.Error() == "exec: Wait was already called" {
			return waitedBefore, nil // the test's Wait failed (a foreign reap, for one)
		}
		return how, err
	case <-time.After(10 * time.Second):
		return how, errWaitHung
	}
}
