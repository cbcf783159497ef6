package pexec_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/pexec-dev/pexec/internal/testhelper"
	"github.com/pexec-dev/pexec/pexec"
)

// What a tree costs in descriptors (issue 18, item 8): the README and
// MIGRATION say it, this checks it.

func init() {
	testhelper.Register("tree-fds", treeFDsHelper)
}

// treeFDsReport is what the tree-fds helper counted: the descriptors
// pexec kept of its own once it had started and waited for a first child
// (Own); those it held beyond that while the children ran, by kind
// (pidfds, a cgroup leaf's, any other); and the number beyond that once
// they were reaped and their trees were empty (After).
type treeFDsReport struct {
	Own                 int
	Pidfds, Leaf, Other int
	After               int
	Err                 string
}

// fdKinds counts the descriptors open in this process: pidfds, those of
// pexec's cgroup leaves (a directory, a cgroup.events), and the others.
func fdKinds() (pidfds, leaf, other int, err error) {
	ents, err := os.ReadDir("/proc/self/fd")
	for _, e := range ents {
		switch l, _ := os.Readlink("/proc/self/fd/" + e.Name()); {
		case l == "anon_inode:[pidfd]":
			pidfds++
		case strings.Contains(l, "/pexec-"):
			leaf++
		default:
			other++
		}
	}
	return pidfds, leaf, other, err
}

// treeFDsHelper (mode, n) starts n children of sleep with Cmd.Tree mode,
// counts the descriptors while they run, kills them and their trees,
// reaps them, waits for the trees to empty, and counts again. It runs in
// a process of its own, so that no other test's descriptors come or go
// during the count.
func treeFDsHelper(args []string) int {
	var rep treeFDsReport
	fail := func(err error) int {
		rep.Err = err.Error()
		return testhelper.Report(rep)
	}
	var mode pexec.TreeMode
	for _, m := range []pexec.TreeMode{pexec.TreeNone, pexec.TreeGroup, pexec.TreeCgroup} {
		if m.String() == args[0] {
			mode = m
		}
	}
	n, err := strconv.Atoi(args[1])
	if err != nil {
		return fail(err)
	}
	run := func(c *pexec.Cmd) error {
		c.Tree = mode
		err := c.Start()
		if err == nil && c.Handle().Tree() != mode {
			err = fmt.Errorf("%v got tree %v; want %v", c, c.Handle().Tree(), mode)
		}
		return err
	}
	// What pexec opens once per process is opened now: the null device,
	// the clean-up of stale leaves (TreeCgroup), and the exit poller, which
	// a wait that must block sets up.
	_, _, other00, err := fdKinds()
	if err != nil {
		return fail(err)
	}
	warm := pexec.Command("sleep", "60")
	if err := run(warm); err != nil {
		return fail(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	_, err = warm.Handle().WaitContext(ctx)
	cancel()
	if !errors.Is(err, context.DeadlineExceeded) {
		return fail(fmt.Errorf("warm-up wait: %v; want the deadline", err))
	}
	warm.Process.Kill()
	warm.Wait()
	<-warm.Handle().TreeDone()
	pidfds0, leaf0, other0, err := fdKinds()
	if err != nil {
		return fail(err)
	}
	rep.Own = other0 - other00
	cmds := make([]*pexec.Cmd, 0, n)
	defer func() {
		for _, c := range cmds {
			c.Process.Kill()
			c.Wait()
		}
	}()
	for range n {
		c := pexec.Command("sleep", "60")
		if err := run(c); err != nil {
			return fail(err)
		}
		cmds = append(cmds, c)
	}
	pidfds, leaf, other, err := fdKinds()
	if err != nil {
		return fail(err)
	}
	rep.Pidfds, rep.Leaf, rep.Other = pidfds-pidfds0, leaf-leaf0, other-other0
	for _, c := range cmds {
		h := c.Handle()
		if mode == pexec.TreeNone {
			h.Kill()
		} else {
			h.KillTree()
		}
		c.Wait()
		<-h.TreeDone()
	}
	cmds = nil
	pidfds, leaf, other, err = fdKinds()
	if err != nil {
		return fail(err)
	}
	rep.After = pidfds + leaf + other - (pidfds0 + leaf0 + other0)
	return testhelper.Report(rep)
}

// TestTreeDescriptors: a child costs one descriptor while it runs (its
// os.Process's pidfd, which its Handle uses); a TreeGroup tree one more
// (a duplicate of the leader's pidfd, which outlives the leader's reap); a
// TreeCgroup tree two more (the leaf's directory and its cgroup.events).
// pexec keeps four of its own, whatever the number of children (the exit
// poller's epoll instance and eventfd, the null device read-only and
// write-only), and one more while waiters are parked (the epoll instance,
// duplicated for the netpoller). All the others are closed once the child
// is reaped and its tree is empty.
func TestTreeDescriptors(t *testing.T) {
	skipNoPidfd(t)
	const n = 20
	for _, tc := range []struct {
		mode         pexec.TreeMode
		pidfds, leaf int // per live child
	}{
		{pexec.TreeNone, 1, 0},
		{pexec.TreeGroup, 2, 0},
		{pexec.TreeCgroup, 1, 2},
	} {
		t.Run(tc.mode.String(), func(t *testing.T) {
			skipTree(t, tc.mode)
			var rep treeFDsReport
			testhelper.RunReport(waitTestContext(t), t, nil, &rep, "tree-fds", tc.mode.String(), strconv.Itoa(n))
			t.Logf("pexec's own: %d; %d live children with tree %v: %d pidfds, %d leaf descriptors, %d others more; after: %d", rep.Own, n, tc.mode, rep.Pidfds, rep.Leaf, rep.Other, rep.After)
			want := treeFDsReport{Own: 4, Pidfds: n * tc.pidfds, Leaf: n * tc.leaf, Other: min(rep.Other, 1)}
			if diff := cmp.Diff(want, rep); diff != "" {
				t.Errorf("descriptors (-want +got):\n%s", diff)
			}
		})
	}
}
