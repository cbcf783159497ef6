package pexectest

import (
	"errors"
	"fmt"
	"github.com/pexec-dev/pexec/internal/procfs"
	"os"
	"path"
	"slices"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/pexec-dev/pexec/internal/cgroup"
	"github.com/pexec-dev/pexec/pexec"
)

// leafRef locates the cgroup of a TreeCgroup tree: pexec makes it for the
// process and does not say where, so Start reads it from the process's
// /proc/<pid>/cgroup while the process is its unreaped child (whose PID is
// its own), at once after the spawn put it there (clone3 with
// CLONE_INTO_CGROUP).
type leafRef struct {
	rel string // the cgroup's path, as /proc/<pid>/cgroup shows it
	dir string // its directory
}

// findLeaf returns where the cgroup of the TreeCgroup child pid is, or a
// zero leafRef if it is not a leaf that pexec made under the test
// process's own cgroup.
func findLeaf(pid int) leafRef {
	rel, ok := procfs.CgroupPath(pid)
	_, own, err := cgroup.Root()
	if !ok || err != nil || !strings.HasPrefix(path.Base(rel), "pexec-") {
		return leafRef{}
	}
	dir := path.Join(own, path.Base(rel))
	var st unix.Stat_t
	if unix.Stat(dir, &st) != nil {
		return leafRef{}
	}
	return leafRef{rel: rel, dir: dir}
}

// has reports whether cgroup path rel is the leaf l or below it.
func (l leafRef) has(rel string) bool {
	return rel == l.rel || strings.HasPrefix(rel, l.rel+"/")
}

// treeMembers lists the live processes of the tree: with TreeCgroup, those
// in its cgroup's cgroup.procs and in the cgroups below; with TreeGroup,
// those of its process group, found by scanning /proc. Each is checked to
// be a member again after it is described, with the same start time, so
// that a PID reused meanwhile is not named. The list is a snapshot: the
// tree may fork meanwhile.
func treeMembers(tr *tree) ([]member, error) {
	var pids []int
	var isMember func(pid int, st procfs.Stat) bool
	switch tr.mode {
	case pexec.TreeCgroup:
		if tr.leaf.dir == "" {
			return nil, fmt.Errorf("pexectest: the cgroup of pid %d was not found at its start: %w", tr.pid, errors.ErrUnsupported)
		}
		var err error
		if pids, err = cgroupProcs(tr.leaf.dir); err != nil {
			return nil, err
		}
		isMember = func(pid int, _ procfs.Stat) bool {
			rel, ok := procfs.CgroupPath(pid)
			return ok && tr.leaf.has(rel)
		}
	case pexec.TreeGroup:
		ents, err := os.ReadDir("/proc")
		if err != nil {
			return nil, err
		}
		for _, e := range ents {
			if pid, err := strconv.Atoi(e.Name()); err == nil {
				pids = append(pids, pid)
			}
		}
		isMember = func(_ int, st procfs.Stat) bool { return st.Pgrp == tr.pid }
	default:
		return nil, nil
	}
	slices.Sort(pids)
	var out []member
	for _, pid := range slices.Compact(pids) {
		st, err := procfs.ReadStat(pid)
		if err != nil || st.Exited() || !isMember(pid, st) {
			continue
		}
		if len(out) == maxDescendants {
			break
		}
		l := describe(pid, st)
		again, err := procfs.ReadStat(pid)
		if err != nil || again.Start != st.Start || !isMember(pid, again) {
			continue // gone, or another process now
		}
		out = append(out, member{Leak: l, key: procKey{pid, st.Start}, ppid: st.PPid})
	}
	return out, nil
}

// cgroupProcs returns the PIDs in cgroup.procs of the cgroup dir and of the
// cgroups below it (a member may make cgroups of its own there). A cgroup
// that is gone has none.
func cgroupProcs(dir string) ([]int, error) {
	b, err := os.ReadFile(dir + "/cgroup.procs")
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var pids []int
	for _, w := range strings.Fields(string(b)) {
		if n, err := strconv.Atoi(w); err == nil {
			pids = append(pids, n)
		}
	}
	ents, _ := os.ReadDir(dir)
	for _, e := range ents {
		if e.IsDir() {
			sub, err := cgroupProcs(dir + "/" + e.Name())
			if err != nil {
				return nil, err
			}
			pids = append(pids, sub...)
		}
	}
	return pids, nil
}

// reapMembers reaps the killed members of a tree that were children of the
// test process: it adopts orphans when it is a child subreaper.
// killMembers kills each member through a pidfd, if it is still the
// process that was listed (the same start time, read after the pidfd was
// opened): for a tree that KillTree cannot reach as a whole.
func killMembers(members []member) {
	for _, m := range members {
		fd, err := unix.PidfdOpen(m.key.pid, 0)
		if err != nil {
			continue // gone; or no pidfds, and then no race-free kill
		}
		if st, err := procfs.ReadStat(m.key.pid); err == nil && st.Start == m.key.start && !st.Exited() {
			unix.PidfdSendSignal(fd, unix.SIGKILL, nil, 0)
		}
		unix.Close(fd)
	}
}

func reapMembers(members []member) {
	self := os.Getpid()
	for _, m := range members {
		if m.ppid != self {
			continue
		}
		if t, ok, _ := open(m.key.pid, m.key.start, self); ok {
			reap(t, killWait)
			t.close()
		}
	}
}
