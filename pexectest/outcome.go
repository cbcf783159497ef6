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
// apply are zero, so the zero Outcome is a run that exited with code 0 and
// wrote nothing that was captured. Compare with == or, for a readable
// field-by-field difference, with cmp.Diff (github.com/google/go-cmp),
// whose output Outcome needs no option for:
//
//	if diff := cmp.Diff(tc.want, pexectest.Run(ctx, cmd)); diff != "" {
//		t.Errorf("%s: (-want +got):\n%s", cmd, diff)
//	}
type Outcome struct {
	// Exit is the exit code of a process that exited by itself; 0 if it
	// was ended by a signal or never ran.
	Exit int
	// Signal is the name of the signal that ended the process ("SIGKILL";
	// elsewhere than Unix, Go's description of it), or "".
	Signal string
	// CoreDump reports that the process dumped core as the signal ended it.
	CoreDump bool
	// Stdout and Stderr are what the process wrote, when [Run] captured
	// them (it does unless the Cmd's Stdout or Stderr was set).
	Stdout, Stderr string
	// TimedOut reports that the context given to [Run] was done before the
	// process ended, so that Run killed it.
	TimedOut bool
	// Err is the text of an error that is not the exit status: the command
	// could not start (then nothing else is set), its output could not be
	// copied, or its status is unknown because another waiter reaped it
	// without the kernel keeping the status (see [pexec.ReapedError]).
	Err string
}

// String describes the outcome in one line, for messages:
//
//	exit 3; stderr "boom\n"
//	signal SIGKILL (timed out)
//	error: exec: "nope": executable file not found in $PATH
func (o Outcome) String() string {
	var b strings.Builder
	switch {
	case o.Signal != "":
		b.WriteString("signal " + o.Signal)
		if o.CoreDump {
			b.WriteString(" (core dumped)")
		}
	case o.Err != "" && o.Exit == 0:
		// Not started, or no status: the error says it all.
	default:
		b.WriteString("exit " + strconv.Itoa(o.Exit))
	}
	if o.TimedOut {
		b.WriteString(" (timed out)")
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
	var o Outcome
	var re *pexec.ReapedError
	switch {
	case cmd.ProcessState != nil:
		ps := cmd.ProcessState
		if ws, ok := ps.Sys().(waitStatus); ok && ws.Signaled() {
			o.Signal = signalName(ws.Signal())
			o.CoreDump = ws.CoreDump()
		} else if ps.Exited() {
			o.Exit = ps.ExitCode()
		}
		var ee *pexec.ExitError
		if err != nil && !errors.As(err, &ee) {
			o.Err = err.Error() // WaitDelay expired, a copying error
		}
	case errors.As(err, &re) && re.Status != nil:
		if re.Status.Signaled() {
			o.Signal = signalName(re.Status.Signal())
			o.CoreDump = re.Status.CoreDump()
		} else {
			o.Exit = re.Status.ExitCode()
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
// cmd.Stderr is already set. If ctx is done before the process ends, Run
// kills it (through its [pexec.Handle], so the signal cannot reach another
// process that reused the PID) and reports TimedOut. If cmd.WaitDelay is
// zero, Run sets it to two seconds, so that a grandchild that keeps the
// output pipes open cannot hold Run for longer than that after the process
// ends: Err then reads "exec: WaitDelay expired before I/O complete".
//
// Run never fails the caller: an error is part of the Outcome.
func Run(ctx context.Context, cmd *pexec.Cmd) Outcome {
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
	if err := cmd.Start(); err != nil {
		return Outcome{Err: err.Error()}
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	var err error
	timedOut := false
	select {
	case err = <-done:
	case <-ctx.Done():
		// Kill returns nil only if the process had not exited: then the
		// deadline, not the process, ended the run.
		timedOut = cmd.Handle().Kill() == nil
		err = <-done
	}
	o := outcomeOf(cmd, err)
	o.TimedOut = timedOut
	if stdout != nil {
		o.Stdout = stdout.String()
	}
	if stderr != nil {
		o.Stderr = stderr.String()
	}
	return o
}
