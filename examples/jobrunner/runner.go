package main

import (
	"bufio"
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"runtime"
	"strings"
	"sync"
	"text/tabwriter"
	"time"

	"github.com/pexec-dev/pexec/pexec"
)

// A Job is a command for the [Runner] to run.
type Job struct {
	Name    string        // names the job in its output and in the summary
	Args    []string      // the program and its arguments
	Env     []string      // the job's environment; nil: the runner's
	Timeout time.Duration // 0: the Runner's
}

// A Runner runs jobs, Parallel at a time, each with a timeout, writing
// their output to Out line by line: "[name] line" for standard output,
// "[name stderr] line" for standard error.
type Runner struct {
	Parallel int           // how many jobs run at once (1 if less)
	Timeout  time.Duration // a job's timeout, unless the Job says; 0: none
	Grace    time.Duration // how long a job has to exit after SIGTERM, before SIGKILL (0: SIGKILL at once)
	Out      io.Writer     // where the jobs' output goes

	mu sync.Mutex // one line at a time to Out
}

// A Result says how a job ended.
type Result struct {
	Job  string
	Tree pexec.TreeMode // the tree the job got (Handle.Tree): cgroup, group or job; none without one
	// State is how the job's process ended: nil if it did not start, or
	// if its status is unknown (see Err).
	State *os.ProcessState
	// TimedOut reports that the job's timeout expired while its process
	// ran: it was stopped (SIGTERM to its tree, SIGKILL after the grace).
	TimedOut bool
	// Interrupted reports that the runner was interrupted (its context was
	// done) before the job ended: it was stopped like a job that timed
	// out, or not started at all.
	Interrupted bool
	// LeftBehind reports that the job's process exited by itself while
	// processes of its tree still ran, and kept running for a moment
	// (see settle): the runner stopped them.
	LeftBehind bool
	Err        error         // why the job did not start, or what else went wrong
	Start      time.Time     // when the job started; zero if it did not
	Time       time.Duration // how long it ran: until its tree was gone and its output read
}

// OK reports whether the job succeeded: it exited with code 0 by itself,
// in time.
func (r Result) OK() bool {
	return r.State != nil && r.State.Success() && !r.TimedOut && !r.Interrupted && r.Err == nil
}

// String describes how the job ended: "exit status 3", "timed out; signal:
// killed", "exit status 0; stopped what it left running".
func (r Result) String() string {
	var parts []string
	switch {
	case r.TimedOut:
		parts = append(parts, "timed out")
	case r.Interrupted && r.Start.IsZero():
		parts = append(parts, "not started: interrupted")
	case r.Interrupted:
		parts = append(parts, "interrupted")
	}
	if r.State != nil {
		parts = append(parts, r.State.String())
	}
	if r.LeftBehind {
		parts = append(parts, "stopped what it left running")
	}
	if r.Err != nil {
		parts = append(parts, "error: "+r.Err.Error())
	}
	return strings.Join(parts, "; ")
}

const (
	// settle is how long what a job left running when its process exited
	// gets to exit by itself before the runner stops it. A job's tree
	// usually empties as its process exits: the wait ends at once.
	settle = time.Second
	// killWait bounds the wait for a tree to vanish after SIGKILL.
	killWait = 5 * time.Second
	// outputWait is how long the job's output may stay open once its tree
	// is gone: only a process that escaped the tree can hold it then (a
	// descendant that called setsid, with a process-group tree). The
	// runner then closes its end.
	outputWait = 2 * time.Second
)

// Run runs the jobs, r.Parallel at a time, in their order, and returns
// their results in the same order. Once ctx is done, the running jobs are
// stopped as if they timed out, and no job starts.
func (r *Runner) Run(ctx context.Context, jobs []Job) []Result {
	results := make([]Result, len(jobs))
	slots := make(chan struct{}, max(r.Parallel, 1))
	var wg sync.WaitGroup
	for i, job := range jobs {
		select {
		case slots <- struct{}{}:
		case <-ctx.Done():
		}
		if ctx.Err() != nil {
			results[i] = Result{Job: job.Name, Interrupted: true}
			continue
		}
		wg.Go(func() {
			defer func() { <-slots }()
			results[i] = r.run(ctx, job)
		})
	}
	wg.Wait()
	return results
}

// run runs one job.
func (r *Runner) run(ctx context.Context, job Job) Result {
	res := Result{Job: job.Name}
	if len(job.Args) == 0 {
		res.Err = errors.New("no command")
		return res
	}
	parent := ctx
	var cancel context.CancelFunc
	if timeout := cmp.Or(job.Timeout, r.Timeout); timeout > 0 {
		ctx, cancel = context.WithTimeout(parent, timeout)
	} else {
		ctx, cancel = context.WithCancel(parent)
	}
	defer cancel()
	cmd := r.command(ctx, job)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		res.Err = err
		return res
	}
	stderr, err := cmd.StderrPipe()
	if err != nil {
		res.Err = err
		return res
	}
	start := time.Now()
	if err := cmd.Start(); err != nil {
		if parent.Err() != nil {
			res.Interrupted = true // interrupted as it started
		} else {
			res.Err = err
		}
		return res
	}
	res.Start = start
	h := cmd.Handle()
	res.Tree = h.Tree()

	// Stream the output as it comes, a goroutine for each pipe.
	var streams sync.WaitGroup
	streams.Go(func() { r.stream(job.Name, "", stdout) })
	streams.Go(func() { r.stream(job.Name, "stderr", stderr) })
	read := make(chan struct{})
	go func() { streams.Wait(); close(read) }()

	select {
	case <-h.Done():
		// The job's process exited by itself. Stop what it left running
		// in its tree, which would otherwise hold its output open.
		res.LeftBehind = r.stopLeftovers(ctx, h)
	case <-ctx.Done():
		// The timeout (or an interrupt of the runner): pexec's Cancel runs
		// the stop ladder on the tree, for Grace.
		res.TimedOut = errors.Is(ctx.Err(), context.DeadlineExceeded)
		res.Interrupted = !res.TimedOut
	}
	// As os/exec says, Wait closes the pipes: it is called once both have
	// reached end of file.
	r.awaitOutput(job.Name, h, read, stdout, stderr)
	err = cmd.Wait()
	res.State = cmd.ProcessState
	var ee *pexec.ExitError
	switch {
	case err == nil, errors.As(err, &ee):
		// The status says it.
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, context.Canceled):
		// os/exec's word for a command it cancelled: TimedOut and
		// Interrupted say it.
	default:
		res.Err = err
	}
	// The job is over once its tree is gone: the last step of a stop,
	// SIGKILL, may still be on its way to a member when Wait returns.
	if err := awaitTree(h); err != nil {
		res.Err = errors.Join(res.Err, err)
	}
	res.Time = time.Since(start)
	return res
}

// command returns the Cmd of job, whose context ends at its timeout.
func (r *Runner) command(ctx context.Context, job Job) *pexec.Cmd {
	cmd := pexec.CommandContext(ctx, job.Args[0], job.Args[1:]...)
	cmd.Env = job.Env
	// The job and every process it starts, held together: a timeout, and
	// the runner's stop of what the job leaves running, reach them all.
	cmd.Tree = pexec.TreeAuto
	// At the timeout: SIGTERM to the tree, SIGKILL to what is left of it
	// after Grace.
	cmd.Grace = r.Grace
	// The job does not outlive the runner.
	cmd.DieWithParent = runtime.GOOS == "linux" || runtime.GOOS == "windows"
	allowGracefulStop(cmd)
	return cmd
}

// stopLeftovers is called once a job's process has exited by itself. If
// processes of its tree still run after settle, or when ctx is done
// (whose stop ladder has started on them), it stops them with Handle.Stop
// (SIGTERM, then SIGKILL after the grace, to the whole tree; or it joins
// the ladder) and reports true. A signal that Stop could not deliver
// matters only if the tree outlives the stop, which run reports.
func (r *Runner) stopLeftovers(ctx context.Context, h *pexec.Handle) bool {
	t := time.NewTimer(settle)
	defer t.Stop()
	select {
	case <-h.TreeDone():
		return false // nothing left, as it should be
	case <-t.C:
	case <-ctx.Done():
	}
	stopCtx, cancel := context.WithTimeout(context.Background(), r.Grace+killWait)
	defer cancel()
	h.Stop(stopCtx, r.Grace)
	return true
}

// awaitOutput waits until the job's output has been read to its end
// (read is closed). Once the job's tree is gone, only a process that
// escaped it can hold the output open: after outputWait, awaitOutput
// closes the runner's ends of the pipes.
func (r *Runner) awaitOutput(job string, h *pexec.Handle, read <-chan struct{}, pipes ...io.Closer) {
	select {
	case <-read:
		return
	case <-h.TreeDone():
	}
	t := time.NewTimer(outputWait)
	defer t.Stop()
	select {
	case <-read:
	case <-t.C:
		r.line("["+job+"] ", fmt.Sprintf("jobrunner: its output is still open %v after its tree emptied (a process outside the tree holds it): closing it", outputWait))
		for _, p := range pipes {
			p.Close()
		}
		<-read
	}
}

// awaitTree waits up to killWait for h's tree to be gone.
func awaitTree(h *pexec.Handle) error {
	t := time.NewTimer(killWait)
	defer t.Stop()
	select {
	case <-h.TreeDone():
		return nil
	case <-t.C:
		return fmt.Errorf("its tree (%v) is not empty %v after its end", h.Tree(), killWait)
	}
}

// stream writes the lines read from rd to r.Out, each prefixed with the
// job's name and, but for standard output, the stream's.
func (r *Runner) stream(job, stream string, rd io.Reader) {
	prefix := "[" + job + "] "
	if stream != "" {
		prefix = "[" + job + " " + stream + "] "
	}
	sc := bufio.NewScanner(rd)
	for sc.Scan() {
		r.line(prefix, sc.Text())
	}
	if err := sc.Err(); err != nil && !errors.Is(err, os.ErrClosed) {
		// A line too long for the Scanner: say so, and read on, so that
		// the job never blocks writing to a full pipe.
		r.line(prefix, "jobrunner: "+err.Error()+"; the rest is not shown")
		io.Copy(io.Discard, rd)
	}
}

// line writes one line to r.Out, whole.
func (r *Runner) line(prefix, text string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	io.WriteString(r.Out, prefix+text+"\n")
}

// summary writes a table of the results to w, and returns how many jobs
// failed.
func summary(w io.Writer, results []Result) (failed int) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "JOB\tTREE\tTIME\tOUTCOME")
	for _, r := range results {
		tree, took := "-", "-"
		if !r.Start.IsZero() {
			tree, took = r.Tree.String(), r.Time.Round(10*time.Millisecond).String()
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", r.Job, tree, took, r)
		if !r.OK() {
			failed++
		}
	}
	tw.Flush()
	fmt.Fprintf(w, "%d of %d jobs succeeded.\n", len(results)-failed, len(results))
	return failed
}
