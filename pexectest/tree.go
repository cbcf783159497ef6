package pexectest

import (
	"context"
	"errors"
	"fmt"
	"os"
	"slices"
	"strconv"
	"sync"
	"syscall"
	"time"

	"github.com/pexec-dev/pexec/pexec"
)

// tree is the process tree (see [pexec.Cmd.Tree]) of a process that Start
// started with one.
type tree struct {
	h       *pexec.Handle
	mode    pexec.TreeMode // TreeCgroup or TreeGroup
	pid     int            // the process's PID; with TreeGroup, the group's ID
	command string         // the process's command line, from its Cmd
	helper  string         // the process's helper, if Command made its Cmd
	test    string         // the test that started it
	leaf    leafRef        // TreeCgroup: where the cgroup is, found at Start
}

// member is a process found in a tree.
type member struct {
	Leak
	key  procKey
	ppid int
}

// newTree returns the tree of cmd's process, just started, or nil if it
// has none.
func newTree(cmd *pexec.Cmd, test string) *tree {
	h := cmd.Handle()
	mode := h.Tree()
	if mode == pexec.TreeNone {
		return nil
	}
	tr := &tree{h: h, mode: mode, pid: cmd.Process.Pid, command: cmd.String(), helper: helperName(cmd), test: test}
	if mode == pexec.TreeCgroup {
		tr.leaf = findLeaf(tr.pid)
	}
	return tr
}

// empty reports whether every process of the tree has exited.
func (tr *tree) empty() bool {
	select {
	case <-tr.h.TreeDone():
		return true
	default:
		return false
	}
}

// settle waits up to d for the tree to empty, and reports whether it did.
func (tr *tree) settle(d time.Duration) bool {
	if tr.empty() || d <= 0 {
		return tr.empty()
	}
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case <-tr.h.TreeDone():
		return true
	case <-timer.C:
		return false
	}
}

// leftBehind checks the tree of a process that has ended: if it does not
// empty within o.maxWait, leftBehind lists its members, kills them, and
// returns them as a leak. The error says why the tree could not be listed
// or emptied. A nil tree has nothing left.
func (tr *tree) leftBehind(o *options) (*leaked, error) {
	if tr == nil || tr.settle(o.maxWait) {
		return nil, nil
	}
	members, lerr := treeMembers(tr)
	l := tr.leak(members)
	kerr := tr.kill(members)
	if kerr == nil && lerr == nil && len(members) == 0 {
		return nil, nil // it emptied between the wait and the listing
	}
	if lerr != nil {
		lerr = fmt.Errorf("listing the processes of its tree: %w", lerr)
	}
	return &l, errors.Join(lerr, kerr)
}

// leak describes the tree, whose process has ended, with its members.
func (tr *tree) leak(members []member) leaked {
	state := "exited"
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	if st, err := tr.h.WaitContext(ctx); err == nil {
		state += " (" + statusText(st) + ")"
	}
	cancel()
	l := leaked{
		Leak: Leak{
			PID:     tr.pid,
			Command: tr.command,
			Helper:  tr.helper,
			State:   state + "; its tree (" + tr.mode.String() + ") is not empty",
			Test:    tr.test,
		},
		tree:    tr,
		members: members,
	}
	for _, m := range members {
		l.Descendants = append(l.Descendants, m.Leak)
	}
	return l
}

// statusText words a status as the leak reports do: "exit status 3",
// "signal SIGKILL".
func statusText(st *pexec.Status) string {
	return howEnded(st.Signaled(), st.Signal(), st.CoreDump(), st.ExitCode())
}

// howEnded words an end: "exit status 3", "signal SIGKILL (core dumped)".
func howEnded(signaled bool, sig syscall.Signal, core bool, code int) string {
	if !signaled {
		return "exit status " + strconv.Itoa(code)
	}
	s := "signal " + signalName(sig)
	if core {
		s += " (core dumped)"
	}
	return s
}

// kill kills every process of the tree with KillTree and waits for the
// tree to empty; it then reaps the members that were children of the test
// process (which happens when it is a child subreaper).
func (tr *tree) kill(members []member) error {
	wait := killWait
	switch err := tr.h.KillTree(); {
	case errors.Is(err, os.ErrProcessDone):
		// Empty but for zombies: there is no SIGKILL to wait for.
		wait = time.Second
	case errors.Is(err, errors.ErrUnsupported):
		// A group whose leader has been reaped, in PID mode or on a
		// kernel without PIDFD_SIGNAL_PROCESS_GROUP (before 6.9): pexec
		// cannot signal it as a whole race-free. Kill the members found,
		// each through a pidfd.
		killMembers(members)
	case err != nil:
		return fmt.Errorf("killing its tree: %w", err)
	}
	if !tr.settle(wait) {
		return fmt.Errorf("its tree (%v) is not empty %v after KillTree", tr.mode, wait)
	}
	reapMembers(members)
	return nil
}

// leftTrees holds the trees that Start's clean-up could not empty, for the
// leak checks to report and kill again.
var leftTrees struct {
	sync.Mutex
	l []*tree
}

// keepTree hands tr, which could not be emptied, to the leak checks.
func keepTree(tr *tree) {
	if tr == nil {
		return
	}
	leftTrees.Lock()
	defer leftTrees.Unlock()
	if !slices.Contains(leftTrees.l, tr) {
		leftTrees.l = append(leftTrees.l, tr)
	}
}

// dropTree forgets tr once it is empty.
func dropTree(tr *tree) {
	leftTrees.Lock()
	defer leftTrees.Unlock()
	leftTrees.l = slices.DeleteFunc(leftTrees.l, func(t *tree) bool { return t == tr })
}

// scanTrees returns, as leaks, the trees that Start's clean-up could not
// empty and that are still not empty.
func scanTrees() []leaked {
	leftTrees.Lock()
	trees := slices.Clone(leftTrees.l)
	leftTrees.Unlock()
	var out []leaked
	for _, tr := range trees {
		if tr.empty() {
			dropTree(tr)
			continue
		}
		members, _ := treeMembers(tr)
		out = append(out, tr.leak(members))
	}
	return out
}

// killTreeLeak kills a tree found by scanTrees.
func killTreeLeak(l leaked) error {
	if err := l.tree.kill(l.members); err != nil {
		return err
	}
	dropTree(l.tree)
	return nil
}
