//go:build linux

package pexec_test

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"go/ast"
	"go/build"
	"go/parser"
	"go/token"
	"io"
	"math/bits"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"reflect"
	"regexp"
	"runtime"
	"slices"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"golang.org/x/sys/unix"

	"github.com/pexec-dev/pexec/internal/testhelper"
	"github.com/pexec-dev/pexec/pexec"
	"github.com/pexec-dev/pexec/pexectest"
)

// The tests behind MIGRATION.md: one for each before/after pattern and each
// behaviour difference from os/exec it states. MIGRATION.md names them.

// migTimeout bounds every migration test that could block.
const migTimeout = 30 * time.Second

func init() {
	testhelper.Register("mig-watch-parent", migWatchParent)
	testhelper.Register("mig-middle", migMiddle)
	testhelper.Register("mig-group", migGroup)
	testhelper.Register("mig-reaper", migReaper)
	testhelper.Register("mig-args", func(args []string) int {
		fmt.Print(strings.Join(args, " "))
		return 0
	})
	testhelper.Register("mig-registry", func([]string) int { return 0 })
}

// migWatchParent is a worker that watches its parent through Parent: it
// prints "ready", then "parent gone" and exits when the parent dies. On
// SIGTERM it prints whether the parent handle says the parent is gone, and
// exits.
func migWatchParent(args []string) int {
	parent, err := pexec.Parent()
	if err != nil {
		fmt.Println("Parent:", err)
		return 1
	}
	term := make(chan os.Signal, 1)
	signal.Notify(term, syscall.SIGTERM)
	fmt.Println("ready")
	select {
	case <-parent.Done():
		fmt.Println("parent gone")
		return 0
	case <-term:
		select {
		case <-parent.Done():
			fmt.Println("parent gone")
		default:
			fmt.Println("parent alive")
		}
		return 0
	case <-time.After(migTimeout):
		fmt.Println("timeout")
		return 1
	}
}

// migMiddle starts mig-watch-parent, which shares its standard output, and
// sleeps: the test kills it to orphan the watcher.
func migMiddle(args []string) int {
	cmd := pexectest.Command("mig-watch-parent")
	cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr
	if err := cmd.Start(); err != nil {
		fmt.Println(err)
		return 1
	}
	time.Sleep(migTimeout)
	return 0
}

// migGroup leads a process group (the test sets Setpgid) with a member that
// shares its standard output. It prints "started", then exits at once if
// args[0] is "exit", and sleeps otherwise.
func migGroup(args []string) int {
	cmd := pexectest.Command("sleep")
	cmd.Stdout = os.Stdout
	if err := cmd.Start(); err != nil {
		fmt.Println(err)
		return 1
	}
	fmt.Println("started")
	if len(args) > 0 && args[0] == "exit" {
		return 0
	}
	time.Sleep(migTimeout)
	return 0
}

// migModes runs fn in each mode: with pidfds (where available) and in the
// PID fallback.
func migModes(t *testing.T, fn func(t *testing.T)) {
	for _, pidMode := range []bool{false, true} {
		name := "pidfd"
		if pidMode {
			name = "pid"
		}
		t.Run(name, func(t *testing.T) {
			if !pidMode && !pexec.Supported() {
				t.Skip("this system gives no pidfds")
			}
			defer pexec.SetForcePIDMode(pidMode)()
			fn(t)
		})
	}
}

// migLines returns the lines of r on a channel closed at end of file.
func migLines(r io.Reader) <-chan string {
	ch := make(chan string, 16)
	go func() {
		defer close(ch)
		sc := bufio.NewScanner(r)
		for sc.Scan() {
			ch <- sc.Text()
		}
	}()
	return ch
}

// migReadAll collects the lines until end of file, or fails at the deadline.
func migReadAll(ctx context.Context, t *testing.T, ch <-chan string) []string {
	t.Helper()
	var got []string
	for {
		select {
		case line, ok := <-ch:
			if !ok {
				return got
			}
			got = append(got, line)
		case <-ctx.Done():
			t.Fatalf("no end of file: %v (lines so far: %q)", ctx.Err(), got)
		}
	}
}

// migStart starts a helper bound to the test (pexectest.Start): the test's
// clean-up stops it if it still runs and reaps it, whatever happens, and
// fails the test if it failed by itself unseen (the test did not Wait).
func migStart(t *testing.T, name string, args ...string) *pexec.Cmd {
	t.Helper()
	cmd := pexectest.Command(name, args...)
	pexectest.Start(t, cmd, noTree)
	return cmd
}

// migDone waits for h.Done, or fails at the deadline.
func migDone(ctx context.Context, t *testing.T, h *pexec.Handle) {
	t.Helper()
	select {
	case <-h.Done():
	case <-ctx.Done():
		t.Fatalf("process %d did not exit: %v", h.Pid(), ctx.Err())
	}
}

// errString is err's message, "" for nil.
func errString(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

// MIGRATION.md, "Keeping cmd.Process.Pid and calling syscall.Kill": the
// Handle signals the child while it runs and refuses once it has exited,
// whether or not it has been reaped yet.
func TestMigrationSignalByHandle(t *testing.T) {
	migModes(t, func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), migTimeout)
		defer cancel()
		cmd := migStart(t, "sleep")
		h := cmd.Handle()
		zombie := migStart(t, "exit", "0")
		migDone(ctx, t, zombie.Handle()) // exited, not reaped
		type outcome struct{ Signal, Wait, SignalAfter, KillAfter, SignalZombie string }
		got := outcome{Signal: errString(h.Signal(syscall.SIGTERM))}
		got.Wait = errString(cmd.Wait())
		got.SignalAfter = errString(h.Signal(syscall.SIGTERM))
		got.KillAfter = errString(h.Kill())
		got.SignalZombie = errString(zombie.Handle().Signal(syscall.SIGTERM))
		done := os.ErrProcessDone.Error()
		want := outcome{Signal: "", Wait: "signal: terminated", SignalAfter: done, KillAfter: done, SignalZombie: done}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("(-want +got):\n%s", diff)
		}
	})
}

// MIGRATION.md, "os.FindProcess + Signal(0)": for a child that has exited
// but not been reaped, the old check says "alive"; Handle.Alive does not.
func TestMigrationLiveness(t *testing.T) {
	migModes(t, func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), migTimeout)
		defer cancel()
		running := migStart(t, "sleep")
		exited := migStart(t, "exit", "0")
		h := exited.Handle()
		migDone(ctx, t, h) // exited, not reaped: a zombie
		p, err := os.FindProcess(exited.Process.Pid)
		if err != nil {
			t.Fatal(err)
		}
		type outcome struct {
			Running, Zombie, Reaped bool
			ZombieSignal0           string // the old check: "" means "alive"
		}
		got := outcome{
			Running:       running.Handle().Alive(),
			Zombie:        h.Alive(),
			ZombieSignal0: errString(p.Signal(syscall.Signal(0))),
		}
		if err := exited.Wait(); err != nil {
			t.Fatal(err)
		}
		got.Reaped = h.Alive()
		want := outcome{Running: true, Zombie: false, Reaped: false, ZombieSignal0: ""}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("(-want +got):\n%s", diff)
		}
	})
}

// MIGRATION.md, "kill(-pid) for process groups": SignalGroup reaches every
// member of the group the child leads, and refuses once the leader has
// exited, even if members remain; those can still be reached with
// kill(-pid) until Cmd.Wait reaps the leader.
func TestMigrationSignalGroup(t *testing.T) {
	// startGroup starts mig-group as a group leader; the returned channel
	// has the lines of the group's shared output, and closes when every
	// member is gone.
	startGroup := func(t *testing.T, arg string) (*pexec.Cmd, <-chan string) {
		cmd := pexectest.Command("mig-group", arg)
		cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
		r, w, err := os.Pipe()
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { r.Close() })
		cmd.Stdout = w
		err = cmd.Start()
		w.Close()
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			if cmd.ProcessState == nil {
				// The leader is not reaped, so its PID, the group ID,
				// cannot have been reused.
				syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
				cmd.Wait()
			}
		})
		lines := migLines(r)
		if line := <-lines; line != "started" {
			t.Fatalf("helper said %q", line)
		}
		return cmd, lines
	}
	type outcome struct{ Signal, Wait, After string }
	migModes(t, func(t *testing.T) {
		t.Run("leader running", func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), migTimeout)
			defer cancel()
			cmd, lines := startGroup(t, "stay")
			h := cmd.Handle()
			err := h.SignalGroup(syscall.SIGKILL)
			migReadAll(ctx, t, lines) // end of file: the member is gone too
			got := outcome{Signal: errString(err), Wait: errString(cmd.Wait()), After: errString(h.SignalGroup(syscall.SIGTERM))}
			want := outcome{Signal: "", Wait: "signal: killed", After: os.ErrProcessDone.Error()}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
		t.Run("leader exited", func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), migTimeout)
			defer cancel()
			cmd, lines := startGroup(t, "exit")
			h := cmd.Handle()
			migDone(ctx, t, h) // the leader has exited; the member lives on
			err := h.SignalGroup(syscall.SIGKILL)
			// Until Cmd.Wait reaps the leader, the group ID is still taken.
			kerr := syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
			migReadAll(ctx, t, lines) // end of file: the member is gone
			got := outcome{Signal: errString(err), Wait: errString(cmd.Wait()), After: errString(kerr)}
			want := outcome{Signal: os.ErrProcessDone.Error(), Wait: "", After: ""}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	})
}

// MIGRATION.md, "hand-rolled waitpid loops": Done channels fan in, Wait
// gives each status, WaitContext bounds a wait and leaves the process
// running, and every Cmd.Wait still works.
func TestMigrationWaitLoop(t *testing.T) {
	migModes(t, func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), migTimeout)
		defer cancel()
		var cmds []*pexec.Cmd
		for _, code := range []string{"1", "2", "3"} {
			cmds = append(cmds, migStart(t, "exit", code))
		}
		exited := make(chan *pexec.Cmd)
		for _, c := range cmds {
			go func() {
				<-c.Handle().Done()
				exited <- c
			}()
		}
		var codes []int
		for range cmds {
			select {
			case c := <-exited:
				st, err := c.Handle().Wait()
				if err != nil {
					t.Fatal(err)
				}
				codes = append(codes, st.ExitCode())
			case <-ctx.Done():
				t.Fatalf("children did not exit: %v", ctx.Err())
			}
		}
		slices.Sort(codes)
		var waits []string
		for _, c := range cmds {
			waits = append(waits, errString(c.Wait()))
		}
		sleeper := migStart(t, "sleep")
		short, cancelShort := context.WithTimeout(ctx, 10*time.Millisecond)
		defer cancelShort()
		_, werr := sleeper.Handle().WaitContext(short)

		type outcome struct {
			Codes        []int
			CmdWaits     []string
			WaitDeadline bool
			StillAlive   bool
		}
		got := outcome{codes, waits, errors.Is(werr, context.DeadlineExceeded), sleeper.Handle().Alive()}
		want := outcome{
			Codes:        []int{1, 2, 3},
			CmdWaits:     []string{"exit status 1", "exit status 2", "exit status 3"},
			WaitDeadline: true,
			StillAlive:   true,
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("(-want +got):\n%s", diff)
		}
	})
}

// MIGRATION.md, "Pdeathsig, made reliable": with os/exec, Pdeathsig fires
// when the OS thread that started the child exits, although the parent
// process lives on (here, a goroutine locked to its thread returns, and the
// runtime ends the thread); pexec starts such a child from a thread that
// never exits, so it survives. Parent().Done() is not fooled either.
func TestMigrationPdeathsig(t *testing.T) {
	osVictim := exec.Command("sleep", "3600")
	osVictim.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	victim := pexectest.Command("sleep")
	victim.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	watcher := pexectest.Command("mig-watch-parent")
	if !pexec.Supported() {
		testhelper.Uses("mig-watch-parent")
		t.Skip("Parent needs pidfds")
	}
	ctx, cancel := context.WithTimeout(context.Background(), migTimeout)
	defer cancel()
	stdout, err := watcher.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	onExitingThread(func() {
		err = errors.Join(osVictim.Start(), victim.Start(), watcher.Start())
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []*pexec.Cmd{victim, watcher} {
		t.Cleanup(func() {
			c.Process.Kill()
			c.Wait()
		})
	}
	lines := migLines(stdout)
	osErr := make(chan error, 1)
	go func() { osErr <- osVictim.Wait() }()
	var osState string
	select {
	case err := <-osErr:
		osState = fmt.Sprint(err)
	case <-ctx.Done():
		osVictim.Process.Kill()
		t.Fatal("the os/exec Pdeathsig child was not killed")
	}
	if line := <-lines; line != "ready" {
		t.Fatalf("watcher said %q", line)
	}
	// The thread is gone (the os/exec child's Pdeathsig fired); the process
	// is not: pexec's child lives, and the watcher's Parent handle says so.
	alive := victim.Handle().Alive()
	if err := victim.Handle().Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	st, err := victim.Handle().WaitContext(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := watcher.Handle().Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	type outcome struct {
		OSExecChild string
		PexecAlive  bool
		PexecChild  string
		Watcher     []string
	}
	got := outcome{osState, alive, st.String(), migReadAll(ctx, t, lines)}
	want := outcome{"signal: killed", true, "signal: terminated", []string{"parent alive"}}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
}

// onExitingThread runs fn on an OS thread that ends when fn returns, as a
// thread does when its goroutine returns while locked to it.
func onExitingThread(fn func()) {
	done := make(chan struct{})
	go func() {
		defer close(done)
		runtime.LockOSThread() // never unlocked: the runtime ends the thread
		if unix.Gettid() == unix.Getpid() {
			// The main thread is never ended. Keep it locked (so that
			// the nested goroutine cannot run on it) and try again.
			onExitingThread(fn)
			runtime.UnlockOSThread()
			return
		}
		fn()
	}()
	<-done
}

// MIGRATION.md, "Pdeathsig for orphan detection", the replacement: a worker
// selecting on Parent().Done() notices that its parent died, and leaves.
func TestMigrationParentDone(t *testing.T) {
	middle := pexectest.Command("mig-middle")
	if !pexec.Supported() {
		testhelper.Uses("mig-middle", "mig-watch-parent")
		t.Skip("Parent needs pidfds")
	}
	ctx, cancel := context.WithTimeout(context.Background(), migTimeout)
	defer cancel()
	// A pipe of our own rather than StdoutPipe, which middle.Wait would
	// close while the watcher still writes to it.
	stdout, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer stdout.Close()
	t.Cleanup(func() { w.Close() }) // if Start fails
	middle.Stdout = w
	pexectest.Start(t, middle, noTree)
	w.Close()
	lines := migLines(stdout)
	if line := <-lines; line != "ready" {
		t.Fatalf("watcher said %q", line)
	}
	middle.Handle().Kill() // the watcher's parent dies
	if err := middle.Wait(); err == nil || err.Error() != "signal: killed" {
		t.Fatalf("middle: %v", err)
	}
	// The watcher holds the pipe: end of file means it has exited.
	if diff := cmp.Diff([]string{"parent gone"}, migReadAll(ctx, t, lines)); diff != "" {
		t.Errorf("watcher (-want +got):\n%s", diff)
	}
}

// migReaped is what Cmd.Wait reported for a child that something else
// reaped first.
type migReaped struct {
	ErrType      string
	ECHILD       bool   // errors.Is(err, syscall.ECHILD)
	ProcessState bool   // Cmd.ProcessState was set
	Status       string // ReapedError.Status, "unavailable" (nil, and the error matches ErrStatusUnavailable) or ""
}

// migReaper runs, in a helper process (ignoring SIGCHLD there must not
// disturb the tests), a child that exits 3 and is reaped behind Cmd.Wait's
// back by args[0]: "wait4" (other code, right after the exit),
// "process-wait" (the caller's own cmd.Process.Wait) or "sigchld-ignored"
// (the kernel: the test starts the helper with
// pexectest.WithForeignReaper). It prints, as JSON, what os/exec, pexec and
// pexec in PID mode report.
func migReaper(args []string) int {
	reaper := args[0]
	if reaper == "sigchld-ignored" && !signal.Ignored(syscall.SIGCHLD) {
		fmt.Println("SIGCHLD is not ignored: start the helper with pexectest.WithForeignReaper")
		return 1
	}
	exit3 := pexectest.Command("exit", "3")
	path, argv, env := exit3.Path, exit3.Args, exit3.Env
	run := func(start func() (wait func() error, p *os.Process, ps func() *os.ProcessState)) (migReaped, error) {
		wait, p, ps := start()
		if p == nil {
			return migReaped{}, errors.New("start failed")
		}
		// Watch for the exit through a pidfd of our own: os/exec offers
		// no way to see it without reaping. (The child is unreaped, so
		// its PID cannot have been reused; unless SIGCHLD is ignored,
		// in which case it may already be gone.)
		if h, err := pexec.Open(p.Pid); err == nil {
			<-h.Done()
			h.Close()
		}
		switch reaper {
		case "wait4":
			var ws unix.WaitStatus
			unix.Wait4(p.Pid, &ws, 0, nil)
		case "process-wait":
			p.Wait()
		}
		err := wait()
		o := migReaped{ErrType: fmt.Sprintf("%T", err), ECHILD: errors.Is(err, syscall.ECHILD), ProcessState: ps() != nil}
		var re *pexec.ReapedError
		if errors.As(err, &re) {
			o.Status = re.Status.String()
			if re.Status == nil && errors.Is(err, pexec.ErrStatusUnavailable) {
				o.Status = "unavailable"
			}
		}
		return o, nil
	}
	osexec := func() (func() error, *os.Process, func() *os.ProcessState) {
		c := exec.Command(path, argv[1:]...)
		c.Env = env
		c.Start()
		return c.Wait, c.Process, func() *os.ProcessState { return c.ProcessState }
	}
	px := func() (func() error, *os.Process, func() *os.ProcessState) {
		c := pexec.Command(path, argv[1:]...)
		c.Env = env
		c.Start()
		return c.Wait, c.Process, func() *os.ProcessState { return c.ProcessState }
	}
	var out [3]migReaped
	var err [3]error
	out[0], err[0] = run(osexec)
	out[1], err[1] = run(px)
	pexec.SetForcePIDMode(true)
	out[2], err[2] = run(px)
	if err := errors.Join(err[:]...); err != nil {
		fmt.Println(err)
		return 1
	}
	b, _ := json.Marshal(out)
	fmt.Printf("%s\n", b)
	return 0
}

// MIGRATION.md, behaviour differences, "reaped by someone else", and why
// hand-rolled wait loops are unsafe: when something else reaps the child,
// os/exec's Cmd.Wait returns a bare ECHILD; pexec's returns a *ReapedError
// that still matches ECHILD and carries the real status where the kernel
// keeps it.
func TestMigrationForeignReaper(t *testing.T) {
	for _, reaper := range []string{"wait4", "process-wait", "sigchld-ignored"} {
		t.Run(reaper, func(t *testing.T) {
			if !pexec.Supported() {
				testhelper.Uses("mig-reaper")
				t.Skip("the scenario watches the os/exec child through a pidfd")
			}
			ctx, cancel := context.WithTimeout(context.Background(), migTimeout)
			defer cancel()
			cmd := pexectest.CommandContext(ctx, "mig-reaper", reaper)
			// The kernel as the foreign reaper: the helper runs with
			// SIGCHLD ignored. ("wait4" is not pexectest's ReaperWait4,
			// a loop that reaps whenever it gets to it: the scenario
			// needs the reap done before Cmd.Wait, every time, so the
			// helper calls wait4 itself, right after the exit.)
			if reaper == "sigchld-ignored" {
				pexectest.WithForeignReaper(t, cmd, pexectest.ReaperIgnoreSIGCHLD)
			}
			out, err := cmd.Output()
			if err != nil {
				t.Fatalf("helper: %v: %s", err, out)
			}
			var got [3]migReaped
			if err := json.Unmarshal(out, &got); err != nil {
				t.Fatalf("helper said %q: %v", out, err)
			}
			// The status, measured apart from the scenario: the kernel's
			// record (PIDFD_INFO_EXIT, Linux 6.15+). The user's own
			// cmd.Process.Wait, with no pexec wait in progress, takes the
			// status with it and closes the pidfd: pexec cannot know it.
			status := "exit status 3"
			switch {
			case reaper == "process-wait":
				status = "unavailable"
			case !pidfdInfoExit(t):
				t.Log("this kernel keeps no exit status in the pidfd (PIDFD_INFO_EXIT, Linux 6.15)")
				status = "unavailable"
			}
			want := [3]migReaped{
				{ErrType: "*os.SyscallError", ECHILD: true},                          // os/exec
				{ErrType: "*pexec.ReapedError", ECHILD: true, Status: status},        // pexec
				{ErrType: "*pexec.ReapedError", ECHILD: true, Status: "unavailable"}, // pexec, PID mode
			}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("[os/exec, pexec, pexec in PID mode] (-want +got):\n%s", diff)
			}
		})
	}
}

// MIGRATION.md, behaviour differences: Handle.Wait of a Cmd's child observes
// the exit without reaping; Cmd.Wait reaps.
func TestMigrationHandleWaitDoesNotReap(t *testing.T) {
	migModes(t, func(t *testing.T) {
		cmd := migStart(t, "exit", "3")
		pid := cmd.Process.Pid
		// reapable reports whether the child is an exited child waiting to
		// be reaped (it is our unreaped child, so its PID is not reused).
		reapable := func() string {
			var info unix.Siginfo
			err := unix.Waitid(unix.P_PID, pid, &info, unix.WEXITED|unix.WNOHANG|unix.WNOWAIT, nil)
			switch {
			case err != nil:
				return err.Error()
			case info.Signo == 0:
				return "running"
			}
			return "zombie"
		}
		type outcome struct {
			HandleWait, AfterHandleWait, CmdWait, AfterCmdWait string
			ProcessState                                       bool
		}
		st, err := cmd.Handle().Wait()
		if err != nil {
			t.Fatal(err)
		}
		got := outcome{HandleWait: st.String(), AfterHandleWait: reapable()}
		got.CmdWait = errString(cmd.Wait())
		got.AfterCmdWait = reapable()
		got.ProcessState = cmd.ProcessState != nil
		want := outcome{
			HandleWait:      "exit status 3",
			AfterHandleWait: "zombie", // still there for Cmd.Wait
			CmdWait:         "exit status 3",
			AfterCmdWait:    unix.ECHILD.Error(),
			ProcessState:    true,
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("(-want +got):\n%s", diff)
		}
	})
}

// migPidfdsOf counts the pidfds this process holds for the process whose
// pidfs ID (Handle.ID) is id. Counting only those keeps the count exact
// while the garbage collector closes other tests' forgotten handles.
func migPidfdsOf(t *testing.T, id uint64) int {
	t.Helper()
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, e := range ents {
		path := "/proc/self/fd/" + e.Name()
		var st unix.Stat_t
		if target, _ := os.Readlink(path); strings.Contains(target, "pidfd") && unix.Stat(path, &st) == nil && sameIno(uint64(st.Ino), id) {
			n++
		}
	}
	return n
}

// sameIno reports whether a pidfd's inode number is the pidfs ID id. On
// 32-bit systems, inode numbers hold only its low 32 bits.
func sameIno(ino, id uint64) bool {
	return ino == id || (bits.UintSize == 32 && ino == uint64(uint32(id)))
}

// MIGRATION.md, behaviour differences, "descriptors": pexec holds as many
// pidfds per child as os/exec, the os.Process's, which the child's Handle
// uses; Cmd.Wait releases it, and Handle.Close has nothing left to close.
func TestMigrationDescriptors(t *testing.T) {
	if !pexec.Supported() {
		t.Skip("no pidfds on this system")
	}
	type counts struct{ Running, AfterWait, AfterClose int }
	id := func(h *pexec.Handle) uint64 {
		id, err := h.ID()
		if errors.Is(err, errors.ErrUnsupported) {
			t.Skipf("cannot tell pidfds apart without pidfs (Linux 6.9): %v", err)
		}
		if err != nil {
			t.Fatal(err)
		}
		return id
	}
	osexec := func() counts {
		exit0 := pexectest.Command("exit", "0")
		c := exec.Command(exit0.Path, exit0.Args[1:]...)
		c.Env = exit0.Env
		if err := c.Start(); err != nil {
			t.Fatal(err)
		}
		defer c.Wait()
		h, err := pexec.Open(c.Process.Pid) // our unreaped child: race-free
		if err != nil {
			t.Fatal(err)
		}
		child := id(h)
		h.Close()
		n := counts{Running: migPidfdsOf(t, child)}
		c.Wait()
		n.AfterWait = migPidfdsOf(t, child)
		n.AfterClose = n.AfterWait // there is nothing else to close
		return n
	}
	px := func() counts {
		c := pexectest.Command("exit", "0")
		if err := c.Start(); err != nil {
			t.Fatal(err)
		}
		defer c.Wait()
		child := id(c.Handle())
		n := counts{Running: migPidfdsOf(t, child)}
		c.Wait()
		n.AfterWait = migPidfdsOf(t, child)
		c.Handle().Close()
		n.AfterClose = migPidfdsOf(t, child)
		return n
	}
	got := map[string]counts{"os/exec": osexec(), "pexec": px()}
	want := map[string]counts{
		"os/exec": {Running: 1, AfterWait: 0, AfterClose: 0}, // os.Process's own pidfd
		"pexec":   {Running: 1, AfterWait: 0, AfterClose: 0}, // the Handle uses that one
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("pidfds held for the child (-want +got):\n%s", diff)
	}
}

// MIGRATION.md, behaviour differences: *pexec.Cmd is a type of its own
// (code that takes an *exec.Cmd does not accept it), while the error types
// are os/exec's.
func TestMigrationTypes(t *testing.T) {
	type outcome struct{ CmdAssignable, ExitErrorSame, ErrorSame bool }
	got := outcome{
		CmdAssignable: reflect.TypeFor[*pexec.Cmd]().AssignableTo(reflect.TypeFor[*exec.Cmd]()),
		ExitErrorSame: reflect.TypeFor[*pexec.ExitError]() == reflect.TypeFor[*exec.ExitError](),
		ErrorSame:     reflect.TypeFor[*pexec.Error]() == reflect.TypeFor[*exec.Error](),
	}
	if diff := cmp.Diff(outcome{false, true, true}, got); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
}

// MIGRATION.md, behaviour differences, "dot-imports": a program that
// dot-imports os/exec and declares its own Handle compiles; with the import
// swapped to pexec it does not.
func TestMigrationDotImport(t *testing.T) {
	if testing.Short() {
		t.Skip("builds two programs with the go command")
	}
	goTool, err := exec.LookPath("go")
	if err != nil {
		t.Skipf("no go command: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	build := func(dir string) string {
		cmd := pexec.CommandContext(ctx, goTool, "build", "-o", os.DevNull, "./"+filepath.ToSlash(dir))
		out, err := cmd.CombinedOutput()
		if err != nil && ctx.Err() != nil {
			t.Fatalf("go build %s: %v", dir, err)
		}
		if err == nil {
			return "ok"
		}
		if m := regexp.MustCompile(`\w+ already declared through dot-import of package pexec`).Find(out); m != nil {
			return string(m)
		}
		return string(out)
	}
	got := []string{build("testdata/dotimport/osexec"), build("testdata/dotimport/pexec")}
	want := []string{"ok", "Handle already declared through dot-import of package pexec"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
}

// exportedNames returns the exported package-level names of the package in
// dir, as built for linux.
func exportedNames(t *testing.T, dir string) []string {
	t.Helper()
	ctxt := build.Default
	ctxt.GOOS = "linux"
	pkg, err := ctxt.ImportDir(dir, 0)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	fset := token.NewFileSet()
	for _, name := range pkg.GoFiles {
		f, err := parser.ParseFile(fset, filepath.Join(dir, name), nil, parser.SkipObjectResolution)
		if err != nil {
			t.Fatal(err)
		}
		for _, d := range f.Decls {
			switch d := d.(type) {
			case *ast.FuncDecl:
				if d.Recv == nil && d.Name.IsExported() {
					names = append(names, d.Name.Name)
				}
			case *ast.GenDecl:
				for _, s := range d.Specs {
					switch s := s.(type) {
					case *ast.TypeSpec:
						if s.Name.IsExported() {
							names = append(names, s.Name.Name)
						}
					case *ast.ValueSpec:
						for _, n := range s.Names {
							if n.IsExported() {
								names = append(names, n.Name)
							}
						}
					}
				}
			}
		}
	}
	slices.Sort(names)
	return slices.Compact(names)
}

// MIGRATION.md, behaviour differences, "dot-imports": the list of names
// pexec exports beyond os/exec's is the tree's.
func TestMigrationDotImportNames(t *testing.T) {
	osexecPkg, err := build.Default.Import("os/exec", "", build.FindOnly)
	if err != nil {
		t.Fatal(err)
	}
	own := exportedNames(t, osexecPkg.Dir)
	var extra []string
	for _, n := range exportedNames(t, ".") {
		if !slices.Contains(own, n) {
			extra = append(extra, n)
		}
	}
	doc, err := os.ReadFile("../MIGRATION.md")
	if err != nil {
		t.Fatal(err)
	}
	_, block, ok := strings.Cut(string(doc), "<!-- extra-names -->")
	block, _, ok2 := strings.Cut(block, "<!-- /extra-names -->")
	if !ok || !ok2 {
		t.Fatal("MIGRATION.md has no <!-- extra-names --> ... <!-- /extra-names --> block")
	}
	var listed []string
	for _, m := range regexp.MustCompile("`(\\w+)`").FindAllStringSubmatch(block, -1) {
		listed = append(listed, m[1])
	}
	if diff := cmp.Diff(extra, listed); diff != "" {
		t.Errorf("MIGRATION.md's list of pexec's extra names is out of date (-tree +MIGRATION.md):\n%s", diff)
	}
}

// MIGRATION.md, "Which mode am I in?": Supported says whether Handles hold
// pidfds, Handle.Mode says which a Handle holds, and without pidfds the
// operations that need one say so with errors.ErrUnsupported.
func TestMigrationMode(t *testing.T) {
	migModes(t, func(t *testing.T) {
		cmd := migStart(t, "exit", "0")
		h := cmd.Handle()
		type outcome struct {
			Supported, ControlUnsupported, OpenUnsupported, ParentUnsupported bool
			Mode                                                              string
		}
		opened, openErr := pexec.Open(os.Getpid())
		if openErr == nil {
			opened.Close()
		}
		parent, parentErr := pexec.Parent()
		if parentErr == nil {
			parent.Close()
		}
		got := outcome{
			Supported:          pexec.Supported(),
			Mode:               h.Mode().String(),
			ControlUnsupported: errors.Is(h.Control(func(int) {}), errors.ErrUnsupported),
			OpenUnsupported:    errors.Is(openErr, errors.ErrUnsupported),
			ParentUnsupported:  errors.Is(parentErr, errors.ErrUnsupported),
		}
		// The mode the subtest asked for (migModes names it), not the one
		// the Handle reports.
		want := outcome{Supported: true, Mode: "pidfd"}
		if strings.HasSuffix(t.Name(), "/pid") {
			want = outcome{Supported: false, Mode: "pid", ControlUnsupported: true, OpenUnsupported: true, ParentUnsupported: true}
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("(-want +got):\n%s", diff)
		}
	})
}

// MIGRATION.md, "Testing tips": a table of cases, each running a named
// helper (pexectest.Command) and comparing how it ended, as a
// pexectest.Outcome, with the one the case wants.
func TestMigrationTableDriven(t *testing.T) {
	tests := []struct {
		name    string
		cmd     *pexec.Cmd
		timeout time.Duration // the run's deadline; migTimeout if 0
		want    pexectest.Outcome
	}{
		{"output", pexectest.Command("mig-args", "a", "b"), 0, pexectest.Outcome{Stdout: "a b"}},
		{"exit code", pexectest.Command("exit", "3"), 0, pexectest.Outcome{Exit: 3}},
		{"killed", pexectest.Command("kill-self", "9"), 0, pexectest.Outcome{Exit: -1, Signal: "SIGKILL"}},
		{"hangs", pexectest.Command("sleep"), 100 * time.Millisecond, pexectest.Outcome{Exit: -1, Signal: "SIGKILL", TimedOut: true, Killed: "tree"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			d := tc.timeout
			if d == 0 {
				d = migTimeout
			}
			ctx, cancel := context.WithTimeout(t.Context(), d)
			defer cancel()
			if diff := cmp.Diff(tc.want, pexectest.Run(ctx, tc.cmd)); diff != "" {
				t.Errorf("%s: (-want +got):\n%s", tc.cmd, diff)
			}
		})
	}
}

var migProbes atomic.Int64

// MIGRATION.md, "Testing tips": pexec's own helper registry
// (internal/testhelper, over pexectest.Register) knows which of a
// package's own helpers no test has used, and testhelper.Main then fails an
// unfiltered run. A helper is used once it has run, in whatever process, or
// once a test that may skip before it runs it has said that it uses it.
func TestMigrationHelperRegistry(t *testing.T) {
	n := migProbes.Add(1)
	// Said to be used: a helper registered here, in the test process
	// alone, which therefore cannot run.
	name := fmt.Sprintf("mig-probe-%d", n)
	testhelper.Register(name, func([]string) int { return 0 })
	before := slices.Contains(testhelper.Unused(), name)
	testhelper.Uses(name)
	after := slices.Contains(testhelper.Unused(), name)
	if !before || after {
		t.Errorf("%s said to be used: unused before: %t (want true); unused after: %t (want false)", name, before, after)
	}
	// Run: mig-registry, which no other test runs (unused before its
	// first run, so before the first run of this test).
	before = slices.Contains(testhelper.Unused(), "mig-registry")
	if err := pexectest.Command("mig-registry").Run(); err != nil {
		t.Fatal(err)
	}
	after = slices.Contains(testhelper.Unused(), "mig-registry")
	if before != (n == 1) || after {
		t.Errorf("mig-registry run (run %d of this test): unused before: %t (want %t); unused after: %t (want false)", n, before, n == 1, after)
	}
}

// migCmd is the part of the exec.Cmd and pexec.Cmd API the edge cases use.
type migCmd interface {
	Start() error
	Wait() error
	Run() error
	Output() ([]byte, error)
}

// migKit builds a command through os/exec or pexec.
type migKit struct {
	pkg string
	new func(path string, args, env []string, sys *syscall.SysProcAttr) (c migCmd, proc func() *os.Process)
}

var migKits = []migKit{
	{"os/exec", func(path string, args, env []string, sys *syscall.SysProcAttr) (migCmd, func() *os.Process) {
		c := exec.Command(path, args...)
		c.Env, c.SysProcAttr = env, sys
		return c, func() *os.Process { return c.Process }
	}},
	{"pexec", func(path string, args, env []string, sys *syscall.SysProcAttr) (migCmd, func() *os.Process) {
		c := pexec.Command(path, args...)
		c.Env, c.SysProcAttr = env, sys
		return c, func() *os.Process { return c.Process }
	}},
}

// helper builds, through k, the command of pexectest.Command that runs a
// helper.
func (k migKit) helper(sys *syscall.SysProcAttr, name string, args ...string) (migCmd, func() *os.Process) {
	h := pexectest.Command(name, args...)
	return k.new(h.Path, h.Args[1:], h.Env, sys)
}

// MIGRATION.md, behaviour differences, "everything else": edge cases beyond
// the compatibility table behave the same through os/exec and pexec.
func TestMigrationSameEdgeCases(t *testing.T) {
	scenarios := []struct {
		name string
		run  func(t *testing.T, k migKit) []string
	}{
		{"Wait twice", func(_ *testing.T, k migKit) []string {
			c, _ := k.helper(nil, "exit", "3")
			c.Start()
			return []string{errString(c.Wait()), errString(c.Wait())}
		}},
		{"Wait without Start", func(_ *testing.T, k migKit) []string {
			c, _ := k.helper(nil, "exit", "0")
			return []string{errString(c.Wait())}
		}},
		{"Start fails, then Wait", func(_ *testing.T, k migKit) []string {
			c, proc := k.new("/nonexistent/pexec-migration", nil, nil, nil)
			return []string{errString(c.Start()), fmt.Sprint(proc() == nil), errString(c.Wait())}
		}},
		{"Process.Kill, then Wait", func(_ *testing.T, k migKit) []string {
			c, proc := k.helper(nil, "sleep")
			c.Start()
			return []string{errString(proc().Kill()), errString(c.Wait())}
		}},
		{"Process.Kill after Wait", func(_ *testing.T, k migKit) []string {
			c, proc := k.helper(nil, "exit", "0")
			c.Run()
			return []string{errString(proc().Kill()), errString(proc().Signal(syscall.Signal(0)))}
		}},
		{"Process.Release before Wait", func(t *testing.T, k migKit) []string {
			c, proc := k.helper(nil, "exit", "0")
			if err := c.Start(); err != nil {
				return []string{errString(err)}
			}
			pid := proc().Pid // Release sets it to -1
			got := []string{errString(proc().Release()), errString(c.Wait())}
			// Released, the child is reaped by neither Wait.
			reapReleased(t, pid)
			return got
		}},
		{"the child's descriptors", func(_ *testing.T, k migKit) []string {
			c, _ := k.helper(nil, "fds")
			out, err := c.Output()
			var fds []string
			for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
				fd, _, _ := strings.Cut(line, " ")
				fds = append(fds, fd)
			}
			return append(fds, errString(err))
		}},
		{"the caller's SysProcAttr and PidFD", func(_ *testing.T, k migKit) []string {
			pidfd := -1
			sys := &syscall.SysProcAttr{Setpgid: true, PidFD: &pidfd}
			before := *sys
			c, _ := k.helper(sys, "exit", "0")
			err := c.Run()
			target, _ := os.Readlink(fmt.Sprintf("/proc/self/fd/%d", pidfd))
			if pidfd >= 0 {
				syscall.Close(pidfd)
			}
			return []string{errString(err), fmt.Sprint(reflect.DeepEqual(before, *sys)), target}
		}},
	}
	for _, sc := range scenarios {
		t.Run(sc.name, func(t *testing.T) {
			got := map[string][]string{}
			for _, k := range migKits {
				got[k.pkg] = sc.run(t, k)
			}
			if diff := cmp.Diff(got["os/exec"], got["pexec"]); diff != "" {
				t.Errorf("os/exec and pexec differ (-os/exec +pexec):\n%s", diff)
			}
			t.Logf("both: %q", got["pexec"])
		})
	}
}

// PROOFS.md names the test or benchmark behind each claim of the README,
// MIGRATION.md and the package docs: every test, example, fuzz target and
// benchmark it names must exist, and so must those the README and
// MIGRATION.md name themselves, which PROOFS.md must name too (a claim's
// proof is one link away, in one place).
func TestMigrationDocNamesExist(t *testing.T) {
	var src strings.Builder
	dirs := []string{".", "../cmd/pidreuse", "../pexectest", "../internal/cgroup", "../internal/probe", "../internal/procfs", "../internal/testhelper", "../bench"}
	examples, err := filepath.Glob("../examples/*")
	if err != nil {
		t.Fatal(err)
	}
	for _, dir := range append(dirs, examples...) {
		files, err := filepath.Glob(filepath.Join(dir, "*_test.go"))
		if err != nil {
			t.Fatal(err)
		}
		for _, f := range files {
			b, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			src.Write(b)
		}
	}
	named := map[string][]string{}
	for _, docName := range []string{"PROOFS.md", "MIGRATION.md", "README.md"} {
		doc, err := os.ReadFile("../" + docName)
		if err != nil {
			t.Fatal(err)
		}
		var names []string // "TestMigration…" stands for a family, not a test
		for _, m := range regexp.MustCompile(`\b((?:Test|Example|Benchmark|Fuzz)[A-Z_]\w*)(…)?`).FindAllStringSubmatch(string(doc), -1) {
			if m[2] == "" {
				names = append(names, m[1])
			}
		}
		named[docName] = slices.Compact(slices.Sorted(slices.Values(names)))
		for _, name := range named[docName] {
			if !strings.Contains(src.String(), "func "+name+"(") {
				t.Errorf("%s names %s, which does not exist", docName, name)
			}
		}
	}
	if len(named["PROOFS.md"]) == 0 {
		t.Fatal("PROOFS.md names no tests")
	}
	for _, docName := range []string{"MIGRATION.md", "README.md"} {
		for _, name := range named[docName] {
			if name != "TestMain" && !slices.Contains(named["PROOFS.md"], name) { // TestMain: in code samples
				t.Errorf("%s names %s, which PROOFS.md does not", docName, name)
			}
		}
	}
}

// TestReadmeCommands checks that CI runs the README's two commands exactly.
func TestReadmeCommands(t *testing.T) {
	readme, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	ci, err := os.ReadFile("../.ci/run")
	if err != nil {
		t.Fatal(err)
	}
	block := regexp.MustCompile("(?s)```sh\n(.*?)```").FindSubmatch(readme)
	if block == nil {
		t.Fatal("README.md has no sh block")
	}
	var cmds []string
	for _, line := range strings.Split(strings.TrimSpace(string(block[1])), "\n") {
		cmd, _, _ := strings.Cut(line, "#")
		cmds = append(cmds, strings.TrimSpace(cmd))
	}
	want := []string{"go run ./cmd/pidreuse", "go test -race -count=1 ./..."}
	if diff := cmp.Diff(want, cmds); diff != "" {
		t.Errorf("README's first commands (-want +got):\n%s", diff)
	}
	for _, c := range cmds {
		if !regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(c) + `$`).Match(ci) {
			t.Errorf(".ci/run does not run %q on a line of its own", c)
		}
	}
}
