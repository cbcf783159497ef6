//go:build linux

package cgroup

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"math/bits"
	"os"
	"path"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"

	"github.com/pexec-dev/pexec/internal/probe"
	"github.com/pexec-dev/pexec/internal/procfs"
	"golang.org/x/sys/unix"
)

// fileIDKernfs is the file handle type name_to_handle_at(2) gives cgroup2
// (and pidfs) files: the object's 64-bit ID (FILEID_KERNFS).
const fileIDKernfs = 0xfe

// Root returns where the cgroup2 file system is mounted (mount) and the
// directory of the caller's own cgroup2 cgroup under it (dir), in which
// [New] creates leaves. It reads /proc/self/mountinfo and the "0::" line of
// /proc/self/cgroup once and caches the answer: a process that is moved to
// another cgroup later keeps creating its leaves under the first one. A
// failure to read them for want of a descriptor or memory (EMFILE, ENFILE,
// ENOMEM, ...: see [probe.Transient]) is returned but not cached: the next
// call reads them again.
//
// Without a cgroup2 mount, without a "0::" line (a cgroup v1-only system),
// or when the caller's cgroup lies outside every cgroup2 mount, Root
// returns an error wrapping [errors.ErrUnsupported].
func Root() (mount, dir string, err error) {
	r, err := self()
	return r.mount, r.dir, err
}

// where is a cgroup2 location: the mount point, the directory, and the
// cgroup's path as /proc/<pid>/cgroup shows it (rel).
type where struct{ mount, dir, rel string }

var self = probe.Once(func() (where, error) {
	mi, err := mountinfo()
	if err != nil {
		return where{}, err
	}
	cg, err := os.ReadFile("/proc/self/cgroup")
	if err != nil {
		return where{}, err
	}
	return parseRoot(mi, cg)
})

// mountinfo reads /proc/self/mountinfo once (again after a transient
// failure).
var mountinfo = probe.Once(func() ([]byte, error) { return os.ReadFile("/proc/self/mountinfo") })

// ProcessID returns the ID of the cgroup2 cgroup of the process whose
// /proc directory is procDir (as /proc/<pid>/cgroup names it), as
// [Leaf.ID] gives a leaf's; the caller checks afterwards that the process
// was still the one it meant. It returns an error wrapping
// [errors.ErrUnsupported] where that cgroup is not under a cgroup2 mount
// of this mount namespace.
func ProcessID(procDir string) (uint64, error) {
	mi, err := mountinfo()
	if err != nil {
		return 0, err
	}
	cg, err := os.ReadFile(procDir + "/cgroup")
	if err != nil {
		return 0, err
	}
	w, err := parseRoot(mi, cg)
	if err != nil {
		return 0, err
	}
	return handleID(unix.AT_FDCWD, w.dir, 0)
}

// parseRoot finds the caller's cgroup2 directory from the contents of
// /proc/self/mountinfo and /proc/self/cgroup. Both show paths relative to
// the reader's cgroup namespace; a mount's root field says which cgroup
// directory it shows at its mount point.
func parseRoot(mountinfo, cgroup []byte) (where, error) {
	rel, ok := procfs.ParseCgroup(cgroup)
	if !ok {
		return where{}, fmt.Errorf("cgroup: no cgroup2 (\"0::\") line in /proc/self/cgroup: %w", errors.ErrUnsupported)
	}
	if !strings.HasPrefix(rel, "/") || strings.HasPrefix(rel, "/..") {
		return where{}, fmt.Errorf("cgroup: own cgroup %q is outside this cgroup namespace: %w", rel, errors.ErrUnsupported)
	}
	found := false
	var best where
	bestRW := false
	sc := bufio.NewScanner(bytes.NewReader(mountinfo))
	for sc.Scan() {
		// id parent major:minor root mountpoint options [optional...] - fstype source superopts
		pre, post, ok := strings.Cut(sc.Text(), " - ")
		fields := strings.Fields(pre)
		if !ok || len(fields) < 6 || !strings.HasPrefix(post, "cgroup2 ") {
			continue
		}
		mroot, mdir := unescapeMountinfo(fields[3]), unescapeMountinfo(fields[4])
		sub, ok := strings.CutPrefix(rel, mroot)
		if mroot == "/" {
			sub, ok = rel, true
		} else if ok && sub != "" && sub[0] != '/' {
			ok = false
		}
		if !ok {
			continue
		}
		rw := !slices.Contains(strings.Split(fields[5], ","), "ro")
		if found && (bestRW || !rw) {
			continue
		}
		found, bestRW = true, rw
		best = where{mount: mdir, dir: path.Join(mdir, sub), rel: rel}
	}
	if err := sc.Err(); err != nil {
		return where{}, err
	}
	if !found {
		return where{}, fmt.Errorf("cgroup: no cgroup2 mount shows the own cgroup %q: %w", rel, errors.ErrUnsupported)
	}
	return best, nil
}

// unescapeMountinfo undoes the octal escapes (\040 for a space) of
// /proc/self/mountinfo.
func unescapeMountinfo(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) {
			if n, err := strconv.ParseUint(s[i+1:i+4], 8, 8); err == nil {
				b.WriteByte(byte(n))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// A Leaf is a cgroup2 cgroup made by [New] for one process tree. Its
// methods may be called from several goroutines; [Leaf.Remove] waits for
// the calls in progress and makes later ones fail with [os.ErrClosed].
type Leaf struct {
	path string // directory
	rel  string // path as /proc/<pid>/cgroup shows it
	id   uint64 // cgroup ID, 0 if unknown

	// mu guards the descriptors: readers use them, Remove closes them.
	mu      sync.RWMutex
	dir     int // the directory, O_DIRECTORY; -1 once removed
	events  int // cgroup.events, kept open for Populated; -1 once removed
	removed bool

	// freezeMu serialises the freeze-signal-thaw sequences of Signal (and
	// of Kill without cgroup.kill), which would otherwise thaw each other.
	freezeMu sync.Mutex
}

// seq numbers the leaves this process creates.
var seq atomic.Uint64

// New creates a leaf: a new cgroup directory under the caller's own cgroup
// (see [Root]), named after the caller so that [CleanStale] can recognise
// it once the caller is gone, and opens it. The leaf is empty; start a
// child in it with [syscall.SysProcAttr] UseCgroupFD and CgroupFD set to
// [Leaf.FD].
//
// If the caller may not create cgroups there (not root, and the subtree
// not delegated to its user, or a read-only cgroup2 mount), New returns an
// error wrapping [os.ErrPermission] and the errno (EACCES, EPERM, EROFS).
// If the caller's cgroup cannot have children that hold processes (it is
// threaded, so the leaf would be "domain invalid"), or there is no cgroup2
// at all, the error wraps [errors.ErrUnsupported].
func New() (*Leaf, error) {
	w, err := self()
	if err != nil {
		return nil, err
	}
	id, err := identity()
	if err != nil {
		return nil, err
	}
	var name, p string
	for range 100 {
		name = id.leafName(seq.Add(1) - 1)
		p = path.Join(w.dir, name)
		err = unix.Mkdir(p, 0o755)
		if err != unix.EEXIST {
			break
		}
	}
	if err != nil {
		return nil, mkdirError(w.dir, p, err)
	}
	l, err := openLeaf(p, path.Join(w.rel, name))
	if err != nil {
		unix.Rmdir(p)
		return nil, err
	}
	return l, nil
}

// openLeaf opens the cgroup just created at p and checks it can hold
// processes.
func openLeaf(p, rel string) (*Leaf, error) {
	dir, err := unix.Open(p, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, &os.PathError{Op: "open", Path: p, Err: err}
	}
	l := &Leaf{path: p, rel: rel, dir: dir, events: -1}
	fail := func(err error) (*Leaf, error) {
		unix.Close(dir)
		if l.events >= 0 {
			unix.Close(l.events)
		}
		return nil, err
	}
	typ, err := l.readFile("cgroup.type")
	if err != nil {
		return fail(err)
	}
	if t := strings.TrimSpace(string(typ)); t != "domain" {
		return fail(fmt.Errorf("cgroup: %s is %q, not \"domain\" (is the own cgroup threaded?): it cannot hold processes: %w", p, t, errors.ErrUnsupported))
	}
	l.events, err = unix.Openat(dir, "cgroup.events", unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return fail(&os.PathError{Op: "openat", Path: p + "/cgroup.events", Err: err})
	}
	// The first read arms the POLLPRI notification (a fresh descriptor
	// polls as changed until it is read once).
	if _, err := readEvents(l.events, p); err != nil {
		return fail(err)
	}
	l.id, _ = dirID(dir)
	return l, nil
}

// mkdirError explains why mkdir of p under dir failed.
func mkdirError(dir, p string, errno error) error {
	perr := &os.PathError{Op: "mkdir", Path: p, Err: errno}
	switch errno {
	case unix.EACCES, unix.EPERM, unix.EROFS:
		var why string
		var st unix.Stat_t
		switch {
		case errno == unix.EROFS:
			why = "the cgroup2 file system is mounted read-only (a container without a delegated cgroup namespace?)"
		case os.Geteuid() != 0 && unix.Stat(dir, &st) == nil:
			why = fmt.Sprintf("not root, and the cgroup is not delegated to uid %d (the directory belongs to uid %d)", os.Geteuid(), st.Uid)
		case os.Geteuid() != 0:
			why = "not root, and the cgroup is not delegated to this user"
		default:
			why = "denied to root (a security module, or a cgroup namespace boundary)"
		}
		return fmt.Errorf("cgroup: cannot create a leaf in %s: %s: %w: %w", dir, why, os.ErrPermission, perr)
	case unix.EAGAIN:
		return fmt.Errorf("cgroup: cannot create a leaf in %s: cgroup.max.descendants or cgroup.max.depth reached: %w", dir, perr)
	}
	return perr
}

// FD returns the leaf directory's descriptor, for [syscall.SysProcAttr]
// CgroupFD, or -1 after [Leaf.Remove]. It stays owned by the Leaf: do not
// close it, and do not use it concurrently with Remove.
func (l *Leaf) FD() int {
	l.mu.RLock()
	defer l.mu.RUnlock()
	return l.dir
}

// EventsFD returns the descriptor of the leaf's cgroup.events that
// [Leaf.Populated] reads, or -1 after [Leaf.Remove]. Register it with an
// epoll instance for EPOLLPRI to learn of changes without a thread (see
// the package documentation for the protocol; epoll reports EPOLLERR with
// it, which is not an error). Do not read or close it.
func (l *Leaf) EventsFD() int {
	l.mu.RLock()
	defer l.mu.RUnlock()
	return l.events
}

// Path returns the leaf's directory.
func (l *Leaf) Path() string { return l.path }

// ID returns the leaf's cgroup ID: the inode number of its directory,
// which the kernel also reports as the cgroup of a member process
// (PIDFD_GET_INFO's cgroupid, bpf_get_current_cgroup_id). It is read with
// name_to_handle_at(2), or fstat(2) on 64-bit systems, when the leaf is
// created; if neither worked, ID returns an error wrapping
// [errors.ErrUnsupported].
func (l *Leaf) ID() (uint64, error) {
	if l.id == 0 {
		return 0, fmt.Errorf("cgroup: no ID for %s: %w", l.path, errors.ErrUnsupported)
	}
	return l.id, nil
}

// dirID returns the cgroup ID of the directory fd refers to.
func dirID(fd int) (uint64, error) {
	return handleID(fd, "", unix.AT_EMPTY_PATH)
}

// handleID returns the 64-bit ID of a kernfs object (a cgroup, a pidfs
// inode) from its file handle, or, on 64-bit systems, its inode number.
func handleID(dirfd int, name string, flags int) (uint64, error) {
	fh, _, err := unix.NameToHandleAt(dirfd, name, flags)
	if err == nil {
		if b := fh.Bytes(); fh.Type() == fileIDKernfs && len(b) >= 8 {
			return binary.NativeEndian.Uint64(b), nil
		}
		err = fmt.Errorf("cgroup: unexpected file handle (type %#x, %d bytes)", fh.Type(), fh.Size())
	} else {
		err = os.NewSyscallError("name_to_handle_at", err)
	}
	if bits.UintSize != 64 {
		return 0, err
	}
	var st unix.Stat_t
	if serr := unix.Fstatat(dirfd, name, &st, flags); serr != nil {
		return 0, err
	}
	return st.Ino, nil
}

// Populated reports whether any process lives in the leaf or in a cgroup
// below it, reading "populated" from cgroup.events through
// [Leaf.EventsFD] (which re-arms its POLLPRI notification). Exited
// processes do not count, even before they are reaped. After
// [Leaf.Remove] it returns an error wrapping [os.ErrClosed].
func (l *Leaf) Populated() (bool, error) {
	l.mu.RLock()
	defer l.mu.RUnlock()
	if l.removed {
		return false, l.closedError()
	}
	ev, err := readEvents(l.events, l.path)
	return ev.populated, err
}

// PopulatedNow is [Leaf.Populated] through a descriptor of its own, for
// callers other than the one that watches [Leaf.EventsFD]: it leaves that
// descriptor's notification alone. A removed leaf is not populated.
func (l *Leaf) PopulatedNow() (bool, error) {
	l.mu.RLock()
	defer l.mu.RUnlock()
	if l.removed {
		return false, nil
	}
	b, err := l.readFile("cgroup.events")
	if err != nil {
		return false, err
	}
	ev, err := parseEvents(b, l.path)
	return ev.populated, err
}

// events is the content of a cgroup.events file.
type events struct{ populated, frozen bool }

// readEvents reads cgroup.events from offset 0 of fd.
func readEvents(fd int, dir string) (events, error) {
	var buf [128]byte
	n, err := preadFull(fd, buf[:])
	if err != nil {
		return events{}, &os.PathError{Op: "pread", Path: dir + "/cgroup.events", Err: err}
	}
	return parseEvents(buf[:n], dir)
}

func parseEvents(b []byte, dir string) (events, error) {
	var ev events
	seen := 0
	for line := range strings.Lines(string(b)) {
		k, v, _ := strings.Cut(strings.TrimSpace(line), " ")
		switch k {
		case "populated":
			ev.populated = v == "1"
			seen++
		case "frozen":
			ev.frozen = v == "1"
		}
	}
	if seen == 0 {
		return ev, fmt.Errorf("cgroup: %s/cgroup.events has no \"populated\" line: %q", dir, b)
	}
	return ev, nil
}

// preadFull reads a small kernfs file from offset 0, retrying EINTR.
func preadFull(fd int, buf []byte) (int, error) {
	n := 0
	for n < len(buf) {
		m, err := unix.Pread(fd, buf[n:], int64(n))
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return n, err
		}
		if m == 0 {
			break
		}
		n += m
	}
	return n, nil
}

// readFile reads a file of the leaf (name relative to its directory)
// through a descriptor of its own. The caller holds l.mu or owns l.
func (l *Leaf) readFile(name string) ([]byte, error) {
	fd, err := unix.Openat(l.dir, name, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, &os.PathError{Op: "openat", Path: l.path + "/" + name, Err: err}
	}
	defer unix.Close(fd)
	var out []byte
	buf := make([]byte, 4096)
	for {
		n, err := unix.Read(fd, buf)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return nil, &os.PathError{Op: "read", Path: l.path + "/" + name, Err: err}
		}
		if n == 0 {
			return out, nil
		}
		out = append(out, buf[:n]...)
	}
}

// writeFile writes s to a file of the leaf (name relative to its
// directory). The caller holds l.mu.
func (l *Leaf) writeFile(name, s string) error {
	fd, err := unix.Openat(l.dir, name, unix.O_WRONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return &os.PathError{Op: "openat", Path: l.path + "/" + name, Err: err}
	}
	defer unix.Close(fd)
	for {
		_, err = unix.Write(fd, []byte(s))
		if err != unix.EINTR {
			break
		}
	}
	if err != nil {
		return &os.PathError{Op: "write", Path: l.path + "/" + name, Err: err}
	}
	return nil
}

func (l *Leaf) closedError() error {
	return fmt.Errorf("cgroup: leaf %s: %w", l.path, os.ErrClosed)
}

// Remove removes the leaf's directory (with any empty cgroups a member
// created below it) and closes its descriptors. It may be called again,
// and then does nothing. While a process lives in the leaf, Remove
// changes nothing and returns an error wrapping [syscall.EBUSY]; once
// [Leaf.Populated] says false it succeeds, even before the exited members
// are reaped. A leaf someone else removed counts as removed.
func (l *Leaf) Remove() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.removed {
		return nil
	}
	if err := removeTree(l.path); err != nil {
		return err
	}
	l.removed = true
	unix.Close(l.events)
	unix.Close(l.dir)
	l.dir, l.events = -1, -1
	return nil
}

// removeTree removes the cgroup directory p and the cgroups below it, if
// no process lives in any of them. A cgroup that does not exist is no
// error.
func removeTree(p string) error {
	err := unix.Rmdir(p)
	switch err {
	case nil, unix.ENOENT:
		return nil
	case unix.EBUSY:
	default:
		return &os.PathError{Op: "rmdir", Path: p, Err: err}
	}
	// EBUSY: members, or cgroups below. Only if no process lives anywhere
	// below may those cgroups go: they could belong to a live nested user
	// (a member that itself uses pexec) otherwise.
	b, err := os.ReadFile(p + "/cgroup.events")
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil
		}
		return err
	}
	ev, err := parseEvents(b, p)
	if err != nil {
		return err
	}
	if ev.populated {
		return fmt.Errorf("cgroup: leaf %s still has processes: %w", p, &os.PathError{Op: "rmdir", Path: p, Err: syscall.EBUSY})
	}
	ents, err := os.ReadDir(p)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	var errs []error
	for _, e := range ents {
		if e.IsDir() {
			errs = append(errs, removeTree(p+"/"+e.Name()))
		}
	}
	if err := errors.Join(errs...); err != nil {
		return err
	}
	if err := unix.Rmdir(p); err != nil && err != unix.ENOENT {
		return &os.PathError{Op: "rmdir", Path: p, Err: err}
	}
	return nil
}

// Holds reports whether process pid is in the leaf or a cgroup below it,
// by /proc/<pid>/cgroup: the caller makes sure the PID is still the
// process it means (a child not yet reaped).
func (l *Leaf) Holds(pid int) bool {
	p, ok := procfs.CgroupPath(pid)
	return ok && (p == l.rel || strings.HasPrefix(p, l.rel+"/"))
}
