package pexectest_test

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/pexec-dev/pexec/pexec"
	"github.com/pexec-dev/pexec/pexectest"
)

// Fixtures of issue #20: test binaries that crash, helpers that
// double-fork, expectations that are wrong; each run by a test below in a
// re-execution of this binary, as go test would run it, and judged by its
// output and by what it leaves behind.

func init() {
	// daemon: starts "sleep 60" (a program, not a helper), prints its PID
	// and exits without waiting for it: the double-fork of a daemon.
	pexectest.Register("daemon", func([]string) int {
		c := exec.Command("sleep", "60")
		if err := c.Start(); err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		fmt.Println(c.Process.Pid)
		return 0
	})
	// setsid-orphan: starts a sleeping helper in a session of its own
	// (which leaves any process group), prints its PID and exits.
	pexectest.Register("setsid-orphan", func([]string) int {
		c := pexectest.Command("sleep")
		c.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
		if err := c.Start(); err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		fmt.Println(c.Process.Pid)
		return 0
	})
}

// fixtureRun says how to run a fixture.
type fixtureRun struct {
	fixture, test string
	args          []string             // more flags for the test binary
	attr          *syscall.SysProcAttr // nobody() runs it as nobody
}

// command returns the command that runs the fixture: this test binary
// (a copy anyone may run, for nobody), running the fixture's test alone,
// verbosely.
func (f fixtureRun) command(t *testing.T) *pexec.Cmd {
	t.Helper()
	path, _ := exe(t)
	if f.attr != nil && f.attr.Credential != nil {
		path = sharedCopy(t)
	}
	c := pexec.Command(path, append([]string{"-test.run=^" + f.test + "$", "-test.v"}, f.args...)...)
	c.Env = append(os.Environ(), fixtureEnv+"="+f.fixture, "GORACE=atexit_sleep_ms=0")
	c.Dir = filepath.Dir(path)
	c.SysProcAttr = f.attr
	return c
}

// run runs the fixture to its end and returns how it ended. The fixture
// runs without a tree, so that what it leaves behind stays for the caller
// to see.
func (f fixtureRun) run(t *testing.T) pexectest.Outcome {
	t.Helper()
	return pexectest.Run(testContext(t), f.command(t), pexectest.Tree(pexec.TreeNone))
}

// matchAll fails t for each regular expression of res that text does not
// match; "%d" in one stands for pid.
func matchAll(t *testing.T, what, text string, res []string, pid int) {
	t.Helper()
	for _, re := range res {
		re = strings.ReplaceAll(re, "%d", strconv.Itoa(pid))
		if !regexp.MustCompile(re).MatchString(text) {
			t.Errorf("%s does not match %s:\n%s", what, re, text)
		}
	}
}

// nobody returns the SysProcAttr that runs a fixture as the user nobody,
// or skips t where this process cannot switch users.
func nobody(t *testing.T) *syscall.SysProcAttr {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skipf("running a fixture as nobody needs root (euid here: %d); CI runs as root", os.Geteuid())
	}
	uid, gid := uint32(65534), uint32(65534)
	if u, err := user.Lookup("nobody"); err == nil {
		if n, err := strconv.Atoi(u.Uid); err == nil {
			uid = uint32(n)
		}
		if n, err := strconv.Atoi(u.Gid); err == nil {
			gid = uint32(n)
		}
	}
	return &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uid, Gid: gid}}
}

// sharedCopy returns a copy of this test binary in a directory that
// anyone may read (go test builds it in one of its own).
func sharedCopy(t *testing.T) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "pexectest-fixture-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	src, _ := exe(t)
	in, err := os.Open(src)
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	dst := filepath.Join(dir, filepath.Base(src))
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o755)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(out, in); err != nil {
		t.Fatal(err)
	}
	if err := out.Close(); err != nil {
		t.Fatal(err)
	}
	return dst
}

// gonePID reports whether process pid with start time start has exited
// (a zombie counts as gone) or no longer exists.
func gonePID(pid int, start string) bool {
	_, state, now, ok := procStat(pid)
	return !ok || now != start || state == "Z" || state == "X"
}

// killPID kills process pid if it is still the one with start time start.
func killPID(pid int, start string) {
	h, err := pexec.Open(pid)
	if err != nil {
		return
	}
	defer h.Close()
	if !gonePID(pid, start) {
		h.Kill()
	}
}

// dies waits for process pid, with start time start, to exit, and fails t
// if it is still running after d.
func dies(t *testing.T, what string, pid int, start string, d time.Duration) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !gonePID(pid, start) {
		if time.Now().After(deadline) {
			t.Errorf("%s (pid %d) still runs %v later", what, pid, d)
			return
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// Item 2: helpers die with a test binary that dies without its clean-ups.

func TestFixtureCrash(t *testing.T) {
	mode := os.Getenv(fixtureEnv)
	if !strings.HasPrefix(mode, "crash-") {
		t.Skip("a fixture of TestHelpersDieWithTestBinary")
	}
	bound := pexectest.Command("sleep")
	pexectest.Start(t, bound)
	unbound := pexectest.Command("sleep")
	if err := unbound.Start(); err != nil {
		t.Fatal(err)
	}
	opted := pexec.Command("sleep", "3600")
	pexectest.Start(t, opted, pexectest.DieWithTestBinary())
	plain := pexec.Command("sleep", "3600")
	pexectest.Start(t, plain)
	fmt.Printf("pids %d %d %d %d\n", bound.Process.Pid, unbound.Process.Pid, opted.Process.Pid, plain.Process.Pid)
	switch mode {
	case "crash-sigkill":
		syscall.Kill(os.Getpid(), syscall.SIGKILL)
	case "crash-panic":
		go panic("the test binary crashes")
	}
	select {} // until -test.timeout, or the above
}

// A test binary that dies without running its clean-ups (a crash, a
// SIGKILL, the panic of -test.timeout) takes its helpers with it, bound to
// a test or not, and a command started with DieWithTestBinary; a command
// started without it survives (and is killed here).
func TestHelpersDieWithTestBinary(t *testing.T) {
	for _, tc := range []struct {
		fixture string
		args    []string
		how     string // in the fixture's output
	}{
		{"crash-sigkill", nil, ""},
		{"crash-panic", nil, "panic: the test binary crashes"},
		{"crash-timeout", []string{"-test.timeout=3s"}, "panic: test timed out after 3s"},
	} {
		t.Run(tc.fixture, func(t *testing.T) {
			c := fixtureRun{fixture: tc.fixture, test: "TestFixtureCrash", args: tc.args}.command(t)
			out, err := c.StdoutPipe()
			if err != nil {
				t.Fatal(err)
			}
			var stderr strings.Builder
			c.Stderr = &stderr
			if err := c.Start(); err != nil {
				t.Fatal(err)
			}
			var pids [4]int
			var starts [4]string
			sc := bufio.NewScanner(out)
			for sc.Scan() {
				if n, _ := fmt.Sscanf(sc.Text(), "pids %d %d %d %d", &pids[0], &pids[1], &pids[2], &pids[3]); n == 4 {
					break
				}
			}
			for i, pid := range pids {
				if pid > 0 {
					_, _, starts[i], _ = procStat(pid)
				}
			}
			rest, _ := io.ReadAll(out)
			err = c.Wait()
			if pids[0] == 0 {
				t.Fatalf("the fixture said no PIDs: %v\n%s", err, stderr.String())
			}
			if err == nil || !strings.Contains(stderr.String()+string(rest), tc.how) {
				t.Errorf("the fixture ended with %v, output:\n%s%s\nwant it to die (%q)", err, rest, stderr.String(), tc.how)
			}
			t.Cleanup(func() { killPID(pids[3], starts[3]) })
			dies(t, "the helper bound by Start", pids[0], starts[0], 10*time.Second)
			dies(t, "the unbound helper", pids[1], starts[1], 10*time.Second)
			dies(t, "the command started with DieWithTestBinary", pids[2], starts[2], 10*time.Second)
			if gonePID(pids[3], starts[3]) {
				t.Errorf("the command started without DieWithTestBinary (pid %d) died with the test binary", pids[3])
			}
		})
	}
}

// Items 3 and 5: orphans come back to the test process, as a subreaper,
// which reports and kills them.

func TestFixtureOrphan(t *testing.T) {
	mode := os.Getenv(fixtureEnv)
	if !strings.HasPrefix(mode, "orphan-") {
		t.Skip("a fixture of TestOrphans")
	}
	if mode == "orphan-verifynone" {
		defer pexectest.VerifyNone(t, pexectest.MaxWait(50*time.Millisecond))
	}
	var c *pexec.Cmd
	switch mode {
	case "orphan-verifynone", "orphan-main":
		c = pexectest.Command("orphan")
	case "orphan-daemon":
		c = pexectest.Command("daemon")
	case "orphan-setsid":
		// Bound to the test with Start's default tree: a process group
		// where the test may not create cgroups, which the orphan's
		// session escapes.
		c = pexectest.Command("setsid-orphan")
		out, err := c.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		pexectest.Start(t, c, pexectest.MaxWait(50*time.Millisecond))
		line, _ := bufio.NewReader(out).ReadString('\n')
		c.Wait()
		printOrphan(strings.TrimSpace(line))
		return
	}
	out, err := c.Output()
	if err != nil {
		t.Fatal(err)
	}
	printOrphan(strings.TrimSpace(string(out)))
}

// printOrphan prints the PID and start time of the orphan pid.
func printOrphan(pid string) {
	n, _ := strconv.Atoi(pid)
	_, _, start, _ := procStat(n)
	fmt.Printf("leaked pid %d start %s\n", n, start)
}

// A helper that double-forks, a program's daemon, and a process that
// escaped its process-group tree with setsid: each is reported, as an
// orphan, by VerifyNone or by Main (naming the test where the orphan is a
// helper), and killed. As root the setsid orphan is in the cgroup tree,
// and Start's clean-up reports it; as nobody (no cgroup) the tree is a
// process group, which it escapes, and Main reports it.
func TestOrphans(t *testing.T) {
	if err := pexectest.AdoptionErr(); err != nil {
		t.Skipf("the test binary does not adopt orphans here: %v", err)
	}
	root := os.Geteuid() == 0 && pexec.TreeSupport(pexec.TreeCgroup) == nil
	tests := []struct {
		name     string
		run      fixtureRun
		nobody   bool
		exit     int
		stdout   []string
		stderr   []string
		skipRoot bool // needs the test to be able to make cgroups
	}{
		{"verifynone", fixtureRun{fixture: "orphan-verifynone", test: "TestFixtureOrphan"}, false, 1, []string{
			`--- FAIL: TestFixtureOrphan`,
			`pexectest: 1 orphaned process leaked \(found at the end of TestFixtureOrphan\); their parents exited without waiting for them, and the test process adopted them; killed and reaped now:`,
			`pid %d, running \(orphaned\): helper "sleep": \S+ -test\.run=\^\$ --; started by TestFixtureOrphan\n`,
		}, nil, false},
		{"main", fixtureRun{fixture: "orphan-main", test: "TestFixtureOrphan"}, false, 1, []string{`--- PASS: TestFixtureOrphan`}, []string{
			`pexectest: 1 orphaned process leaked \(found after the tests\)`,
			`pid %d, running \(orphaned\): helper "sleep": \S+ -test\.run=\^\$ --; started by TestFixtureOrphan\n`,
		}, false},
		{"daemon", fixtureRun{fixture: "orphan-daemon", test: "TestFixtureOrphan"}, false, 1, []string{`--- PASS: TestFixtureOrphan`}, []string{
			`pexectest: 1 orphaned process leaked \(found after the tests\)`,
			`pid %d, running \(orphaned\): sleep 60; started by TestFixtureOrphan\n`,
		}, false},
		{"setsid as root", fixtureRun{fixture: "orphan-setsid", test: "TestFixtureOrphan"}, false, 1, []string{
			`--- FAIL: TestFixtureOrphan`,
			`runs in a cgroup tree`,
			`pexectest: 1 process tree left behind by a process that ended \(found at the clean-up of TestFixtureOrphan\); killed now:`,
			`pid %d, running: helper "sleep": \S+ -test\.run=\^\$ --; started by TestFixtureOrphan\n`,
		}, nil, true},
		{"setsid as nobody", fixtureRun{fixture: "orphan-setsid", test: "TestFixtureOrphan"}, true, 1, []string{
			`--- PASS: TestFixtureOrphan`,
			`runs in a process-group tree, not a cgroup tree \(cgroup: .*permission denied.*\): a descendant that calls setsid or setpgid escapes it`,
		}, []string{
			`pexectest: 1 orphaned process leaked \(found after the tests\)`,
			`pid %d, running \(orphaned\): helper "sleep": \S+ -test\.run=\^\$ --; started by TestFixtureOrphan\n`,
		}, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if tc.skipRoot && !root {
				t.Skip("needs cgroup trees, which need root or a delegated cgroup")
			}
			if tc.nobody {
				tc.run.attr = nobody(t)
			}
			got := tc.run.run(t)
			if got.Exit != tc.exit {
				t.Errorf("%s: %s, want exit %d", tc.run.test, got, tc.exit)
			}
			m := regexp.MustCompile(`leaked pid (\d+) start (\d+)`).FindStringSubmatch(got.Stdout)
			if m == nil {
				t.Fatalf("the fixture did not say what it leaked:\n%s\n%s", got.Stdout, got.Stderr)
			}
			pid, _ := strconv.Atoi(m[1])
			matchAll(t, "stdout", got.Stdout, tc.stdout, pid)
			matchAll(t, "stderr", got.Stderr, tc.stderr, pid)
			if !gonePID(pid, m[2]) {
				t.Errorf("the orphan %d still runs", pid)
				killPID(pid, m[2])
			}
		})
	}
}

// Item 5: Start says which tree it got, and RequireTree skips a test that
// needs a cgroup where there is none (as nobody).

func TestFixtureTree(t *testing.T) {
	fixture(t, "tree")
	pexectest.Start(t, pexectest.Command("sleep"), pexectest.RequireTree(pexec.TreeCgroup))
}

func TestRequireTree(t *testing.T) {
	root := os.Geteuid() == 0 && pexec.TreeSupport(pexec.TreeCgroup) == nil
	for _, tc := range []struct {
		name   string
		nobody bool
		stdout []string
	}{
		{"as root", false, []string{
			`pexectest: Start: helper "sleep" \[\] \(pid \d+\) runs in a cgroup tree`,
			`--- PASS: TestFixtureTree`,
		}},
		{"as nobody", true, []string{
			`--- SKIP: TestFixtureTree`,
			`pexectest: Start: helper "sleep" \[\]: this test requires a cgroup tree, which is not available here: cgroup: .*permission denied`,
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			run := fixtureRun{fixture: "tree", test: "TestFixtureTree"}
			if tc.nobody {
				run.attr = nobody(t)
			} else if !root {
				t.Skip("needs cgroup trees, which need root or a delegated cgroup")
			}
			got := run.run(t)
			if got.Exit != 0 {
				t.Errorf("%s, want exit 0", got)
			}
			matchAll(t, "stdout", got.Stdout, tc.stdout, 0)
		})
	}
}

// Item 4: reports point at the test's own code and name the helper.

func TestFixtureReports(t *testing.T) {
	mode := os.Getenv(fixtureEnv)
	if !strings.HasPrefix(mode, "report-") {
		t.Skip("a fixture of TestReports")
	}
	switch mode {
	case "report-unexpected":
		c := pexectest.Command("exit", "3", "", "boom")
		_, file, line, _ := runtime.Caller(0)
		fmt.Printf("Start at %s:%d\n", filepath.Base(file), line+2)
		pexectest.Start(t, c)
		if _, err := c.Handle().WaitContext(testContext(t)); err != nil {
			t.Fatal(err)
		}
	case "report-zombie":
		c := pexectest.Command("exit", "3")
		if err := c.Start(); err != nil {
			t.Fatal(err)
		}
		if _, err := c.Handle().WaitContext(testContext(t)); err != nil {
			t.Fatal(err)
		}
		_, _, start, _ := procStat(c.Process.Pid)
		fmt.Printf("leaked pid %d start %s\n", c.Process.Pid, start)
	case "report-late":
		pexectest.Register("late", func([]string) int { return 0 })
		if err := pexectest.Command("late").Run(); err != nil {
			t.Error(err)
		}
	}
}

func TestReports(t *testing.T) {
	for _, tc := range []struct {
		fixture string
		exit    int
		stdout  []string
		stderr  []string
	}{
		// The clean-up's failure points at the line that called Start,
		// and names the helper, its arguments and its PID.
		{"report-unexpected", 1, []string{
			`--- FAIL: TestFixtureReports`,
			`\n\s+%s: pexectest: helper "exit" \["3" "" "boom"\] \(pid \d+\) ended before the end of TestFixtureReports, unexpectedly: exit 3\n`,
		}, nil},
		// A zombie is named as the helper it was, with the test that
		// started it, in Main's report.
		{"report-zombie", 1, []string{`--- PASS: TestFixtureReports`}, []string{
			`pexectest: 1 child process leaked \(found after the tests\); killed and reaped now:`,
			`pid %d, exited \(exit status 3\), not reaped: helper "exit": \S+ -test\.run=\^\$ -- 3; started by TestFixtureReports\n`,
		}},
		// A helper registered inside a test: the error says where to
		// register it.
		{"report-late", 1, []string{
			`--- FAIL: TestFixtureReports`,
			`unknown helper "late" to the re-executed test binary: it was registered after pexectest.Main started \(inside a test\?\); register helpers in an init function, or in TestMain before pexectest.Main`,
		}, nil},
	} {
		t.Run(tc.fixture, func(t *testing.T) {
			got := fixtureRun{fixture: tc.fixture, test: "TestFixtureReports"}.run(t)
			if got.Exit != tc.exit {
				t.Errorf("%s, want exit %d", got, tc.exit)
			}
			pid := 0
			if m := regexp.MustCompile(`leaked pid (\d+) start (\d+)`).FindStringSubmatch(got.Stdout); m != nil {
				pid, _ = strconv.Atoi(m[1])
				if !gonePID(pid, m[2]) {
					t.Errorf("the leaked process %d is still there", pid)
				}
			}
			stdout := tc.stdout
			if m := regexp.MustCompile(`Start at (\S+:\d+)`).FindStringSubmatch(got.Stdout); m != nil {
				stdout = []string{stdout[0], strings.Replace(stdout[1], "%s", regexp.QuoteMeta(m[1]), 1)}
			} else if tc.fixture == "report-unexpected" {
				t.Fatalf("the fixture did not say where it called Start:\n%s", got.Stdout)
			}
			matchAll(t, "stdout", got.Stdout, stdout, pid)
			matchAll(t, "stderr", got.Stderr, tc.stderr, pid)
		})
	}
}

// Item 1: Run gives the command a tree, and its timeout kills the tree;
// code that builds an *exec.Cmd itself is run through pexec.Wrap.
func TestRunTree(t *testing.T) {
	if pexec.TreeSupport(pexec.TreeGroup) != nil || !pexec.Supported() {
		t.Skip("trees need pidfds")
	}
	tests := []struct {
		name    string
		script  string // prints the PIDs of what it starts
		timeout time.Duration
		opts    []pexectest.Option
		want    pexectest.Outcome
		alive   bool // what the script started in the background survives Run
	}{
		{"timeout kills the tree", `echo $$; sleep 30 & echo $!; exec sleep 30`, 300 * time.Millisecond, nil,
			pexectest.Outcome{Exit: -1, Signal: "SIGKILL", TimedOut: true, Killed: pexectest.KilledTree}, false},
		{"what an exited process left is killed", `sleep 30 & echo $!`, 0, []pexectest.Option{pexectest.MaxWait(50 * time.Millisecond)},
			pexectest.Outcome{Killed: pexectest.KilledTree}, false},
		{"a process group tree", `echo $$; sleep 30 & echo $!; exec sleep 30`, 300 * time.Millisecond, []pexectest.Option{pexectest.Tree(pexec.TreeGroup)},
			pexectest.Outcome{Exit: -1, Signal: "SIGKILL", TimedOut: true, Killed: pexectest.KilledTree}, false},
		{"without a tree, the process alone", `echo $$; sleep 30 >/dev/null 2>&1 & echo $!; exec sleep 30`, 300 * time.Millisecond, []pexectest.Option{pexectest.Tree(pexec.TreeNone)},
			pexectest.Outcome{Exit: -1, Signal: "SIGKILL", TimedOut: true, Killed: pexectest.KilledProcess}, true},
		{"a tree that empties in time", `sleep 0.01 & echo $!; wait`, 0, nil, pexectest.Outcome{}, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ctx := testContext(t)
			if tc.timeout > 0 {
				var cancel context.CancelFunc
				ctx, cancel = context.WithTimeout(ctx, tc.timeout)
				defer cancel()
			}
			got := pexectest.Run(ctx, pexec.Wrap(exec.Command("sh", "-c", tc.script)), tc.opts...)
			pids := strings.Fields(got.Stdout)
			got.Stdout = ""
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
			if len(pids) == 0 {
				t.Fatal("the script printed no PID")
			}
			for i, p := range pids {
				pid, _ := strconv.Atoi(p)
				_, _, start, ok := procStat(pid)
				if !ok {
					continue // gone and reaped
				}
				// The last PID is the background process's; an earlier
				// one, the script's own (which Run killed). A killed one
				// is still in the last steps of its exit at most.
				if tc.alive && i == len(pids)-1 {
					if gonePID(pid, start) {
						t.Errorf("pid %d, which Run could not reach, died", pid)
					}
				} else {
					dies(t, "a process Run killed", pid, start, 10*time.Second)
				}
				killPID(pid, start)
			}
		})
	}
}

// Item 6: Outcome words a signal by its name, where os/exec and pexec's
// Status give its description; Exit is -1 then, as ProcessState.ExitCode
// is.
func TestOutcomeSignal(t *testing.T) {
	for _, tc := range []struct {
		sig  syscall.Signal
		name string
	}{
		{syscall.SIGTERM, "SIGTERM"},
		{syscall.SIGKILL, "SIGKILL"},
		{syscall.SIGHUP, "SIGHUP"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := pexectest.Command("kill-self", strconv.Itoa(int(tc.sig)))
			got := pexectest.Run(testContext(t), c)
			type view struct {
				Exit, ExitCode       int
				Signal, ProcessState string
			}
			want := view{-1, -1, tc.name, "signal: " + tc.sig.String()}
			if diff := cmp.Diff(want, view{got.Exit, c.ProcessState.ExitCode(), got.Signal, c.ProcessState.String()}); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
}

// Item 2, the settings: a helper gets SIGKILL as its parent-death signal;
// DieWithTestBinary gives it to another command; a signal the caller set
// is kept, and the caller's SysProcAttr, which may be shared, is not
// modified.
func TestDeathSignal(t *testing.T) {
	if got := pexectest.Command("sleep").SysProcAttr; got == nil || got.Pdeathsig != syscall.SIGKILL {
		t.Errorf("Command's SysProcAttr = %+v, want Pdeathsig SIGKILL", got)
	}
	shared := &syscall.SysProcAttr{Setpgid: true}
	tests := []struct {
		name string
		attr *syscall.SysProcAttr
		opts []pexectest.Option
		want syscall.Signal
	}{
		{"not asked", nil, nil, 0},
		{"asked", nil, []pexectest.Option{pexectest.DieWithTestBinary()}, syscall.SIGKILL},
		{"asked, SysProcAttr kept", shared, []pexectest.Option{pexectest.DieWithTestBinary()}, syscall.SIGKILL},
		{"the caller's signal", &syscall.SysProcAttr{Pdeathsig: syscall.SIGTERM}, []pexectest.Option{pexectest.DieWithTestBinary()}, syscall.SIGTERM},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := pexec.Command("true")
			c.SysProcAttr = tc.attr
			if o := pexectest.Run(testContext(t), c, tc.opts...); o != (pexectest.Outcome{}) {
				t.Fatalf("true: %v", o)
			}
			var got syscall.Signal
			if c.SysProcAttr != nil {
				got = c.SysProcAttr.Pdeathsig
			}
			if got != tc.want {
				t.Errorf("Pdeathsig = %v, want %v", got, tc.want)
			}
		})
	}
	if shared.Pdeathsig != 0 || !shared.Setpgid {
		t.Errorf("the caller's SysProcAttr was modified: %+v", shared)
	}
}
