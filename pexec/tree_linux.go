package pexec

import (
	"errors"
	"fmt"
	"os"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/pexec-dev/pexec/internal/cgroup"
	"github.com/pexec-dev/pexec/internal/procfs"
	"golang.org/x/sys/unix"
)

// Trees on Linux: a cgroup v2 leaf (TreeCgroup) or a process group
// (TreeGroup). A leaf is created under the caller's own cgroup, named after
// the caller (pexec-<pid>-<id>-<n>), and removed once it is empty; leaves
// that a crashed pexec process left behind are removed, when empty, the
// first time a pexec process of the same cgroup makes a leaf.

// treePlan is the containment chosen for a Start, before the child exists.
type treePlan struct {
	mode TreeMode
	leaf *cgroup.Leaf // TreeCgroup
}

// cleanStale removes, once per process, the empty leaves of pexec
// processes that are gone.
var cleanStale = sync.OnceFunc(func() { cgroup.CleanStale() })

// TreeSupport reports whether mode can be used by a Cmd started now, and
// if not, why: an error wrapping [os.ErrPermission] (cgroups not writable:
// not root, no delegated subtree), [errors.ErrUnsupported] (no cgroup2
// mount, no clone3 into a cgroup, no pidfds; TreeJob, which is Windows')
// or [os.ErrInvalid] (not a TreeMode). TreeNone and TreeAuto are always
// usable; TreeAuto falls back from TreeCgroup to TreeGroup for the reason
// TreeSupport(TreeCgroup) gives.
//
// The answer for TreeCgroup is found once, by trying, and kept for the
// process's life, except a transient failure: one for want of a resource
// at that moment (no descriptor free, EMFILE or ENFILE; ENOMEM or ENOBUFS;
// EAGAIN, a pids limit; EINTR). That error wraps the errno (so
// errors.Is(err, syscall.EMFILE) holds) and none of the three sentinels,
// says it is transient, and is not kept: the next call, and the next
// TreeAuto Start, try again.
func TreeSupport(mode TreeMode) error {
	switch mode {
	case TreeNone, TreeAuto, TreeGroup:
		return nil
	case TreeCgroup:
		return cgroup.Supported()
	case TreeJob:
		return fmt.Errorf("pexec: Cmd.Tree job needs Windows: %w", errors.ErrUnsupported)
	}
	return fmt.Errorf("pexec: TreeMode(%d): %w", int(mode), os.ErrInvalid)
}

// planTree chooses the containment of a child started with attr and
// returns the SysProcAttr to start it with: attr itself without a tree or
// parent-death signal to add, else a copy (the caller's is never
// modified). dieWithParent (Cmd.DieWithParent) adds SIGKILL as the child's
// parent-death signal, unless attr has one.
func planTree(mode TreeMode, dieWithParent bool, attr *syscall.SysProcAttr) (*treePlan, *syscall.SysProcAttr, error) {
	if dieWithParent && (attr == nil || attr.Pdeathsig == 0) {
		var cp syscall.SysProcAttr
		if attr != nil {
			cp = *attr
		}
		cp.Pdeathsig = syscall.SIGKILL
		attr = &cp
	}
	switch mode {
	case TreeNone:
		return nil, attr, nil
	case TreeAuto, TreeGroup, TreeCgroup:
	default:
		return nil, nil, TreeSupport(mode)
	}
	var cp syscall.SysProcAttr
	if attr != nil {
		cp = *attr
	}
	if mode == TreeCgroup || mode == TreeAuto {
		leaf, err := newLeaf(&cp)
		if err == nil {
			cp.UseCgroupFD, cp.CgroupFD = true, leaf.FD()
			return &treePlan{mode: TreeCgroup, leaf: leaf}, &cp, nil
		}
		if mode == TreeCgroup {
			return nil, nil, fmt.Errorf("pexec: Cmd.Tree is TreeCgroup: %w", err)
		}
	}
	switch {
	case cp.Setpgid && cp.Pgid != 0:
		err := fmt.Errorf("pexec: Cmd.Tree %v: SysProcAttr.Pgid %d puts the child in another process group: %w", mode, cp.Pgid, os.ErrInvalid)
		if mode == TreeAuto {
			return nil, attr, nil // no containment is possible; Tree() says TreeNone
		}
		return nil, nil, err
	case !cp.Setsid:
		// A session leader (Setsid) leads its own group already.
		cp.Setpgid, cp.Pgid = true, 0
	}
	return &treePlan{mode: TreeGroup}, &cp, nil
}

// newLeaf makes a cgroup leaf for a child started with cp.
func newLeaf(cp *syscall.SysProcAttr) (*cgroup.Leaf, error) {
	if cp.UseCgroupFD {
		return nil, fmt.Errorf("SysProcAttr.UseCgroupFD already puts the child in a cgroup of the caller's: %w", os.ErrInvalid)
	}
	if err := cgroup.Supported(); err != nil {
		return nil, err
	}
	cleanStale()
	return cgroup.New()
}

// abort undoes the plan of a Start that failed.
func (p *treePlan) abort() {
	if p != nil && p.leaf != nil {
		p.leaf.Remove()
	}
}

// attach gives h, the child's Handle, its tree. It cannot fail on Linux:
// the child is in its tree from its start.
func (p *treePlan) attach(h *Handle) error {
	if p == nil {
		return nil
	}
	if p.mode == TreeCgroup {
		t := &cgroupTree{leaf: p.leaf, empty: make(chan struct{})}
		h.tree = t
		go t.watch()
		return nil
	}
	t := &groupTree{pgid: h.pid, empty: make(chan struct{})}
	if h.mode == ModePidFD {
		// The group is signalled through a pidfd of the leader that
		// outlives the leader's reap (a Cmd child's Handle borrows the
		// os.Process's, which the reap closes): the group's members keep
		// the leader's struct pid, and so its group, reachable.
		h.control(func(fd int) {
			if d, err := unix.FcntlInt(uintptr(fd), unix.F_DUPFD_CLOEXEC, 0); err == nil {
				t.leader = &ownedFD{fd: d}
				runtime.AddCleanup(h, func(o *ownedFD) { o.close() }, t.leader)
			}
		})
	}
	h.tree = t
	return nil
}

// cgroupTree is a TreeCgroup child's tree: its leaf.
type cgroupTree struct {
	leaf  *cgroup.Leaf
	empty chan struct{} // closed once the leaf is empty (and removed)
	reg   atomic.Pointer[pollReg]
}

func (t *cgroupTree) mode() TreeMode               { return TreeCgroup }
func (t *cgroupTree) done(*Handle) <-chan struct{} { return t.empty }
func (t *cgroupTree) holds(h *Handle) bool         { return t.leaf.Holds(h.pid) }

// reaped waits, if the leaf is empty, until the watch has removed it, so
// that a program that ends right after Cmd.Wait leaves no directory
// behind. It reads cgroup.events through a descriptor of its own: only the
// watch may read the one the exit poller watches.
func (t *cgroupTree) reaped(*Handle) {
	if populated, err := t.leaf.PopulatedNow(); err == nil && !populated {
		<-t.empty
	}
}

func (t *cgroupTree) signal(h *Handle, sig syscall.Signal) error {
	var err error
	if sig == syscall.SIGKILL {
		err = t.leaf.Kill()
	} else {
		err = t.leaf.Signal(sig)
	}
	if errors.Is(err, os.ErrClosed) {
		return os.ErrProcessDone // emptied and removed
	}
	return err
}

// watch waits, on the exit poller, until the leaf is empty, then removes it
// and closes empty. It alone reads the leaf's kept cgroup.events
// descriptor: a read resets the change notice the poller waits for.
func (t *cgroupTree) watch() {
	defer close(t.empty)
	for {
		populated, err := t.leaf.Populated()
		if err != nil || !populated {
			break
		}
		var ch <-chan struct{}
		p, err := sharedExitPoller()
		if err == nil {
			ch, err = p.watch(t.leaf.EventsFD(), &t.reg, unix.EPOLLPRI)
		}
		if err != nil {
			// No poller (no descriptor free for it): poll(2) for a
			// while on this thread, then retry.
			fds := [1]unix.PollFd{{Fd: int32(t.leaf.EventsFD()), Events: unix.POLLPRI}}
			unix.Poll(fds[:], fallbackPollMsec)
			continue
		}
		p.wait(ch, nil, nil)
	}
	if r := t.reg.Load(); r != nil {
		if p := pollerPtr.Load(); p != nil {
			p.drop(t.leaf.EventsFD(), r)
		}
	}
	t.leaf.Remove()
}

// groupTree is a TreeGroup child's tree: the process group it leads.
type groupTree struct {
	pgid   int
	leader *ownedFD // the leader's pidfd (ModePidFD), closed once the group is empty
	once   sync.Once
	empty  chan struct{}
}

func (t *groupTree) mode() TreeMode { return TreeGroup }

// holds reports whether the leader is still in its group.
func (t *groupTree) holds(h *Handle) bool {
	st, err := procfs.ReadStat(h.pid)
	return err == nil && st.Pgrp == t.pgid
}

// reaped does nothing: a group holds no resource of pexec's but the
// leader's pidfd, closed by the watch once the group is empty.
func (t *groupTree) reaped(*Handle) {}

func (t *groupTree) signal(h *Handle, sig syscall.Signal) error {
	select {
	case <-t.empty:
		return os.ErrProcessDone // the group was found empty
	default:
	}
	if t.leader == nil || groupSignal() != nil {
		// Without pidfds, or before Linux 6.9: kill(-pgid), only while
		// the leader is not reaped, when its ID is still its own and
		// its group's (killByPID proves it).
		return h.killByPID(sig, true)
	}
	if !t.leader.acquire() {
		return os.ErrProcessDone // the group was found empty
	}
	defer t.leader.release()
	return signalError("pidfd_send_signal", unix.PidfdSendSignal(t.leader.fd, unix.Signal(sig), nil, unix.PIDFD_SIGNAL_PROCESS_GROUP))
}

func (t *groupTree) done(h *Handle) <-chan struct{} {
	t.once.Do(func() { go t.watch(h) })
	return t.empty
}

// groupPollMax bounds the interval between two checks of a group.
const groupPollMax = 100 * time.Millisecond

// watch checks the group at growing intervals until it is empty.
func (t *groupTree) watch(h *Handle) {
	for d := time.Millisecond; !t.isEmpty(h); d = min(2*d, groupPollMax) {
		time.Sleep(d)
	}
	if t.leader != nil {
		t.leader.close()
	}
	close(t.empty)
}

// isEmpty reports whether no process of the group is left but zombies.
func (t *groupTree) isEmpty(h *Handle) bool {
	if t.leader != nil && groupSignal() == nil && t.leader.acquire() {
		err := unix.PidfdSendSignal(t.leader.fd, 0, nil, unix.PIDFD_SIGNAL_PROCESS_GROUP)
		t.leader.release()
		if err == unix.ESRCH {
			return true
		}
	}
	if !h.hasExited() && !h.sysExited() {
		return false // the leader lives
	}
	// Members are left, or only zombies: the leader's until Cmd.Wait
	// reaps it, and those of members whose parents have not yet reaped
	// them.
	return !groupHasLiveMember(t.pgid)
}

// groupHasLiveMember reports whether a process of group pgid that is not a
// zombie exists, scanning /proc.
func groupHasLiveMember(pgid int) bool {
	d, err := os.Open("/proc")
	if err != nil {
		return false
	}
	defer d.Close()
	names, _ := d.Readdirnames(-1)
	for _, name := range names {
		pid, err := strconv.Atoi(name)
		if err != nil {
			continue
		}
		if st, err := procfs.ReadStat(pid); err == nil && st.Pgrp == pgid && !st.Exited() {
			return true
		}
	}
	return false
}
