package pexectest

import (
	"errors"
	"os"
	"os/signal"
	"runtime"
	"strconv"
	"strings"
	"sync/atomic"

	"golang.org/x/sys/unix"

	"github.com/pexec-dev/pexec/internal/procfs"
	"github.com/pexec-dev/pexec/pexec"
)

// Orphans. A process whose parent exits is reparented to the nearest
// ancestor that is a child subreaper (PR_SET_CHILD_SUBREAPER), or to init.
// Main makes the test process a subreaper, so that what a helper or a
// program double-forks comes back to it as a child, where the leak checks
// see it, and is not lost under init.
//
// An adopted orphan must be told from the test's own children, which their
// Cmd reaps, so that the clean-up never reaps a child that a Cmd waits
// for. The kernel gives an orphan to the subreaper's first live thread, its
// main thread, while a child is the child of the thread that forked it.
// pexectest keeps the main thread for the main goroutine (init below), and
// Main runs the tests on another goroutine, so no test forks on the main
// thread: an orphan is a child of the main thread that was not one when
// Main started (TestMain may have started processes). The one exception is
// the child of a thread that exited (a goroutine that locked its thread
// and returned), which the kernel moves to the main thread too: it is
// reported as an orphan if it leaks. An orphan that has exited is reaped
// at once, as init would, but only if no pidfd of the test process refers
// to it: Go's os.Process holds a pidfd on every child it starts, until it
// is reaped, and so does pexec, so a moved child is never reaped behind
// its Cmd's back (nor an orphan that a test watches through a pidfd of its
// own, until it closes it). Orphans that run are leaks, which the checks
// report and kill.

// init keeps the main goroutine, which runs Main, on the main thread, and
// every other goroutine off it (see above). Go keeps a goroutine that
// locks its thread during initialization on the main thread.
func init() { runtime.LockOSThread() }

// adoption is set up once, by Main in the test process.
var adoption struct {
	on  atomic.Bool
	own map[procKey]bool // the main thread's children when Main started
	err error            // why the test process does not adopt orphans
}

// adoptOrphans makes the test process a child subreaper, unless o says
// not to or orphans could not be told from children here (no pidfds, no
// /proc/<pid>/task/<tid>/children files, Main not on the main thread), and
// starts reaping the adopted orphans that exit.
func adoptOrphans(o *options) {
	switch {
	case o.noSubreaper:
		adoption.err = errors.New("NoSubreaper")
	case unix.Gettid() != os.Getpid():
		adoption.err = errors.New("Main does not run on the main thread")
	case !hasChildrenFiles():
		adoption.err = errors.New("no /proc/<pid>/task/<tid>/children files (CONFIG_PROC_CHILDREN)")
	case !pexec.Supported():
		adoption.err = errors.New("no pidfds")
	}
	if adoption.err != nil {
		return
	}
	own := map[procKey]bool{}
	for pid := range mainThreadChildren() {
		if st, err := procfs.ReadStat(pid); err == nil {
			own[procKey{pid, st.Start}] = true
		}
	}
	if err := unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0); err != nil {
		adoption.err = os.NewSyscallError("prctl(PR_SET_CHILD_SUBREAPER)", err)
		return
	}
	adoption.own = own
	adoption.on.Store(true)
	c := make(chan os.Signal, 1)
	signal.Notify(c, unix.SIGCHLD)
	go func() {
		for range c {
			reapOrphans()
		}
	}()
}

// mainThreadChildren returns the children of the test process's main
// thread: where the kernel puts the orphans it adopts.
func mainThreadChildren() map[int]bool {
	self := strconv.Itoa(os.Getpid())
	b, _ := os.ReadFile("/proc/" + self + "/task/" + self + "/children")
	out := map[int]bool{}
	for _, w := range strings.Fields(string(b)) {
		if n, err := strconv.Atoi(w); err == nil {
			out[n] = true
		}
	}
	return out
}

// pidfdTargets returns the PIDs that the pidfds open in the test process
// refer to.
func pidfdTargets() map[int]bool {
	out := map[int]bool{}
	ents, _ := os.ReadDir("/proc/self/fd")
	for _, e := range ents {
		link, err := os.Readlink("/proc/self/fd/" + e.Name())
		if err != nil || !strings.Contains(link, "pidfd") {
			continue
		}
		b, err := os.ReadFile("/proc/self/fdinfo/" + e.Name())
		if err != nil {
			continue
		}
		for line := range strings.Lines(string(b)) {
			if v, ok := strings.CutPrefix(line, "Pid:"); ok {
				if n, err := strconv.Atoi(strings.TrimSpace(v)); err == nil && n > 0 {
					out[n] = true
				}
			}
		}
	}
	return out
}

// orphanSet tells adopted orphans among the test process's children.
type orphanSet struct {
	main   map[int]bool // the main thread's children
	pidfds map[int]bool // the targets of the test process's pidfds
}

// findOrphans returns what tells the adopted orphans now, or nil if the
// test process does not adopt them.
func findOrphans() *orphanSet {
	if !adoption.on.Load() {
		return nil
	}
	return &orphanSet{main: mainThreadChildren(), pidfds: pidfdTargets()}
}

// has reports whether the child k is an adopted orphan.
func (s *orphanSet) has(k procKey) bool {
	return s != nil && s.main[k.pid] && !adoption.own[k]
}

// reapable reports whether the child k, which has exited, is an adopted
// orphan that nobody else may reap.
func (s *orphanSet) reapable(k procKey) bool {
	return s.has(k) && !s.pidfds[k.pid]
}

// reapOrphans reaps the adopted orphans that have exited.
func reapOrphans() {
	self := os.Getpid()
	var zombies []procKey
	for pid := range mainThreadChildren() {
		if st, err := procfs.ReadStat(pid); err == nil && st.PPid == self && st.Exited() {
			zombies = append(zombies, procKey{pid, st.Start})
		}
	}
	if len(zombies) == 0 {
		return
	}
	s := findOrphans()
	for _, k := range zombies {
		if s.reapable(k) {
			reapOrphan(k)
		}
	}
}

// reapOrphan reaps the adopted orphan k, which has exited.
func reapOrphan(k procKey) {
	t, ok, _ := open(k.pid, k.start, os.Getpid())
	if !ok {
		return
	}
	defer t.close()
	reap(t, 0)
}

// inKnownTree reports whether process pid, with stat st, is in the tree
// of a process that Start bound to a test whose clean-up has not run (that
// clean-up answers for it), or in a tree that a clean-up could not empty
// (reported as such).
func inKnownTree(pid int, st procfs.Stat) bool {
	var trees []*tree
	for _, b := range boundChildren() {
		if b.pending && b.tree != nil {
			trees = append(trees, b.tree)
		}
	}
	leftTrees.Lock()
	trees = append(trees, leftTrees.l...)
	leftTrees.Unlock()
	var cg string
	for _, tr := range trees {
		switch {
		case tr.mode == pexec.TreeGroup && st.Pgrp == tr.pid:
			return true
		case tr.mode == pexec.TreeCgroup && tr.leaf.dir != "":
			if cg == "" {
				cg, _ = procfs.CgroupPath(pid)
			}
			if cg != "" && tr.leaf.has(cg) {
				return true
			}
		}
	}
	return false
}
