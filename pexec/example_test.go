//go:build linux

package pexec_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/pexec-dev/pexec/pexec"
)

// The examples run /bin/sh, echo, cat and sleep, so they are Linux-only here;
// the API is the same everywhere. Each one prints only what holds in both
// modes (pidfd and PID) and on every supported kernel.

// Command is os/exec's Command: the same arguments, the same Cmd fields.
func ExampleCommand() {
	cmd := pexec.Command("echo", "hello")
	out, err := cmd.Output()
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Print(string(out))
	// Output: hello
}

// CommandContext kills the process when the context is done, exactly as
// os/exec does.
func ExampleCommandContext() {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	cmd := pexec.CommandContext(ctx, "sleep", "60")
	if err := cmd.Start(); err != nil {
		fmt.Println(err)
		return
	}
	cancel() // for example, the request was abandoned
	err := cmd.Wait()
	fmt.Println(err)
	fmt.Println(ctx.Err())
	// Output:
	// signal: killed
	// context canceled
}

// Run starts a command and waits for it; a non-zero exit is an
// *ExitError, the very type os/exec returns.
func ExampleCmd_Run() {
	err := pexec.Command("sh", "-c", "exit 3").Run()
	var ee *pexec.ExitError
	if errors.As(err, &ee) {
		fmt.Println(ee, "- code", ee.ExitCode())
	}
	// Output: exit status 3 - code 3
}

// Start returns at once; Wait reaps the child and finishes its I/O.
func ExampleCmd_Start() {
	cmd := pexec.Command("sh", "-c", "echo started")
	cmd.Stdout = os.Stdout
	if err := cmd.Start(); err != nil {
		fmt.Println(err)
		return
	}
	if err := cmd.Wait(); err != nil {
		fmt.Println(err)
	}
	fmt.Println(cmd.ProcessState)
	// Output:
	// started
	// exit status 0
}

// Handle is what pexec adds to os/exec: a reference to the child that stays
// valid after the child is gone, unlike its PID.
func ExampleCmd_Handle() {
	cmd := pexec.Command("sleep", "60")
	if err := cmd.Start(); err != nil {
		fmt.Println(err)
		return
	}
	h := cmd.Handle()
	fmt.Println("same process:", h.Pid() == cmd.Process.Pid)
	fmt.Println("alive:", h.Alive())
	h.Kill()
	fmt.Println(cmd.Wait())
	fmt.Println("after Wait:", h.Signal(syscall.SIGTERM))
	// Output:
	// same process: true
	// alive: true
	// signal: killed
	// after Wait: os: process already finished
}

// Pid is for display and logs; use the Handle's methods to act on the
// process.
func ExampleHandle_Pid() {
	cmd := pexec.Command("true")
	if err := cmd.Start(); err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(cmd.Handle().Pid() == cmd.Process.Pid)
	cmd.Wait()
	// Output: true
}

// Signal reaches the child while it runs, and refuses with
// os.ErrProcessDone once it is gone: it never reaches a process that
// reused the PID.
func ExampleHandle_Signal() {
	cmd := pexec.Command("sleep", "60")
	if err := cmd.Start(); err != nil {
		fmt.Println(err)
		return
	}
	h := cmd.Handle()
	if err := h.Signal(syscall.SIGTERM); err != nil {
		fmt.Println(err)
	}
	fmt.Println(cmd.Wait())
	err := h.Signal(syscall.SIGTERM)
	fmt.Println(err, errors.Is(err, os.ErrProcessDone))
	// Output:
	// signal: terminated
	// os: process already finished true
}

// Kill is Signal(os.Kill).
func ExampleHandle_Kill() {
	cmd := pexec.Command("sleep", "60")
	if err := cmd.Start(); err != nil {
		fmt.Println(err)
		return
	}
	h := cmd.Handle()
	h.Kill()
	st, _ := h.Wait()
	fmt.Println(st, st.Signal() == syscall.SIGKILL)
	cmd.Wait()
	// Output: signal: killed true
}

// Alive never blocks and sends nothing. A child that has exited but not yet
// been reaped (a zombie) is not alive, whereas kill(pid, 0) would still
// succeed.
func ExampleHandle_Alive() {
	cmd := pexec.Command("sleep", "60")
	if err := cmd.Start(); err != nil {
		fmt.Println(err)
		return
	}
	h := cmd.Handle()
	fmt.Println("running:", h.Alive())
	h.Kill()
	<-h.Done()                         // it has exited; Cmd.Wait has not reaped it yet
	fmt.Println("zombie:", h.Alive())  // false
	fmt.Println("reaped:", cmd.Wait()) // signal: killed
	fmt.Println("after:", h.Alive())
	// Output:
	// running: true
	// zombie: false
	// reaped: signal: killed
	// after: false
}

// Handle.Wait returns the exit status. Any number of goroutines may wait, and
// Cmd.Wait still works: it is the one that reaps the child.
func ExampleHandle_Wait() {
	cmd := pexec.Command("sh", "-c", "exit 3")
	if err := cmd.Start(); err != nil {
		fmt.Println(err)
		return
	}
	st, err := cmd.Handle().Wait()
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(st, st.Exited(), st.ExitCode(), st.Success())
	fmt.Println(cmd.Wait())
	// Output:
	// exit status 3 true 3 false
	// exit status 3
}

// WaitContext gives up when the context is done and leaves the process
// running: a bounded wait, then a decision.
func ExampleHandle_WaitContext() {
	cmd := pexec.Command("sleep", "60")
	if err := cmd.Start(); err != nil {
		fmt.Println(err)
		return
	}
	h := cmd.Handle()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Millisecond)
	defer cancel()
	_, err := h.WaitContext(ctx)
	fmt.Println("gave up:", errors.Is(err, context.DeadlineExceeded))
	fmt.Println("still running:", h.Alive())
	h.Kill()
	fmt.Println(cmd.Wait())
	// Output:
	// gave up: true
	// still running: true
	// signal: killed
}

// Done is a channel, so waiting for a process composes with select:
// here, whichever of two children exits first.
func ExampleHandle_Done() {
	quick := pexec.Command("true")
	slow := pexec.Command("sleep", "60")
	for _, c := range []*pexec.Cmd{quick, slow} {
		if err := c.Start(); err != nil {
			fmt.Println(err)
			return
		}
	}
	select {
	case <-quick.Handle().Done():
		fmt.Println("quick exited first")
	case <-slow.Handle().Done():
		fmt.Println("slow exited first")
	}
	slow.Handle().Kill()
	fmt.Println(quick.Wait(), slow.Wait())
	// Output:
	// quick exited first
	// <nil> signal: killed
}

// Close makes the Handle unusable (a Cmd child's pidfd stays with its
// os.Process); the process is not affected and Cmd.Wait still works.
func ExampleHandle_Close() {
	cmd := pexec.Command("sleep", "60")
	if err := cmd.Start(); err != nil {
		fmt.Println(err)
		return
	}
	h := cmd.Handle()
	fmt.Println(h.Close(), h.Close()) // idempotent
	fmt.Println(errors.Is(h.Signal(syscall.SIGTERM), os.ErrClosed))
	cmd.Process.Kill()
	fmt.Println(cmd.Wait())
	// Output:
	// <nil> <nil>
	// true
	// signal: killed
}

// Mode tells whether a Handle holds a pidfd: it does wherever Supported
// reports true.
func ExampleHandle_Mode() {
	cmd := pexec.Command("true")
	if err := cmd.Start(); err != nil {
		fmt.Println(err)
		return
	}
	defer cmd.Wait()
	want := pexec.ModePID
	if pexec.Supported() {
		want = pexec.ModePidFD
	}
	fmt.Println(cmd.Handle().Mode() == want)
	fmt.Println(pexec.ModePidFD, pexec.ModePID)
	// Output:
	// true
	// pidfd pid
}

// Supported reports whether this system gives pexec pidfds (Linux 5.4+,
// unless a seccomp filter blocks them). Everything works either way; the
// difference is which guarantees hold (see the package documentation).
func ExampleSupported() {
	if pexec.Supported() {
		fmt.Println("handles hold pidfds")
	} else {
		fmt.Println("handles hold PIDs")
	}
}

// Control lends the pidfd to code pexec does not cover, such as a poll(2)
// or epoll loop. In PID mode there is no pidfd: fall back to the Handle's
// own methods.
func ExampleHandle_Control() {
	cmd := pexec.Command("true")
	if err := cmd.Start(); err != nil {
		fmt.Println(err)
		return
	}
	h := cmd.Handle()
	err := h.Control(func(pidfd int) {
		// A pidfd becomes readable when its process exits.
		fds := []unix.PollFd{{Fd: int32(pidfd), Events: unix.POLLIN}}
		for {
			if _, err := unix.Poll(fds, -1); err != unix.EINTR {
				return
			}
		}
	})
	if errors.Is(err, errors.ErrUnsupported) {
		<-h.Done() // PID mode
	}
	fmt.Println("exited:", !h.Alive())
	cmd.Wait()
	// Output: exited: true
}

// Status describes how a process ended, worded as os.ProcessState does.
func ExampleStatus() {
	cmd := pexec.Command("sh", "-c", "kill -TERM $$")
	if err := cmd.Start(); err != nil {
		fmt.Println(err)
		return
	}
	h := cmd.Handle()
	st, _ := h.Wait() // observes the exit; Cmd.Wait reaps
	fmt.Println(st, st.Signaled(), st.Signal() == syscall.SIGTERM, st.ExitCode())
	cmd.Wait()
	st, _ = h.Wait()                      // now the status of the reap...
	fmt.Println(st.ProcessState() != nil) // ...which includes os/exec's record, with resource usage
	// Output:
	// signal: terminated true true -1
	// true
}

// Output collects standard output; when the command fails, the ExitError
// carries its standard error, as with os/exec.
func ExampleCmd_Output() {
	out, err := pexec.Command("sh", "-c", "echo result; echo problem >&2; exit 1").Output()
	fmt.Printf("%q\n", out)
	var ee *pexec.ExitError
	if errors.As(err, &ee) {
		fmt.Printf("%v: %q\n", ee, ee.Stderr)
	}
	// Output:
	// "result\n"
	// exit status 1: "problem\n"
}

// CombinedOutput interleaves standard output and standard error.
func ExampleCmd_CombinedOutput() {
	out, err := pexec.Command("sh", "-c", "echo out; echo err >&2").CombinedOutput()
	fmt.Printf("%q %v\n", out, err)
	// Output: "out\nerr\n" <nil>
}

// StdoutPipe streams a child's output while it runs; read it all before
// calling Wait.
func ExampleCmd_StdoutPipe() {
	cmd := pexec.Command("sh", "-c", "echo one; echo two")
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		fmt.Println(err)
		return
	}
	if err := cmd.Start(); err != nil {
		fmt.Println(err)
		return
	}
	sc := bufio.NewScanner(stdout)
	for sc.Scan() {
		fmt.Println("line:", sc.Text())
	}
	fmt.Println(cmd.Wait())
	// Output:
	// line: one
	// line: two
	// <nil>
}

// StdinPipe feeds a child's standard input; closing it ends the input.
func ExampleCmd_StdinPipe() {
	cmd := pexec.Command("cat")
	stdin, err := cmd.StdinPipe()
	if err != nil {
		fmt.Println(err)
		return
	}
	go func() {
		defer stdin.Close()
		io.WriteString(stdin, "fed through stdin\n")
	}()
	out, err := cmd.Output()
	fmt.Printf("%q %v\n", out, err)
	// Output: "fed through stdin\n" <nil>
}

// StderrPipe reads a child's standard error as it is written.
func ExampleCmd_StderrPipe() {
	cmd := pexec.Command("sh", "-c", "echo warning >&2")
	stderr, err := cmd.StderrPipe()
	if err != nil {
		fmt.Println(err)
		return
	}
	if err := cmd.Start(); err != nil {
		fmt.Println(err)
		return
	}
	b, _ := io.ReadAll(stderr)
	fmt.Printf("%q %v\n", b, cmd.Wait())
	// Output: "warning\n" <nil>
}

// String shows the command line, as os/exec does.
func ExampleCmd_String() {
	fmt.Println(pexec.Command("/bin/echo", "a", "b c"))
	// Output: /bin/echo a b c
}

// Environ shows the environment the command would get: with Env nil, this
// process's own, where PWD follows Dir.
func ExampleCmd_Environ() {
	cmd := pexec.Command("/bin/true")
	cmd.Dir = "/"
	env := cmd.Environ()
	fmt.Println(env[len(env)-1])
	// Output: PWD=/
}

// LookPath is os/exec's LookPath.
func ExampleLookPath() {
	path, err := pexec.LookPath("sh")
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(filepath.Base(path), filepath.IsAbs(path))
	// Output: sh true
}

// ErrNotFound is os/exec's own sentinel, so checks written for os/exec keep
// working.
func ExampleErrNotFound() {
	err := pexec.Command("pexec-example-no-such-program").Run()
	fmt.Println(errors.Is(err, pexec.ErrNotFound))
	var e *pexec.Error
	fmt.Println(errors.As(err, &e), e.Name)
	// Output:
	// true
	// true pexec-example-no-such-program
}

// When something else reaps the child first (here a wait4 call; in real
// programs a wait4(-1) loop, C code, or SIGCHLD set to SIG_IGN), os/exec's
// Cmd.Wait returns a bare ECHILD error. pexec returns a *ReapedError that
// still matches ECHILD and carries the real exit status when pexec saw it
// before the foreign reap (here Handle.Wait returned first) or the kernel
// kept it in the pidfd (Linux 6.15+); otherwise the error matches
// ErrStatusUnavailable. Never a made-up status.
func ExampleReapedError() {
	cmd := pexec.Command("sh", "-c", "exit 3")
	if err := cmd.Start(); err != nil {
		fmt.Println(err)
		return
	}
	st, _ := cmd.Handle().Wait() // the exit, seen; the child is not reaped
	var ws unix.WaitStatus
	unix.Wait4(cmd.Process.Pid, &ws, 0, nil) // the foreign reaper

	err := cmd.Wait()
	var re *pexec.ReapedError
	fmt.Println("ReapedError:", errors.As(err, &re))
	fmt.Println("ECHILD, as os/exec reports:", errors.Is(err, syscall.ECHILD))
	fmt.Println("exit code:", st.ExitCode(), re.ExitCode())
	// Output:
	// ReapedError: true
	// ECHILD, as os/exec reports: true
	// exit code: 3 3
}
