package pexec_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/pexec-dev/pexec/internal/cgroup"
	"github.com/pexec-dev/pexec/internal/procfs"
	"github.com/pexec-dev/pexec/internal/testhelper"
	"github.com/pexec-dev/pexec/pexec"
	"github.com/pexec-dev/pexec/pexectest"
)

// Regression tests for issue #18: lifetimes that compose. Each failed on
// dddc71a.

func init() {
	testhelper.Register("term-count", termCountHelper)
}

// termCountHelper prints "ready", and on its first SIGTERM waits 300 ms for
// more, prints how many SIGTERMs came, and exits 0: a program that shuts
// down gracefully on one SIGTERM (a second one would hurry it).
func termCountHelper([]string) int {
	c := make(chan os.Signal, 64)
	signal.Notify(c, syscall.SIGTERM)
	fmt.Println("ready")
	<-c
	n := 1
	for deadline := time.After(300 * time.Millisecond); ; {
		select {
		case <-c:
			n++
			continue
		case <-deadline:
		}
		break
	}
	fmt.Println("sigterms", n)
	return 0
}

// leafTreeScript prints the PID of a grandchild that ignores SIGTERM and
// holds the standard output, and the grandchild says "ignoring" once it
// does (the two lines in either order); then, on SIGTERM, the leader says
// so and exits 3.
const leafTreeScript = `trap 'echo leader-term; exit 3' TERM; (trap '' TERM; echo ignoring; exec sleep 60) & echo $!; wait`

// leafTreePID waits until out holds leafTreeScript's first two lines and
// returns the grandchild's PID.
func leafTreePID(ctx context.Context, t *testing.T, out *lockedBuffer) int {
	t.Helper()
	for {
		lines := strings.Split(out.String(), "\n")
		if len(lines) >= 3 {
			for _, l := range lines[:2] {
				if pid, err := strconv.Atoi(l); err == nil && slices.Contains(lines[:2], "ignoring") {
					return pid
				}
			}
			t.Fatalf("script said %q", out.String())
		}
		select {
		case <-ctx.Done():
			t.Fatalf("script said %q: %v", out.String(), ctx.Err())
		case <-time.After(time.Millisecond):
		}
	}
}

// treeVariants are the trees the cancellation tests run: each mode, and
// TreeGroup as on kernels without PIDFD_SIGNAL_PROCESS_GROUP (before 6.9),
// where only kill(-pgid) can reach the group, and only while the leader is
// unreaped.
var treeVariants = []struct {
	name          string
	mode          pexec.TreeMode
	noGroupSignal bool
}{
	{"cgroup", pexec.TreeCgroup, false},
	{"group", pexec.TreeGroup, false},
	{"group-before-6.9", pexec.TreeGroup, true},
}

// readPID reads the first line of r as a PID.
func readPID(t *testing.T, r *bufio.Reader) int {
	t.Helper()
	line, err := r.ReadString('\n')
	pid, perr := strconv.Atoi(strings.TrimSpace(line))
	if err != nil || perr != nil {
		t.Fatalf("first line %q: %v %v", line, err, perr)
	}
	return pid
}

// TestStopInsideCancel (item 1): a Cancel that calls Handle.Stop (or Kill
// then Handle.Wait) hung for ever: the Handle's wait waited for Cmd.Wait,
// which waited for Cancel to return.
func TestStopInsideCancel(t *testing.T) {
	cancels := map[string]func(c *pexec.Cmd) func() error{
		"Stop": func(c *pexec.Cmd) func() error {
			return func() error {
				_, err := c.Handle().Stop(context.Background(), 50*time.Millisecond)
				return err
			}
		},
		"Kill then Wait": func(c *pexec.Cmd) func() error {
			return func() error {
				c.Handle().Kill()
				_, err := c.Handle().Wait()
				return err
			}
		},
	}
	for _, out := range []string{"no output", "output copied"} {
		for name, mk := range cancels {
			t.Run(out+"/"+name, func(t *testing.T) {
				bothModes(t, func(t *testing.T) {
					deadline := waitTestContext(t)
					ctx, cancel := context.WithTimeout(deadline, 50*time.Millisecond)
					defer cancel()
					c := pexec.CommandContext(ctx, "sleep", "60")
					c.Cancel = mk(c)
					if out == "output copied" {
						c.Stdout = new(strings.Builder)
					}
					// os/exec reports the process's own end first: the
					// signal the Cancel sent.
					err := waitBounded(deadline, t, c.Run, func() { c.Process.Kill() })
					var ee *exec.ExitError
					if !errors.As(err, &ee) || !ee.ProcessState.Sys().(syscall.WaitStatus).Signaled() {
						t.Errorf("Run = %v; want the child ended by the Cancel's signal", err)
					}
				})
			})
		}
	}
}

// TestGraceCancelTree (item 2): Cmd.Grace makes the cancellation a stop
// ladder on the whole tree: the leader gets SIGTERM and exits gracefully,
// the grandchild that ignores SIGTERM and holds stdout gets SIGKILL after
// Grace, and Wait returns the context's error with nothing of the tree
// left.
func TestGraceCancelTree(t *testing.T) {
	for _, tv := range treeVariants {
		t.Run(tv.name, func(t *testing.T) {
			mode := tv.mode
			skipNoPidfd(t)
			skipTree(t, mode)
			if tv.noGroupSignal {
				t.Cleanup(pexec.SetForceNoGroupSignal(true))
			}
			deadline := waitTestContext(t)
			ctx, cancel := context.WithCancel(deadline)
			defer cancel()
			c := pexec.CommandContext(ctx, "sh", "-c", leafTreeScript)
			c.Tree = mode
			c.Grace = 200 * time.Millisecond

			var out lockedBuffer
			out.line = make(chan struct{})
			c.Stdout = &out // copied by os/exec: held open by the grandchild
			if err := c.Start(); err != nil {
				t.Fatal(err)
			}
			pid := leafTreePID(deadline, t, &out)
			gc, err := pexec.Open(pid)
			if err != nil {
				t.Fatal(err)
			}
			defer gc.Close()
			cancel()
			// As with os/exec, Wait reports the leader's own end (its
			// SIGTERM handler's exit 3): not a hang, not a kill.
			err = waitBounded(deadline, t, c.Wait, func() { c.Handle().KillTree() })
			var ee *exec.ExitError
			if !errors.As(err, &ee) || ee.ExitCode() != 3 {
				t.Errorf("Wait = %v; want the leader's graceful exit 3", err)
			}
			if got := out.String(); !strings.HasSuffix(got, "\nleader-term\n") {
				t.Errorf("output %q; want the leader's SIGTERM handler's line last", got)
			}
			st, err := gc.WaitContext(deadline)
			if err == nil && st.Signal() != syscall.SIGKILL {
				t.Errorf("grandchild ended with %v; want SIGKILL", st)
			}
			waitDone(deadline, t, c.Handle().TreeDone(), "TreeDone")
		})
	}
}

// waitDone waits for ch, failing t at the deadline.
func waitDone(ctx context.Context, t *testing.T, ch <-chan struct{}, what string) {
	t.Helper()
	select {
	case <-ch:
	case <-ctx.Done():
		t.Fatalf("%s not closed: %v", what, ctx.Err())
	}
}

// TestWrapCommandContextTree (item 2): a Wrap'd exec.CommandContext with a
// tree killed only the leader, and Wait hung while the grandchild held the
// output; its default Cancel must take the tree.
func TestWrapCommandContextTree(t *testing.T) {
	for _, mode := range treeModes {
		t.Run(mode.String(), func(t *testing.T) {
			skipNoPidfd(t)
			skipTree(t, mode)
			deadline := waitTestContext(t)
			ctx, cancel := context.WithTimeout(deadline, 100*time.Millisecond)
			defer cancel()
			c := pexec.Wrap(exec.CommandContext(ctx, "sh", "-c", "sleep 60 & echo $!; wait"))
			c.Tree = mode
			var out strings.Builder
			c.Stdout = &out
			err := waitBounded(deadline, t, c.Run, func() { c.Handle().KillTree() })
			if !killedBySIGKILL(err) && !errors.Is(err, context.DeadlineExceeded) {
				t.Errorf("Run = %v; want the leader killed at the deadline", err)
			}
			waitDone(deadline, t, c.Handle().TreeDone(), "TreeDone")
		})
	}
}

// TestWaitDelayKillsTree (item 2): WaitDelay's final kill, which os/exec
// sends to the leader alone, takes the tree: a grandchild that ignores the
// Cancel's SIGTERM and holds stdout is killed WaitDelay after the
// cancellation, and Wait returns.
func TestWaitDelayKillsTree(t *testing.T) {
	for _, tv := range treeVariants {
		t.Run(tv.name, func(t *testing.T) {
			mode := tv.mode
			skipNoPidfd(t)
			skipTree(t, mode)
			if tv.noGroupSignal {
				t.Cleanup(pexec.SetForceNoGroupSignal(true))
			}
			deadline := waitTestContext(t)
			ctx, cancel := context.WithCancel(deadline)
			defer cancel()
			c := pexec.CommandContext(ctx, "sh", "-c", leafTreeScript)
			c.Tree = mode
			c.Cancel = func() error { return c.Handle().SignalTree(syscall.SIGTERM) }
			c.WaitDelay = 200 * time.Millisecond
			var out lockedBuffer
			out.line = make(chan struct{})
			c.Stdout = &out // copied: the grandchild holds it open
			if err := c.Start(); err != nil {
				t.Fatal(err)
			}
			pid := leafTreePID(deadline, t, &out)
			gc, err := pexec.Open(pid)
			if err != nil {
				t.Fatal(err)
			}
			defer gc.Close()
			cancel()
			waitBounded(deadline, t, c.Wait, func() { c.Handle().KillTree() })
			// Sent before Wait returned: the grandchild dies of it (it
			// would otherwise sleep its 60 s out and exit 0).
			st, err := gc.WaitContext(deadline)
			if err != nil || st.Signal() != syscall.SIGKILL {
				t.Errorf("grandchild ended with %v, %v; want SIGKILL: WaitDelay's kill did not reach the tree", st, err)
			}
		})
	}
}

// TestCloseKeepsCancellation (item 3): closing the caller's Handle turned a
// tree command's cancellation off ("exec: canceling Cmd: file already
// closed", nothing killed).
func TestCloseKeepsCancellation(t *testing.T) {
	for _, mode := range treeModes {
		t.Run(mode.String(), func(t *testing.T) {
			skipNoPidfd(t)
			skipTree(t, mode)
			deadline := waitTestContext(t)
			ctx, cancel := context.WithCancel(deadline)
			defer cancel()
			c := pexec.CommandContext(ctx, "sh", "-c", "sleep 60 & echo $!; wait")
			c.Tree = mode
			stdout, err := c.StdoutPipe()
			if err != nil {
				t.Fatal(err)
			}
			if err := c.Start(); err != nil {
				t.Fatal(err)
			}
			gc, err := pexec.Open(readPID(t, bufio.NewReader(stdout)))
			if err != nil {
				t.Fatal(err)
			}
			defer gc.Close()
			h := c.Handle()
			if err := h.Close(); err != nil {
				t.Fatal(err)
			}
			cancel()
			err = waitBounded(deadline, t, c.Wait, func() { syscall.Kill(gc.Pid(), syscall.SIGKILL) })
			if !killedBySIGKILL(err) && !errors.Is(err, context.Canceled) {
				t.Errorf("Wait = %v; want the leader killed by the cancellation", err)
			}
			if _, err := gc.WaitContext(deadline); err != nil || gc.Alive() {
				t.Errorf("grandchild not killed by the cancellation (%v)", err)
			}
			if err := h.Signal(syscall.Signal(0)); !errors.Is(err, os.ErrClosed) {
				t.Errorf("Signal on the closed Handle = %v; want os.ErrClosed", err)
			}
		})
	}
}

// TestChildLeavesLeaf (item 4): a TreeCgroup child that writes itself into
// another cgroup is still the tree's: KillTree, Stop and cancellation reach
// it, and TreeDone waits for it.
func TestChildLeavesLeaf(t *testing.T) {
	skipNoPidfd(t)
	skipTree(t, pexec.TreeCgroup)
	_, dir, err := cgroup.Root()
	if err != nil {
		t.Fatal(err)
	}
	leave := fmt.Sprintf("echo $$ > %s/cgroup.procs && echo left && exec sleep 60", dir)
	start := func(t *testing.T, c *pexec.Cmd) {
		t.Helper()
		c.Tree = pexec.TreeCgroup
		stdout, err := c.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := c.Start(); err != nil {
			t.Fatal(err)
		}
		if line, _ := bufio.NewReader(stdout).ReadString('\n'); line != "left\n" {
			t.Fatalf("the child said %q; want it out of its leaf", line)
		}
	}
	t.Run("KillTree", func(t *testing.T) {
		deadline := waitTestContext(t)
		c := pexec.Command("sh", "-c", leave)
		start(t, c)
		defer c.Wait()
		if isDone(c.Handle().TreeDone()) {
			t.Error("TreeDone closed while the child, out of its leaf, lives")
		}
		if err := c.Handle().KillTree(); err != nil {
			t.Errorf("KillTree = %v; want the child killed", err)
		}
		st, err := c.Handle().WaitContext(deadline)
		if err != nil || st.Signal() != syscall.SIGKILL {
			t.Errorf("child ended with %v, %v; want SIGKILL", st, err)
		}
	})
	t.Run("Stop", func(t *testing.T) {
		deadline := waitTestContext(t)
		c := pexec.Command("sh", "-c", leave)
		start(t, c)
		defer c.Wait()
		st, err := c.Handle().Stop(deadline, 500*time.Millisecond)
		if err != nil || st.Signal() != syscall.SIGTERM {
			t.Errorf("Stop = %v, %v; want the child ended by SIGTERM", st, err)
		}
	})
	t.Run("CommandContext", func(t *testing.T) {
		deadline := waitTestContext(t)
		ctx, cancel := context.WithCancel(deadline)
		c := pexec.CommandContext(ctx, "sh", "-c", leave)
		start(t, c)
		cancel()
		if err := waitBounded(deadline, t, c.Wait, func() { c.Process.Kill() }); !killedBySIGKILL(err) {
			t.Errorf("Wait = %v; want the child killed by the cancellation", err)
		}
	})
}

// TestConcurrentStopsOneLadder (item 6): concurrent Stops each sent
// SIGTERM, and a program that shuts down on the first hurried on the
// second (50 Stops: 11 SIGTERMs). One ladder per process: one SIGTERM.
func TestConcurrentStopsOneLadder(t *testing.T) {
	for _, mode := range []pexec.TreeMode{pexec.TreeNone, pexec.TreeCgroup, pexec.TreeGroup} {
		t.Run(mode.String(), func(t *testing.T) {
			skipNoPidfd(t)
			if mode != pexec.TreeNone {
				skipTree(t, mode)
			}
			deadline := waitTestContext(t)
			c := pexectest.Command("term-count")
			c.Tree = mode
			l := startLined(t, c)
			if line, _ := l.out.ReadString('\n'); line != "ready\n" {
				t.Fatalf("helper said %q", line)
			}
			var wg sync.WaitGroup
			errs := make(chan error, 50)
			for range 50 {
				wg.Go(func() {
					st, err := c.Handle().Stop(deadline, 10*time.Second)
					if err == nil && !st.Success() {
						err = fmt.Errorf("status %v", st)
					}
					errs <- err
				})
			}
			wg.Wait()
			close(errs)
			for err := range errs {
				if err != nil {
					t.Errorf("Stop: %v", err)
				}
			}
			if line, _ := l.out.ReadString('\n'); line != "sigterms 1\n" {
				t.Errorf("helper said %q; want one SIGTERM", line)
			}
		})
	}
}

// TestStopContinuesStopped (item 6): SIGCONT follows SIGTERM, so a stopped
// process acts on the SIGTERM within the grace period.
func TestStopContinuesStopped(t *testing.T) {
	bothModes(t, func(t *testing.T) {
		deadline := waitTestContext(t)
		c := pexectest.Command("term-count")
		l := startLined(t, c)
		if line, _ := l.out.ReadString('\n'); line != "ready\n" {
			t.Fatalf("helper said %q", line)
		}
		if err := c.Handle().Signal(syscall.SIGSTOP); err != nil {
			t.Fatal(err)
		}
		st, err := c.Handle().Stop(deadline, time.Minute)
		if err != nil || !st.Success() {
			t.Errorf("Stop of a stopped process = %v, %v; want its graceful exit", st, err)
		}
	})
}

// TestLeafRemovedByWait (item 8): a TreeCgroup command whose tree is empty
// when Cmd.Wait returns leaves no leaf directory behind, even if the
// program ends right then.
func TestLeafRemovedByWait(t *testing.T) {
	skipNoPidfd(t)
	skipTree(t, pexec.TreeCgroup)
	for range 20 {
		c := pexec.Command("sh", "-c", "cat /proc/self/cgroup")
		c.Tree = pexec.TreeCgroup
		out, err := c.Output()
		if err != nil {
			t.Fatal(err)
		}
		rel, ok := procfs.ParseCgroup(out)
		if !ok || !strings.Contains(rel, "pexec-") {
			t.Fatalf("the child's cgroup %q is no pexec leaf", out)
		}
		mount, _, err := cgroup.Root()
		if err != nil {
			t.Fatal(err)
		}
		if _, err := os.Stat(filepath.Join(mount, rel)); !errors.Is(err, os.ErrNotExist) {
			t.Fatalf("leaf %s still there when Wait returned (%v)", rel, err)
		}
	}
}

func init() {
	testhelper.Register("become-root", becomeRootHelper)
	testhelper.Register("stop-eperm", stopEPERMHelper)
}

// becomeRootHelper, run from a setuid-root copy of the test binary, makes
// itself root through and through (real, effective and saved IDs, as su
// does), so that its unprivileged parent can no longer signal it, and
// sleeps.
func becomeRootHelper([]string) int {
	if err := syscall.Setresuid(0, 0, 0); err != nil {
		fmt.Fprintln(os.Stderr, "setresuid:", err)
		return 1
	}
	time.Sleep(time.Minute)
	return 0
}

// epermReport is what stop-eperm saw.
type epermReport struct {
	Setup      string
	Status     string // Stop's
	Err        string
	Permission bool // Stop's error wraps os.ErrPermission
	KillTried  bool // Stop's error reports a SIGKILL too
	TreeDone   bool
	Elapsed    time.Duration
	Member     int // the PID of the member that became root
}

// stopEPERMHelper (setuid-copy), started in a cgroup delegated to nobody,
// turns nobody, then starts a TreeCgroup shell whose background member becomes root, and
// stops it with a grace period.
func stopEPERMHelper(args []string) int {
	var rep epermReport
	if err := errors.Join(syscall.Setgroups(nil), syscall.Setgid(65534), syscall.Setuid(65534)); err != nil {
		rep.Setup = "becoming nobody: " + err.Error()
		return testhelper.Report(rep)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	member := pexectest.Command("become-root")
	c := pexec.Command("sh", "-c", `"$0" -test.run='^$' -- & echo $!; wait`, argAt(args, 0))
	c.Env = member.Env
	c.Tree = pexec.TreeCgroup
	var stderr strings.Builder
	c.Stderr = &stderr
	stdout, err := c.StdoutPipe()
	if err == nil {
		err = c.Start()
	}
	if err != nil {
		rep.Setup = "start: " + err.Error()
		return testhelper.Report(rep)
	}
	defer c.Wait()
	r := bufio.NewReader(stdout)
	line, _ := r.ReadString('\n')
	pid, err := strconv.Atoi(strings.TrimSpace(line))
	if err != nil {
		rep.Setup = fmt.Sprintf("the shell said %q", line)
		c.Handle().KillTree()
		return testhelper.Report(rep)
	}
	for {
		b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
		if strings.Contains(string(b), "\nUid:\t0\t0\t0\t0\n") {
			break
		}
		if ctx.Err() != nil {
			rep.Setup = fmt.Sprintf("the member never became root: %q; stderr %q", b, stderr.String())
			c.Handle().KillTree()
			return testhelper.Report(rep)
		}
		time.Sleep(time.Millisecond)
	}
	rep.Member = pid
	start := time.Now()
	stopCtx, stopCancel := context.WithTimeout(ctx, 3*time.Second)
	st, err := c.Handle().Stop(stopCtx, 300*time.Millisecond)
	stopCancel()
	rep.Elapsed = time.Since(start)
	rep.Status, rep.Err = fmt.Sprint(st), fmt.Sprint(err)
	rep.Permission = errors.Is(err, os.ErrPermission)
	rep.KillTried = strings.Contains(rep.Err, "killed: ")
	rep.TreeDone = isDone(c.Handle().TreeDone())
	return testhelper.Report(rep)
}

// TestStopAfterFailedSIGTERM (item 5): a non-root caller whose tree holds
// a process it may not signal (a setuid helper that became root) got
// "pidfd_send_signal: operation not permitted" from Stop after 1 ms, with
// the leader alive. The ladder must go on: SIGTERM to whom it may, then
// SIGKILL (cgroup.kill reaches every member), and report the failure.
func TestStopAfterFailedSIGTERM(t *testing.T) {
	if os.Geteuid() != 0 {
		testhelper.Uses("stop-eperm", "become-root")
		t.Skip("needs root: a cgroup delegated to nobody, and a setuid-root binary")
	}
	skipNoPidfd(t)
	skipTree(t, pexec.TreeCgroup)
	const nobody = 65534
	// A setuid-root copy of the test binary, which the helper's member runs.
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	for _, d := range []string{filepath.Dir(dir), dir} { // nobody must reach it
		if err := os.Chmod(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	var fs syscall.Statfs_t
	if err := syscall.Statfs(dir, &fs); err != nil || fs.Flags&0x2 != 0 { // ST_NOSUID
		t.Skipf("%s is mounted nosuid (%v): no setuid binary can run there", dir, err)
	}
	suid := filepath.Join(dir, "setuid.test")
	b, err := os.ReadFile(exe)
	if err == nil {
		err = os.WriteFile(suid, b, 0o755)
	}
	if err == nil {
		err = os.Chmod(suid, os.ModeSetuid|0o755)
	}
	if err != nil {
		t.Fatal(err)
	}
	// A cgroup delegated to nobody, below the test's own.
	_, cg, err := cgroup.Root()
	if err != nil {
		t.Fatal(err)
	}
	deleg := filepath.Join(cg, fmt.Sprintf("pexec-test-deleg-%d", os.Getpid()))
	if err := os.Mkdir(deleg, 0o755); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		// Empty by now; a leaf the helper left behind goes first.
		subs, _ := filepath.Glob(filepath.Join(deleg, "pexec-*"))
		for _, s := range subs {
			syscall.Rmdir(s)
		}
		syscall.Rmdir(deleg)
	})
	for _, f := range []string{"", "cgroup.procs", "cgroup.subtree_control", "cgroup.threads"} {
		if err := os.Chown(filepath.Join(deleg, f), nobody, nobody); err != nil {
			t.Fatal(err)
		}
	}
	fd, err := syscall.Open(deleg, syscall.O_RDONLY|syscall.O_DIRECTORY|syscall.O_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer syscall.Close(fd)
	_, err = os.Stat(filepath.Join(deleg, "cgroup.kill"))
	killFile := err == nil // Linux 5.14+
	var rep epermReport
	testhelper.RunReport(waitTestContext(t), t, &syscall.SysProcAttr{UseCgroupFD: true, CgroupFD: fd}, &rep, "stop-eperm", suid)
	testhelper.Uses("become-root")
	if rep.Member > 0 {
		// Root, the test may end it, if Stop could not.
		if h, err := pexec.Open(rep.Member); err == nil {
			h.Kill()
			h.Close()
		}
	}
	if rep.Setup != "" {
		t.Fatalf("helper: %s", rep.Setup)
	}
	t.Logf("Stop after %v: %s, %s (cgroup.kill: %v)", rep.Elapsed, rep.Status, rep.Err, killFile)
	if !rep.Permission {
		t.Errorf("Stop's error %q; want it to report the member it could not send SIGTERM (os.ErrPermission)", rep.Err)
	}
	if !killFile {
		// Before Linux 5.14 the SIGKILL, too, goes member by member
		// through pidfds, and the kernel refuses it for the root member:
		// Stop must still have tried it, and say so.
		if !rep.KillTried || rep.TreeDone {
			t.Errorf("without cgroup.kill: Stop's error %q, tree empty %v; want a SIGKILL tried and refused", rep.Err, rep.TreeDone)
		}
		return
	}
	if rep.Status != "signal: terminated" {
		t.Errorf("Stop's status %s; want the leader ended by SIGTERM", rep.Status)
	}
	if !rep.TreeDone {
		t.Error("the tree was not empty when Stop returned: SIGKILL did not follow")
	}
}
