package pexec

import (
	"errors"
	"fmt"
	"os"
	"syscall"
)

// TreeMode says how a [Cmd]'s child and its descendants are held together,
// so that they can be signalled, killed and waited for as one tree. Set it
// in [Cmd.Tree] before Start; [Handle.Tree] reports what the child got.
//
// The tree is the container (a cgroup leaf, a process group) and the child
// itself, wherever it goes: a child that moves itself out of its cgroup or
// group is still signalled through its own Handle, and the tree is not
// empty until it has exited too.
type TreeMode int

const (
	// TreeNone is os/exec's behaviour: only the child itself is managed;
	// its descendants are on their own.
	TreeNone TreeMode = iota
	// TreeAuto uses TreeCgroup where the caller may create cgroups, and
	// TreeGroup otherwise (see [TreeSupport] for why a mode is not
	// available); on Windows, TreeJob; and TreeNone where none can hold
	// the child: no cgroups, and SysProcAttr puts the child in a process
	// group of the caller's choosing (Setpgid with a Pgid other than 0), or
	// on Windows no job can take it. Start never fails because of it;
	// [Handle.Tree] says what the child got.
	TreeAuto
	// TreeGroup starts the child as the leader of a new process group
	// (SysProcAttr.Setpgid) and signals the group through the leader's
	// pidfd (PIDFD_SIGNAL_PROCESS_GROUP, Linux 6.9+), never kill(-pgid)
	// once the leader may have been reaped. A descendant that leaves the
	// group (setsid, setpgid) escapes it.
	TreeGroup
	// TreeCgroup starts the child inside a fresh cgroup v2 leaf (clone3
	// with CLONE_INTO_CGROUP, Linux 5.7+, so no descendant is ever outside
	// it), kills the tree through cgroup.kill (5.14+) and knows it is empty
	// from cgroup.events. It needs a writable cgroup2 hierarchy: root, or a
	// subtree delegated to the caller. No descendant escapes, short of
	// writing itself into another cgroup, which needs the same rights.
	TreeCgroup
	// TreeJob starts the child inside a Windows job object of its own:
	// created suspended, assigned to the job, then resumed, so it runs no
	// instruction outside the job, and every process it starts is in the
	// job too (a descendant escapes only if the job allowed breakaway,
	// which pexec's does not). The tree is killed with TerminateJobObject
	// and known empty from the job's completion port. Windows only.
	TreeJob
)

// String returns "none", "auto", "group", "cgroup" or "job".
func (m TreeMode) String() string {
	switch m {
	case TreeNone:
		return "none"
	case TreeAuto:
		return "auto"
	case TreeGroup:
		return "group"
	case TreeCgroup:
		return "cgroup"
	case TreeJob:
		return "job"
	}
	return "TreeMode(" + fmt.Sprint(int(m)) + ")"
}

// treeCtl is a contained child's container: the per-OS mechanism behind
// the tree methods. Its members are the container's; the child itself is
// the Handle's business (see signalTree).
type treeCtl interface {
	mode() TreeMode
	// signal sends sig to every member; os.ErrProcessDone once there is
	// none.
	signal(h *Handle, sig syscall.Signal) error
	// holds reports whether the child is still a member (so that a
	// signal to the members reaches it too).
	holds(h *Handle) bool
	// done returns the channel closed once no member is left.
	done(h *Handle) <-chan struct{}
	// reaped is called by Cmd.Wait once it has reaped the child: a
	// container that is empty then is released before Wait returns.
	reaped(h *Handle)
}

// errNoTree is returned by the tree methods of a Handle without one.
var errNoTree = fmt.Errorf("pexec: the process was not started with a Cmd.Tree mode: %w", os.ErrInvalid)

// Tree returns the containment the child got: TreeCgroup, TreeGroup or, on
// Windows, TreeJob for a [Cmd] started with [Cmd.Tree] set (TreeAuto
// resolves to one of them, or to TreeNone where none can hold the child),
// and TreeNone otherwise, for a nil Handle, and for any Handle not of a
// Cmd's child.
func (h *Handle) Tree() TreeMode {
	if h == nil || h.tree == nil {
		return TreeNone
	}
	return h.tree.mode()
}

// SignalTree sends sig to every process in the child's tree: with
// TreeCgroup, every process in its cgroup (SIGKILL through cgroup.kill;
// other signals to each member through a pidfd opened and checked to be in
// the cgroup, with the cgroup frozen meanwhile so that none can fork past
// the signal); with TreeGroup, the process group; and the child itself,
// once, even if it left the cgroup or group. It keeps working after the
// child itself has exited, as long as a member lives, and returns an error
// for which errors.Is(err, [os.ErrProcessDone]) holds once the tree is
// empty. It can never reach a process outside the tree, whatever PIDs are
// reused. Without a tree it returns an error wrapping [os.ErrInvalid].
func (h *Handle) SignalTree(sig os.Signal) error {
	if err := h.check(); err != nil {
		return err
	}
	s, ok := sig.(syscall.Signal)
	if !ok {
		return fmt.Errorf("pexec: unsupported signal type %T: %w", sig, errors.ErrUnsupported)
	}
	if h.tree == nil {
		return errNoTree
	}
	return h.signalTree(s)
}

// KillTree kills every process in the child's tree, like
// SignalTree(os.Kill).
func (h *Handle) KillTree() error { return h.SignalTree(os.Kill) }

// TreeDone returns a channel that is closed once every process of the
// child's tree has exited, the child included, wherever it went (a zombie
// counts as exited). Without a tree, the tree is the process alone: the
// channel is closed once it has exited, as [Handle.Done]'s. Waiting on it
// holds no OS thread. With TreeCgroup it is cgroup.events saying
// "populated 0", watched through the exit poller; with TreeGroup the
// kernel gives no notice of an empty group, so pexec checks, from a
// goroutine started on the first call, by sending signal 0 to the group
// through the leader's pidfd (one system call; a /proc scan once the
// leader has exited, because its zombie stays in the group until Cmd.Wait
// reaps it) at intervals growing from 1 ms to 100 ms. For a nil Handle the
// channel is nil (never closed); for a Handle closed before the tree
// emptied it is never closed, unless the Handle is a Cmd child's (closing
// it does not stop the Cmd's watch over its tree).
func (h *Handle) TreeDone() <-chan struct{} {
	if h == nil || h.mode == 0 {
		return nil
	}
	return h.gone()
}

// gone returns the channel closed once the process has exited and its
// tree, if it has one, is empty: the end of what a stop stops.
func (h *Handle) gone() <-chan struct{} {
	h.goneOnce.Do(func() {
		h.goneC = make(chan struct{})
		if h.tree == nil && h.hasExited() {
			close(h.goneC)
			return
		}
		var closed <-chan struct{}
		if h.role != roleCmd {
			closed = h.closedC() // a Cmd child's outlives its Handle's Close
		}
		go func() {
			if h.awaitExit(nil, closed) != nil {
				return
			}
			h.markExited()
			if h.tree != nil {
				<-h.tree.done(h)
			}
			close(h.goneC)
		}()
	})
	return h.goneC
}

// signalTree is the one function through which pexec signals a command on
// its behalf: SignalTree and KillTree, the stop ladder (Handle.Stop, and
// Cmd.Grace's cancellation), CommandContext's default Cancel and
// WaitDelay's final kill. It sends sig to the process and, with a tree, to
// every member of the tree: the child itself is signalled through its own
// Handle when it is no longer a member (a second SIGTERM would hurry a
// child that handles the first), and always with SIGKILL. It checks
// nothing of the Handle's own state: closing the caller's Handle does not
// stop the Cmd's cancellation. It returns os.ErrProcessDone once the
// process and the tree are gone, and otherwise the failures to deliver.
func (h *Handle) signalTree(sig syscall.Signal) error {
	self := error(os.ErrProcessDone)
	if !h.hasExited() && (h.tree == nil || sig == syscall.SIGKILL || !h.tree.holds(h)) {
		self = h.sysSignal(sig)
	}
	if h.tree == nil {
		return self
	}
	members := h.tree.signal(h, sig)
	selfDone, membersDone := errors.Is(self, os.ErrProcessDone), errors.Is(members, os.ErrProcessDone)
	switch {
	case selfDone && membersDone:
		return os.ErrProcessDone
	case selfDone:
		return members
	case membersDone:
		return self
	}
	return errors.Join(self, members)
}
