package pexec

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"os/exec"
	"sync/atomic"
	"syscall"
	"time"
)

// Error is os/exec's [exec.Error]: the type itself, so errors.As, type
// switches and %T behave exactly as with os/exec.
type Error = exec.Error

// ExitError is os/exec's [exec.ExitError], for the same reason as [Error].
type ExitError = exec.ExitError

// The os/exec sentinels, the same values, so errors.Is works across both
// packages.
var (
	// ErrNotFound is [exec.ErrNotFound].
	ErrNotFound = exec.ErrNotFound
	// ErrDot is [exec.ErrDot].
	ErrDot = exec.ErrDot
	// ErrWaitDelay is [exec.ErrWaitDelay].
	ErrWaitDelay = exec.ErrWaitDelay
)

// LookPath is [exec.LookPath].
func LookPath(file string) (string, error) { return exec.LookPath(file) }

// Cmd represents an external command being prepared or run. It has the
// fields and methods of [exec.Cmd], with the same meaning; see that type for
// their documentation. pexec adds [Cmd.Handle].
//
// pexec drives an exec.Cmd underneath, so command resolution, pipes,
// context cancellation, Cancel and WaitDelay behave exactly as in os/exec.
// What changes is how the child is spawned and waited for: on Linux with
// pidfd support, Start asks the runtime for a pidfd through
// SysProcAttr.PidFD (clone3 or clone with CLONE_PIDFD), so the child has a
// race-free [Handle] from its first instant, and Wait parks on Go's
// netpoller instead of blocking an OS thread in waitid.
//
// As with exec.Cmd, a Cmd cannot be reused after calling its Start, Run,
// Output or CombinedOutput methods, and its methods are not meant to be
// called concurrently; use its Handle for concurrent signalling and waiting.
type Cmd struct {
	// Path is the path of the command to run. See [exec.Cmd].
	Path string
	// Args holds command line arguments, including the command as Args[0].
	Args []string
	// Env specifies the environment of the process; nil means the current one.
	Env []string
	// Dir specifies the working directory of the command.
	Dir string
	// Stdin specifies the process's standard input.
	Stdin io.Reader
	// Stdout specifies the process's standard output.
	Stdout io.Writer
	// Stderr specifies the process's standard error.
	Stderr io.Writer
	// ExtraFiles specifies additional open files to be inherited by the
	// new process, as file descriptors 3, 4, ... It does not include
	// standard input, standard output, or standard error.
	ExtraFiles []*os.File
	// SysProcAttr holds optional, operating system-specific attributes.
	// pexec never modifies it. On Linux, if PidFD is set, *PidFD receives a
	// pidfd of the caller's own, as in os/exec. If Pdeathsig is set, pexec
	// starts the child from a thread that never exits (one of up to
	// GOMAXPROCS kept for this), so that the signal comes when the parent
	// process dies; with os/exec it comes when the thread that happened to
	// start the child exits (golang/go#27505). The one exception: if the
	// calling thread holds what a child inherits from its forking thread
	// differently from that spawn thread (a namespace entered with setns or
	// unshare, CPU affinity, credentials, a seccomp filter, an LSM label,
	// scheduling policy or nice value, a working or root directory), the
	// calling thread starts the child, as os/exec does, so that the child
	// inherits exactly what it would with os/exec; its signal then follows
	// that thread, as with os/exec.
	SysProcAttr *syscall.SysProcAttr
	// Process is the underlying process, once started.
	Process *os.Process
	// ProcessState contains information about an exited process. It is set
	// by a successful reap in Wait; it stays nil when the child was reaped by
	// another waiter (see [ReapedError]).
	ProcessState *os.ProcessState
	// Err holds an error from the lookup of Path, if any (see [exec.Cmd]).
	Err error
	// Cancel, if non-nil, is called when the command's context is done.
	// See [exec.Cmd]. [CommandContext] sets it to pexec's own: SIGKILL to
	// the process and its tree at once, or with [Cmd.Grace], the stop
	// ladder. [Wrap] replaces exec.CommandContext's default with the same.
	// A Cancel of the caller's replaces both, and Grace with them.
	Cancel func() error
	// WaitDelay bounds the time spent waiting on I/O and on the process
	// after cancellation. See [exec.Cmd]. Its final kill, which os/exec
	// sends to the process alone, takes the whole tree when the command
	// has one.
	WaitDelay time.Duration
	// Grace makes the cancellation graceful: when it is > 0, and Cancel is
	// nil or pexec's own, a done context starts the stop ladder of
	// [Handle.Stop] on the process and its tree (SIGTERM and SIGCONT, up
	// to Grace for them to exit, then SIGKILL), and Wait returns the
	// context's error, as os/exec does. Wait returns once the ladder has
	// ended (everything exited, or SIGKILL sent), so at most Grace after
	// the cancellation, unless WaitDelay ends it sooner: WaitDelay keeps
	// its os/exec meaning, counted from the cancellation, and its final
	// kill reaches the tree. Grace does nothing for a command without a
	// context.
	Grace time.Duration
	// Tree asks for the child and all its descendants to be held together
	// as one tree (see [TreeMode]); the zero value, TreeNone, is os/exec's
	// behaviour. With a tree, every kill pexec or os/exec issues on the
	// command's behalf (the default Cancel, Grace's ladder, WaitDelay's
	// final kill) reaches the whole tree, so a grandchild that holds the
	// output pipes open can no longer make Wait hang; [Handle.SignalTree],
	// [Handle.KillTree], [Handle.TreeDone] and [Handle.Stop] act on it.
	Tree TreeMode
	// DieWithParent asks for the child to be killed when the calling
	// process exits, however it exits (returning from main, os.Exit, a
	// crash, a kill). The zero value, false, is os/exec's behaviour:
	// children outlive their parent.
	//
	// On Windows the child and every process of its tree die: the child
	// is put in a job (TreeJob, also when Tree is TreeNone) with
	// JOB_OBJECT_LIMIT_KILL_ON_JOB_CLOSE, whose only HANDLE is this
	// process's, so the system kills the job's processes when the process
	// exits and the HANDLE closes.
	//
	// On Linux the child alone dies: pexec sets SysProcAttr.Pdeathsig to
	// SIGKILL (on its copy; a Pdeathsig the caller set is kept) and starts
	// the child from a thread that never exits, so the signal comes when
	// the process exits, not when some thread does. Linux has nothing that
	// kills the rest of a tree when its owner dies: a cgroup (TreeCgroup)
	// and a process group (TreeGroup) both outlive the process that made
	// them, and a parent-death signal is a property each process sets for
	// itself. The child's descendants live on unless they end on their own
	// (when their pipes to the child close, for one). Only a PID namespace
	// of the child's own, with the child as its init, which needs
	// privileges, takes them all. Elsewhere Start fails with an error
	// wrapping [errors.ErrUnsupported].
	DieWithParent bool

	inner       *exec.Cmd
	handle      *Handle
	startCalled int32 // atomic; an int32, not atomic.Bool, so Cmd values may be copied before use
	waitCalled  bool
	watchesCtx  bool         // made by CommandContext, or Wrap of exec.CommandContext
	stop        atomic.Value // *cmdStop: the cancellation, once the context is done (not atomic.Pointer, which may not be copied)
}

// Command returns the [Cmd] struct to execute the named program with the
// given arguments, exactly as [exec.Command] does.
func Command(name string, arg ...string) *Cmd {
	return wrap(exec.Command(name, arg...))
}

// CommandContext is like [Command] but includes a context, exactly as
// [exec.CommandContext]: its Cancel kills the Process when ctx is done (the
// whole tree when [Cmd.Tree] is set; gracefully with [Cmd.Grace]). Like
// os/exec, it panics if ctx is nil.
func CommandContext(ctx context.Context, name string, arg ...string) *Cmd {
	c := wrap(exec.CommandContext(ctx, name, arg...))
	c.watchesCtx = true
	c.Cancel = c.defaultCancel
	return c
}

func wrap(in *exec.Cmd) *Cmd {
	return &Cmd{Path: in.Path, Args: in.Args, Err: in.Err, inner: in}
}

// Wrap returns a [Cmd] that drives c, an *exec.Cmd that another constructor
// built: reexec.Command, execabs.Command, testenv.CleanCmdEnv, a library's
// own helper, or exec.CommandContext, whose context (and Cancel) Wrap keeps.
// The Cmd starts out with c's fields; set more on it before Start as usual.
// c itself must not be used afterwards: the Cmd owns it, copies its fields
// into it at Start, and reads its results back.
//
// If c has already been started, the Cmd's Wait reaps it as c.Wait would,
// and its Handle is c's child's (Start then fails, as a second Start of c
// would). A nil c gives a Cmd whose Start fails.
func Wrap(c *exec.Cmd) *Cmd {
	if c == nil {
		return &Cmd{Err: errors.New("pexec: Wrap: nil *exec.Cmd")}
	}
	w := &Cmd{
		Path: c.Path, Args: c.Args, Env: c.Env, Dir: c.Dir,
		Stdin: c.Stdin, Stdout: c.Stdout, Stderr: c.Stderr,
		ExtraFiles: c.ExtraFiles, SysProcAttr: c.SysProcAttr,
		Process: c.Process, ProcessState: c.ProcessState,
		Err: c.Err, Cancel: c.Cancel, WaitDelay: c.WaitDelay,
		inner: c, watchesCtx: c.Cancel != nil,
	}
	if isExecDefaultCancel(c.Cancel) {
		w.Cancel = w.defaultCancel
	}
	if c.Process != nil {
		w.startCalled = 1
		if c.ProcessState != nil {
			// c.Wait has reaped the child: the Handle answers with its
			// status, and refuses to signal.
			w.handle = newHandle(c.Process.Pid, childMode(), roleCmd)
			w.handle.to(phaseSettled, result{ps: c.ProcessState})
		} else {
			w.handle = childHandle(c.Process)
		}
	}
	return w
}

// engine returns the exec.Cmd that does the work, loaded with c's fields.
// It is called only before the command starts.
func (c *Cmd) engine() *exec.Cmd {
	if c.inner == nil {
		c.inner = new(exec.Cmd)
	}
	in := c.inner
	in.Path, in.Args, in.Env, in.Dir = c.Path, c.Args, c.Env, c.Dir
	in.Stdin, in.Stdout, in.Stderr = c.Stdin, c.Stdout, c.Stderr
	in.ExtraFiles, in.SysProcAttr = c.ExtraFiles, c.SysProcAttr
	in.Err, in.WaitDelay = c.Err, c.WaitDelay
	in.Cancel = nil
	return in
}

// String returns a human-readable description of c, as [exec.Cmd.String].
func (c *Cmd) String() string {
	return (&exec.Cmd{Path: c.Path, Args: c.Args, Err: c.Err}).String()
}

// Environ returns a copy of the environment in which the command would be
// run as it is currently configured, as [exec.Cmd.Environ].
func (c *Cmd) Environ() []string {
	return (&exec.Cmd{Env: c.Env, Dir: c.Dir, SysProcAttr: c.SysProcAttr}).Environ()
}

// Run starts the command and waits for it to complete, as [exec.Cmd.Run].
func (c *Cmd) Run() error {
	if err := c.Start(); err != nil {
		return err
	}
	return c.Wait()
}

// Start starts the command but does not wait for it to complete, as
// [exec.Cmd.Start]. On success, [Cmd.Process] and [Cmd.Handle] are set.
func (c *Cmd) Start() error {
	if atomic.SwapInt32(&c.startCalled, 1) != 0 {
		return errors.New("exec: already started")
	}
	in := c.engine()
	plan, attr, err := planTree(c.Tree, c.DieWithParent, in.SysProcAttr)
	if err != nil {
		return err
	}
	in.SysProcAttr = attr
	if c.Stdin == nil || c.Stdout == nil || c.Stderr == nil {
		if r, w := nullFiles(); r != nil {
			if c.Stdin == nil {
				in.Stdin = r
			}
			if c.Stdout == nil {
				in.Stdout = w
			}
			if c.Stderr == nil {
				in.Stderr = w
			}
		}
	}
	started := make(chan struct{})
	if c.Cancel != nil || c.watchesCtx && (c.Grace > 0 || c.WaitDelay > 0) {
		// The cancellation reads c.handle, which is set only once the
		// engine's Start has returned; the context watcher may fire
		// before. (os/exec refuses a Cancel without a context, as ever.)
		in.Cancel = func() error { <-started; return c.interrupt() }
	}
	err = startEngine(in)
	if err != nil {
		// os/exec records some failures in Err ("exec: no command"),
		// which String then relies on; mirror it.
		c.Err = in.Err
		plan.abort()
		close(started)
		return c.startError(err)
	}
	c.Process = in.Process
	c.handle = childHandle(in.Process)
	if err := plan.attach(c.handle); err != nil {
		// The child must not run on without its tree: attach has killed
		// it (on Windows before it ran an instruction: it was created
		// suspended). Reap it and fail the Start. (Cancel may run until
		// the reap.)
		close(started)
		in.Wait()
		c.Process, c.handle = nil, nil
		return err
	}
	close(started)
	return nil
}

// startError words a failed spawn as os/exec would: os.StartProcess checks
// Dir with a stat (reporting "chdir DIR") only when SysProcAttr is nil, and
// pexec always passes one, so the check is repeated here for the caller's nil.
func (c *Cmd) startError(err error) error {
	var pe *os.PathError
	if c.SysProcAttr != nil || c.Dir == "" || !errors.As(err, &pe) || pe.Op != "fork/exec" {
		return err
	}
	if _, serr := os.Stat(c.Dir); serr != nil {
		if spe, ok := serr.(*os.PathError); ok {
			spe.Op = "chdir"
			return spe
		}
	}
	return err
}

// Handle returns the process handle of the started command, or nil before a
// successful Start. The Handle belongs to the Cmd's child; closing it does
// not stop [Cmd.Wait] from working.
func (c *Cmd) Handle() *Handle {
	if c == nil {
		return nil
	}
	return c.handle
}

// Wait waits for the command to exit and for its I/O copying to complete, as
// [exec.Cmd.Wait], and reaps the child. Where the Handle holds a pidfd, the
// wait parks on Go's netpoller and holds no OS thread while the child runs
// (see the package documentation for the first 5 ms).
//
// If another waiter reaped the child first (a wait4(-1) loop, SIGCHLD
// ignored), Wait returns a [*ReapedError] carrying the true exit status when
// the kernel keeps it (Linux 6.15+), where os/exec returns a bare ECHILD.
func (c *Cmd) Wait() error {
	if c.Process == nil || c.inner == nil {
		return errors.New("exec: not started")
	}
	if c.ProcessState != nil {
		return errors.New("exec: Wait was already called")
	}
	h := c.handle
	if c.waitCalled || h == nil {
		return c.inner.Wait()
	}
	c.waitCalled = true
	// Wait for the exit first (on the netpoller in ModePidFD, holding no
	// thread), recording the status for the Handle, so that the engine's
	// waitid then returns at once. The status is recorded before the reap
	// whenever the engine may return well after it: it copies output, or
	// it waits for a Cancel, which may itself wait for the Handle.
	seen := h.beforeReap(c.copiesOutput() || c.inner.Cancel != nil)
	// A cancellation under way ends before the reap: while the child is a
	// zombie its PID, which names its process group, is still its own, so
	// the cancellation's signals reach the group even where only kill(-pgid)
	// can (TreeGroup before Linux 6.9, or without pidfds).
	c.stopping().finish(h)
	h.reaping()
	err := c.inner.Wait()
	c.ProcessState = c.inner.ProcessState
	r := result{ps: c.ProcessState}
	switch {
	case c.ProcessState != nil:
	case isErrno(err, syscall.ECHILD):
		// Another waiter reaped the child; the kernel may keep its
		// status in the pidfd.
		if seen == nil {
			seen = h.foreignStatus()
		}
		err = &ReapedError{Status: seen, Err: err}
		if r.st = seen; seen == nil {
			r.err = err
		}
	default:
		r.err = err
	}
	h.afterReap(r)
	c.stopping().finish(h) // or one that began meanwhile
	if h.tree != nil {
		h.tree.reaped(h)
	}
	if re, ok := err.(*ReapedError); ok && re.Status == nil {
		// A Handle waiter that held the pidfd when the child was reaped
		// may yet read the status: the outcome is settled once it has.
		_, settled, closed := h.waitChans()
		select {
		case <-settled:
			// re itself may be the outcome, shared: changed only if
			// it is not.
			if st, _ := h.outcome(); st != nil {
				re.Status = st
			}
		case <-closed:
		}
	}
	return err
}

// stopping returns the cancellation, once the context is done, or nil.
func (c *Cmd) stopping() *cmdStop {
	s, _ := c.stop.Load().(*cmdStop)
	return s
}

// copiesOutput reports whether os/exec copies the command's I/O in
// goroutines (a Stdin that is not an *os.File, or such a Stdout or
// Stderr), so that its Wait returns only once they are done: Cmd.Wait then
// records the child's status before reaping it, so that Handle waiters get
// it at once.
func (c *Cmd) copiesOutput() bool {
	copies := func(v any) bool {
		_, file := v.(*os.File)
		return v != nil && !file
	}
	return copies(c.Stdin) || copies(c.Stdout) || copies(c.Stderr)
}

// Output runs the command and returns its standard output, as
// [exec.Cmd.Output]: if Stderr was nil, a failing command's
// [ExitError].Stderr holds its standard error (the first and last 32 KiB).
func (c *Cmd) Output() ([]byte, error) {
	if c.Stdout != nil {
		return nil, errors.New("exec: Stdout already set")
	}
	var stdout bytes.Buffer
	c.Stdout = &stdout
	var stderr *headTail
	if c.Stderr == nil {
		stderr = &headTail{max: 32 << 10}
		c.Stderr = stderr
	}
	err := c.Run()
	if ee, ok := err.(*ExitError); ok && stderr != nil {
		ee.Stderr = stderr.Bytes()
	}
	return stdout.Bytes(), err
}

// CombinedOutput runs the command and returns its combined standard output
// and standard error, as [exec.Cmd.CombinedOutput].
func (c *Cmd) CombinedOutput() ([]byte, error) {
	if c.Stdout != nil {
		return nil, errors.New("exec: Stdout already set")
	}
	if c.Stderr != nil {
		return nil, errors.New("exec: Stderr already set")
	}
	var b bytes.Buffer
	c.Stdout, c.Stderr = &b, &b
	err := c.Run()
	return b.Bytes(), err
}

// StdinPipe returns a pipe connected to the command's standard input when
// the command starts, as [exec.Cmd.StdinPipe].
func (c *Cmd) StdinPipe() (io.WriteCloser, error) {
	if c.Stdin != nil {
		return nil, errors.New("exec: Stdin already set")
	}
	if c.Process != nil {
		return nil, errors.New("exec: StdinPipe after process started")
	}
	in := c.engine()
	w, err := in.StdinPipe()
	c.Stdin = in.Stdin
	return w, err
}

// StdoutPipe returns a pipe connected to the command's standard output when
// the command starts, as [exec.Cmd.StdoutPipe].
func (c *Cmd) StdoutPipe() (io.ReadCloser, error) {
	if c.Stdout != nil {
		return nil, errors.New("exec: Stdout already set")
	}
	if c.Process != nil {
		return nil, errors.New("exec: StdoutPipe after process started")
	}
	in := c.engine()
	r, err := in.StdoutPipe()
	c.Stdout = in.Stdout
	return r, err
}

// StderrPipe returns a pipe connected to the command's standard error when
// the command starts, as [exec.Cmd.StderrPipe].
func (c *Cmd) StderrPipe() (io.ReadCloser, error) {
	if c.Stderr != nil {
		return nil, errors.New("exec: Stderr already set")
	}
	if c.Process != nil {
		return nil, errors.New("exec: StderrPipe after process started")
	}
	in := c.engine()
	r, err := in.StderrPipe()
	c.Stderr = in.Stderr
	return r, err
}
