//go:build linux

package cgroup

import (
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/pexec-dev/pexec/internal/probe"
	"github.com/pexec-dev/pexec/internal/procfs"
	"golang.org/x/sys/unix"
)

// Test switches (export_linux_test.go): forceNoKillFile makes Kill act as
// on kernels without cgroup.kill, forceProcCgroup makes Signal check
// membership through /proc as on kernels without PIDFD_GET_INFO.
var forceNoKillFile, forceProcCgroup bool

// testExtraPIDs, set by tests, is added to the PIDs read from the leaf's
// cgroup.procs, as if they had been members whose PIDs were reused.
var testExtraPIDs []int

// freezeTimeout bounds the wait for a leaf to report "frozen 1".
var freezeTimeout = 10 * time.Second

// Kill sends SIGKILL to every process in the leaf and in the cgroups
// below it, by writing "1" to cgroup.kill (Linux 5.14+), which also kills
// processes forked while it runs. On older kernels it freezes the leaf and
// kills each member through a pidfd, as [Leaf.Signal] does, then thaws it.
// Kill does not wait: the members die, and [Leaf.Populated] turns false,
// shortly after it returns.
func (l *Leaf) Kill() error {
	l.mu.RLock()
	defer l.mu.RUnlock()
	if l.removed {
		return l.closedError()
	}
	if !forceNoKillFile {
		err := l.writeFile("cgroup.kill", "1")
		if !errors.Is(err, os.ErrNotExist) {
			return err
		}
		// No cgroup.kill: an old kernel, or the leaf is gone.
		var st unix.Stat_t
		if serr := unix.Fstatat(l.dir, "cgroup.procs", &st, 0); serr != nil {
			return err
		}
	}
	return l.signal(unix.SIGKILL)
}

// Signal sends sig to every process in the leaf and in the cgroups below
// it, and to no other process. It freezes the leaf (cgroup.freeze, Linux
// 5.2+) and waits until cgroup.events reports "frozen 1", so that no
// member can fork or leave on its own meanwhile; reads the members from
// cgroup.procs; for each, opens a pidfd, checks that the process behind
// the pidfd is in the leaf, and signals it through the pidfd; then thaws
// the leaf (unless it was frozen before the call). A signal other than
// SIGKILL takes effect when the members are thawed. Members that exit
// meanwhile are skipped.
//
// Signal needs pidfd_open (Linux 5.3+); without it, it returns an error
// wrapping [errors.ErrUnsupported]. If the leaf does not report frozen
// within 10 seconds (a member stuck in an uninterruptible sleep), Signal
// still signals the members it finds, rescanning until no new one shows
// up, and returns an error wrapping [os.ErrDeadlineExceeded].
func (l *Leaf) Signal(sig syscall.Signal) error {
	l.mu.RLock()
	defer l.mu.RUnlock()
	if l.removed {
		return l.closedError()
	}
	return l.signal(sig)
}

// signal is Signal with l.mu held.
func (l *Leaf) signal(sig syscall.Signal) (err error) {
	l.freezeMu.Lock()
	defer l.freezeMu.Unlock()

	was, err := l.readFile("cgroup.freeze")
	if err != nil {
		return err
	}
	if strings.TrimSpace(string(was)) != "1" {
		if err := l.writeFile("cgroup.freeze", "1"); err != nil {
			return err
		}
		defer func() {
			err = errors.Join(err, l.writeFile("cgroup.freeze", "0"))
		}()
	}
	frozenErr := l.waitFrozen()
	if frozenErr != nil && !errors.Is(frozenErr, os.ErrDeadlineExceeded) {
		return frozenErr
	}

	// Why no process outside the leaf can be signalled, even if a PID
	// read from cgroup.procs is reused:
	//
	//  1. A pidfd refers to one process for its whole life, never to
	//     another one that later gets the same PID, and pidfd_send_signal
	//     signals exactly that process (or fails with ESRCH once it has
	//     exited).
	//  2. After opening the pidfd, membership is checked for the process
	//     behind the pidfd, not for the PID: PIDFD_GET_INFO reports the
	//     cgroup of the pidfd's own process; the /proc fallback reads
	//     /proc/<pid>/cgroup and then checks through the pidfd that the
	//     process has not exited, so the PID was still its own, and the
	//     read was about it.
	//  3. If the PID was reused between the cgroup.procs read and
	//     pidfd_open, the pidfd names the new process, which is in the
	//     leaf only if it is a member too (frozen members cannot fork, so
	//     it came from outside, through cgroup.procs or clone3); otherwise
	//     the check fails and it is skipped.
	//  4. A frozen member cannot move itself out of the leaf between the
	//     check and the signal; only a third party that may write
	//     cgroup.procs elsewhere could move it, and then the process
	//     signalled was a member when it was checked.
	signalled := map[memberKey]bool{}
	var errs []error
	for round := 0; ; round++ {
		found, err := l.signalMembers(sig, signalled)
		if err != nil {
			errs = append(errs, err)
			break
		}
		// Frozen, the set of members could not grow by forks while we
		// read it: one round is complete. Otherwise rescan until a round
		// finds nobody new.
		if frozenErr == nil || found == 0 || round == 10 {
			break
		}
	}
	if frozenErr != nil {
		errs = append(errs, fmt.Errorf("cgroup: signalled %d processes, but %s did not freeze: members forked meanwhile may have been missed: %w", len(signalled), l.path, frozenErr))
	}
	return errors.Join(errs...)
}

// memberKey identifies a signalled process within one Signal call.
type memberKey struct {
	pid int
	id  uint64 // pidfs inode, 0 if unknown
}

// signalMembers signals every member of the leaf's subtree not yet in
// done and returns how many it signalled.
func (l *Leaf) signalMembers(sig syscall.Signal, done map[memberKey]bool) (int, error) {
	sub, err := l.subtree()
	if err != nil {
		return 0, err
	}
	n := 0
	var errs []error
	for _, c := range sub {
		for _, pid := range c.pids {
			fd, err := unix.PidfdOpen(pid, 0)
			switch err {
			case nil:
			case unix.ESRCH, unix.ENOENT:
				continue // exited (or the PID now names a thread)
			case unix.ENOSYS:
				return n, fmt.Errorf("cgroup: signalling %s needs pidfd_open (Linux 5.3+): %w", l.path, errors.ErrUnsupported)
			default:
				errs = append(errs, os.NewSyscallError("pidfd_open", err))
				continue
			}
			key := memberKey{pid: pid}
			key.id, _ = pidfsID(fd)
			if done[key] {
				unix.Close(fd)
				continue
			}
			in, err := inSubtree(fd, pid, sub)
			if err == nil && in {
				err = unix.PidfdSendSignal(fd, sig, nil, 0)
				if err == nil {
					done[key] = true
					n++
				} else if err == unix.ESRCH {
					err = nil
				} else {
					err = os.NewSyscallError("pidfd_send_signal", err)
				}
			}
			unix.Close(fd)
			if err != nil {
				errs = append(errs, err)
			}
		}
	}
	return n, errors.Join(errs...)
}

// member is one cgroup of a leaf's subtree: its path as /proc/<pid>/cgroup
// shows it, its ID, and the processes cgroup.procs listed.
type member struct {
	rel  string
	id   uint64
	pids []int
}

// subtree reads the processes of the leaf and of every cgroup below it (a
// member may create cgroups in the leaf, as a nested pexec user does).
// Frozen members cannot add cgroups while it walks.
func (l *Leaf) subtree() ([]member, error) {
	var out []member
	var walk func(name, rel string) error
	walk = func(name, rel string) error {
		m := member{rel: rel}
		if name == "." {
			m.id = l.id
		} else if id, err := handleID(l.dir, name, 0); err == nil {
			m.id = id
		}
		b, err := l.readFile(name + "/cgroup.procs")
		if errors.Is(err, os.ErrNotExist) && name != "." {
			return nil // removed meanwhile
		}
		if err != nil {
			return err
		}
		for f := range strings.FieldsSeq(string(b)) {
			// PIDs of processes outside our PID namespace show as 0.
			if pid, err := strconv.Atoi(f); err == nil && pid > 0 {
				m.pids = append(m.pids, pid)
			}
		}
		if name == "." {
			m.pids = append(m.pids, testExtraPIDs...)
		}
		out = append(out, m)
		ents, err := readDirAt(l.dir, name)
		if err != nil {
			return err
		}
		for _, e := range ents {
			if err := walk(name+"/"+e, rel+"/"+e); err != nil {
				return err
			}
		}
		return nil
	}
	return out, walk(".", l.rel)
}

// readDirAt lists the subdirectories of name (relative to dirfd).
func readDirAt(dirfd int, name string) ([]string, error) {
	fd, err := unix.Openat(dirfd, name, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err == unix.ENOENT {
		return nil, nil
	}
	if err != nil {
		return nil, os.NewSyscallError("openat", err)
	}
	f := os.NewFile(uintptr(fd), name)
	defer f.Close()
	ents, err := f.ReadDir(-1)
	var dirs []string
	for _, e := range ents {
		if e.IsDir() {
			dirs = append(dirs, e.Name())
		}
	}
	return dirs, err
}

// inSubtree reports whether the process behind pidfd (whose PID was pid
// when the pidfd was opened) lives in one of the cgroups of sub. false
// with a nil error means it does not, or has exited.
func inSubtree(pidfd, pid int, sub []member) (bool, error) {
	ids := true
	for _, m := range sub {
		ids = ids && m.id != 0
	}
	if ids && !forceProcCgroup && probeCgroupInfo() == nil {
		info := unix.PidfdInfo{Mask: unix.PIDFD_INFO_CGROUPID}
		err := unix.IoctlPidfdInfo(pidfd, &info)
		if err == unix.ESRCH {
			return false, nil
		}
		if err != nil {
			return false, os.NewSyscallError("ioctl(PIDFD_GET_INFO)", err)
		}
		if info.Mask&unix.PIDFD_INFO_CGROUPID != 0 {
			for _, m := range sub {
				if m.id == info.Cgroupid {
					return true, nil
				}
			}
			return false, nil
		}
	}
	// Before PIDFD_GET_INFO (Linux 6.13): read /proc/<pid>/cgroup, then
	// make sure the pidfd's process was still alive after the read, so the
	// PID, and the file read, were its own.
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/cgroup")
	if err != nil {
		if errors.Is(err, os.ErrNotExist) || errors.Is(err, unix.ESRCH) {
			return false, nil
		}
		return false, err
	}
	exited, err := pidfdExited(pidfd)
	if err != nil || exited {
		return false, err
	}
	rel, ok := procfs.ParseCgroup(b)
	if !ok {
		return false, nil
	}
	for _, m := range sub {
		if m.rel == rel {
			return true, nil
		}
	}
	return false, nil
}

// pidfdExited reports whether the process behind pidfd has exited: a
// pidfd polls readable from then on.
func pidfdExited(pidfd int) (bool, error) {
	for {
		fds := []unix.PollFd{{Fd: int32(pidfd), Events: unix.POLLIN}}
		n, err := unix.Poll(fds, 0)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return false, os.NewSyscallError("poll", err)
		}
		return n > 0, nil
	}
}

// probeCgroupInfo checks, once, that PIDFD_GET_INFO reports a process's
// cgroup (Linux 6.13+); a transient failure (no descriptor for the pidfd)
// is checked again next time.
var probeCgroupInfo = probe.OnceErr(func() error {
	fd, err := unix.PidfdOpen(os.Getpid(), 0)
	if err != nil {
		return os.NewSyscallError("pidfd_open", err)
	}
	defer unix.Close(fd)
	info := unix.PidfdInfo{Mask: unix.PIDFD_INFO_CGROUPID}
	if err := unix.IoctlPidfdInfo(fd, &info); err != nil {
		return os.NewSyscallError("ioctl(PIDFD_GET_INFO)", err)
	}
	if info.Mask&unix.PIDFD_INFO_CGROUPID == 0 {
		return fmt.Errorf("cgroup: PIDFD_GET_INFO without PIDFD_INFO_CGROUPID: %w", errors.ErrUnsupported)
	}
	return nil
})

// waitFrozen waits until the leaf's cgroup.events says "frozen 1", for at
// most freezeTimeout. It polls a descriptor of its own for POLLPRI: a
// kernfs file polls so once its content changed after the descriptor's
// last read. The caller holds l.mu.
func (l *Leaf) waitFrozen() error {
	fd, err := unix.Openat(l.dir, "cgroup.events", unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return &os.PathError{Op: "openat", Path: l.path + "/cgroup.events", Err: err}
	}
	defer unix.Close(fd)
	deadline := time.Now().Add(freezeTimeout)
	for {
		ev, err := readEvents(fd, l.path)
		if err != nil {
			return err
		}
		if ev.frozen {
			return nil
		}
		left := time.Until(deadline)
		if left <= 0 {
			return fmt.Errorf("cgroup: %s not frozen after %v: %w", l.path, freezeTimeout, os.ErrDeadlineExceeded)
		}
		fds := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLPRI}}
		if _, err := unix.Poll(fds, int(left.Milliseconds())+1); err != nil && err != unix.EINTR {
			return os.NewSyscallError("poll", err)
		}
	}
}
