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
type TreeMode int

const (
	// TreeNone is os/exec's behaviour: only the child itself is managed;
	// its descendants are on their own.
	TreeNone TreeMode = iota
	// TreeAuto uses TreeCgroup where the caller may create cgroups, and
	// TreeGroup otherwise (see [TreeSupport] for why a mode is not
	// available). Start never fails because of it.
	TreeAuto
	// TreeGroup starts the child as the leader of a new process group
	// (SysProcAttr.Setpgid) and signals the group through the leader's
	// pidfd (PIDFD_SIGNAL_PROCESS_GROUP, Linux 6.9+), never kill(-pgid). A
	// descendant that leaves the group (setsid, setpgid) escapes it.
	TreeGroup
	// TreeCgroup starts the child inside a fresh cgroup v2 leaf (clone3
	// with CLONE_INTO_CGROUP, Linux 5.7+, so no descendant is ever outside
	// it), kills the tree through cgroup.kill (5.14+) and knows it is empty
	// from cgroup.events. It needs a writable cgroup2 hierarchy: root, or a
	// subtree delegated to the caller. No descendant escapes (short of
	// writing itself into another cgroup, which needs the same rights).
	TreeCgroup
)

// String returns "none", "auto", "group" or "cgroup".
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
	}
	return "TreeMode(" + fmt.Sprint(int(m)) + ")"
}

// treeCtl is a contained child's tree: the per-OS mechanism behind
// SignalTree and TreeDone.
type treeCtl interface {
	mode() TreeMode
	// signal sends sig to every process of the tree; os.ErrProcessDone
	// once the tree is empty.
	signal(h *Handle, sig syscall.Signal) error
	// done returns the channel closed once the tree is empty.
	done(h *Handle) <-chan struct{}
}

// errNoTree is returned by the tree methods of a Handle without one.
var errNoTree = fmt.Errorf("pexec: the process was not started with a Cmd.Tree mode: %w", os.ErrInvalid)

// Tree returns the containment the child got: TreeCgroup or TreeGroup for a
// [Cmd] started with [Cmd.Tree] set (TreeAuto resolves to one of them), and
// TreeNone otherwise, for a nil Handle, and for any Handle not of a Cmd's
// child.
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
// the signal); with TreeGroup, the process group. It keeps working after
// the child itself has exited, as long as a member lives, and returns an
// error for which errors.Is(err, [os.ErrProcessDone]) holds once the tree
// is empty. It can never reach a process outside the tree, whatever PIDs
// are reused. Without a tree it returns an error wrapping [os.ErrInvalid].
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
	if isClosed(h.tree.done(h)) {
		return os.ErrProcessDone
	}
	return h.tree.signal(h, s)
}

// KillTree kills every process in the child's tree, like
// SignalTree(os.Kill).
func (h *Handle) KillTree() error { return h.SignalTree(os.Kill) }

// TreeDone returns a channel that is closed once every process of the
// child's tree has exited, the child included (a zombie counts as exited).
// Waiting on it holds no OS thread. With TreeCgroup it is cgroup.events
// saying "populated 0", watched through the exit poller; with TreeGroup the
// kernel gives no notice of an empty group, so pexec checks, from a
// goroutine started on the first call, by sending signal 0 to the group
// through the leader's pidfd (one system call; a /proc scan once the
// leader has exited, because its zombie stays in the group until Cmd.Wait
// reaps it) at intervals growing from 1 ms to 100 ms. Without a tree the
// tree is the child alone, and TreeDone is [Handle.Done] (so a select on
// it ends when the child exits, rather than never); for a nil Handle it is
// nil (never closed), as Done's.
func (h *Handle) TreeDone() <-chan struct{} {
	if h == nil || h.tree == nil {
		return h.Done()
	}
	return h.tree.done(h)
}
