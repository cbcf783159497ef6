// Package cgroup gives a process tree a cgroup v2 leaf of its own, so that
// pexec can start a child directly inside it (clone3 with
// CLONE_INTO_CGROUP, through [syscall.SysProcAttr] UseCgroupFD and
// CgroupFD), kill the whole tree at once however it forked or
// daemonised, know when the tree is empty, and remove the leaf afterwards.
// systemd and crun treat their units and containers the same way.
//
// The life of a leaf:
//
//	leaf, err := cgroup.New()               // mkdir <own cgroup>/pexec-...
//	attr := &syscall.SysProcAttr{UseCgroupFD: true, CgroupFD: leaf.FD()}
//	...                                     // start the child with attr
//	err = leaf.Kill()                       // cgroup.kill: SIGKILL to every member
//	ok, err := leaf.Populated()             // cgroup.events "populated"
//	// wait for EPOLLPRI on leaf.EventsFD(), read Populated again, until false
//	err = leaf.Remove()                     // rmdir, close the descriptors
//
// Leaves are created under the caller's own cgroup (see [Root]), which the
// caller must be allowed to write: as root, or in a subtree delegated to
// its user (systemd Delegate=yes, a container with a writable cgroup
// namespace). Each leaf is named pexec-<pid>-<identity>-n<pidns>-<seq>
// after its creator, where identity is "i" and the creator's pidfs inode
// number (Linux 6.9+) or "t" and its start time in clock ticks, so that
// [CleanStale] can prove a leaf's creator gone before removing it.
//
// # Kernel versions
//
//	cgroup.freeze, "frozen" in cgroup.events   5.2
//	pidfd_open                                 5.3
//	clone3 with CLONE_INTO_CGROUP              5.7   (Supported probes it)
//	cgroup.kill                                5.14  (else freeze + SIGKILL)
//	pidfs (a unique inode per process)         6.9   (else the start time)
//	PIDFD_GET_INFO with PIDFD_INFO_CGROUPID    6.13  (else /proc/<pid>/cgroup)
//
// # What can go wrong
//
// The "no internal processes" rule forbids processes in a non-root cgroup
// whose cgroup.subtree_control enables a domain controller. The caller's
// own cgroup holds the caller, so (unless it is the root cgroup) it cannot
// have domain controllers enabled; a fresh leaf enables none either, so it
// always accepts processes. The failure modes that remain, and the error
// each gives (clone3 reports them through os.StartProcess, wrapped in an
// *os.PathError with Op "fork/exec"):
//
//   - The caller's cgroup is not writable (not root, not delegated): New
//     fails on mkdir with EACCES, EPERM or (a read-only cgroup2 mount)
//     EROFS, wrapped with [os.ErrPermission].
//   - The leaf is writable but clone3 is not allowed to move a child into
//     it (the caller's own cgroup.procs is not writable by the caller, or a
//     root-owned leaf used by another user): clone3 fails with EACCES.
//   - The caller's cgroup is threaded: children of a threaded cgroup are
//     "domain invalid" and clone3 into them fails with EOPNOTSUPP. New
//     checks cgroup.type and fails with [errors.ErrUnsupported].
//   - Someone enabled controllers in the leaf's own cgroup.subtree_control:
//     clone3 fails with EBUSY.
//   - The leaf was removed (rmdir) while its descriptor stayed open: clone3
//     fails with ENOENT.
//   - A pids controller limit or RLIMIT_NPROC: clone3 fails with EAGAIN.
//   - clone3 filtered by seccomp, or a kernel before 5.3: ENOSYS; a kernel
//     between 5.3 and 5.6 rejects the larger clone_args with E2BIG.
//   - cgroup.max.descendants or cgroup.max.depth of an ancestor is reached:
//     New fails on mkdir with EAGAIN.
//
// A leaf contains a tree against accident (double forks, setsid, daemons
// whose parent exits), not against malice: a member that may write the
// cgroup.procs of the caller's own cgroup (root, or the same user in a
// delegated subtree) can move itself out of the leaf, and is then beyond
// [Leaf.Kill] and [Leaf.Signal].
//
// A service manager that owns the caller's cgroup without delegating it
// (a systemd unit without Delegate=yes) may move processes or remove
// sub-cgroups it does not know about; pexec's leaves are only safe in a
// delegated subtree or outside such management.
//
// # Waiting without a thread
//
// cgroup.events notifies its readers through kernfs: after a read, a
// descriptor of the file polls with POLLPRI (and POLLERR) once the file's
// content changes. [Leaf.EventsFD] is such a descriptor, kept open; add it
// to an epoll instance with EPOLLPRI (level-triggered is fine). The
// protocol is: read [Leaf.Populated]; if it says true, wait for EPOLLPRI;
// read Populated again (this read re-arms the notification); repeat. A
// change between the read and the wait makes the wait return at once, so
// no change is lost; the kernel may delay a notification by up to 10ms
// (it rate-limits them) but never drops one. Go's netpoller cannot serve
// here: it waits for EPOLLIN, which the file always reports.
//
// The notification says only that cgroup.events changed: "frozen" changes
// too (as [Leaf.Signal] freezes and thaws the leaf), and two changes within
// the rate limit can give a notification after the read that saw the
// second. Treat EPOLLPRI as "read again", never as "it is empty now".
//
// Only [Leaf.Populated] reads the kept descriptor: any other read of it
// would re-arm it behind the waiter's back and swallow a notification.
// The package's own reads of cgroup.events use descriptors of their own.
//
// "populated 0" means no member is alive any more; it is reported from
// the kernel's exit path before the members become zombies, so a pidfd of
// a member can become readable (and its parent's waitid succeed) a moment
// after Populated first says false. Zombies do not keep a leaf populated:
// rmdir succeeds before they are reaped.
package cgroup
