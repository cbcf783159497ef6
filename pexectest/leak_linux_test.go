package pexectest_test

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/pexec-dev/pexec/internal/procfs"
	"github.com/pexec-dev/pexec/pexec"
	"github.com/pexec-dev/pexec/pexectest"
)

// procStat returns the parent PID, state and start time of process pid,
// and false if there is no such process.
func procStat(pid int) (ppid int, state string, start string, ok bool) {
	st, err := procfs.ReadStat(pid)
	if err != nil {
		return 0, "", "", false
	}
	return st.PPid, string(st.State), strconv.FormatUint(st.Start, 10), true
}

// isChild reports whether pid is a child of this process, running or not
// yet reaped.
func isChild(pid int) bool {
	ppid, _, _, ok := procStat(pid)
	return ok && ppid == os.Getpid()
}

// exe returns the test binary's path and the kernel's name for it.
func exe(t testing.TB) (path, comm string) {
	path, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	comm = filepath.Base(path)
	if len(comm) > 15 {
		comm = comm[:15]
	}
	return path, comm
}

// leak starts helper name with args and leaves it running.
func leak(t *testing.T, name string, args ...string) *pexec.Cmd {
	t.Helper()
	c := pexectest.Command(name, args...)
	if err := c.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if isChild(c.Process.Pid) {
			c.Process.Kill()
		}
		c.Wait()
	})
	return c
}

// exited waits until c's process has exited (without reaping it).
func exited(t *testing.T, c *pexec.Cmd) {
	t.Helper()
	select {
	case <-c.Handle().Done():
	case <-time.After(testTimeout):
		t.Fatalf("%s did not exit", c)
	}
}

func TestVerifyNoneClean(t *testing.T) {
	c := pexectest.Command("exit", "0")
	if err := c.Run(); err != nil {
		t.Fatal(err)
	}
	tb := &fakeTB{TB: t}
	pexectest.VerifyNone(tb)
	if got := tb.errors(); got != "" {
		t.Errorf("VerifyNone after a clean test: %s", got)
	}
}

// A leaked child is reported by PID, state and command line, then killed
// and reaped: running, stopped, or exited but not reaped.
func TestVerifyNoneLeaks(t *testing.T) {
	path, comm := exe(t)
	tests := []struct {
		name  string
		setup func(t *testing.T) *pexec.Cmd
		want  string // %d is the PID
	}{
		{"running", func(t *testing.T) *pexec.Cmd { return leak(t, "sleep") },
			`pid %d, running: helper "sleep": ` + path + ` -test.run=^$ --; started by TestVerifyNoneLeaks` + "\n"},
		{"with arguments", func(t *testing.T) *pexec.Cmd { return leak(t, "sleep", "1h", "x y") },
			`pid %d, running: helper "sleep": ` + path + ` -test.run=^$ -- 1h x y; started by TestVerifyNoneLeaks` + "\n"},
		{"stopped", func(t *testing.T) *pexec.Cmd {
			c := leak(t, "sleep")
			if err := c.Handle().Signal(syscall.SIGSTOP); err != nil {
				t.Fatal(err)
			}
			for _, state, _, _ := procStat(c.Process.Pid); state != "T"; _, state, _, _ = procStat(c.Process.Pid) {
				time.Sleep(time.Millisecond) // until the kernel has stopped it
			}
			return c
		}, `pid %d, stopped: helper "sleep": `},
		{"zombie", func(t *testing.T) *pexec.Cmd {
			c := leak(t, "exit", "3")
			exited(t, c)
			return c
		}, `pid %d, exited (exit status 3), not reaped: helper "exit": ` + path + ` -test.run=^$ -- 3; started by TestVerifyNoneLeaks` + "\n"},
		{"zombie killed", func(t *testing.T) *pexec.Cmd {
			c := leak(t, "kill-self", "9")
			exited(t, c)
			return c
		}, `pid %d, exited (signal SIGKILL), not reaped: helper "kill-self": ` + path + ` -test.run=^$ -- 9; started by TestVerifyNoneLeaks` + "\n"},
		{"zombie, not a helper", func(t *testing.T) *pexec.Cmd {
			c := pexec.Command(path, "-test.run=^$")
			if err := c.Start(); err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { c.Wait() })
			exited(t, c)
			return c
		}, `pid %d, exited (exit status 0), not reaped: [` + comm + "]\n"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := tc.setup(t)
			pid := c.Process.Pid
			tb := &fakeTB{TB: t}
			pexectest.VerifyNone(tb, pexectest.MaxWait(0))
			got := tb.errors()
			for _, want := range []string{
				"pexectest: 1 child process leaked (found at the end of TestFake); killed and reaped now:\n",
				fmt.Sprintf("\n    "+tc.want, pid),
			} {
				if !strings.Contains(got, want) {
					t.Errorf("VerifyNone reported:\n%s\nwant it to contain:\n%s", got, want)
				}
			}
			if isChild(pid) {
				t.Errorf("pid %d is still a child after VerifyNone: not killed or not reaped", pid)
			}
		})
	}
}

// ReportOnly logs the leak instead of failing, and still cleans up.
func TestVerifyNoneReportOnly(t *testing.T) {
	c := leak(t, "sleep")
	tb := &fakeTB{TB: t}
	pexectest.VerifyNone(tb, pexectest.ReportOnly(), pexectest.MaxWait(0))
	want := fmt.Sprintf(`pid %d, running: helper "sleep"`, c.Process.Pid)
	if tb.errors() != "" || !strings.Contains(tb.logged(), want) {
		t.Errorf("errors %q, logs %q; want no error and a log with %q", tb.errors(), tb.logged(), want)
	}
	if isChild(c.Process.Pid) {
		t.Errorf("pid %d is still a child", c.Process.Pid)
	}
}

// A child that is on its way out is not a leak: the first scan finds it
// (exited, not reaped), another goroutine reaps it, and a later scan no
// longer does.
func TestVerifyNoneInFlight(t *testing.T) {
	c := pexectest.Command("exit", "0")
	if err := c.Start(); err != nil {
		t.Fatal(err)
	}
	exited(t, c)
	release, reaped := make(chan struct{}), make(chan struct{})
	defer func() {
		close(release)
		<-reaped
	}()
	var scans []int
	defer pexectest.SetScanHook(func(scan int) {
		scans = append(scans, scan)
		if scan == 1 {
			release <- struct{}{}
		}
	})()
	go func() {
		defer close(reaped)
		<-release
		c.Wait()
	}()
	tb := &fakeTB{TB: t}
	pexectest.VerifyNone(tb, pexectest.MaxWait(testTimeout))
	if got := tb.errors(); got != "" {
		t.Errorf("VerifyNone: %s", got)
	}
	if len(scans) == 0 || scans[0] != 1 {
		t.Errorf("scans that found the exiting child: %v; want the first", scans)
	}
}

func TestVerifyNoneIgnore(t *testing.T) {
	path, _ := exe(t)
	tests := []struct {
		name   string
		zombie bool
		opt    func(c *pexec.Cmd) pexectest.Option
		leaked bool
	}{
		{"IgnorePID", false, func(c *pexec.Cmd) pexectest.Option { return pexectest.IgnorePID(c.Process.Pid) }, false},
		{"IgnorePID other", false, func(c *pexec.Cmd) pexectest.Option { return pexectest.IgnorePID(c.Process.Pid + 1) }, true},
		{"IgnoreCommand helper", false, func(*pexec.Cmd) pexectest.Option { return pexectest.IgnoreCommand("sleep") }, false},
		{"IgnoreCommand other helper", false, func(*pexec.Cmd) pexectest.Option { return pexectest.IgnoreCommand("greet") }, true},
		{"IgnoreCommand base name", false, func(*pexec.Cmd) pexectest.Option { return pexectest.IgnoreCommand(filepath.Base(path)) }, false},
		{"IgnoreCommand path", false, func(*pexec.Cmd) pexectest.Option { return pexectest.IgnoreCommand(path) }, false},
		{"IgnoreCommand zombie", true, func(*pexec.Cmd) pexectest.Option { return pexectest.IgnoreCommand(path) }, false},
		{"IgnoreCommand other program", false, func(*pexec.Cmd) pexectest.Option { return pexectest.IgnoreCommand("sh") }, true},
		{"IgnoreCurrent", false, func(*pexec.Cmd) pexectest.Option { return pexectest.IgnoreCurrent() }, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var c *pexec.Cmd
			if tc.zombie {
				c = leak(t, "exit", "0")
				exited(t, c)
			} else {
				c = leak(t, "sleep")
			}
			tb := &fakeTB{TB: t}
			pexectest.VerifyNone(tb, tc.opt(c), pexectest.MaxWait(0))
			if got := tb.errors() != ""; got != tc.leaked {
				t.Errorf("leak reported: %v, want %v: %s", got, tc.leaked, tb.errors())
			}
			if !tc.leaked && !isChild(c.Process.Pid) {
				t.Errorf("an ignored process was touched")
			}
		})
	}
	t.Run("IgnoreCurrent before the start", func(t *testing.T) {
		opt := pexectest.IgnoreCurrent()
		leak(t, "sleep")
		tb := &fakeTB{TB: t}
		pexectest.VerifyNone(tb, opt, pexectest.MaxWait(0))
		if tb.errors() == "" {
			t.Error("a process started after IgnoreCurrent was ignored")
		}
	})
}

// A leaked child's own children are reported with it and killed with it.
func TestVerifyNoneDescendants(t *testing.T) {
	c := pexectest.Command("grandchild")
	out, err := c.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if isChild(c.Process.Pid) {
			c.Process.Kill()
		}
		c.Wait()
	})
	line, err := bufio.NewReader(out).ReadString('\n')
	gpid, _ := strconv.Atoi(strings.TrimSpace(line))
	if gpid <= 0 {
		t.Fatalf("grandchild: %q, %v", line, err)
	}
	// The grandchild sleeps, so it is alive and its PID its own: a handle
	// on it, to see it die, and its start time, to tell it from a process
	// that reuses its PID where there are no pidfds (PID mode).
	_, _, gstart, _ := procStat(gpid)
	dead := func() <-chan struct{} {
		d := make(chan struct{})
		go func() {
			defer close(d)
			for {
				if _, _, start, ok := procStat(gpid); !ok || start != gstart {
					return
				}
				time.Sleep(time.Millisecond)
			}
		}()
		return d
	}
	if g, err := pexec.Open(gpid); err == nil {
		defer func() {
			g.Kill() // if the check did not
			g.Close()
		}()
		dead = g.Done
	} else if !errors.Is(err, errors.ErrUnsupported) {
		t.Fatal(err)
	}
	path, _ := exe(t)
	tb := &fakeTB{TB: t}
	pexectest.VerifyNone(tb, pexectest.MaxWait(0))
	got := tb.errors()
	want := fmt.Sprintf("\n    pid %d, running: helper \"grandchild\": %s -test.run=^$ --; started by TestVerifyNoneDescendants\n        pid %d, running: helper \"sleep\": %s -test.run=^$ --; started by TestVerifyNoneDescendants\n", c.Process.Pid, path, gpid, path)
	if !strings.Contains(got, want) {
		t.Errorf("VerifyNone reported:\n%s\nwant it to contain:\n%s", got, want)
	}
	select {
	case <-dead():
	case <-time.After(testTimeout):
		t.Errorf("the grandchild %d still runs", gpid)
	}
	if isChild(c.Process.Pid) {
		t.Errorf("the child %d is still a child", c.Process.Pid)
	}
}

// Find describes the leaks and leaves them alone.
func TestFind(t *testing.T) {
	c := leak(t, "sleep", "1h")
	leaks, err := pexectest.Find(pexectest.MaxWait(0))
	if err != nil {
		t.Fatal(err)
	}
	path, _ := exe(t)
	want := []pexectest.Leak{{PID: c.Process.Pid, Command: path + " -test.run=^$ -- 1h", Helper: "sleep", State: "running", Test: "TestFind"}}
	if diff := cmp.Diff(want, leaks); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
	if !c.Handle().Alive() {
		t.Error("Find killed the process")
	}
}

// Fixtures: tests that fail on purpose, run by TestFixtures in a binary of
// their own.

func fixture(t *testing.T, name string) {
	if os.Getenv(fixtureEnv) != name {
		t.Skip("a fixture of TestFixtures, which runs it in a re-execution of this binary")
	}
}

// leakFixture leaks a sleeping helper and prints its PID and start time.
func leakFixture(t *testing.T) {
	c := pexectest.Command("sleep")
	if err := c.Start(); err != nil {
		t.Fatal(err)
	}
	_, _, start, _ := procStat(c.Process.Pid)
	fmt.Printf("leaked pid %d start %s\n", c.Process.Pid, start)
}

func TestFixtureLeakVerifyNone(t *testing.T) {
	fixture(t, "leak-verifynone")
	defer pexectest.VerifyNone(t, pexectest.MaxWait(50*time.Millisecond))
	leakFixture(t)
}

func TestFixtureLeakMain(t *testing.T) {
	fixture(t, "leak-main")
	leakFixture(t)
}

func TestFixtureClean(t *testing.T) {
	fixture(t, "clean")
	defer pexectest.VerifyNone(t)
	pexectest.Start(t, pexectest.Command("sleep"))
	if err := pexectest.Command("exit", "0").Run(); err != nil {
		t.Fatal(err)
	}
}

func TestFixtureWrongWant(t *testing.T) {
	fixture(t, "wrong-want")
	tests := []struct {
		name string
		args []string
		want pexectest.Outcome
	}{
		{"right", []string{"0", "out"}, pexectest.Outcome{Stdout: "out"}},
		{"wrong", []string{"3", "out", "err"}, pexectest.Outcome{Exit: 4, Stdout: "out"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := pexectest.Run(testContext(t), pexectest.Command("exit", tc.args...))
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
}

// TestFixtures runs each fixture in a re-execution of this test binary, as
// go test would, and checks how it fails: a leak fails the test that
// leaked (VerifyNone) or the run (Main), naming the process, which is gone
// afterwards; a clean test passes; a table row with a wrong want fails
// with the difference.
func TestFixtures(t *testing.T) {
	// cmp.Diff spaces its output with ordinary or non-breaking spaces, at
	// random.
	sp := `[\s\x{a0}]+`
	tests := []struct {
		fixture, test string
		exit          int
		stdout        []string // regular expressions; %d is the leaked PID
		stderr        []string
	}{
		{"leak-verifynone", "TestFixtureLeakVerifyNone", 1, []string{
			`--- FAIL: TestFixtureLeakVerifyNone`,
			`pexectest: 1 child process leaked \(found at the end of TestFixtureLeakVerifyNone\); killed and reaped now:`,
			`pid %d, running: helper "sleep": \S+ -test\.run=\^\$ --; started by TestFixtureLeakVerifyNone\n`,
		}, nil},
		{"leak-main", "TestFixtureLeakMain", 1, []string{`--- PASS: TestFixtureLeakMain`}, []string{
			`pexectest: 1 child process leaked \(found after the tests\); killed and reaped now:`,
			`pid %d, running: helper "sleep": \S+ -test\.run=\^\$ --; started by TestFixtureLeakMain\n`,
		}},
		{"clean", "TestFixtureClean", 0, []string{`--- PASS: TestFixtureClean`}, nil},
		{"wrong-want", "TestFixtureWrongWant", 1, []string{
			`--- PASS: TestFixtureWrongWant/right`,
			`--- FAIL: TestFixtureWrongWant/wrong`,
			`\(-want \+got\):`,
			`-` + sp + `Exit:` + sp + `4,`,
			`\+` + sp + `Exit:` + sp + `3,`,
			`\+` + sp + `Stderr:` + sp + `"err",`,
		}, nil},
	}
	path, _ := exe(t)
	for _, tc := range tests {
		t.Run(tc.fixture, func(t *testing.T) {
			c := pexec.Command(path, "-test.run=^"+tc.test+"$", "-test.v")
			c.Env = append(os.Environ(), fixtureEnv+"="+tc.fixture, "GORACE=atexit_sleep_ms=0")
			got := pexectest.Run(testContext(t), c)
			if got.Exit != tc.exit || got.Signal != "" || got.Err != "" {
				t.Errorf("%s: %s, want exit %d", tc.test, got, tc.exit)
			}
			var pid int
			var start string
			if m := regexp.MustCompile(`leaked pid (\d+) start (\d+)`).FindStringSubmatch(got.Stdout); m != nil {
				pid, _ = strconv.Atoi(m[1])
				start = m[2]
			}
			match := func(what, text string, res []string) {
				for _, re := range res {
					re = strings.ReplaceAll(re, "%d", strconv.Itoa(pid))
					if !regexp.MustCompile(re).MatchString(text) {
						t.Errorf("%s does not match %s:\n%s", what, re, text)
					}
				}
			}
			match("stdout", got.Stdout, tc.stdout)
			match("stderr", got.Stderr, tc.stderr)
			if pid != 0 {
				if _, _, now, ok := procStat(pid); ok && now == start {
					t.Errorf("the leaked process %d still exists", pid)
				}
			} else if strings.HasPrefix(tc.fixture, "leak") {
				t.Errorf("the fixture did not say what it leaked")
			}
		})
	}
}

// Under binfmt_misc (qemu-user running a test binary built for another
// architecture), /proc/<pid>/cmdline starts with the interpreter and the
// program's path; the leak checks report the program's own command line.
func TestProgramArgs(t *testing.T) {
	const qemu = "/usr/libexec/qemu-binfmt/aarch64-binfmt-P"
	interps := map[string]bool{qemu: true, "/usr/bin/qemu-arm": false}
	tests := []struct {
		name  string
		words []string
		comm  string
		want  []string
	}{
		{"native", []string{"/tmp/x.test", "-test.run=^$", "--"}, "x.test", []string{"/tmp/x.test", "-test.run=^$", "--"}},
		{"binfmt, argv[0] preserved", []string{qemu, "/tmp/b/x.test", "/tmp/b/x.test", "-test.run=^$", "--", "1h"}, "x.test", []string{"/tmp/b/x.test", "-test.run=^$", "--", "1h"}},
		{"binfmt, argv[0] preserved, another argv[0]", []string{qemu, "/tmp/b/x.test", "x", "a"}, "x.test", []string{"x", "a"}},
		{"binfmt, argv[0] replaced by the path", []string{"/usr/bin/qemu-arm", "/tmp/b/x.test", "a"}, "x.test", []string{"/tmp/b/x.test", "a"}},
		{"binfmt, long name cut to 15 bytes", []string{qemu, "/tmp/b/pexectest-long.test", "/tmp/b/pexectest-long.test"}, "pexectest-long.", []string{"/tmp/b/pexectest-long.test"}},
		{"the interpreter run by hand", []string{qemu, "/tmp/b/x.test", "/tmp/b/x.test"}, "aarch64-binfmt-", []string{qemu, "/tmp/b/x.test", "/tmp/b/x.test"}},
		{"not a registered interpreter", []string{"/usr/bin/env", "/tmp/b/x.test"}, "x.test", []string{"/usr/bin/env", "/tmp/b/x.test"}},
		{"a lone word", []string{qemu}, "x.test", []string{qemu}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if diff := cmp.Diff(tt.want, pexectest.ProgramArgs(tt.words, tt.comm, interps)); diff != "" {
				t.Errorf("ProgramArgs(%q, %q) (-want +got):\n%s", tt.words, tt.comm, diff)
			}
		})
	}
}
