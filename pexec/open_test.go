//go:build linux

package pexec_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"golang.org/x/sys/unix"

	"github.com/pexec-dev/pexec/internal/testhelper"
	"github.com/pexec-dev/pexec/pexec"
	"github.com/pexec-dev/pexec/pexectest"
)

// extraTimeout bounds every blocking step of the tests of Open, Parent,
// ID, Info, handle passing, SignalGroup, GetFD and PeerHandle.
const extraTimeout = 30 * time.Second

func init() {
	// spawn [-setpgid] name args...: starts helper name as its own child
	// (in a new process group with -setpgid) sharing its stdout, prints
	// "spawned PID" and sleeps without ever reaping it.
	testhelper.Register("spawn", func(args []string) int {
		setpgid := len(args) > 0 && args[0] == "-setpgid"
		if setpgid {
			args = args[1:]
		}
		h := pexectest.Command(args[0], args[1:]...)
		c := exec.Command(h.Path, h.Args[1:]...)
		c.Env, c.Stdin, c.Stdout, c.Stderr = h.Env, os.Stdin, os.Stdout, os.Stderr
		c.SysProcAttr = &syscall.SysProcAttr{Setpgid: setpgid}
		if err := c.Start(); err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		fmt.Println("spawned", c.Process.Pid)
		time.Sleep(time.Hour)
		return 0
	})
	// reaper: starts "echo 7" as its child with our stdin, prints "child
	// PID", reaps it when it exits (at EOF on stdin), prints "reaped CODE"
	// and sleeps.
	testhelper.Register("reaper", func(args []string) int {
		h := pexectest.Command("echo", "7")
		c := exec.Command(h.Path, h.Args[1:]...)
		c.Env, c.Stdin = h.Env, os.Stdin
		if err := c.Start(); err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		fmt.Println("child", c.Process.Pid)
		c.Wait()
		fmt.Println("reaped", c.ProcessState.ExitCode())
		time.Sleep(time.Hour)
		return 0
	})
}

// lined is a started helper whose standard output the test reads line by
// line, each read bounded by a deadline.
type lined struct {
	*pexec.Cmd
	t   *testing.T
	out *bufio.Reader
}

// startLined starts c with its standard output on a pipe, bound to the test
// (pexectest.Start): the test's clean-up stops it if it still runs and
// reaps it, and fails the test if it failed by itself unseen (a child that
// the test ends, it waits for).
func startLined(t *testing.T, c *pexec.Cmd) *lined {
	t.Helper()
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { w.Close() }) // if Start fails
	c.Stdout = w
	// Standard error goes to a file, not to the test's own (descendants
	// that outlive the helper must not hold go test's output open), and is
	// shown if the test fails, the clean-up of Start included (registered
	// after this one, it runs before).
	if c.Stderr == nil {
		stderr, err := os.CreateTemp(t.TempDir(), "stderr")
		if err != nil {
			t.Fatal(err)
		}
		c.Stderr = stderr
		defer stderr.Close()
		t.Cleanup(func() {
			if b, _ := os.ReadFile(stderr.Name()); t.Failed() && len(b) > 0 {
				t.Logf("standard error of %v:\n%s", c.Args, b)
			}
		})
	}
	pexectest.Start(t, c, noTree)
	w.Close()
	t.Cleanup(func() { r.Close() })
	if err := r.SetReadDeadline(time.Now().Add(extraTimeout)); err != nil {
		t.Fatal(err)
	}
	return &lined{Cmd: c, t: t, out: bufio.NewReader(r)}
}

// line reads the next line of output, without its newline.
func (p *lined) line() string {
	p.t.Helper()
	s, err := p.out.ReadString('\n')
	if err != nil {
		p.t.Fatalf("reading the output of %v: %v (read %q)", p.Args, err, s)
	}
	return strings.TrimSuffix(s, "\n")
}

// field reads the next line, checks it is "key VALUE" and returns VALUE.
func (p *lined) field(key string) string {
	p.t.Helper()
	s := p.line()
	v, ok := strings.CutPrefix(s, key+" ")
	if !ok {
		p.t.Fatalf("%v printed %q, want %q...", p.Args, s, key+" ")
	}
	return v
}

// until reads lines until one starts with "key " and returns the rest of
// it, skipping lines printed by other processes sharing the output.
func (p *lined) until(key string) string {
	p.t.Helper()
	for {
		if v, ok := strings.CutPrefix(p.line(), key+" "); ok {
			return v
		}
	}
}

// pidFieldAnywhere is like until, for a "key PID" line.
func (p *lined) pidFieldAnywhere(key string) int {
	p.t.Helper()
	v := p.until(key)
	n, err := strconv.Atoi(v)
	if err != nil {
		p.t.Fatalf("%v printed %q for %s: %v", p.Args, v, key, err)
	}
	return n
}

// pidField reads a "key PID" line.
func (p *lined) pidField(key string) int {
	p.t.Helper()
	v := p.field(key)
	n, err := strconv.Atoi(v)
	if err != nil {
		p.t.Fatalf("%v printed %q for %s: %v", p.Args, v, key, err)
	}
	return n
}

// endedByTest says that the test ends p itself (SIGKILL to its group, or
// an exit with a failure it makes a zombie of): once p has ended, the
// clean-up reaps it rather than call that end unexpected.
func (p *lined) endedByTest() {
	p.t.Cleanup(func() { // before the clean-up of pexectest.Start
		select {
		case <-p.Handle().Done():
			p.wait()
		default:
		}
	})
}

// wait calls Cmd.Wait with a deadline.
func (p *lined) wait() error {
	p.t.Helper()
	return waitCmd(p.t, p.Cmd)
}

// waitCmd calls c.Wait, failing the test if it does not return in time.
func waitCmd(t *testing.T, c *pexec.Cmd) error {
	t.Helper()
	ch := make(chan error, 1)
	go func() { ch <- c.Wait() }()
	select {
	case err := <-ch:
		return err
	case <-time.After(extraTimeout):
		c.Process.Kill()
		t.Fatalf("%v: Wait did not return within %v", c.Args, extraTimeout)
		return nil
	}
}

// startSleep starts the sleep helper and returns it.
func startSleep(t *testing.T) *lined {
	t.Helper()
	return startLined(t, pexectest.Command("sleep"))
}

// exitedChild starts a helper that exits with code 3 and returns it once it
// has exited, unreaped (a zombie).
func exitedChild(t *testing.T) *pexec.Cmd {
	t.Helper()
	c := pexectest.Command("exit", "3")
	if err := c.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if c.ProcessState == nil {
			waitCmd(t, c)
		}
	})
	awaitDone(t, c.Handle())
	return c
}

// reapedPid returns the PID of a child that has exited and been reaped.
func reapedPid(t *testing.T) int {
	t.Helper()
	c := exitedChild(t)
	waitCmd(t, c)
	return c.Process.Pid
}

// grandchild starts a process that is not the test's child (the sleep
// helper, started by the spawn helper) and returns its PID and the spawn
// helper.
func grandchild(t *testing.T, spawnArgs ...string) (int, *lined) {
	t.Helper()
	mid := startLined(t, pexectest.Command("spawn", append(spawnArgs, "sleep")...))
	pid := mid.pidField("spawned")
	h := mustOpen(t, pid)
	t.Cleanup(func() { h.Kill() })
	return pid, mid
}

// helperAs returns a Cmd that runs helper name as user uid and group gid. It
// runs a copy of the test binary in a directory every user can reach, since
// go test builds it in a private one.
func helperAs(t *testing.T, uid, gid uint32, name string, args ...string) *pexec.Cmd {
	t.Helper()
	testhelper.Uses(name) // it runs as another user, who cannot mark it used
	h := pexectest.Command(name, args...)
	if os.Getuid() != 0 {
		t.Skip("running a helper as another user needs root")
	}
	exe, err := os.Executable()
	if err != nil {
		t.Skip(err)
	}
	dir, err := os.MkdirTemp("", "pexec-cred-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	bin := filepath.Join(dir, "pexec.test")
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := copyFile(bin, exe); err != nil {
		t.Fatal(err)
	}
	c := pexec.Command(bin, h.Args[1:]...)
	c.Env = h.Env
	c.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uid, Gid: gid}}
	return c
}

func copyFile(dst, src string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o755)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}

// awaitDone waits, with a deadline, for h's process to exit.
func awaitDone(t *testing.T, h *pexec.Handle) {
	t.Helper()
	select {
	case <-h.Done():
	case <-time.After(extraTimeout):
		t.Fatalf("process %d did not exit within %v", h.Pid(), extraTimeout)
	}
}

// mustOpen opens pid and closes the Handle at the end of the test.
func mustOpen(t *testing.T, pid int) *pexec.Handle {
	t.Helper()
	h, err := pexec.Open(pid)
	if err != nil {
		t.Fatalf("Open(%d): %v", pid, err)
	}
	t.Cleanup(func() { h.Close() })
	return h
}

// extraHelpers lists the helpers registered by the tests of Open, Parent,
// handle passing, GetFD and PeerHandle.
var extraHelpers = []string{"spawn", "reaper", "parent", "watch-parent", "parent-race", "recv-handle", "getfd-parent", "dial"}

// skipNoPidfd skips tests of pidfd-only capabilities on systems without
// pidfds (pexec.Supported() false: an old kernel, a seccomp policy, QEMU
// user mode). TestProofTable is the one that fails there instead
// (testhelper.RequirePidfd), so that a CI run cannot pass by skipping them
// all unnoticed.
func skipNoPidfd(t *testing.T) {
	t.Helper()
	if !pexec.Supported() {
		skipUnsupported(t, fmt.Errorf("needs pidfds, and pexec.Supported() is false (PID mode): %w", errors.ErrUnsupported))
	}
}

// skipUnsupported skips the test if err says the kernel lacks a capability.
// The helpers count as used then, so that an unfiltered run on such a
// kernel does not report them as never used.
func skipUnsupported(t *testing.T, err error) {
	t.Helper()
	if errors.Is(err, errors.ErrUnsupported) {
		testhelper.Uses(extraHelpers...)
		t.Skipf("not supported here: %v", err)
	}
}

// errIs describes err for comparisons: which of the sentinels it wraps.
func errIs(err error) string {
	if err == nil {
		return "<nil>"
	}
	for _, s := range []struct {
		name string
		err  error
	}{
		{"ErrProcessDone", os.ErrProcessDone},
		{"ErrClosed", os.ErrClosed},
		{"ErrInvalid", os.ErrInvalid},
		{"ErrUnsupported", errors.ErrUnsupported},
		{"ErrPermission", os.ErrPermission},
		{"ErrNotExist", os.ErrNotExist},
		{"ErrStatusUnavailable", pexec.ErrStatusUnavailable},
		{"DeadlineExceeded", context.DeadlineExceeded},
		{"EBADF", syscall.EBADF},
	} {
		if errors.Is(err, s.err) {
			return s.name
		}
	}
	return "other: " + err.Error()
}

// otherThread returns the ID of a thread of this process other than its
// main thread, which lives until the end of the test.
func otherThread(t *testing.T) int {
	t.Helper()
	tid := make(chan int)
	stop := make(chan struct{})
	t.Cleanup(func() { close(stop) })
	lock := func() {
		runtime.LockOSThread() // never unlocked: the thread exits with the goroutine
		tid <- unix.Gettid()
		<-stop
	}
	go lock()
	n := <-tid
	if n == os.Getpid() {
		// That goroutine now holds the main thread, so this one cannot
		// get it.
		go lock()
		n = <-tid
	}
	return n
}

func TestOpen(t *testing.T) {
	skipNoPidfd(t)
	pidMax := func(t *testing.T) int {
		b, err := os.ReadFile("/proc/sys/kernel/pid_max")
		if err != nil {
			t.Skip(err)
		}
		n, err := strconv.Atoi(strings.TrimSpace(string(b)))
		if err != nil {
			t.Fatal(err)
		}
		return n
	}
	type observed struct {
		Err             string
		Pid             int
		Mode            string
		Alive           bool
		Signal0         string
		SameAsCmdHandle bool
		SameErr         string // SameProcess's error, for a child
	}
	tests := []struct {
		name string
		// pid returns the PID to open and, for a child, its Cmd.
		pid     func(t *testing.T) (int, *pexec.Cmd)
		pidMode bool
		want    func(pid int) observed
		wantMsg string // in the error message
	}{
		{
			name: "child",
			pid:  func(t *testing.T) (int, *pexec.Cmd) { c := startSleep(t); return c.Process.Pid, c.Cmd },
			want: func(pid int) observed {
				return observed{Err: "<nil>", Pid: pid, Mode: "pidfd", Alive: true, Signal0: "<nil>", SameAsCmdHandle: true, SameErr: "<nil>"}
			},
		},
		{
			name: "self",
			pid:  func(t *testing.T) (int, *pexec.Cmd) { return os.Getpid(), nil },
			want: func(pid int) observed {
				return observed{Err: "<nil>", Pid: pid, Mode: "pidfd", Alive: true, Signal0: "<nil>"}
			},
		},
		{
			name: "non-child",
			pid:  func(t *testing.T) (int, *pexec.Cmd) { pid, _ := grandchild(t); return pid, nil },
			want: func(pid int) observed {
				return observed{Err: "<nil>", Pid: pid, Mode: "pidfd", Alive: true, Signal0: "<nil>"}
			},
		},
		{
			name: "zombie",
			pid:  func(t *testing.T) (int, *pexec.Cmd) { c := exitedChild(t); return c.Process.Pid, c },
			want: func(pid int) observed {
				if !kernel().Pidfs {
					// Both have exited: only pidfs IDs (6.9) could tell.
					return observed{Err: "<nil>", Pid: pid, Mode: "pidfd", Signal0: "ErrProcessDone", SameErr: "ErrUnsupported"}
				}
				return observed{Err: "<nil>", Pid: pid, Mode: "pidfd", Signal0: "ErrProcessDone", SameAsCmdHandle: true, SameErr: "<nil>"}
			},
		},
		{
			name: "reaped",
			pid:  func(t *testing.T) (int, *pexec.Cmd) { return reapedPid(t), nil },
			want: func(int) observed { return observed{Err: "ErrProcessDone"} },
		},
		{
			name: "zero",
			pid:  func(t *testing.T) (int, *pexec.Cmd) { return 0, nil },
			want: func(int) observed { return observed{Err: "ErrInvalid"} }, wantMsg: "positive",
		},
		{
			name: "negative",
			pid:  func(t *testing.T) (int, *pexec.Cmd) { return -1, nil },
			want: func(int) observed { return observed{Err: "ErrInvalid"} }, wantMsg: "positive",
		},
		{
			name: "above pid_max",
			pid:  func(t *testing.T) (int, *pexec.Cmd) { return pidMax(t) + 1, nil },
			want: func(int) observed { return observed{Err: "ErrInvalid"} }, wantMsg: "pid_max",
		},
		{
			name: "above int32",
			pid: func(t *testing.T) (int, *pexec.Cmd) {
				big := int64(math.MaxInt32) + 1
				if int64(int(big)) != big {
					t.Skip("int is 32 bits")
				}
				return int(big), nil
			},
			want: func(int) observed { return observed{Err: "ErrInvalid"} }, wantMsg: "largest",
		},
		{
			name: "thread",
			pid:  func(t *testing.T) (int, *pexec.Cmd) { return otherThread(t), nil },
			want: func(int) observed { return observed{Err: "ErrInvalid"} }, wantMsg: "thread",
		},
		{
			name:    "PID mode",
			pid:     func(t *testing.T) (int, *pexec.Cmd) { c := startSleep(t); return c.Process.Pid, nil },
			pidMode: true,
			want:    func(int) observed { return observed{Err: "ErrUnsupported"} },
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			pid, c := tt.pid(t)
			if tt.pidMode {
				defer pexec.SetForcePIDMode(true)()
			}
			h, err := pexec.Open(pid)
			got := observed{Err: errIs(err)}
			if err == nil {
				defer h.Close()
				got.Pid, got.Mode, got.Alive = h.Pid(), h.Mode().String(), h.Alive()
				got.Signal0 = errIs(h.Signal(syscall.Signal(0)))
				if c != nil {
					got.SameAsCmdHandle, err = h.SameProcess(c.Handle())
					got.SameErr = errIs(err)
				}
			} else if !strings.Contains(err.Error(), tt.wantMsg) {
				t.Errorf("Open(%d) error %q does not mention %q", pid, err, tt.wantMsg)
			}
			if diff := cmp.Diff(tt.want(pid), got); diff != "" {
				t.Errorf("Open(%d) (-want +got):\n%s", pid, diff)
			}
		})
	}
}

// TestOpenClosed checks that a closed Handle from Open refuses every
// operation with os.ErrClosed, and that a nil Handle returns os.ErrInvalid.
func TestOpenClosed(t *testing.T) {
	skipNoPidfd(t)
	closed := mustOpen(t, os.Getpid())
	if err := closed.Close(); err != nil {
		t.Fatal(err)
	}
	var nilHandle *pexec.Handle
	for _, tt := range []struct {
		name string
		h    *pexec.Handle
		want string
	}{
		{"closed", closed, "ErrClosed"},
		{"nil", nilHandle, "ErrInvalid"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			h := tt.h
			_, waitErr := h.Wait()
			_, idErr := h.ID()
			_, sameErr := h.SameProcess(h)
			_, infoErr := h.Info()
			_, fileErr := h.File()
			_, getfdErr := h.GetFD(0)
			got := map[string]string{
				"Signal":      errIs(h.Signal(syscall.Signal(0))),
				"Wait":        errIs(waitErr),
				"ID":          errIs(idErr),
				"SameProcess": errIs(sameErr),
				"Info":        errIs(infoErr),
				"File":        errIs(fileErr),
				"SignalGroup": errIs(h.SignalGroup(syscall.Signal(0))),
				"GetFD":       errIs(getfdErr),
			}
			want := map[string]string{}
			for k := range got {
				want[k] = tt.want
			}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("errors (-want +got):\n%s", diff)
			}
		})
	}
}

// TestOpenWait checks Handle.Wait on handles from Open: it reaps the
// caller's own child, reads the exit status of a non-child that its parent
// reaped from the pidfd (PIDFD_INFO_EXIT), and keeps waiting (until its
// context ends) for a non-child nobody has reaped yet.
func TestOpenWait(t *testing.T) {
	skipNoPidfd(t)
	type observed struct {
		Err      string
		Exited   bool
		ExitCode int
		Signal   syscall.Signal
		Pid      int
		HasState bool // Status.ProcessState != nil
	}
	tests := []struct {
		name string
		// run returns an open Handle and the observation wanted from its
		// Wait.
		run func(t *testing.T) (*pexec.Handle, observed)
		ctx time.Duration // WaitContext deadline; 0: extraTimeout
	}{
		{
			name: "own child is reaped",
			run: func(t *testing.T) (*pexec.Handle, observed) {
				exit3 := pexectest.Command("exit", "3")
				c := exec.Command(exit3.Path, exit3.Args[1:]...)
				c.Env = exit3.Env
				if err := c.Start(); err != nil {
					t.Fatal(err)
				}
				h := mustOpen(t, c.Process.Pid)
				// The Handle reaps the child: let os/exec forget it.
				t.Cleanup(func() { c.Process.Release() })
				return h, observed{Err: "<nil>", Exited: true, ExitCode: 3, Pid: c.Process.Pid}
			},
		},
		{
			name: "non-child reaped by its parent",
			run: func(t *testing.T) (*pexec.Handle, observed) {
				r, w, err := os.Pipe()
				if err != nil {
					t.Fatal(err)
				}
				defer r.Close()
				c := pexectest.Command("reaper")
				c.Stdin = r
				p := startLined(t, c)
				pid := p.pidField("child")
				h := mustOpen(t, pid)
				w.Close() // the child sees EOF and exits 7
				if got := p.field("reaped"); got != "7" {
					t.Fatalf("reaper reaped exit code %s, want 7", got)
				}
				if !kernel().InfoExit {
					// The status of a non-child is the kernel's to keep
					// (PIDFD_INFO_EXIT, 6.15): never a guess.
					return h, observed{Err: "ErrStatusUnavailable", ExitCode: -1}
				}
				return h, observed{Err: "<nil>", Exited: true, ExitCode: 7, Pid: pid}
			},
		},
		{
			name: "non-child not yet reaped",
			run: func(t *testing.T) (*pexec.Handle, observed) {
				pid, _ := grandchild(t)
				h := mustOpen(t, pid)
				if err := h.Kill(); err != nil {
					t.Fatal(err)
				}
				awaitDone(t, h)
				// The kernel records the status only when the parent
				// (the helper, which never reaps) reaps it: Wait waits
				// for that, so only the context ends it. A kernel that
				// keeps no statuses (before 6.15) will never have one:
				// Wait says so at once.
				if !kernel().InfoExit {
					return h, observed{Err: "ErrStatusUnavailable", ExitCode: -1}
				}
				return h, observed{Err: "DeadlineExceeded", ExitCode: -1}
			},
			ctx: 100 * time.Millisecond,
		},
		{
			name: "self, deadline",
			run: func(t *testing.T) (*pexec.Handle, observed) {
				return mustOpen(t, os.Getpid()), observed{Err: "DeadlineExceeded", ExitCode: -1}
			},
			ctx: 10 * time.Millisecond,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h, want := tt.run(t)
			d := tt.ctx
			if d == 0 {
				d = extraTimeout
			}
			ctx, cancel := context.WithTimeout(context.Background(), d)
			defer cancel()
			st, err := h.WaitContext(ctx)
			got := observed{Err: errIs(err), Exited: st.Exited(), ExitCode: st.ExitCode(), Signal: st.Signal(), Pid: max(st.Pid(), 0), HasState: st.ProcessState() != nil}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("WaitContext (-want +got):\n%s", diff)
			}
		})
	}
}

// pidfdInfoExit reports whether the kernel keeps exit statuses in pidfds
// (PIDFD_INFO_EXIT, Linux 6.15+), as kernel found by asking it directly.
// Without pidfds (pexec.Supported() false: PID mode) there is no pidfd to
// keep one, and it reports false.
func pidfdInfoExit(t *testing.T) bool {
	t.Helper()
	return pexec.Supported() && kernel().InfoExit
}

// TestParent checks Parent in this process and in helpers: the normal path,
// a worker noticing that its parent died, the parent dying while Parent
// runs, and PID mode.
func TestParent(t *testing.T) {
	skipNoPidfd(t)
	t.Run("self", func(t *testing.T) {
		h, err := pexec.Parent()
		if err != nil {
			t.Fatal(err)
		}
		defer h.Close()
		if diff := cmp.Diff([]any{os.Getppid(), true}, []any{h.Pid(), h.Alive()}); diff != "" {
			t.Errorf("Parent() pid, alive (-want +got):\n%s", diff)
		}
	})
	t.Run("helper", func(t *testing.T) {
		p := startLined(t, pexectest.Command("parent"))
		got := p.field("parent")
		want := strconv.Itoa(os.Getpid())
		if id, err := mustOpen(t, os.Getpid()).ID(); err == nil {
			want += " " + strconv.FormatUint(id, 10)
		} else {
			want += " " + errIs(err)
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("helper's Parent(): pid, ID (-want +got):\n%s", diff)
		}
	})
	t.Run("parent exits", func(t *testing.T) {
		testhelper.Nested("watch-parent")
		mid := startLined(t, pexectest.Command("spawn", "watch-parent"))
		if got, want := mid.until("ready"), strconv.Itoa(mid.Process.Pid); got != want {
			t.Fatalf("worker's Parent() is %s, want %s", got, want)
		}
		mid.Process.Kill()
		if got := mid.line(); got != "parent gone" {
			t.Errorf("worker printed %q, want %q", got, "parent gone")
		}
		mid.wait()
	})
	t.Run("parent exits during Parent", func(t *testing.T) {
		testhelper.Nested("parent-race")
		mid := startLined(t, pexectest.Command("spawn", "parent-race"))
		if diff := cmp.Diff("ErrProcessDone", mid.until("result")); diff != "" {
			t.Errorf("Parent() when the parent died meanwhile (-want +got):\n%s", diff)
		}
		if err := mid.wait(); err == nil || err.Error() != "signal: killed" {
			t.Errorf("parent's Wait: %v, want signal: killed", err)
		}
	})
	t.Run("PID mode", func(t *testing.T) {
		defer pexec.SetForcePIDMode(true)()
		_, err := pexec.Parent()
		if diff := cmp.Diff("ErrUnsupported", errIs(err)); diff != "" {
			t.Errorf("Parent() in PID mode (-want +got):\n%s", diff)
		}
	})
}

func init() {
	// parent: prints "parent PID ID" for the Handle Parent returns.
	testhelper.Register("parent", func(args []string) int {
		h, err := pexec.Parent()
		if err != nil {
			fmt.Println("error", err)
			return 1
		}
		id, err := h.ID()
		if err != nil {
			fmt.Println("parent", h.Pid(), errIs(err))
			return 0
		}
		fmt.Println("parent", h.Pid(), id)
		return 0
	})
	// watch-parent: prints "ready PPID", then "parent gone" once its
	// parent exits.
	testhelper.Register("watch-parent", func(args []string) int {
		h, err := pexec.Parent()
		if err != nil {
			fmt.Println("error", err)
			return 1
		}
		fmt.Println("ready", h.Pid())
		select {
		case <-h.Done():
			fmt.Println("parent gone")
		case <-time.After(extraTimeout):
			fmt.Println("timeout")
		}
		return 0
	})
	// parent-race: kills its parent while Parent runs (between opening the
	// parent and checking it) and prints "result" and the error's sentinel.
	testhelper.Register("parent-race", func(args []string) int {
		pexec.SetParentHook(func() {
			ppid := os.Getppid()
			syscall.Kill(ppid, syscall.SIGKILL)
			for deadline := time.Now().Add(extraTimeout); os.Getppid() == ppid && time.Now().Before(deadline); {
				time.Sleep(time.Millisecond)
			}
		})
		h, err := pexec.Parent()
		if err == nil {
			h.Close()
		}
		fmt.Println("result", errIs(err))
		return 0
	})
}
