package pexec_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
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
	"golang.org/x/sys/unix"
)

// Lifetimes (issue #12): Pdeathsig that follows the process, trees that die
// as one, the stop ladder.

func init() {
	testhelper.Register("pdeathsig-parent", pdeathsigParentHelper)
	testhelper.Register("tree-unprivileged", treeUnprivilegedHelper)
}

// treeModes are the containments the tests run; each skips where it cannot.
var treeModes = []pexec.TreeMode{pexec.TreeCgroup, pexec.TreeGroup}

// skipTree skips a test of mode where the system does not allow it.
func skipTree(t *testing.T, mode pexec.TreeMode) {
	t.Helper()
	if err := pexec.TreeSupport(mode); err != nil {
		if os.Geteuid() == 0 && mode == pexec.TreeCgroup && !errors.Is(err, errors.ErrUnsupported) {
			t.Fatalf("TreeCgroup unusable as root: %v", err)
		}
		t.Skip(err) // it names the mode: "cgroup: ..."
	}
}

// TestPdeathsigFollowsProcess: a child started with Pdeathsig from a
// goroutine whose locked thread then exits is killed with os/exec
// (golang/go#27505) and survives with pexec; and when the parent process
// exits, the pexec child does die.
func TestPdeathsigFollowsProcess(t *testing.T) {
	for _, mode := range []string{"pidfd", "pid"} {
		t.Run(mode, func(t *testing.T) {
			if mode == "pidfd" {
				skipNoPidfd(t)
			} else {
				t.Cleanup(pexec.SetForcePIDMode(true))
			}
			ctx := waitTestContext(t)
			attr := func() *syscall.SysProcAttr { return &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL} }
			osChild := exec.Command("sleep", "3600")
			osChild.SysProcAttr = attr()
			pChild := pexec.Command("sleep", "3600")
			pChild.SysProcAttr = attr()
			started := make(chan error, 1)
			tids := make(chan int, 1)
			tid := os.Getpid()
			for tid == os.Getpid() {
				go func() {
					// Locked and never unlocked: the thread exits with
					// the goroutine, unless it is the main thread,
					// which Go never lets exit: then try another.
					runtime.LockOSThread()
					tid := unix.Gettid()
					tids <- tid
					if tid == os.Getpid() {
						runtime.UnlockOSThread()
						return
					}
					started <- errors.Join(osChild.Start(), pChild.Start())
				}()
				tid = <-tids
			}
			if err := <-started; err != nil {
				t.Fatal(err)
			}
			defer func() { pChild.Process.Kill(); pChild.Wait() }()
			// The thread is gone once its task directory is.
			for {
				if _, err := os.Stat(fmt.Sprintf("/proc/self/task/%d", tid)); os.IsNotExist(err) {
					break
				}
				select {
				case <-ctx.Done():
					t.Fatalf("thread %d never exited", tid)
				case <-time.After(time.Millisecond):
				}
			}
			osErr := waitBounded(ctx, t, osChild.Wait, func() { osChild.Process.Kill() })
			if !killedBySIGKILL(osErr) {
				t.Errorf("os/exec child after its spawning thread exited: %v; want killed by Pdeathsig (SIGKILL)", osErr)
			}
			if !pChild.Handle().Alive() {
				t.Error("pexec child dead after the spawning goroutine's thread exited")
			}
			// Its end tells which signal reached it first: ours, SIGTERM,
			// if the parent-death SIGKILL never did.
			if err := pChild.Handle().Signal(syscall.SIGTERM); err != nil {
				t.Fatal(err)
			}
			var ee *exec.ExitError
			if err := pChild.Wait(); !errors.As(err, &ee) || ee.Sys().(syscall.WaitStatus).Signal() != syscall.SIGTERM {
				t.Errorf("pexec child: %v; want signal: terminated", err)
			}
		})
	}
	t.Run("parent exits", func(t *testing.T) {
		skipNoPidfd(t)
		ctx := waitTestContext(t)
		parent := pexectest.CommandContext(ctx, "pdeathsig-parent")
		stdin, err := parent.StdinPipe()
		if err != nil {
			t.Fatal(err)
		}
		out, err := parent.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := parent.Start(); err != nil {
			t.Fatal(err)
		}
		line, _ := bufio.NewReader(out).ReadString('\n')
		pid, err := strconv.Atoi(strings.TrimSpace(line))
		if err != nil {
			parent.Wait()
			t.Fatalf("helper said %q", line)
		}
		child := mustOpen(t, pid) // alive, its parent waits: the PID is its own
		stdin.Close()             // the parent exits
		if err := parent.Wait(); err != nil {
			t.Fatalf("parent: %v", err)
		}
		select {
		case <-child.Done():
		case <-ctx.Done():
			child.Kill()
			t.Fatal("the child outlived its parent process despite Pdeathsig")
		}
	})
}

// pdeathsigParentHelper starts `sleep 3600` through pexec with Pdeathsig
// SIGKILL, prints its PID and exits when its stdin closes, leaving it.
func pdeathsigParentHelper([]string) int {
	c := pexec.Command("sleep", "3600")
	c.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := c.Start(); err != nil {
		fmt.Println(err)
		return 1
	}
	fmt.Println(c.Process.Pid)
	io.Copy(io.Discard, os.Stdin)
	return 0
}

// treeScript starts 50 descendants of five kinds, printing "kind pid" for
// each, then "ready", and waits: children, setsid children, double-forked
// orphans (reparented away from the tree's leader), setsid orphans, and
// grandchildren of a child that then exits.
const treeScript = `
for i in 1 2 3 4 5 6 7 8 9 10; do
	sleep 3600 & echo child $!
	setsid sleep 3600 & echo setsid $!
	(sleep 3600 & echo orphan $!)
	(setsid sleep 3600 & echo setsid-orphan $!)
	sh -c 'sleep 3600 & echo grandchild $!'
done
echo ready
wait`

// descendant is one of treeScript's processes.
type descendant struct {
	kind string
	h    *pexec.Handle
}

// startTree starts treeScript with mode and opens every descendant (each
// is alive, and a child of a process of the tree, when opened).
func startTree(t *testing.T, mode pexec.TreeMode) (*pexec.Cmd, []descendant) {
	t.Helper()
	c := pexec.Command("sh", "-c", treeScript)
	c.Tree = mode
	out, err := c.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Start(); err != nil {
		t.Fatal(err)
	}
	var ds []descendant
	t.Cleanup(func() {
		for _, d := range ds {
			d.h.Kill()
			d.h.Close()
		}
		c.Handle().KillTree()
		c.Wait()
	})
	sc := bufio.NewScanner(out)
	for sc.Scan() && sc.Text() != "ready" {
		kind, pid, _ := strings.Cut(sc.Text(), " ")
		n, err := strconv.Atoi(pid)
		if err != nil {
			t.Fatalf("script said %q", sc.Text())
		}
		h, err := pexec.Open(n)
		if err != nil {
			t.Fatalf("Open(%s %d): %v", kind, n, err)
		}
		ds = append(ds, descendant{kind, h})
	}
	if len(ds) != 50 {
		t.Fatalf("%d descendants; want 50", len(ds))
	}
	// "ready" comes once every descendant is forked, not once each setsid
	// one has left the group: wait for that, so the escapes are certain.
	ctx := waitTestContext(t)
	for _, d := range ds {
		for strings.HasPrefix(d.kind, "setsid") && sessionOf(d.h.Pid()) != d.h.Pid() {
			select {
			case <-ctx.Done():
				t.Fatalf("%s %d never left its session", d.kind, d.h.Pid())
			case <-time.After(time.Millisecond):
			}
		}
	}
	return c, ds
}

// sessionOf returns the session ID of process pid from /proc, or 0.
func sessionOf(pid int) int {
	st, _ := procfs.ReadStat(pid)
	return st.Session
}

// TestTreeKill kills trees of 50 descendants, some in new sessions, some
// double-forked: with TreeCgroup none escapes; with TreeGroup exactly
// those that left the group (setsid) escape, as documented. Each death is
// checked through the descendant's own pidfd.
func TestTreeKill(t *testing.T) {
	skipNoPidfd(t)
	for _, mode := range treeModes {
		t.Run(mode.String(), func(t *testing.T) {
			skipTree(t, mode)
			ctx := waitTestContext(t)
			c, ds := startTree(t, mode)
			h := c.Handle()
			if h.Tree() != mode {
				t.Fatalf("Tree() = %v; want %v", h.Tree(), mode)
			}
			start := time.Now()
			if err := h.KillTree(); err != nil {
				t.Fatalf("KillTree: %v", err)
			}
			select {
			case <-h.TreeDone():
			case <-ctx.Done():
				t.Fatal("TreeDone never closed after KillTree")
			}
			elapsed := time.Since(start)
			escaped := map[string]int{}
			for _, d := range ds {
				escapes := mode == pexec.TreeGroup && strings.HasPrefix(d.kind, "setsid")
				if !escapes {
					select {
					case <-d.h.Done():
					case <-ctx.Done():
						t.Fatalf("%s %d still alive after KillTree and TreeDone", d.kind, d.h.Pid())
					}
					continue
				}
				if d.h.Alive() {
					escaped[d.kind]++
				}
			}
			t.Logf("%v: KillTree to TreeDone %v for 50 descendants; escaped %v", mode, elapsed, escaped)
			if mode == pexec.TreeGroup && escaped["setsid"]+escaped["setsid-orphan"] != 20 {
				t.Errorf("with TreeGroup, %v of the 20 setsid descendants escaped; the documentation says all do", escaped)
			}
			if err := h.KillTree(); !errors.Is(err, os.ErrProcessDone) {
				t.Errorf("KillTree on an empty tree = %v; want os.ErrProcessDone", err)
			}
			if err := c.Wait(); !killedBySIGKILL(err) {
				t.Errorf("Cmd.Wait = %v; want killed", err)
			}
		})
	}
}

// TestTreeLeaderExitsFirst: the leader exits while its tree lives on; the
// tree's signals still reach the members and TreeDone still closes. Except
// for a group on kernels without PIDFD_SIGNAL_PROCESS_GROUP (before 6.9):
// once the leader is reaped, its group's ID is not known to be the group's
// any more, and SignalTree says it cannot (errors.ErrUnsupported), as in
// PID mode (TestTreeGroupPIDMode). Before Linux 6.9 a reaped process's
// pidfd does not report POLLHUP; pexec must find the reap another way.
func TestTreeLeaderExitsFirst(t *testing.T) {
	skipNoPidfd(t)
	for _, mode := range treeModes {
		t.Run(mode.String(), func(t *testing.T) {
			skipTree(t, mode)
			ctx := waitTestContext(t)
			c := pexec.Command("sh", "-c", "sleep 3600 >/dev/null & exit 0")
			c.Tree = mode
			if err := c.Run(); err != nil {
				t.Fatal(err)
			}
			h := c.Handle()
			if isDone(h.TreeDone()) {
				t.Fatal("TreeDone closed while a member lives")
			}
			err := h.SignalTree(syscall.SIGTERM)
			switch {
			case mode == pexec.TreeGroup && !kernel().GroupSignal:
				if !errors.Is(err, errors.ErrUnsupported) {
					t.Errorf("SignalTree after the leader's reap, without PIDFD_SIGNAL_PROCESS_GROUP = %v; want errors.ErrUnsupported", err)
				}
				// Clean up by the member's group: it keeps the group, and
				// so its ID, allocated.
				syscall.Kill(-c.Process.Pid, syscall.SIGTERM)
			case err != nil:
				t.Fatalf("SignalTree after the leader's reap: %v", err)
			}
			select {
			case <-h.TreeDone():
			case <-ctx.Done():
				t.Fatal("TreeDone never closed after the members were signalled")
			}
		})
	}
}

// isDone reports whether c is closed.
func isDone(c <-chan struct{}) bool {
	select {
	case <-c:
		return true
	default:
		return false
	}
}

// TestTreeCancelGrandchild is golang/go#23019: a shell's grandchild keeps
// the stdout pipe open, so os/exec's Output does not return when the
// context expires (only when the grandchild exits; here after 1 s instead
// of 60). With a tree, cancellation kills the whole tree: Output returns
// with no WaitDelay set, and nothing of the tree is left.
func TestTreeCancelGrandchild(t *testing.T) {
	const script = `sleep %d & echo $!; echo started; sleep %d`
	t.Run("os/exec", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
		defer cancel()
		c := exec.CommandContext(ctx, "sh", "-c", "(sleep 1; echo grandchild-done) & echo started; sleep 1")
		start := time.Now()
		out, err := c.Output()
		t.Logf("os/exec: Output returned after %v: %q, %v", time.Since(start), out, err)
		// The shell was killed at the deadline, but Output returned only
		// once the grandchild had written its last line and exited.
		if !killedBySIGKILL(err) || string(out) != "started\ngrandchild-done\n" {
			t.Errorf("os/exec Output = %q, %v; want the shell killed and the grandchild's last line", out, err)
		}
	})
	for _, mode := range []pexec.TreeMode{pexec.TreeAuto, pexec.TreeCgroup, pexec.TreeGroup} {
		t.Run(mode.String(), func(t *testing.T) {
			skipNoPidfd(t)
			skipTree(t, mode)
			deadline := waitTestContext(t)
			ctx, cancel := context.WithTimeout(deadline, 100*time.Millisecond)
			defer cancel()
			c := pexec.CommandContext(ctx, "sh", "-c", fmt.Sprintf(script, 60, 60))
			c.Tree = mode
			start := time.Now()
			type result struct {
				out []byte
				err error
			}
			done := make(chan result, 1)
			go func() { out, err := c.Output(); done <- result{out, err} }()
			var r result
			select {
			case r = <-done:
			case <-deadline.Done():
				t.Fatal("Output still blocked: the grandchild holds the pipe")
			}
			t.Logf("%v (%v): Output returned after %v: %q, %v", mode, c.Handle().Tree(), time.Since(start), r.out, r.err)
			if !killedBySIGKILL(r.err) && !errors.Is(r.err, context.DeadlineExceeded) {
				t.Errorf("Output = %v; want the child killed at the deadline", r.err)
			}
			select {
			case <-c.Handle().TreeDone():
			case <-deadline.Done():
				t.Fatal("the tree is not empty after the cancellation")
			}
		})
	}
}

// TestStop: the stop ladder, graceful first and certain last.
func TestStop(t *testing.T) {
	tests := []struct {
		name   string
		script string
		grace  time.Duration
		want   string
	}{
		{"traps SIGTERM and exits 0", `trap 'exit 0' TERM; echo ready; while :; do sleep 0.01; done`, time.Minute, "exit status 0"},
		{"ignores SIGTERM", `trap '' TERM; echo ready; while :; do sleep 0.01; done`, 50 * time.Millisecond, "signal: killed"},
		{"no grace", `echo ready; exec sleep 3600`, 0, "signal: killed"},
	}
	for _, tree := range []pexec.TreeMode{pexec.TreeNone, pexec.TreeAuto} {
		for _, tt := range tests {
			t.Run(tree.String()+"/"+tt.name, func(t *testing.T) {
				ctx := waitTestContext(t)
				c := pexec.Command("sh", "-c", tt.script)
				c.Tree = tree
				out, err := c.StdoutPipe()
				if err != nil {
					t.Fatal(err)
				}
				if err := c.Start(); err != nil {
					t.Fatal(err)
				}
				defer c.Wait()
				defer c.Process.Kill()
				if line, _ := bufio.NewReader(out).ReadString('\n'); line != "ready\n" {
					t.Fatalf("child said %q", line)
				}
				h := c.Handle()
				const callers = 4
				var wg sync.WaitGroup
				sts := make([]*pexec.Status, callers)
				errs := make([]error, callers)
				for i := range callers {
					wg.Go(func() { sts[i], errs[i] = h.Stop(ctx, tt.grace) })
				}
				wg.Wait()
				for i := range callers {
					if errs[i] != nil {
						t.Fatalf("Stop %d: %v", i, errs[i])
					}
					if sts[i] != sts[0] {
						t.Errorf("Stop %d returned %v, Stop 0 %v: not the same Status", i, sts[i], sts[0])
					}
				}
				if got := sts[0].String(); got != tt.want {
					t.Errorf("Stop = %s; want %s", got, tt.want)
				}
				if st, err := h.Stop(ctx, tt.grace); err != nil || st != sts[0] {
					t.Errorf("Stop after the exit = %v, %v; want the same Status", st, err)
				}
			})
		}
	}
	t.Run("context", func(t *testing.T) {
		c := pexec.Command("sh", "-c", `trap '' TERM; echo ready; while :; do sleep 0.01; done`)
		out, err := c.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := c.Start(); err != nil {
			t.Fatal(err)
		}
		defer c.Wait()
		if line, _ := bufio.NewReader(out).ReadString('\n'); line != "ready\n" {
			t.Fatalf("child said %q", line)
		}
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		if _, err := c.Handle().Stop(ctx, time.Hour); !errors.Is(err, context.Canceled) {
			t.Errorf("Stop with a done context = %v; want context.Canceled", err)
		}
		// The SIGKILL was sent: the child dies without more help.
		if err := waitBounded(waitTestContext(t), t, c.Wait, nil); !killedBySIGKILL(err) {
			t.Errorf("Cmd.Wait after the canceled Stop = %v; want killed", err)
		}
	})
}

// TestTreeBadInput: contradictory SysProcAttr settings, bad modes, and
// methods without a tree.
func TestTreeBadInput(t *testing.T) {
	tests := []struct {
		name string
		mode pexec.TreeMode
		attr *syscall.SysProcAttr
		want error // nil: starts, with wantTree
		tree pexec.TreeMode
	}{
		{"invalid mode", pexec.TreeMode(42), nil, os.ErrInvalid, 0},
		{"group, joining another group", pexec.TreeGroup, &syscall.SysProcAttr{Setpgid: true, Pgid: 1}, os.ErrInvalid, 0},
		{"auto, joining another group", pexec.TreeAuto, &syscall.SysProcAttr{Setpgid: true, Pgid: syscall.Getpgrp()}, nil, -1},
		{"cgroup, caller's own cgroup fd", pexec.TreeCgroup, &syscall.SysProcAttr{UseCgroupFD: true, CgroupFD: 0}, os.ErrInvalid, 0},
		{"group with setsid", pexec.TreeGroup, &syscall.SysProcAttr{Setsid: true}, nil, pexec.TreeGroup},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			skipNoPidfd(t)
			if tt.tree == -1 {
				// TreeAuto cannot fall back to a group the child does
				// not lead: a cgroup, or nothing.
				tt.tree = pexec.TreeNone
				if pexec.TreeSupport(pexec.TreeCgroup) == nil {
					tt.tree = pexec.TreeCgroup
				}
			}
			c := pexec.Command("true")
			c.Tree, c.SysProcAttr = tt.mode, tt.attr
			err := c.Start()
			if tt.want != nil {
				if !errors.Is(err, tt.want) {
					t.Errorf("Start = %v; want an error wrapping %v", err, tt.want)
				}
				if err == nil {
					c.Wait()
				}
				return
			}
			if err != nil {
				t.Fatalf("Start: %v", err)
			}
			defer c.Wait()
			if got := c.Handle().Tree(); got != tt.tree {
				t.Errorf("Tree() = %v; want %v", got, tt.tree)
			}
		})
	}
	h := pexectest.Command("sleep")
	pexectest.Start(t, h, noTree) // no tree: what the calls below check
	if err := h.Handle().SignalTree(syscall.SIGTERM); !errors.Is(err, os.ErrInvalid) {
		t.Errorf("SignalTree without a tree = %v; want os.ErrInvalid", err)
	}
	if h.Handle().TreeDone() == nil || h.Handle().Tree() != pexec.TreeNone {
		t.Error("TreeDone/Tree of a Handle without a tree: want the process's own exit (a channel, never nil) and TreeNone")
	}
	var nilH *pexec.Handle
	if nilH.Tree() != pexec.TreeNone || nilH.TreeDone() != nil || nilH.KillTree() == nil {
		t.Error("tree methods of a nil Handle")
	}
	if _, err := nilH.Stop(context.Background(), time.Second); err == nil {
		t.Error("Stop of a nil Handle = nil error")
	}
}

// TestTreeCgroupLeavesNoDirectory: every leaf a tree made is removed once
// the tree is empty; a normal run leaves no pexec-* cgroup of this process.
func TestTreeCgroupLeavesNoDirectory(t *testing.T) {
	skipTree(t, pexec.TreeCgroup)
	ctx := waitTestContext(t)
	for range 5 {
		c := pexec.Command("sh", "-c", "sleep 3600 & exit 0")
		c.Tree = pexec.TreeCgroup
		if err := c.Run(); err != nil {
			t.Fatal(err)
		}
		c.Handle().KillTree()
		select {
		case <-c.Handle().TreeDone():
		case <-ctx.Done():
			t.Fatal("TreeDone never closed")
		}
	}
	_, dir, err := cgroup.Root()
	if err != nil {
		t.Fatal(err)
	}
	left, err := filepath.Glob(filepath.Join(dir, fmt.Sprintf("pexec-%d-*", os.Getpid())))
	if err != nil {
		t.Fatal(err)
	}
	if len(left) > 0 {
		t.Errorf("cgroup leaves left behind: %v", left)
	}
}

// unprivilegedReport is what tree-unprivileged saw.
type unprivilegedReport struct {
	Setup        string
	UID          int
	CgroupErr    string // TreeSupport(TreeCgroup)
	CgroupDenied bool   // ... wraps os.ErrPermission
	AutoTree     string // Tree() of a TreeAuto child
	AutoErr      string
	ExplicitErr  string // Start of a TreeCgroup child
	ExplicitPerm bool   // ... wraps os.ErrPermission
}

// TestTreeWithoutCgroupRights: where the caller may not create cgroups
// (here: root turned nobody), TreeAuto falls back to a process group and
// says why, and only an explicit TreeCgroup fails the Start.
func TestTreeWithoutCgroupRights(t *testing.T) {
	if os.Geteuid() != 0 {
		testhelper.Uses("tree-unprivileged")
		t.Skip("dropping to an unprivileged user needs root; CI runs as root")
	}
	skipNoPidfd(t)
	var rep unprivilegedReport
	testhelper.RunReport(waitTestContext(t), t, nil, &rep, "tree-unprivileged")
	if rep.Setup != "" {
		t.Fatalf("helper: %s", rep.Setup)
	}
	t.Logf("as uid %d: TreeSupport(TreeCgroup) = %s; TreeAuto gave %s; TreeCgroup: %s", rep.UID, rep.CgroupErr, rep.AutoTree, rep.ExplicitErr)
	if !rep.CgroupDenied {
		t.Errorf("TreeSupport(TreeCgroup) as nobody = %q; want an error wrapping os.ErrPermission", rep.CgroupErr)
	}
	if rep.AutoErr != "" || rep.AutoTree != pexec.TreeGroup.String() {
		t.Errorf("TreeAuto as nobody: Tree() = %s, Start error %q; want group, nil", rep.AutoTree, rep.AutoErr)
	}
	if !rep.ExplicitPerm {
		t.Errorf("TreeCgroup as nobody: Start = %q; want an error wrapping os.ErrPermission", rep.ExplicitErr)
	}
}

// treeUnprivilegedHelper becomes nobody, then tries the tree modes.
func treeUnprivilegedHelper([]string) int {
	var rep unprivilegedReport
	if err := errors.Join(syscall.Setgroups(nil), syscall.Setgid(65534), syscall.Setuid(65534)); err != nil {
		rep.Setup = err.Error()
		return testhelper.Report(rep)
	}
	rep.UID = os.Getuid()
	err := pexec.TreeSupport(pexec.TreeCgroup)
	rep.CgroupErr, rep.CgroupDenied = fmt.Sprint(err), errors.Is(err, os.ErrPermission)
	auto := pexec.Command("true")
	auto.Tree = pexec.TreeAuto
	if err := auto.Run(); err != nil {
		rep.AutoErr = err.Error()
	} else {
		rep.AutoTree = auto.Handle().Tree().String()
	}
	explicit := pexec.Command("true")
	explicit.Tree = pexec.TreeCgroup
	err = explicit.Run()
	rep.ExplicitErr, rep.ExplicitPerm = fmt.Sprint(err), errors.Is(err, os.ErrPermission)
	return testhelper.Report(rep)
}

// TestTreeGroupPIDMode: without pidfds a group is signalled by kill(-pgid)
// only while its leader is unreaped (a zombie included); once Cmd.Wait has
// reaped it, SignalTree says it cannot, never that the tree is gone.
func TestTreeGroupPIDMode(t *testing.T) {
	t.Cleanup(pexec.SetForcePIDMode(true))
	ctx := waitTestContext(t)
	c := pexec.Command("sh", "-c", "sleep 3600 >/dev/null 2>&1 & echo $!; exit 0")
	c.Tree = pexec.TreeGroup
	out, err := c.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Start(); err != nil {
		t.Fatal(err)
	}
	line, _ := bufio.NewReader(out).ReadString('\n')
	member, err := strconv.Atoi(strings.TrimSpace(line))
	if err != nil {
		t.Fatalf("child said %q", line)
	}
	h := c.Handle()
	if _, err := h.WaitContext(ctx); err != nil { // the leader exits; a zombie until Cmd.Wait
		t.Fatal(err)
	}
	// The member is alive and in the group: kill(2) by its PID, which is
	// its own while it lives (it is the group's), only tests it.
	if err := h.SignalTree(syscall.Signal(0)); err != nil {
		t.Fatalf("SignalTree(0) with the leader a zombie: %v", err)
	}
	if err := c.Wait(); err != nil {
		t.Fatal(err)
	}
	err = h.KillTree()
	if !errors.Is(err, errors.ErrUnsupported) {
		t.Errorf("KillTree after the leader's reap, in PID mode = %v; want errors.ErrUnsupported", err)
	}
	if isDone(h.TreeDone()) {
		t.Error("TreeDone closed while a member lives")
	}
	// Clean up by the member's group: the leader was reaped, but the member
	// keeps the group, and so its ID, allocated.
	syscall.Kill(-c.Process.Pid, syscall.SIGKILL)
	_ = member
	select {
	case <-h.TreeDone():
	case <-ctx.Done():
		t.Fatal("TreeDone never closed")
	}
}
