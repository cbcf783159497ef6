package pexectest

import (
	"context"
	"errors"
	"fmt"
	"os"
	"runtime"
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
// each process belongs to the t it was started with. Start and its
// clean-up are test helpers ([testing.TB.Helper]): what they report points
// at the line that called Start.
//
// Unless cmd.Tree is set, or the [Tree] option says otherwise, Start sets
// cmd.Tree to [pexec.TreeAuto]: the process is started with every process
// it will start contained in one tree (a cgroup, or a process group where
// the test may not create cgroups; [pexec.Handle.Tree] tells which), and
// the clean-up acts on the whole tree. Start logs (with t.Logf, shown by
// go test -v or when the test fails) which tree the process got and, for a
// process group, why there is no cgroup: a descendant that calls setsid
// escapes a process group, so a test can pass as root and hang, or leak,
// without it. [RequireTree] skips the test where the tree it needs is not
// available.
//
// The clean-up stops the process gracefully with [pexec.Handle.Stop]:
// SIGTERM (to the whole tree), up to [Grace] (three seconds by default) for
// the process to exit and the tree to empty, then SIGKILL (to the tree),
// and reaps the process with cmd.Wait. Signals go through the process's
// pidfd, or the tree's cgroup, so they can never reach a process that
// reused a PID. Being stopped that way is expected, whatever status the
// process ends with (a SIGKILL after the grace period is logged). What is
// unexpected, and reported with t.Errorf naming the helper (or the
// command), its PID and the [Outcome], is a process that ended by itself
// before the clean-up with a failure (a non-zero exit code or a signal)
// that the test did not wait for. A test that wants to see a failure waits
// for the process itself: once cmd.Wait has returned, the clean-up has
// nothing to stop. (Call cmd.Wait from the test, not from a goroutine
// still running when the test ends: a Cmd must not be waited for twice at
// once.)
//
// A process that ended (by itself, or waited for by the test) while
// processes of its tree run on left them behind: a daemon it
// double-forked, a background job of a shell. The clean-up gives them
// [MaxWait] to exit, then reports them with t.Error as leaked, naming
// each one still in the tree (PID, state, command line, helper), and kills
// them all with [pexec.Handle.KillTree]. The list is read just before the
// kill, so a process that the tree forks meanwhile may be missing from it,
// but not from the kill: with a cgroup, the members are those in its
// cgroup.procs (and in the cgroups below it; pexec does not say where the
// cgroup is, so Start reads it from /proc/<pid>/cgroup as the process
// starts) and the kill is cgroup.kill;
// with a process group, the members are the live processes of the group
// (a descendant that left the group with setsid or setpgid escapes both the
// list and the kill, as [pexec.TreeGroup] documents; under [Main] the test
// process adopts it once its parent has exited, and the leak checks report
// it). [ReportOnly] makes the report a log. A tree the clean-up cannot
// empty is reported again, and killed again, by the leak checks
// ([VerifyNone], [Main]).
//
// A test binary that dies without running its clean-ups (a crash, a
// SIGKILL, the panic of -test.timeout) cannot stop the process: a helper
// made by [Command] dies with it all the same (see Command), and
// [DieWithTestBinary] does the same for another command.
//
// Until the process's clean-up has run, the leak checks do not count it,
// or what its tree holds, as leaked, and afterwards they name t as the
// test that started it.
func Start(t testing.TB, cmd *pexec.Cmd, opts ...Option) {
	t.Helper()
	o := buildOptions(opts)
	if o.requireTree {
		requireTree(t, cmd, o.tree)
	}
	asked := cmd.Tree
	if asked == pexec.TreeNone {
		asked = o.tree
	}
	prepare(cmd, o, t.Name())
	if err := cmd.Start(); err != nil {
		t.Fatalf("pexectest: Start: %s: %v", cmd, err)
	}
	what := fmt.Sprintf("%s (pid %d)", describeCmd(cmd), cmd.Process.Pid)
	got := cmd.Handle().Tree()
	if o.requireTree && (got == pexec.TreeNone || o.tree != pexec.TreeAuto && got != o.tree) {
		if got == pexec.TreeNone || cmd.Handle().KillTree() != nil {
			cmd.Handle().Kill()
		}
		cmd.Wait()
		t.Fatalf("pexectest: Start: %s got tree %v, but RequireTree(%v) (does its SysProcAttr put it in another process group?)", what, got, o.tree)
	}
	t.Logf("pexectest: Start: %s %s", what, treeNote(asked, got))
	key := procKey{cmd.Process.Pid, procStart(cmd.Process.Pid)}
	tr := newTree(cmd, t.Name())
	bind(key, boundChild{test: t.Name(), command: cmd.String(), helper: helperName(cmd), tree: tr, pending: true})
	t.Cleanup(func() {
		t.Helper()
		r := stopProcess(cmd, tr, o)
		if r.left != nil {
			msg := leakReport([]leaked{*r.left}, "at the clean-up of "+t.Name())
			if o.reportOnly {
				t.Log(msg)
			} else {
				t.Error(msg)
			}
		}
		if r.treeErr != nil {
			keepTree(tr)
			t.Errorf("pexectest: %s: %v", what, r.treeErr)
		}
		if errors.Is(r.err, errWaitHung) {
			bind(key, boundChild{test: t.Name(), command: cmd.String(), helper: helperName(cmd)})
			t.Errorf("pexectest: %s: %v", what, r.err)
			return
		}
		unbind(key)
		if r.how == waitedBefore {
			return
		}
		out := outcomeOf(cmd, r.err)
		switch {
		case r.how == exitedBefore && out != (Outcome{}):
			t.Errorf("pexectest: %s ended before the end of %s, unexpectedly: %s", what, t.Name(), out)
		case r.how == killed:
			t.Logf("pexectest: %s did not exit within %v of SIGTERM (or cannot get SIGTERM here); killed", what, o.grace)
		}
	})
}

// prepare sets up cmd, not started yet, for Start or Run: its tree (o's
// unless the caller set one), its parent-death signal (DieWithTestBinary),
// and, for a helper, the test that starts it (test, if known), which its
// descendants inherit.
func prepare(cmd *pexec.Cmd, o *options, test string) {
	if cmd.Process != nil {
		return // Start fails
	}
	if cmd.Tree == pexec.TreeNone {
		cmd.Tree = o.tree
	}
	if o.deathSignal {
		setDeathSignal(cmd)
	}
	if test != "" && helperName(cmd) != "" {
		cmd.Env = append(cmd.Env, testEnv+"="+test)
	}
}

// requireTree skips t if mode, which RequireTree asks for, is not
// available, and fails it if cmd.Tree asks for another.
func requireTree(t testing.TB, cmd *pexec.Cmd, mode pexec.TreeMode) {
	t.Helper()
	if mode == pexec.TreeNone || cmd.Tree != pexec.TreeNone && cmd.Tree != mode {
		t.Fatalf("pexectest: Start: %s: RequireTree(%v) with Cmd.Tree %v", cmd, mode, cmd.Tree)
	}
	probe := mode
	if mode == pexec.TreeAuto {
		probe = pexec.TreeGroup // any will do; a group is the least
		if runtime.GOOS == "windows" {
			probe = pexec.TreeJob
		}
	}
	if err := pexec.TreeSupport(probe); err != nil {
		t.Skipf("pexectest: Start: %s: this test requires a %v tree, which is not available here: %v", describeCmd(cmd), probe, err)
	}
}

// treeNote says which tree a process got, asked for asked, and what that
// means, for Start's log.
func treeNote(asked, got pexec.TreeMode) string {
	switch got {
	case pexec.TreeCgroup:
		return "runs in a cgroup tree: it holds every descendant"
	case pexec.TreeJob:
		return "runs in a job object tree: it holds every descendant"
	case pexec.TreeGroup:
		if asked == pexec.TreeGroup {
			return "runs in a process-group tree, as asked: a descendant that calls setsid or setpgid escapes it"
		}
		return fmt.Sprintf("runs in a process-group tree, not a cgroup tree (%v): a descendant that calls setsid or setpgid escapes it; RequireTree(pexec.TreeCgroup) would skip the test instead",
			pexec.TreeSupport(pexec.TreeCgroup))
	}
	if asked == pexec.TreeNone {
		return "runs without a tree, as asked: its descendants are on their own"
	}
	if err := pexec.TreeSupport(pexec.TreeGroup); err != nil && runtime.GOOS != "windows" {
		return fmt.Sprintf("runs without a tree (%v): its descendants are on their own", err)
	}
	return "runs without a tree (its SysProcAttr puts it in another process group): its descendants are on their own"
}

// describeCmd names cmd for messages: `helper "exit" ["3"]` for a helper,
// its command line otherwise.
func describeCmd(cmd *pexec.Cmd) string {
	name := helperName(cmd)
	if name == "" {
		return cmd.String()
	}
	return fmt.Sprintf("helper %q %q", name, helperArgs(cmd.Args))
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

// killWait bounds the wait for a process, or a tree, to go after SIGKILL.
const killWait = 10 * time.Second

// stopResult is what the clean-up of Start found and did.
type stopResult struct {
	how     stopHow
	err     error   // what cmd.Wait returned
	left    *leaked // what the process's tree kept after the process ended, or nil
	treeErr error   // the tree could not be emptied
}

// stopProcess ends cmd's process, and its tree tr (nil without one), if it
// still runs, checks the tree of a process that has ended, and reaps the
// process. It is the only place that signals a Start-bound process.
func stopProcess(cmd *pexec.Cmd, tr *tree, o *options) stopResult {
	var r stopResult
	if cmd.ProcessState != nil { // the test waited for it
		r.how = waitedBefore
		r.left, r.treeErr = tr.leftBehind(o)
		return r
	}
	h := cmd.Handle()
	switch err := h.Signal(syscall.Signal(0)); {
	case err == nil:
		r.how, r.treeErr = stopLadder(cmd, o.grace)
	case errors.Is(err, os.ErrProcessDone):
		// Before the reap: what the tree kept may hold the output pipes
		// that cmd.Wait waits for.
		r.left, r.treeErr = tr.leftBehind(o)
	default:
		// Signals unsupported (Windows) or the Handle closed by the test:
		// the os.Process is race-free too (pidfd-based on Linux).
		if cmd.Process.Kill() == nil {
			r.how = killed
		}
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil && cmd.ProcessState == nil && err.Error() == "exec: Wait was already called" {
			r.how = waitedBefore // the test's Wait failed (a foreign reap, for one)
			return r
		}
		r.err = err
	case <-time.After(10 * time.Second):
		r.err = errWaitHung
	}
	return r
}

// stopLadder stops cmd's running process, and its tree, with Handle.Stop:
// SIGTERM, up to grace, SIGKILL. The error says what is left after that.
func stopLadder(cmd *pexec.Cmd, grace time.Duration) (stopHow, error) {
	ctx, cancel := context.WithTimeout(context.Background(), grace+killWait)
	defer cancel()
	st, err := cmd.Handle().Stop(ctx, grace)
	switch {
	case err == nil && killedBy(cmd, st):
		return killed, nil
	case err == nil:
		return terminated, nil
	case ctx.Err() != nil:
		// Stop sent SIGKILL, but the process or a process of its tree is
		// still there (uninterruptible, or stopped by a debugger).
		return killed, err
	}
	// Stop could not signal (SIGTERM unsupported, as on Windows): the
	// os.Process is race-free too (pidfd-based on Linux).
	if cmd.Handle().Tree() != pexec.TreeNone && cmd.Handle().KillTree() == nil || cmd.Process.Kill() == nil {
		return killed, nil
	}
	return exitedBefore, nil
}
