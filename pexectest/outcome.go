package pexectest

import (
	"bytes"
	"context"
	"errors"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/pexec-dev/pexec/pexec"
)

// Outcome describes how a run of a command ended, as a comparable value
// that a table of tests can hold as the result it wants. Fields that do not
// apply are zero (Exit aside, which follows os/exec), so the zero Outcome is
// a run that exited with code 0, wrote nothing that was captured, and left
// nothing to kill. Compare with == or, for a readable field-by-field
// difference, with cmp.Diff (github.com/google/go-cmp), whose output
// Outcome needs no option for:
//
//	if diff := cmp.Diff(tc.want, pexectest.Run(ctx, cmd)); diff != "" {
//		t.Errorf("%s: (-want +got):\n%s", cmd, diff)
//	}
type Outcome struct {
	// Exit is the exit code as [os.ProcessState.ExitCode] gives it: the
	// code of a process that exited by itself, and -1 for one that a
	// signal ended, that never ran, or whose status is unknown (so a
	// demanding os/exec user's cmd.ProcessState.ExitCode() and Exit
	// agree).
	Exit int
	// Signal is the name of the signal that ended the process, as
	// signal(7) and golang.org/x/sys/unix.SignalName spell it ("SIGTERM"),
	// or "". It is the name, not the description that the standard
	// library's syscall.Signal.String gives and that os/exec and pexec
	// print ("signal: terminated"): names are what test code writes
	// (syscall.SIGTERM) and are the same on every Unix. The leak reports
	// word signals the same way. Elsewhere than Unix it is Go's
	// description of the signal.
	Signal string
	// CoreDump reports that the process dumped core as the signal ended it.
	CoreDump bool
	// Stdout and Stderr are what the process wrote, when [Run] captured
	// them (it does unless the Cmd's Stdout or Stderr was set).
	Stdout, Stderr string
	// TimedOut reports that the context given to [Run] was done before the
	// process ended, so that Run killed it.
	TimedOut bool
	// Killed says what [Run] killed: "tree" for the process's tree (see
	// [pexec.Cmd.Tree]: every process in it, the process itself if it was
	// still running), "process" for the process alone (it had no tree),
	// or "" if Run killed nothing. Run kills when the context is done
	// before the process ends (TimedOut is then set too), and, with a
	// tree, when the process ended by itself but left processes running
	// in its tree (a daemon it double-forked, a shell's background job)
	// that did not exit within [MaxWait] (TimedOut is then false).
	Killed string
	// Err is the text of an error that is not the exit status: the command
	// could not start (then Exit is -1 and nothing else is set), its
	// output could not be copied, or its status is unknown because another
	// waiter reaped it without the kernel keeping the status (see
	// [pexec.ReapedError]).
	Err string
}

// What [Run] killed, in [Outcome.Killed].
const (
	KilledTree    = "tree"
	KilledProcess = "process"
)

// String describes the outcome in one line, for messages:
//
//	exit 3; stderr "boom\n"
//	signal SIGKILL (timed out, tree killed)
//	error: exec: "nope": executable file not found in $PATH
func (o Outcome) String() string {
	var b strings.Builder
	switch {
	case o.Signal != "":
		b.WriteString("signal " + o.Signal)
		if o.CoreDump {
			b.WriteString(" (core dumped)")
		}
	case o.Err != "" && o.Exit == -1:
		// Not started, or no status: the error says it all.
	default:
		b.WriteString("exit " + strconv.Itoa(o.Exit))
	}
	switch {
	case o.TimedOut && o.Killed != "":
		b.WriteString(" (timed out, " + o.Killed + " killed)")
	case o.TimedOut:
		b.WriteString(" (timed out)")
	case o.Killed != "":
		b.WriteString(" (" + o.Killed + " killed)")
	}
	sep := func() {
		if b.Len() > 0 {
			b.WriteString("; ")
		}
	}
	if o.Err != "" {
		sep()
		b.WriteString("error: " + o.Err)
	}
	if o.Stdout != "" {
		sep()
		b.WriteString("stdout " + strconv.Quote(o.Stdout))
	}
	if o.Stderr != "" {
		sep()
		b.WriteString("stderr " + strconv.Quote(o.Stderr))
	}
	return b.String()
}

// waitStatus is what syscall.WaitStatus offers on every system pexec
// supports.
type waitStatus interface {
	Signaled() bool
	Signal() syscall.Signal
	CoreDump() bool
}

// outcomeOf describes how cmd ended, given what its Start or Wait returned.
func outcomeOf(cmd *pexec.Cmd, err error) Outcome {
	o := Outcome{Exit: -1}
	var re *pexec.ReapedError
	switch {
	case cmd.ProcessState != nil:
		ps := cmd.ProcessState
		o.Exit = ps.ExitCode()
		if ws, ok := ps.Sys().(waitStatus); ok && ws.Signaled() {
			o.Signal = signalName(ws.Signal())
			o.CoreDump = ws.CoreDump()
		}
		var ee *pexec.ExitError
		if err != nil && !errors.As(err, &ee) {
			o.Err = err.Error() // WaitDelay expired, a copying error
		}
	case errors.As(err, &re) && re.Status != nil:
		o.Exit = re.Status.ExitCode()
		if re.Status.Signaled() {
			o.Signal = signalName(re.Status.Signal())
			o.CoreDump = re.Status.CoreDump()
		}
	case err != nil:
		o.Err = err.Error()
	}
	return o
}

// runWaitDelay is the WaitDelay Run gives a command that has none.
const runWaitDelay = 2 * time.Second

// Run runs cmd and describes how it ended. It captures the command's
// standard output and error into the Outcome unless cmd.Stdout or
// cmd.Stderr is already set. It never fails the caller: an error is part
// of the Outcome.
//
// Like [Start], Run holds the process and its descendants in one tree:
// unless cmd.Tree is set, it sets it to the [Tree] option's mode,
// [pexec.TreeAuto] by default (a cgroup where the test may create one, a
// process group otherwise; Tree(pexec.TreeNone) opts out). A Cmd that
// code under test builds as an *exec.Cmd is run through [pexec.Wrap]:
//
//	out := pexectest.Run(ctx, pexec.Wrap(exec.Command("sh", "-c", script)))
//
// If ctx is done before the process ends, Run kills the whole tree with
// [pexec.Handle.KillTree] (the process alone, with [pexec.Handle.Kill],
// if it has no tree), through pidfds or the tree's cgroup, so the signal
// cannot reach a process that reused a PID; the Outcome reports TimedOut
// and what was killed (Killed). If the process ends by itself but leaves
// processes running in its tree, Run gives them [MaxWait] (one second by
// default) to exit, then kills them and reports Killed "tree". After
// killing a tree, Run waits for it to empty (up to 10 seconds) before it
// returns. (With a process group, a descendant that called setsid or
// setpgid has left the tree and escapes this; see [Start].)
//
// If cmd.WaitDelay is zero, Run sets it to two seconds, so that a process
// outside the tree that keeps the output pipes open cannot hold Run for
// longer than that after the process ends: Err then reads "exec:
// WaitDelay expired before I/O complete".
//
// Of the options, Run uses [Tree], [MaxWait] and [DieWithTestBinary]; it
// ignores the others.
func Run(ctx context.Context, cmd *pexec.Cmd, opts ...Option) Outcome {
	o := buildOptions(opts)
	var stdout, stderr *bytes.Buffer
	if cmd.Stdout == nil {
		stdout = new(bytes.Buffer)
		cmd.Stdout = stdout
	}
	if cmd.Stderr == nil {
		stderr = new(bytes.Buffer)
		cmd.Stderr = stderr
	}
	if cmd.WaitDelay == 0 {
		cmd.WaitDelay = runWaitDelay
	}
	prepare(cmd, o, callerTest())
	if err := cmd.Start(); err != nil {
		return Outcome{Exit: -1, Err: err.Error()}
	}
	h := cmd.Handle()
	var timedOut bool
	var killed string
	select {
	case <-h.Done():
		// Ended by itself. What it left in its tree gets MaxWait to go.
		if h.Tree() != pexec.TreeNone && !settleTree(ctx, h, o.maxWait) {
			if h.KillTree() == nil {
				killed = KilledTree
			}
		}
	case <-ctx.Done():
		timedOut, killed = killRun(h)
	}
	if killed == KilledTree {
		// Gone before Run returns, as far as the kernel can tell.
		settleTree(context.Background(), h, killWait)
	}
	err := cmd.Wait()
	out := outcomeOf(cmd, err)
	out.TimedOut = timedOut
	out.Killed = killed
	if stdout != nil {
		out.Stdout = stdout.String()
	}
	if stderr != nil {
		out.Stderr = stderr.String()
	}
	return out
}

// killRun kills the process of h, whose context is done, with its tree if
// it has one. It reports whether the process was still running (so that
// the deadline, not the process, ended the run) and what it killed.
func killRun(h *pexec.Handle) (running bool, killed string) {
	select {
	case <-h.Done():
	default:
		running = true
	}
	if h.Tree() != pexec.TreeNone && h.KillTree() == nil {
		return running, KilledTree
	}
	// No tree, or it could not be killed: the process at least.
	if h.Kill() == nil {
		return running, KilledProcess
	}
	return false, "" // it had ended, and so had its tree
}

// settleTree waits up to d for the tree of h, whose process has ended, to
// empty, or for ctx to be done; it reports whether the tree emptied.
func settleTree(ctx context.Context, h *pexec.Handle, d time.Duration) bool {
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case <-h.TreeDone():
		return true
	case <-timer.C:
	case <-ctx.Done():
	}
	select {
	case <-h.TreeDone():
		return true
	default:
		return false
	}
}
