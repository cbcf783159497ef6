//go:build linux

package pexec_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"syscall"
	"time"

	"github.com/pexec-dev/pexec/pexec"
)

// The examples of trees (issue #12). They use TreeAuto, which gives a cgroup
// where the caller may create one and a process group otherwise, or
// TreeGroup, and print only what holds with either, with pidfds or without.
// Each leaves no process behind: it waits for TreeDone before returning.

// startTreeReady starts cmd, whose first line of output is "ready" once its
// tree is in place, and waits for that line.
func startTreeReady(cmd *pexec.Cmd) error {
	out, err := cmd.StdoutPipe()
	if err != nil {
		return err
	}
	if err := cmd.Start(); err != nil {
		return err
	}
	line, err := bufio.NewReader(out).ReadString('\n')
	if line != "ready\n" {
		cmd.Handle().KillTree()
		cmd.Wait()
		return fmt.Errorf("%s said %q: %v", cmd, line, err)
	}
	return nil
}

// The modes of Cmd.Tree. TreeAuto is the one to use unless a mechanism is
// required: it never makes Start fail.
func ExampleTreeMode() {
	for _, mode := range []pexec.TreeMode{pexec.TreeNone, pexec.TreeAuto, pexec.TreeGroup, pexec.TreeCgroup} {
		fmt.Println(mode)
	}
	// Output:
	// none
	// auto
	// group
	// cgroup
}

// golang/go#23019: a shell's background job inherits the output pipe, so
// with os/exec, Output (or Wait) waits for the job even after the context
// is canceled and the shell killed. With a tree, CommandContext's default
// Cancel kills the whole tree: the pipe closes, Wait returns, and nothing
// is left.
func ExampleCmd_tree() {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	cmd := pexec.CommandContext(ctx, "sh", "-c", "sleep 60 & echo ready; wait")
	cmd.Tree = pexec.TreeAuto
	if err := startTreeReady(cmd); err != nil {
		fmt.Println(err)
		return
	}
	cancel() // the deadline of a real program
	fmt.Println(cmd.Wait())
	<-cmd.Handle().TreeDone()
	fmt.Println("tree empty")
	// Output:
	// signal: killed
	// tree empty
}

// Tree reports the containment the child got: TreeAuto resolves to
// TreeCgroup or TreeGroup, and a child started without Cmd.Tree has none.
func ExampleHandle_Tree() {
	auto := pexec.Command("true")
	auto.Tree = pexec.TreeAuto
	group := pexec.Command("true")
	group.Tree = pexec.TreeGroup
	plain := pexec.Command("true")
	for _, c := range []*pexec.Cmd{auto, group, plain} {
		if err := c.Run(); err != nil {
			fmt.Println(err)
			return
		}
	}
	got := auto.Handle().Tree()
	fmt.Println(got == pexec.TreeCgroup || got == pexec.TreeGroup)
	fmt.Println(group.Handle().Tree(), plain.Handle().Tree())
	for _, c := range []*pexec.Cmd{auto, group} {
		<-c.Handle().TreeDone()
	}
	// Output:
	// true
	// group none
}

// SignalTree reaches every process of the tree, here a shell and its two
// background jobs, where Signal would reach the shell alone.
func ExampleHandle_SignalTree() {
	cmd := pexec.Command("sh", "-c", "sleep 60 & sleep 60 & echo ready; wait")
	cmd.Tree = pexec.TreeAuto
	if err := startTreeReady(cmd); err != nil {
		fmt.Println(err)
		return
	}
	h := cmd.Handle()
	if err := h.SignalTree(syscall.SIGTERM); err != nil {
		fmt.Println(err)
	}
	fmt.Println(cmd.Wait())
	<-h.TreeDone()
	err := h.SignalTree(syscall.SIGTERM)
	fmt.Println(errors.Is(err, os.ErrProcessDone))
	// Output:
	// signal: terminated
	// true
}

// KillTree also kills what os/exec cannot reach at all: here a job the
// shell started in a subshell that exited at once, so the job was orphaned
// (reparented away from the shell) and is no child of anyone the program
// knows. A process group is enough for that: the orphan stays in it.
func ExampleHandle_KillTree() {
	cmd := pexec.Command("sh", "-c", "(sleep 60 &); echo ready; sleep 60")
	cmd.Tree = pexec.TreeGroup
	if err := startTreeReady(cmd); err != nil {
		fmt.Println(err)
		return
	}
	h := cmd.Handle()
	if err := h.KillTree(); err != nil {
		fmt.Println(err)
	}
	fmt.Println(cmd.Wait())
	<-h.TreeDone() // closed once the orphan has died too
	fmt.Println("tree empty")
	// Output:
	// signal: killed
	// tree empty
}

// TreeDone tells when the last process of the tree has exited, which may be
// long after the child itself: here the shell exits at once, leaving a
// background job that runs until the program closes the pipe it reads.
func ExampleHandle_TreeDone() {
	r, w, err := os.Pipe()
	if err != nil {
		fmt.Println(err)
		return
	}
	defer w.Close()
	cmd := pexec.Command("sh", "-c", "cat <&3 >/dev/null & exit 0")
	cmd.Tree = pexec.TreeAuto
	cmd.ExtraFiles = []*os.File{r} // descriptor 3
	err = cmd.Run()
	r.Close()
	fmt.Println("shell:", err)
	h := cmd.Handle()
	select {
	case <-h.TreeDone():
		fmt.Println("tree empty")
	default:
		fmt.Println("the job runs on")
	}
	w.Close() // cat reads end of file and exits
	<-h.TreeDone()
	fmt.Println("tree empty")
	// Output:
	// shell: <nil>
	// the job runs on
	// tree empty
}

// Stop stops the whole tree gracefully first and certainly last: SIGTERM,
// then SIGKILL once grace has passed. A shell that leaves on SIGTERM exits
// with its own status; one that ignores SIGTERM (as its job does, the
// disposition being inherited) is killed after the grace period. Stop
// returns once the process has exited and its tree is empty.
func ExampleHandle_Stop() {
	for _, tc := range []struct {
		script string
		grace  time.Duration
	}{
		// The trap is set after the job's fork: a job forked with the
		// trap in place could take the SIGTERM into the trap before it
		// runs sleep, which would then not see it.
		{`sleep 60 & trap 'exit 0' TERM; echo ready; wait`, time.Minute},
		{`trap '' TERM; sleep 60 & echo ready; wait`, 100 * time.Millisecond},
	} {
		cmd := pexec.Command("sh", "-c", tc.script)
		cmd.Tree = pexec.TreeAuto
		if err := startTreeReady(cmd); err != nil {
			fmt.Println(err)
			return
		}
		st, err := cmd.Handle().Stop(context.Background(), tc.grace)
		fmt.Println(st, err)
		cmd.Wait() // reaps the shell; Stop does not
	}
	// Output:
	// exit status 0 <nil>
	// signal: killed <nil>
}

// A job runner's graceful timeout: with Grace set, a done context runs the
// stop ladder on the job's whole tree instead of killing it at once. The
// job's shell gets SIGTERM, saves its work and exits; its background helper
// ignores SIGTERM and holds the output open, so it gets SIGKILL once Grace
// has passed. Wait returns the context's error, as os/exec does for a
// cancelled command that exited 0, and no process of the job is left.
// (TestGraceCancelTree checks each step, per tree mode.)
func ExampleCmd_grace() {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	// The helper is forked while SIGTERM is ignored (it inherits that);
	// the shell's own trap is set after the fork.
	job := pexec.CommandContext(ctx, "sh", "-c",
		`trap '' TERM; sleep 60 & trap 'echo saving work; exit 0' TERM; echo started; wait`)
	job.Tree = pexec.TreeAuto
	job.Grace = 500 * time.Millisecond
	out, err := job.StdoutPipe()
	if err != nil {
		fmt.Println(err)
		return
	}
	if err := job.Start(); err != nil {
		fmt.Println(err)
		return
	}
	lines := bufio.NewScanner(out)
	for lines.Scan() { // until the last process holding the output is gone
		fmt.Println(lines.Text())
		if lines.Text() == "started" {
			cancel() // the job's deadline
		}
	}
	fmt.Println(job.Wait())
	<-job.Handle().TreeDone()
	fmt.Println("tree empty")
	// Output:
	// started
	// saving work
	// context canceled
	// tree empty
}

// TreeSupport says, before any Start, whether a mode is usable here and if
// not why: TreeCgroup needs a writable cgroup2 hierarchy (root, or a
// delegated subtree). TreeAuto and TreeGroup are always usable on Linux.
// TreeAuto makes this choice itself; a program that wants to log it, or to
// refuse to run without a cgroup, asks first.
func ExampleTreeSupport() {
	mode := pexec.TreeCgroup
	if err := pexec.TreeSupport(mode); err != nil {
		// err says why: "... not root, and the cgroup is not delegated to
		// uid 1000 ...: permission denied", for one. A process group will
		// do; a descendant that calls setsid would escape it.
		mode = pexec.TreeGroup
	}
	cmd := pexec.Command("true")
	cmd.Tree = mode
	if err := cmd.Run(); err != nil {
		fmt.Println(err)
		return
	}
	<-cmd.Handle().TreeDone()
	fmt.Println(cmd.Handle().Tree() == mode)
	err := pexec.TreeSupport(pexec.TreeMode(42))
	fmt.Println(errors.Is(err, os.ErrInvalid))
	// Output:
	// true
	// true
}
