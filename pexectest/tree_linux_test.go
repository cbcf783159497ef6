package pexectest_test

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/pexec-dev/pexec/pexec"
	"github.com/pexec-dev/pexec/pexectest"
)

// treeModes are the containments the tree tests run, each where the
// system allows it, and TreeNone, os/exec's behaviour, to show what they
// change.
var treeModes = []pexec.TreeMode{pexec.TreeCgroup, pexec.TreeGroup, pexec.TreeNone}

// skipTree skips t where mode cannot be used, or where pidfds are missing
// (the tests watch the grandchildren through pidfds).
func skipTree(t *testing.T, mode pexec.TreeMode) {
	t.Helper()
	if !pexec.Supported() {
		t.Skip("needs pidfds to watch the grandchildren")
	}
	if err := pexec.TreeSupport(mode); err != nil {
		if os.Geteuid() == 0 && !errors.Is(err, errors.ErrUnsupported) {
			t.Fatalf("%v unusable as root: %v", mode, err)
		}
		t.Skipf("no %v tree here: %v", mode, err)
	}
}

// startGrandparent starts helper name, which prints the PID of a sleeping
// grandchild, bound to tb by Start with the tree mode (set on the Cmd, as a
// caller may), and returns its Cmd and a Handle on the grandchild. The
// grandchild sleeps for an hour, so it is alive when opened: the PID is
// its own.
func startGrandparent(t *testing.T, tb testing.TB, name string, mode pexec.TreeMode, opts ...pexectest.Option) (*pexec.Cmd, *pexec.Handle) {
	t.Helper()
	c := pexectest.Command(name)
	c.Tree = mode
	if mode == pexec.TreeNone {
		opts = append(opts, pexectest.Tree(pexec.TreeNone))
	}
	out, err := c.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	pexectest.Start(tb, c, opts...)
	line, err := bufio.NewReader(out).ReadString('\n')
	gpid, _ := strconv.Atoi(strings.TrimSpace(line))
	if gpid <= 0 {
		t.Fatalf("%s: %q, %v", name, line, err)
	}
	g, err := pexec.Open(gpid)
	if err != nil {
		t.Fatalf("Open(%d): %v", gpid, err)
	}
	t.Cleanup(func() {
		g.Kill() // if nothing else did
		g.Close()
	})
	if got := c.Handle().Tree(); got != mode {
		t.Fatalf("Tree() = %v, want %v", got, mode)
	}
	return c, g
}

// gone waits for the process of h to exit, failing t if it does not.
func gone(t *testing.T, h *pexec.Handle, what string) {
	t.Helper()
	select {
	case <-h.Done():
	case <-time.After(testTimeout):
		t.Errorf("%s %d still runs", what, h.Pid())
	}
}

// A process that ends and leaves an orphaned grandchild behind in its tree:
// Start's clean-up reports the grandchild as leaked, naming it under the
// process, and kills it, whether the process ended by itself or the test
// waited for it; ReportOnly makes the report a log. Without a tree
// (TreeNone) the grandchild is out of reach: nothing is reported and it
// survives the clean-up.
func TestStartTreeLeftBehind(t *testing.T) {
	path, _ := exe(t)
	for _, mode := range treeModes {
		for _, tc := range []struct {
			name       string
			waited     bool // the test waits for the process
			reportOnly bool
		}{
			{"exited", false, false},
			{"waited", true, false},
			{"report only", false, true},
		} {
			t.Run(mode.String()+"/"+tc.name, func(t *testing.T) {
				skipTree(t, mode)
				tb := &fakeTB{TB: t}
				var opts []pexectest.Option
				if tc.reportOnly {
					opts = append(opts, pexectest.ReportOnly())
				}
				c, g := startGrandparent(t, tb, "orphan", mode, append(opts, pexectest.MaxWait(0))...)
				if tc.waited {
					if err := c.Wait(); err != nil {
						t.Fatal(err)
					}
				} else if _, err := c.Handle().WaitContext(testContext(t)); err != nil {
					t.Fatal(err)
				}
				if !g.Alive() {
					t.Fatal("the grandchild died with its parent")
				}
				tb.runCleanups()
				if c.ProcessState == nil {
					t.Error("not reaped after the clean-up")
				}
				report := tb.errors()
				if tc.reportOnly {
					report = tb.logged()
					if tb.errors() != "" {
						t.Errorf("errors with ReportOnly: %s", tb.errors())
					}
				}
				if mode == pexec.TreeNone {
					if report != "" || tb.errors() != "" {
						t.Errorf("reported without a tree:\n%s%s", report, tb.errors())
					}
					if !g.Alive() {
						t.Error("the grandchild was killed without a tree")
					}
					return
				}
				want := fmt.Sprintf("pexectest: 1 process tree left behind by a process that ended (found at the clean-up of TestFake); killed now:\n"+
					"    pid %d, exited (exit status 0); its tree (%v) is not empty: helper \"orphan\": %s -test.run=^$ --; started by TestFake\n"+
					"        pid %d, running: helper \"sleep\": %s -test.run=^$ --; started by TestFake\n", c.Process.Pid, mode, path, g.Pid(), path)
				if report != want {
					t.Errorf("reported:\n%s\nwant:\n%s", report, want)
				}
				gone(t, g, "the orphaned grandchild")
				select {
				case <-c.Handle().TreeDone():
				default:
					t.Error("TreeDone not closed after the clean-up")
				}
			})
		}
	}
}

// A process that still runs at the clean-up is stopped with its whole
// tree: its grandchild dies with it, and that is no leak. Without a tree
// the grandchild survives, orphaned.
func TestStartTreeStopped(t *testing.T) {
	for _, mode := range treeModes {
		t.Run(mode.String(), func(t *testing.T) {
			skipTree(t, mode)
			tb := &fakeTB{TB: t}
			c, g := startGrandparent(t, tb, "grandchild", mode)
			tb.runCleanups()
			if got := tb.errors(); got != "" {
				t.Errorf("errors: %s", got)
			}
			if c.ProcessState == nil || c.ProcessState.String() != "signal: terminated" {
				t.Errorf("ended with %v, want signal: terminated", c.ProcessState)
			}
			if mode == pexec.TreeNone {
				if !g.Alive() {
					t.Error("the grandchild was stopped without a tree")
				}
				return
			}
			gone(t, g, "the grandchild")
		})
	}
}

// Start gives a Cmd left at TreeNone the Tree option's mode, TreeAuto by
// default, and keeps a mode the caller set.
func TestStartTreeDefault(t *testing.T) {
	if !pexec.Supported() {
		t.Skip("trees need pidfds")
	}
	tests := []struct {
		name string
		set  pexec.TreeMode // on the Cmd
		opts []pexectest.Option
		want pexec.TreeMode // in Cmd.Tree after Start
	}{
		{"default", pexec.TreeNone, nil, pexec.TreeAuto},
		{"opted out", pexec.TreeNone, []pexectest.Option{pexectest.Tree(pexec.TreeNone)}, pexec.TreeNone},
		{"option", pexec.TreeNone, []pexectest.Option{pexectest.Tree(pexec.TreeGroup)}, pexec.TreeGroup},
		{"set on the Cmd", pexec.TreeGroup, []pexectest.Option{pexectest.Tree(pexec.TreeNone)}, pexec.TreeGroup},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := pexectest.Command("sleep")
			c.Tree = tc.set
			pexectest.Start(t, c, tc.opts...)
			if c.Tree != tc.want {
				t.Errorf("Cmd.Tree = %v, want %v", c.Tree, tc.want)
			}
			got := c.Handle().Tree()
			if tc.want == pexec.TreeAuto {
				if got != pexec.TreeCgroup && got != pexec.TreeGroup {
					t.Errorf("Handle.Tree() = %v, want cgroup or group", got)
				}
			} else if got != tc.want {
				t.Errorf("Handle.Tree() = %v, want %v", got, tc.want)
			}
		})
	}
}

// A tree that Start's clean-up could not empty is reported by the leak
// checks, with its members, and killed.
func TestVerifyNoneTree(t *testing.T) {
	for _, mode := range treeModes[:2] {
		t.Run(mode.String(), func(t *testing.T) {
			skipTree(t, mode)
			c := pexectest.Command("orphan")
			c.Tree = mode
			out, err := c.StdoutPipe()
			if err != nil {
				t.Fatal(err)
			}
			if err := c.Start(); err != nil {
				t.Fatal(err)
			}
			pexectest.KeepTree(c, "TestSomething")
			line, _ := bufio.NewReader(out).ReadString('\n')
			gpid, _ := strconv.Atoi(strings.TrimSpace(line))
			if err := c.Wait(); err != nil || gpid <= 0 {
				t.Fatalf("orphan: %q, %v", line, err)
			}
			g, err := pexec.Open(gpid)
			if err != nil {
				t.Fatal(err)
			}
			defer func() {
				g.Kill()
				g.Close()
			}()
			leaks, err := pexectest.Find(pexectest.MaxWait(0))
			if err != nil || len(leaks) != 1 || len(leaks[0].Descendants) != 1 || leaks[0].Descendants[0].PID != gpid {
				t.Fatalf("Find: %+v, %v; want the tree with pid %d", leaks, err, gpid)
			}
			if !g.Alive() {
				t.Fatal("Find killed the grandchild")
			}
			tb := &fakeTB{TB: t}
			pexectest.VerifyNone(tb, pexectest.MaxWait(0))
			want := fmt.Sprintf("pexectest: 1 process tree left behind by a process that ended (found at the end of TestFake); killed now:\n"+
				"    pid %d, exited (exit status 0); its tree (%v) is not empty: helper \"orphan\": ", c.Process.Pid, mode)
			if got := tb.errors(); !strings.Contains(got, want) || !strings.Contains(got, fmt.Sprintf("; started by TestSomething\n        pid %d, running: helper \"sleep\"", gpid)) {
				t.Errorf("VerifyNone reported:\n%s\nwant it to start with:\n%s", got, want)
			}
			gone(t, g, "the orphaned grandchild")
			// Once killed, the tree is forgotten.
			tb = &fakeTB{TB: t}
			pexectest.VerifyNone(tb, pexectest.MaxWait(0))
			if got := tb.errors(); got != "" {
				t.Errorf("VerifyNone after the kill: %s", got)
			}
		})
	}
}

// Start logs which tree the process got and, for a process group, why
// there is no cgroup and what escapes a group.
func TestStartTreeNote(t *testing.T) {
	if !pexec.Supported() {
		t.Skip("trees need pidfds")
	}
	cgroupErr := pexec.TreeSupport(pexec.TreeCgroup)
	auto := `runs in a cgroup tree: it holds every descendant`
	if cgroupErr != nil {
		auto = fmt.Sprintf(`runs in a process-group tree, not a cgroup tree (%v): a descendant that calls setsid or setpgid escapes it; RequireTree(pexec.TreeCgroup) would skip the test instead`, cgroupErr)
	}
	tests := []struct {
		name string
		opts []pexectest.Option
		want string // after the helper's name and PID
	}{
		{"default", nil, auto},
		{"group", []pexectest.Option{pexectest.Tree(pexec.TreeGroup)}, "runs in a process-group tree, as asked: a descendant that calls setsid or setpgid escapes it"},
		{"none", []pexectest.Option{pexectest.Tree(pexec.TreeNone)}, "runs without a tree, as asked: its descendants are on their own"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tb := &fakeTB{TB: t}
			c := pexectest.Command("sleep", "1h")
			pexectest.Start(tb, c, tc.opts...)
			defer tb.runCleanups()
			want := fmt.Sprintf(`pexectest: Start: helper "sleep" ["1h"] (pid %d) %s`, c.Process.Pid, tc.want)
			if got := tb.startNotes(); got != want {
				t.Errorf("logged:\n%s\nwant:\n%s", got, want)
			}
		})
	}
}
