package pexec_test

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/pexec-dev/pexec/internal/testhelper"
	"github.com/pexec-dev/pexec/pexec"
	"github.com/pexec-dev/pexec/pexectest"
	"golang.org/x/sys/unix"
)

// Interop (issue #11): Handles for children that other code starts
// (FromProcess), a pexec Cmd around an *exec.Cmd another constructor built
// (Wrap), and re-adoption by stored identity (OpenID, Identity).

func init() {
	testhelper.Register("nb-sender", nbSenderHelper)
}

// libraryChild starts `sh -c 'read x; exit code'` the way a library that
// takes an *exec.Cmd would: through os/exec. It exits once release is
// called.
func libraryChild(t *testing.T, code int) (c *exec.Cmd, release func()) {
	t.Helper()
	c = exec.Command("sh", "-c", "read x; exit "+strconv.Itoa(code))
	stdin, err := c.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		stdin.Close()
		if c.ProcessState == nil {
			c.Process.Kill()
			c.Wait()
		}
	})
	return c, func() { stdin.Close() }
}

// TestFromProcess adopts os/exec children: the Handle reports the status
// the library's Wait returns, in both orders, never reaps (the library's
// Wait result is unchanged), refuses to signal once the child is gone, and
// survives the library's Release.
func TestFromProcess(t *testing.T) {
	skipNoPidfd(t)
	keepsExit := pidfdInfoExit(t)
	t.Run("Handle waits first", func(t *testing.T) {
		ctx := waitTestContext(t)
		lib, release := libraryChild(t, 7)
		h, err := pexec.FromProcess(lib.Process)
		if err != nil {
			t.Fatal(err)
		}
		defer h.Close()
		if !h.Alive() || h.Mode() != pexec.ModePidFD {
			t.Fatalf("adopted running child: Alive %v, Mode %v", h.Alive(), h.Mode())
		}
		type result struct {
			st  *pexec.Status
			err error
		}
		got := make(chan result, 1)
		go func() { st, err := h.WaitContext(ctx); got <- result{st, err} }()
		if err := untilBlocked(ctx, "pexec.(*Handle).awaitEvent", 1, func(map[string]int) bool { return true }, nil); err != nil {
			t.Fatal(err)
		}
		release()
		r := <-got
		if r.err != nil || r.st.ExitCode() != 7 {
			t.Fatalf("Handle.Wait = %v, %v; want exit status 7", r.st, r.err)
		}
		var ee *exec.ExitError
		if err := lib.Wait(); !errors.As(err, &ee) || ee.ExitCode() != 7 {
			t.Fatalf("the library's Wait = %v; want exit status 7 (the Handle must not reap)", err)
		}
		if err := h.Signal(syscall.SIGTERM); !errors.Is(err, os.ErrProcessDone) {
			t.Errorf("Signal after the library's reap = %v; want os.ErrProcessDone", err)
		}
		if st, err := h.Wait(); err != nil || st.ExitCode() != 7 {
			t.Errorf("Handle.Wait after the reap = %v, %v; want exit status 7", st, err)
		}
	})
	t.Run("library reaps first", func(t *testing.T) {
		lib, release := libraryChild(t, 8)
		h, err := pexec.FromProcess(lib.Process)
		if err != nil {
			t.Fatal(err)
		}
		defer h.Close()
		release()
		var ee *exec.ExitError
		if err := lib.Wait(); !errors.As(err, &ee) || ee.ExitCode() != 8 {
			t.Fatalf("the library's Wait = %v; want exit status 8", err)
		}
		if err := h.Kill(); !errors.Is(err, os.ErrProcessDone) {
			t.Errorf("Kill after the library's reap = %v; want os.ErrProcessDone", err)
		}
		if h.Alive() {
			t.Error("Alive() = true after the library's reap")
		}
		st, err := h.WaitContext(waitTestContext(t))
		switch {
		case keepsExit && (err != nil || st.ExitCode() != 8):
			t.Errorf("Handle.Wait after the library's reap = %v, %v; want exit status 8 from the exit record", st, err)
		case !keepsExit && !errors.Is(err, pexec.ErrStatusUnavailable):
			t.Errorf("Handle.Wait after the library's reap = %v, %v; want ErrStatusUnavailable (no PIDFD_INFO_EXIT here)", st, err)
		}
	})
	t.Run("after Release", func(t *testing.T) {
		lib, _ := libraryChild(t, 0)
		pid := lib.Process.Pid
		h, err := pexec.FromProcess(lib.Process)
		if err != nil {
			t.Fatal(err)
		}
		defer h.Close()
		if err := lib.Process.Release(); err != nil {
			t.Fatal(err)
		}
		if !h.Alive() {
			t.Fatal("Alive() = false after the library released its os.Process")
		}
		if err := h.Kill(); err != nil {
			t.Fatalf("Kill after Release: %v", err)
		}
		st, err := h.WaitContext(waitTestContext(t))
		if err != nil || st.Signal() != syscall.SIGKILL {
			t.Fatalf("Handle.Wait after Release = %v, %v; want signal: killed", st, err)
		}
		// Nobody reaps a released child: the test does, by its PID, which
		// stays its own until then.
		var info unix.Siginfo
		if err := unix.Waitid(unix.P_PID, pid, &info, unix.WEXITED, nil); err != nil {
			t.Fatal(err)
		}
		lib.ProcessState = &os.ProcessState{} // the cleanup must not wait again
	})
}

// TestFromProcessErrors: bad input and the states that cannot be adopted.
func TestFromProcessErrors(t *testing.T) {
	skipNoPidfd(t)
	waited, _ := libraryChild(t, 0)
	released, _ := libraryChild(t, 0)
	releasedPid := released.Process.Pid
	tests := []struct {
		name  string
		proc  func() *os.Process
		setup func(t *testing.T, p *os.Process)
		want  error
	}{
		{"nil", func() *os.Process { return nil }, nil, os.ErrInvalid},
		{"reaped", func() *os.Process { return waited.Process }, func(_ *testing.T, p *os.Process) {
			p.Kill()
			waited.Wait()
		}, os.ErrProcessDone},
		{"released", func() *os.Process { return released.Process }, func(_ *testing.T, p *os.Process) {
			p.Kill()
			var info unix.Siginfo
			unix.Waitid(unix.P_PID, p.Pid, &info, unix.WEXITED|unix.WNOWAIT, nil)
			p.Release()
		}, os.ErrInvalid},
		// On the subtest's t: the rows after it run with pidfds again.
		{"PID mode", func() *os.Process { return waited.Process }, func(t *testing.T, _ *os.Process) {
			t.Cleanup(pexec.SetForcePIDMode(true))
		}, errors.ErrUnsupported},
		// Go uses pidfds here, but this os.Process was not made with one.
		{"no pidfd, live PID", func() *os.Process { return &os.Process{Pid: os.Getpid()} }, nil, errors.ErrUnsupported},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := tt.proc()
			if tt.setup != nil {
				tt.setup(t, p)
			}
			h, err := pexec.FromProcess(p)
			if !errors.Is(err, tt.want) || h != nil {
				t.Errorf("FromProcess = %v, %v; want no Handle and an error wrapping %v", h, err, tt.want)
			}
			if err != nil && strings.Contains(err.Error(), "unusable") {
				t.Errorf("FromProcess = %v: Go found pidfds usable here (Supported)", err)
			}
		})
	}
	// The released child is a zombie nobody else will reap.
	var info unix.Siginfo
	unix.Waitid(unix.P_PID, releasedPid, &info, unix.WEXITED, nil)
	released.ProcessState = &os.ProcessState{}
}

// TestFromProcessInvalid: an os.Process whose Pid names no process (the
// zero os.Process, a released one, any Pid of 0 or less or above a pid_t)
// is invalid input, with pidfds or without: FromProcess returns an error
// wrapping os.ErrInvalid and never a Handle.
func TestFromProcessInvalid(t *testing.T) {
	released := exec.Command("true")
	if err := released.Start(); err != nil {
		t.Fatal(err)
	}
	pid := released.Process.Pid
	released.Process.Release()
	t.Cleanup(func() {
		var info unix.Siginfo // reap the released child: nobody else will
		unix.Waitid(unix.P_PID, pid, &info, unix.WEXITED, nil)
	})
	aboveInt32 := int64(math.MaxInt32) + 1
	procs := []struct {
		name string
		p    *os.Process
	}{
		{"zero os.Process", &os.Process{}},
		{"released", released.Process},
		{"Pid -1", &os.Process{Pid: -1}},
		{"Pid -5", &os.Process{Pid: -5}},
		{"Pid MinInt32", &os.Process{Pid: math.MinInt32}},
		{"Pid above a pid_t", &os.Process{Pid: int(aboveInt32)}}, // wraps to MinInt32 on 32-bit systems
	}
	for _, pidMode := range []bool{false, true} {
		for _, tt := range procs {
			t.Run(fmt.Sprintf("%s/PID mode %v", tt.name, pidMode), func(t *testing.T) {
				if pidMode {
					t.Cleanup(pexec.SetForcePIDMode(true))
				}
				h, err := pexec.FromProcess(tt.p)
				if !errors.Is(err, os.ErrInvalid) || h != nil {
					t.Errorf("FromProcess(Pid %d) = %v, %v; want no Handle and an error wrapping os.ErrInvalid", tt.p.Pid, h, err)
				}
			})
		}
	}
}

// TestOpenIDZero: no process has the ID 0, so OpenID(pid, 0) is invalid
// input, whatever pid names and whatever the kernel offers.
func TestOpenIDZero(t *testing.T) {
	c := pexectest.Command("sleep")
	pexectest.Start(t, c, noTree)
	for _, pid := range []int{c.Process.Pid, os.Getpid(), 1, 0, -1} {
		t.Run(strconv.Itoa(pid), func(t *testing.T) {
			h, err := pexec.OpenID(pid, 0)
			if !errors.Is(err, os.ErrInvalid) || h != nil {
				t.Errorf("OpenID(%d, 0) = %v, %v; want no Handle and an error wrapping os.ErrInvalid", pid, h, err)
			}
			if h != nil {
				h.Close()
			}
		})
	}
}

// TestFromProcessHoldsNoThread: 500 adopted os/exec children waited for
// through their Handles hold no thread each.
func TestFromProcessHoldsNoThread(t *testing.T) {
	skipNoPidfd(t)
	t.Parallel()
	const n = 500
	var rep threadsReport
	testhelper.RunReport(waitTestContext(t), t, nil, &rep, "wait-threads", "FromProcess", strconv.Itoa(n))
	if rep.Err != "" {
		t.Fatalf("helper: %s", rep.Err)
	}
	t.Logf("%d OS threads with %d adopted children waited for (GOMAXPROCS %d)", rep.Threads, n, rep.GOMAXPROCS)
	if limit := rep.GOMAXPROCS + 16; rep.Threads > limit {
		t.Errorf("%d OS threads while %d adopted children were waited for; want at most GOMAXPROCS+16 = %d", rep.Threads, n, limit)
	}
	if rep.Killed != n {
		t.Errorf("%d of %d Handle waiters saw their child die of SIGKILL", rep.Killed, n)
	}
}

// TestWrap drives *exec.Cmd values that other constructors built.
func TestWrap(t *testing.T) {
	t.Run("fields", func(t *testing.T) {
		inner := exec.Command("sh", "-c", `echo "$PEXEC_WRAP $(pwd)"; exit 5`)
		inner.Env = []string{"PEXEC_WRAP=kept"}
		inner.Dir = "/"
		c := pexec.Wrap(inner)
		out, err := c.Output()
		var ee *exec.ExitError
		if !errors.As(err, &ee) || ee.ExitCode() != 5 {
			t.Fatalf("Output = %v; want exit status 5", err)
		}
		if got, want := string(out), "kept /\n"; got != want {
			t.Errorf("Output = %q; want %q", got, want)
		}
		if c.Handle() == nil || c.ProcessState == nil || c.ProcessState.ExitCode() != 5 {
			t.Errorf("Handle %v, ProcessState %v", c.Handle(), c.ProcessState)
		}
	})
	t.Run("CommandContext keeps its context", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		c := pexec.Wrap(exec.CommandContext(ctx, "sleep", "3600"))
		if err := c.Start(); err != nil {
			t.Fatal(err)
		}
		cancel()
		err := c.Wait()
		if !errors.Is(err, context.Canceled) && (c.ProcessState == nil || c.ProcessState.Sys().(syscall.WaitStatus).Signal() != syscall.SIGKILL) {
			t.Fatalf("Wait after the context's cancellation = %v (%v); want the child killed", err, c.ProcessState)
		}
	})
	t.Run("already started", func(t *testing.T) {
		inner := exec.Command("sh", "-c", "exit 4")
		if err := inner.Start(); err != nil {
			t.Fatal(err)
		}
		c := pexec.Wrap(inner)
		if err := c.Start(); err == nil {
			t.Error("Start of a wrapped, started command succeeded")
		}
		st, herr := c.Handle().Wait()
		var ee *exec.ExitError
		if err := c.Wait(); !errors.As(err, &ee) || ee.ExitCode() != 4 {
			t.Fatalf("Wait = %v; want exit status 4", err)
		}
		if herr != nil || st.ExitCode() != 4 {
			t.Errorf("Handle.Wait = %v, %v; want exit status 4", st, herr)
		}
	})
	t.Run("nil", func(t *testing.T) {
		if err := pexec.Wrap(nil).Run(); err == nil {
			t.Error("Wrap(nil).Run() = nil")
		}
	})
}

// TestOpenID re-adopts processes by stored identity.
func TestOpenID(t *testing.T) {
	skipNoPidfd(t)
	c := pexectest.Command("sleep")
	pexectest.Start(t, c, noTree)
	id, err := c.Handle().Identity()
	if !kernel().Pidfs {
		// No IDs before pidfs (6.9): nothing to store, and OpenID cannot
		// tell the process from another with its PID, so it never gives a
		// Handle.
		h, oerr := pexec.OpenID(c.Process.Pid, 1)
		got := []string{errIs(err), errIs(oerr), fmt.Sprint(h != nil)}
		if diff := cmp.Diff([]string{"ErrUnsupported", "ErrUnsupported", "false"}, got); diff != "" {
			t.Errorf("without pidfs: Identity, OpenID, a Handle from OpenID (-want +got):\n%s", diff)
		}
		return
	}
	if err != nil {
		t.Fatal(err)
	}
	// Through a state file: JSON.
	b, err := json.Marshal(map[string]pexec.Identity{"worker": id})
	if err != nil {
		t.Fatal(err)
	}
	var back map[string]pexec.Identity
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(id, back["worker"]); diff != "" {
		t.Fatalf("Identity through JSON %s (-want +got):\n%s", b, diff)
	}
	h, err := back["worker"].Open()
	if err != nil {
		t.Fatalf("Identity.Open: %v", err)
	}
	defer h.Close()
	if same, err := h.SameProcess(c.Handle()); !same || err != nil {
		t.Errorf("re-adopted Handle: SameProcess = %v, %v", same, err)
	}
	if _, err := pexec.OpenID(id.Pid, id.ID+1); !errors.Is(err, os.ErrProcessDone) {
		t.Errorf("OpenID with another process's ID = %v; want os.ErrProcessDone", err)
	}
	for _, bad := range []string{"", "1", "1:", ":1", "x:1", "1:y", "-1:5", "1:0", "1:2:3"} {
		var i pexec.Identity
		if err := i.UnmarshalText([]byte(bad)); !errors.Is(err, os.ErrInvalid) {
			t.Errorf("UnmarshalText(%q) = %v; want os.ErrInvalid", bad, err)
		}
	}
}

// TestFromFileNonblockAcrossProcesses: a sender process blocked in an
// os/exec Process.Wait hands its child's pidfd to this process, which calls
// FromFile on it in a loop; the sender's Wait must return the real status,
// never EAGAIN (the description and its O_NONBLOCK flag are shared across
// the processes).
func TestFromFileNonblockAcrossProcesses(t *testing.T) {
	skipNoPidfd(t)
	ctx := waitTestContext(t)
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	mine := os.NewFile(uintptr(fds[0]), "receiver")
	theirs := os.NewFile(uintptr(fds[1]), "sender")
	defer mine.Close()
	conn, err := net.FileConn(mine)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	uc := conn.(*net.UnixConn)

	sender := pexectest.CommandContext(ctx, "nb-sender")
	sender.ExtraFiles = []*os.File{theirs}
	out, err := sender.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	pexectest.Start(t, sender, noTree)
	theirs.Close()

	// Receive the child's pidfd.
	oob := make([]byte, unix.CmsgSpace(4))
	_, oobn, _, _, err := uc.ReadMsgUnix(make([]byte, 1), oob)
	if err != nil {
		t.Fatal(err)
	}
	msgs, err := unix.ParseSocketControlMessage(oob[:oobn])
	if err != nil || len(msgs) != 1 {
		t.Fatalf("control messages: %v, %v", msgs, err)
	}
	rights, err := unix.ParseUnixRights(&msgs[0])
	if err != nil || len(rights) != 1 {
		t.Fatalf("rights: %v, %v", rights, err)
	}
	pidfd := os.NewFile(uintptr(rights[0]), "pidfd")
	defer pidfd.Close()
	// Loop FromFile/Close until the sender says its Wait has begun, and a
	// while beyond, then tell it to let the child exit.
	lines := bufio.NewScanner(out)
	waiting := make(chan struct{})
	go func() {
		if lines.Scan() && lines.Text() == "waiting" {
			close(waiting)
		}
	}()
	// Watch the flags of the description shared with the sender.
	stopWatch := make(chan struct{})
	sawNonblock := make(chan bool, 1)
	go func() {
		saw := false
		for !saw {
			select {
			case <-stopWatch:
				sawNonblock <- false
				return
			default:
			}
			flags, err := unix.FcntlInt(pidfd.Fd(), unix.F_GETFL, 0)
			saw = err == nil && flags&unix.O_NONBLOCK != 0
		}
		sawNonblock <- true
	}()
	n := 0
	deadline := time.Time{}
	for {
		h, err := pexec.FromFile(pidfd)
		if err != nil {
			t.Fatalf("FromFile: %v", err)
		}
		h.Close()
		n++
		select {
		case <-waiting:
			waiting = nil
			deadline = time.Now().Add(50 * time.Millisecond)
		case <-ctx.Done():
			t.Fatal("the sender never started waiting")
		default:
		}
		if waiting == nil && time.Now().After(deadline) {
			break
		}
	}
	close(stopWatch)
	if <-sawNonblock {
		t.Error("the pidfd's description, shared with the sender, was O_NONBLOCK while FromFile ran")
	}
	if _, err := uc.Write([]byte{'x'}); err != nil {
		t.Fatal(err)
	}
	if !lines.Scan() {
		t.Fatalf("the sender reported nothing: %v", lines.Err())
	}
	if got, want := lines.Text(), "exit status 9"; got != want {
		t.Errorf("the sender's os/exec Process.Wait, beside %d FromFile/Close here = %q; want %q", n, got, want)
	}
	// Its exit, before the test's end cancels ctx (and with it the
	// sender, seen under QEMU on Linux 6.1, where it had not yet exited).
	if err := sender.Wait(); err != nil {
		t.Errorf("the sender: %v", err)
	}
}

// nbSenderHelper starts an os/exec child with a pidfd, sends the pidfd over
// descriptor 3, then blocks in the child's Process.Wait, saying "waiting"
// first; the child exits once a byte arrives on descriptor 3. It prints
// Process.Wait's result.
func nbSenderHelper([]string) int {
	sock := os.NewFile(3, "sock")
	pidfd := -1
	c := exec.Command("sh", "-c", "read x; exit 9")
	c.SysProcAttr = &syscall.SysProcAttr{PidFD: &pidfd}
	stdin, err := c.StdinPipe()
	if err != nil {
		fmt.Println(err)
		return 1
	}
	if err := c.Start(); err != nil {
		fmt.Println(err)
		return 1
	}
	if err := unix.Sendmsg(int(sock.Fd()), []byte{'p'}, unix.UnixRights(pidfd), nil, 0); err != nil {
		fmt.Println(err)
		return 1
	}
	go func() {
		io.ReadFull(sock, make([]byte, 1))
		stdin.Close()
	}()
	runtime.Gosched()
	fmt.Println("waiting")
	ps, err := c.Process.Wait()
	if err != nil {
		fmt.Println(err)
		return 0
	}
	fmt.Println(ps)
	return 0
}

// TestInteropPattern builds and runs testdata/interop, the pattern
// MIGRATION.md documents for libraries that take an *exec.Cmd: a
// creack/pty-shaped function starts an os/exec command, pexec adopts it.
func TestInteropPattern(t *testing.T) {
	skipNoPidfd(t)
	if testing.Short() {
		t.Skip("builds a program with the go command")
	}
	goTool, err := exec.LookPath("go")
	if err != nil {
		t.Skipf("no go command: %v", err)
	}
	out, err := pexec.CommandContext(waitTestContext(t), goTool, "run", "./testdata/interop").CombinedOutput()
	if err != nil {
		t.Fatalf("go run ./testdata/interop: %v\n%s", err, out)
	}
	want := `child says: ready
Handle.Wait: signal: terminated <nil>
library's Wait: signal: terminated
Signal after the reap: os: process already finished
Wrap: "from-constructor\n" exit status 3, Handle mode pidfd
`
	if diff := cmp.Diff(want, string(out)); diff != "" {
		t.Errorf("output (-want +got):\n%s", diff)
	}
}
