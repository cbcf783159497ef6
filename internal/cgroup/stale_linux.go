//go:build linux

package cgroup

import (
	"errors"
	"fmt"
	"os"
	"path"
	"strconv"
	"strings"

	"github.com/pexec-dev/pexec/internal/probe"
	"github.com/pexec-dev/pexec/internal/procfs"
	"golang.org/x/sys/unix"
)

// A creator identifies the process that made a leaf, in the leaf's name:
// pexec-<pid>-<kind><key>-n<pidns>-<seq>. With kind 'i' the key is the
// process's pidfs inode number (Linux 6.9+), never reused while the system
// runs; with kind 't' it is the process's start time in clock ticks after
// boot (field 22 of /proc/<pid>/stat), which tells apart two processes
// that had the same PID unless they started in the same tick. pidns is the
// inode number of the PID namespace the PID belongs to: a process in
// another PID namespace cannot check the creator by its PID and leaves
// such a leaf alone.
type creator struct {
	pid   int
	kind  byte
	key   uint64
	pidns uint64
}

// leafName returns the name of the creator's leaf number seq.
func (c creator) leafName(seq uint64) string {
	return fmt.Sprintf("pexec-%d-%c%d-n%d-%d", c.pid, c.kind, c.key, c.pidns, seq)
}

// parseLeafName is the inverse of leafName; ok is false for any other
// name.
func parseLeafName(name string) (c creator, seq uint64, ok bool) {
	rest, ok := strings.CutPrefix(name, "pexec-")
	if !ok {
		return c, 0, false
	}
	f := strings.Split(rest, "-")
	if len(f) != 4 || len(f[1]) < 2 || len(f[2]) < 2 || f[2][0] != 'n' {
		return c, 0, false
	}
	num := func(s string) (uint64, bool) {
		// Canonical decimal only, so that one leaf has one name.
		n, err := strconv.ParseUint(s, 10, 64)
		return n, err == nil && strconv.FormatUint(n, 10) == s
	}
	pid, ok1 := num(f[0])
	key, ok2 := num(f[1][1:])
	ns, ok3 := num(f[2][1:])
	seq, ok4 := num(f[3])
	kind := f[1][0]
	if !ok1 || !ok2 || !ok3 || !ok4 || pid == 0 || pid > 1<<30 || (kind != 'i' && kind != 't') {
		return c, 0, false
	}
	return creator{pid: int(pid), kind: kind, key: key, pidns: ns}, seq, true
}

// identity is the calling process's creator identity, found once: a
// transient failure (see [probe.Transient]) is returned and looked up again
// next time, so that a shortage of descriptors cannot choose the kind of
// key, nor fail New, for the rest of the process's life.
var identity = probe.Once(func() (creator, error) {
	ns, err := pidNamespace()
	if err != nil {
		return creator{}, err
	}
	c := creator{pid: os.Getpid(), pidns: ns}
	fd, err := unix.PidfdOpen(c.pid, 0)
	if probe.Transient(err) {
		return creator{}, os.NewSyscallError("pidfd_open", err)
	}
	if err == nil {
		id, err := pidfsID(fd)
		unix.Close(fd)
		if probe.Transient(err) {
			return creator{}, err
		}
		if err == nil {
			c.kind, c.key = 'i', id
			return c, nil
		}
	}
	ours, err := procIsOurs()
	if err != nil {
		return creator{}, err
	}
	if !ours {
		return creator{}, fmt.Errorf("cgroup: /proc shows another PID namespace and pidfs is unavailable: cannot name a leaf: %w", errors.ErrUnsupported)
	}
	st, err := startTime(c.pid)
	if err != nil {
		return creator{}, err
	}
	c.kind, c.key = 't', st
	return c, nil
})

// pidNamespace returns the inode number of the caller's PID namespace,
// the one PIDs given to pidfd_open are read in.
func pidNamespace() (uint64, error) {
	var st unix.Stat_t
	if err := unix.Stat("/proc/thread-self/ns/pid", &st); err != nil {
		return 0, &os.PathError{Op: "stat", Path: "/proc/thread-self/ns/pid", Err: err}
	}
	return st.Ino, nil
}

// procIsOurs reports whether /proc belongs to the caller's PID namespace,
// so that /proc/<pid> means the process pidfd_open(pid) would open. An
// unreadable /proc/self (no /proc) means no; only a transient failure is
// an error, and it is not kept.
var procIsOurs = probe.Once(func() (bool, error) {
	s, err := os.Readlink("/proc/self")
	if probe.Transient(err) {
		return false, err
	}
	return err == nil && s == strconv.Itoa(os.Getpid()), nil
})

// pidfsID returns the pidfs inode number of a pidfd, or an error if
// pidfds do not live in pidfs (before Linux 6.9: all share one inode).
func pidfsID(fd int) (uint64, error) {
	var sfs unix.Statfs_t
	if err := unix.Fstatfs(fd, &sfs); err != nil {
		return 0, os.NewSyscallError("fstatfs", err)
	}
	if uint32(sfs.Type) != unix.PID_FS_MAGIC {
		return 0, fmt.Errorf("cgroup: pidfds are not in pidfs (Linux 6.9+): %w", errors.ErrUnsupported)
	}
	return handleID(fd, "", unix.AT_EMPTY_PATH)
}

// startTime returns the start time of process pid (field 22 of
// /proc/<pid>/stat).
func startTime(pid int) (uint64, error) {
	st, err := procfs.ReadStat(pid)
	return st.Start, err
}

// gone reports whether the creator has certainly exited; an error means
// that could not be decided. ours is the caller's PID namespace.
func (c creator) gone(ours uint64) (bool, error) {
	if c.pidns != ours {
		return false, fmt.Errorf("cgroup: creator %d lives in another PID namespace (%d): %w", c.pid, c.pidns, errors.ErrUnsupported)
	}
	fd, err := unix.PidfdOpen(c.pid, 0)
	switch err {
	case nil:
		defer unix.Close(fd)
	case unix.ESRCH:
		return true, nil // no process has the PID: the creator is gone
	case unix.ENOENT:
		return true, nil // a thread, not a process, has the PID
	case unix.ENOSYS:
		if c.kind == 'i' {
			return false, fmt.Errorf("cgroup: no pidfd_open to check creator %d: %w", c.pid, errors.ErrUnsupported)
		}
	default:
		if c.kind == 'i' {
			return false, os.NewSyscallError("pidfd_open", err)
		}
	}
	switch c.kind {
	case 'i':
		// The pidfd names the process that had the PID when it was
		// opened; the creator, if alive, had it then.
		id, err := pidfsID(fd)
		if err != nil {
			return false, err
		}
		return id != c.key, nil
	default:
		// The start time read belongs to the process that had the PID at
		// the time of the read; the creator, if alive, had it then.
		ours, err := procIsOurs()
		if err != nil {
			return false, err
		}
		if !ours {
			return false, fmt.Errorf("cgroup: /proc shows another PID namespace: %w", errors.ErrUnsupported)
		}
		st, err := startTime(c.pid)
		if errors.Is(err, os.ErrNotExist) || errors.Is(err, unix.ESRCH) {
			return true, nil
		}
		if err != nil {
			return false, err
		}
		return st != c.key, nil
	}
}

// CleanStale removes the leaves under the caller's own cgroup (see
// [Root]) whose creators have exited: those a crashed pexec user left
// behind. It only considers directories named as [New] names leaves, and
// only those whose creator is provably gone: no process has the PID, or
// the process that has it has another pidfs inode number (or start time)
// than the name records. A leaf of a live process, or of a process in
// another PID namespace, is never touched.
//
// A stale leaf in which processes still live (orphans of the crashed
// creator) is not removed; CleanStale reports it in err, wrapping
// [syscall.EBUSY], and goes on. removed lists the directories removed (or
// found removed by someone else meanwhile).
func CleanStale() (removed []string, err error) {
	w, err := self()
	if err != nil {
		return nil, err
	}
	me, err := identity()
	if err != nil {
		return nil, err
	}
	ents, err := os.ReadDir(w.dir)
	if err != nil {
		return nil, err
	}
	var errs []error
	for _, e := range ents {
		c, _, ok := parseLeafName(e.Name())
		if !ok || !e.IsDir() {
			continue
		}
		gone, err := c.gone(me.pidns)
		if err != nil {
			if !errors.Is(err, errors.ErrUnsupported) {
				errs = append(errs, fmt.Errorf("cgroup: %s: %w", e.Name(), err))
			}
			continue
		}
		if !gone {
			continue
		}
		p := path.Join(w.dir, e.Name())
		if err := removeTree(p); err != nil {
			errs = append(errs, err)
			continue
		}
		removed = append(removed, p)
	}
	return removed, errors.Join(errs...)
}
