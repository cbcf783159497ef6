//go:build unix

package pexec_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/pexec-dev/pexec/internal/testhelper"
	"github.com/pexec-dev/pexec/pexec"
	"github.com/pexec-dev/pexec/pexectest"
)

// The compatibility table: every scenario runs once through os/exec and once
// through pexec, and the observable outcomes must be identical.

// cmdAPI is the method set exec.Cmd and pexec.Cmd share.
type cmdAPI interface {
	Start() error
	Run() error
	Wait() error
	Output() ([]byte, error)
	CombinedOutput() ([]byte, error)
	StdinPipe() (io.WriteCloser, error)
	StdoutPipe() (io.ReadCloser, error)
	StderrPipe() (io.ReadCloser, error)
	String() string
	Environ() []string
}

// anyCmd is an exec.Cmd or a pexec.Cmd with pointers to its fields, which
// have the same names and types in both.
type anyCmd struct {
	cmdAPI
	Path         *string
	Args         *[]string
	Env          *[]string
	Dir          *string
	Stdin        *io.Reader
	Stdout       *io.Writer
	Stderr       *io.Writer
	Err          *error
	Cancel       *func() error
	WaitDelay    *time.Duration
	Process      **os.Process
	ProcessState **os.ProcessState
}

// wrapCmd fills an anyCmd from c by field name, so one function serves both
// packages (and fails loudly if a field is missing from either).
func wrapCmd(c cmdAPI) anyCmd {
	a := anyCmd{cmdAPI: c}
	src := reflect.ValueOf(c).Elem()
	dst := reflect.ValueOf(&a).Elem()
	for i := 1; i < dst.NumField(); i++ {
		name := dst.Type().Field(i).Name
		dst.Field(i).Set(src.FieldByName(name).Addr())
	}
	return a
}

type kit struct {
	pkg            string
	command        func(name string, arg ...string) anyCmd
	commandContext func(ctx context.Context, name string, arg ...string) anyCmd
}

var kits = []kit{
	{
		pkg:     "os/exec",
		command: func(n string, a ...string) anyCmd { return wrapCmd(exec.Command(n, a...)) },
		commandContext: func(ctx context.Context, n string, a ...string) anyCmd {
			return wrapCmd(exec.CommandContext(ctx, n, a...))
		},
	},
	{
		pkg:     "pexec",
		command: func(n string, a ...string) anyCmd { return wrapCmd(pexec.Command(n, a...)) },
		commandContext: func(ctx context.Context, n string, a ...string) anyCmd {
			return wrapCmd(pexec.CommandContext(ctx, n, a...))
		},
	},
}

// helper builds, through k, the command that runs a helper: that of
// pexectest.Command, the same for both packages.
func (k kit) helper(name string, args ...string) anyCmd {
	h := pexectest.Command(name, args...)
	c := k.command(h.Path, h.Args[1:]...)
	*c.Env, *c.Err = h.Env, h.Err
	return c
}

// helperCtx is helper with a context.
func (k kit) helperCtx(ctx context.Context, name string, args ...string) anyCmd {
	h := pexectest.Command(name, args...)
	c := k.commandContext(ctx, h.Path, h.Args[1:]...)
	*c.Env, *c.Err = h.Env, h.Err
	return c
}

// outcome is what a scenario observed; it must not differ between packages.
type outcome struct {
	Err        string
	ErrType    string
	ExitCode   int
	State      string
	Out        string
	Stderr     string
	NotFound   bool
	Dot        bool
	Canceled   bool
	Deadline   bool
	WaitDelay  bool
	ExitErr    bool
	ExecErrArg string
}

func observe(c anyCmd, err error, out []byte) outcome {
	o := outcome{ExitCode: -2, Out: string(out)}
	if err != nil {
		o.Err = err.Error()
		o.ErrType = fmt.Sprintf("%T", err)
		o.NotFound = errors.Is(err, exec.ErrNotFound)
		o.Dot = errors.Is(err, exec.ErrDot)
		o.Canceled = errors.Is(err, context.Canceled)
		o.Deadline = errors.Is(err, context.DeadlineExceeded)
		o.WaitDelay = errors.Is(err, exec.ErrWaitDelay)
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			o.ExitErr = true
			o.Stderr = string(ee.Stderr)
		}
		var xe *exec.Error
		if errors.As(err, &xe) {
			o.ExecErrArg = xe.Name
		}
	}
	if ps := *c.ProcessState; ps != nil {
		o.ExitCode = ps.ExitCode()
		o.State = ps.String()
	}
	return o
}

type scenario struct {
	name string
	run  func(t *testing.T, k kit) outcome
	want func(o outcome) bool // a sanity check that the scenario did what it says
}

func runWith(k kit, name string, args ...string) func(t *testing.T, _ kit) outcome {
	return func(t *testing.T, _ kit) outcome {
		c := k.helper(name, args...)
		return observe(c, c.Run(), nil)
	}
}

var compatScenarios = []scenario{
	{
		name: "exit 0",
		run:  func(t *testing.T, k kit) outcome { return runWith(k, "exit", "0")(t, k) },
		want: func(o outcome) bool { return o.Err == "" && o.ExitCode == 0 && o.State == "exit status 0" },
	},
	{
		name: "exit 3",
		run:  func(t *testing.T, k kit) outcome { return runWith(k, "exit", "3")(t, k) },
		want: func(o outcome) bool { return o.ExitErr && o.ExitCode == 3 && o.Err == "exit status 3" },
	},
	{
		name: "killed by signal",
		run:  func(t *testing.T, k kit) outcome { return runWith(k, "kill-self", "9")(t, k) },
		want: func(o outcome) bool { return o.ExitErr && o.ExitCode == -1 && o.Err == "signal: killed" },
	},
	{
		name: "command not found",
		run: func(t *testing.T, k kit) outcome {
			c := k.command("pexec-no-such-command-xyz", "a")
			if *c.Err == nil {
				t.Error("Command did not set Err")
			}
			return observe(c, c.Run(), []byte(c.String()))
		},
		want: func(o outcome) bool { return o.NotFound && o.ErrType == "*exec.Error" },
	},
	{
		name: "no such directory",
		run: func(t *testing.T, k kit) outcome {
			c := k.helper("exit", "0")
			*c.Dir = "/nonexistent-pexec-dir"
			err := c.Run()
			return observe(c, err, nil)
		},
		want: func(o outcome) bool { return strings.Contains(o.Err, "no such file or directory") },
	},
	{
		name: "empty struct",
		run: func(t *testing.T, k kit) outcome {
			var c anyCmd
			if k.pkg == "pexec" {
				c = wrapCmd(&pexec.Cmd{})
			} else {
				c = wrapCmd(&exec.Cmd{})
			}
			return observe(c, c.Run(), nil)
		},
		want: func(o outcome) bool { return o.Err == "exec: no command" },
	},
	{
		name: "struct literal",
		run: func(t *testing.T, k kit) outcome {
			h := pexectest.Command("stderr", "oops", "0")
			var c anyCmd
			if k.pkg == "pexec" {
				c = wrapCmd(&pexec.Cmd{Path: h.Path, Args: h.Args, Env: h.Env})
			} else {
				c = wrapCmd(&exec.Cmd{Path: h.Path, Args: h.Args, Env: h.Env})
			}
			out, err := c.Output()
			return observe(c, err, out)
		},
		want: func(o outcome) bool { return o.Err == "" && o.Out == "out" },
	},
	{
		name: "Output captures stderr",
		run: func(t *testing.T, k kit) outcome {
			c := k.helper("stderr", "boom", "2")
			out, err := c.Output()
			return observe(c, err, out)
		},
		want: func(o outcome) bool { return o.ExitCode == 2 && o.Stderr == "boom" && o.Out == "out" },
	},
	{
		name: "Output truncates long stderr",
		run: func(t *testing.T, k kit) outcome {
			long := strings.Repeat("0123456789", 10_000) // 100,000 bytes
			c := k.helper("stderr", long, "1")
			out, err := c.Output()
			return observe(c, err, out)
		},
		want: func(o outcome) bool {
			return o.ExitCode == 1 && strings.Contains(o.Stderr, "\n... omitting 34464 bytes ...\n")
		},
	},
	{
		name: "CombinedOutput",
		run: func(t *testing.T, k kit) outcome {
			c := k.helper("stderr", "boom", "0")
			out, err := c.CombinedOutput()
			return observe(c, err, out)
		},
		want: func(o outcome) bool { return o.Err == "" && o.Out == "outboom" },
	},
	{
		name: "Stdin from reader",
		run: func(t *testing.T, k kit) outcome {
			c := k.helper("echo", "4")
			*c.Stdin = strings.NewReader("hello")
			out, err := c.Output()
			return observe(c, err, out)
		},
		want: func(o outcome) bool { return o.Out == "hello" && o.ExitCode == 4 },
	},
	{
		name: "pipes",
		run: func(t *testing.T, k kit) outcome {
			c := k.helper("echo")
			w, err := c.StdinPipe()
			if err != nil {
				t.Fatal(err)
			}
			r, err := c.StdoutPipe()
			if err != nil {
				t.Fatal(err)
			}
			if _, err := c.StdoutPipe(); err != nil {
				t.Logf("second StdoutPipe: %v", err) // compared below through Err
			}
			if err := c.Start(); err != nil {
				t.Fatal(err)
			}
			_, perr := c.StderrPipe()
			io.WriteString(w, "piped")
			w.Close()
			out, _ := io.ReadAll(r)
			o := observe(c, c.Wait(), out)
			o.Err += " | " + perr.Error()
			return o
		},
		want: func(o outcome) bool { return o.Out == "piped" && strings.Contains(o.Err, "after process started") },
	},
	{
		name: "misuse errors",
		run: func(t *testing.T, k kit) outcome {
			c := k.helper("exit", "0")
			var msgs []string
			add := func(err error) { msgs = append(msgs, fmt.Sprint(err)) }
			add(c.Wait())
			*c.Stdout = io.Discard
			_, err := c.Output()
			add(err)
			*c.Stdout = nil
			add(c.Start())
			add(c.Start())
			add(c.Wait())
			add(c.Wait())
			o := observe(c, nil, nil)
			o.Err = strings.Join(msgs, "; ")
			return o
		},
		want: func(o outcome) bool {
			return o.Err == "exec: not started; exec: Stdout already set; <nil>; exec: already started; <nil>; exec: Wait was already called"
		},
	},
	{
		name: "context canceled before start",
		run: func(t *testing.T, k kit) outcome {
			ctx, cancel := context.WithCancel(context.Background())
			cancel()
			c := k.helperCtx(ctx, "exit", "0")
			return observe(c, c.Run(), nil)
		},
		want: func(o outcome) bool { return o.Canceled },
	},
	{
		name: "context timeout kills",
		run: func(t *testing.T, k kit) outcome {
			ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
			defer cancel()
			c := k.helperCtx(ctx, "sleep")
			return observe(c, c.Run(), nil)
		},
		want: func(o outcome) bool { return o.Err == "signal: killed" && o.ExitErr },
	},
	{
		name: "Cancel TERM then WaitDelay KILL",
		run: func(t *testing.T, k kit) outcome {
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			c := k.helperCtx(ctx, "ignore-term")
			r, err := c.StdoutPipe()
			if err != nil {
				t.Fatal(err)
			}
			*c.Cancel = func() error { return (*c.Process).Signal(syscall.SIGTERM) }
			*c.WaitDelay = 100 * time.Millisecond
			if err := c.Start(); err != nil {
				t.Fatal(err)
			}
			buf := make([]byte, 6)
			io.ReadFull(r, buf) // "ready\n": SIGTERM is ignored from now on
			cancel()
			return observe(c, c.Wait(), buf)
		},
		want: func(o outcome) bool { return o.Err == "signal: killed" && o.Out == "ready\n" },
	},
	{
		name: "Cancel error is reported",
		run: func(t *testing.T, k kit) outcome {
			ctx, cancel := context.WithCancel(context.Background())
			c := k.helperCtx(ctx, "exit", "0")
			*c.Cancel = func() error { return errors.New("refused") }
			if err := c.Start(); err != nil {
				t.Fatal(err)
			}
			cancel()
			// The child exits 0 by itself; the Cancel error must surface.
			return observe(c, c.Wait(), nil)
		},
		want: func(o outcome) bool {
			return o.ExitCode == 0 && (o.Err == "" || o.Err == "exec: canceling Cmd: refused")
		},
	},
	{
		name: "WaitDelay with I/O held by a grandchild",
		run: func(t *testing.T, k kit) outcome {
			c := k.helper("orphan-stdout")
			var sb strings.Builder
			*c.Stdout = &sb
			*c.WaitDelay = 100 * time.Millisecond
			err := c.Run()
			var gpid int
			fmt.Sscan(sb.String(), &gpid)
			if gpid > 0 {
				syscall.Kill(gpid, syscall.SIGKILL)
			}
			return observe(c, err, nil)
		},
		want: func(o outcome) bool { return o.WaitDelay && o.ExitCode == 0 },
	},
	{
		name: "String and Environ",
		run: func(t *testing.T, k kit) outcome {
			c := k.command("/bin/echo", "a", "b")
			*c.Env = []string{"A=1", "B=2", "A=3"}
			*c.Dir = "/tmp"
			o := observe(c, nil, []byte(c.String()))
			o.Stderr = strings.Join(c.Environ(), ",")
			n := k.command("pexec-no-such-command-xyz", "x")
			o.Err = n.String()
			return o
		},
		want: func(o outcome) bool {
			return o.Out == "/bin/echo a b" && o.Stderr == "B=2,A=3" && o.Err == "pexec-no-such-command-xyz x"
		},
	},
	{
		name: "Environ with NUL",
		run: func(t *testing.T, k kit) outcome {
			c := k.helper("exit", "0")
			*c.Env = append(*c.Env, "BAD=a\x00b")
			return observe(c, c.Run(), nil)
		},
		want: func(o outcome) bool { return o.Err == "exec: environment variable contains NUL" },
	},
}

func init() {
	testhelper.Register("orphan-stdout", func(args []string) int {
		// Leaves a grandchild holding our stdout, prints its PID, exits 0.
		h := pexectest.Command("sleep")
		p, err := os.StartProcess(h.Path, h.Args, &os.ProcAttr{Env: h.Env, Files: []*os.File{nil, os.Stdout, os.Stderr}})
		if err != nil {
			return 1
		}
		fmt.Println(p.Pid)
		return 0
	})
}

func TestCompatTable(t *testing.T) {
	for _, sc := range compatScenarios {
		t.Run(sc.name, func(t *testing.T) {
			var got [2]outcome
			for i, k := range kits {
				got[i] = sc.run(t, k)
			}
			if diff := cmp.Diff(got[0], got[1]); diff != "" {
				t.Errorf("os/exec and pexec differ (-os/exec +pexec):\n%s", diff)
			}
			if !sc.want(got[0]) {
				t.Errorf("scenario did not behave as intended: %+v", got[0])
			}
		})
	}
}

// TestCompatErrDot checks the ErrDot lookup error and the documented way of
// allowing it (clearing Err) behave identically.
func TestCompatErrDot(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "pexec-dot-tool"), []byte("#!/bin/sh\nexit 7\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	t.Chdir(dir)
	t.Setenv("PATH", ".")
	var got [2]outcome
	for i, k := range kits {
		c := k.command("pexec-dot-tool")
		first := observe(c, c.Run(), nil)
		c = k.command("pexec-dot-tool")
		if errors.Is(*c.Err, exec.ErrDot) {
			*c.Err = nil
		}
		got[i] = observe(c, c.Run(), nil)
		got[i].Err = first.Err + " | " + got[i].Err
		got[i].Dot = first.Dot
	}
	if diff := cmp.Diff(got[0], got[1]); diff != "" {
		t.Errorf("os/exec and pexec differ (-os/exec +pexec):\n%s", diff)
	}
	if !got[0].Dot || got[0].ExitCode != 7 {
		t.Errorf("scenario did not behave as intended: %+v", got[0])
	}
}

// TestAPISurface checks that pexec.Cmd has every exported field and method
// of exec.Cmd with the same types (and only pexec's Tree, DieWithParent
// and Handle besides), and that the error types are the very same types.
func TestAPISurface(t *testing.T) {
	fields := func(v any) map[string]string {
		m := map[string]string{}
		typ := reflect.TypeOf(v).Elem()
		for i := 0; i < typ.NumField(); i++ {
			if f := typ.Field(i); f.IsExported() {
				m[f.Name] = f.Type.String()
			}
		}
		return m
	}
	gotFields := fields(&pexec.Cmd{})
	// pexec's additions, whose zero values are os/exec's behaviour.
	for name, typ := range map[string]string{"Tree": "pexec.TreeMode", "Grace": "time.Duration", "DieWithParent": "bool"} {
		if gotFields[name] != typ {
			t.Errorf("pexec.Cmd.%s is %q; want %s", name, gotFields[name], typ)
		}
		delete(gotFields, name)
	}
	if diff := cmp.Diff(fields(&exec.Cmd{}), gotFields); diff != "" {
		t.Errorf("Cmd fields differ (-os/exec +pexec):\n%s", diff)
	}
	methods := func(v any) map[string]string {
		m := map[string]string{}
		typ := reflect.TypeOf(v)
		for i := 0; i < typ.NumMethod(); i++ {
			meth := typ.Method(i)
			s := meth.Type.String()
			m[meth.Name] = s[strings.Index(s, ")")+1:] // drop the receiver
		}
		return m
	}
	want := methods(&exec.Cmd{})
	got := methods(&pexec.Cmd{})
	delete(got, "Handle") // pexec's addition
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("Cmd methods differ (-os/exec +pexec):\n%s", diff)
	}
	if reflect.TypeOf(&pexec.ExitError{}) != reflect.TypeOf(&exec.ExitError{}) ||
		reflect.TypeOf(&pexec.Error{}) != reflect.TypeOf(&exec.Error{}) {
		t.Error("error types are not aliases of os/exec's")
	}
	for _, e := range []struct{ a, b error }{
		{pexec.ErrNotFound, exec.ErrNotFound}, {pexec.ErrDot, exec.ErrDot}, {pexec.ErrWaitDelay, exec.ErrWaitDelay},
	} {
		if e.a != e.b {
			t.Errorf("sentinel %v is not os/exec's", e.a)
		}
	}
	var _ func(string, ...string) *pexec.Cmd = pexec.Command
	var _ func(context.Context, string, ...string) *pexec.Cmd = pexec.CommandContext
	var _ func(string) (string, error) = pexec.LookPath
}
