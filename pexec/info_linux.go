package pexec

import (
	"bufio"
	"encoding/binary"
	"fmt"
	"math/bits"
	"os"
	"strconv"
	"strings"

	"github.com/pexec-dev/pexec/internal/cgroup"
	"github.com/pexec-dev/pexec/internal/probe"
	"golang.org/x/sys/unix"
)

// Test switches (export_extra_linux_test.go): forceNoPidfs makes the pidfs
// probe fail, forceProcInfo makes Info read /proc as on kernels before
// PIDFD_GET_INFO.
var forceNoPidfs, forceProcInfo bool

// fileIDKernfs is the handle type name_to_handle_at(2) gives pidfs and
// cgroup2 files: the object's 64-bit ID (FILEID_KERNFS).
const fileIDKernfs = 0xfe

// probePidfs checks, once, that pidfds live in pidfs (Linux 6.9+), where
// each process has its own inode whose number is never reused while the
// system runs. Earlier kernels give every pidfd the same anonymous inode.
// On 32-bit systems st_ino holds only the low 32 bits, so the ID comes from
// a file handle (Linux 6.14+).
var probePidfs = probe.OnceErr(func() error {
	return probeSelf("a unique process ID (pidfs)", func(fd int) error {
		var sfs unix.Statfs_t
		if err := unix.Fstatfs(fd, &sfs); err != nil {
			return unsupported("a unique process ID (pidfs)", "6.9", os.NewSyscallError("fstatfs", err))
		}
		if uint32(sfs.Type) != unix.PID_FS_MAGIC {
			return unsupported("a unique process ID (pidfs)", "6.9", nil)
		}
		if _, err := pidfdID(fd); err != nil {
			return unsupported("a 64-bit process ID on a 32-bit system (pidfs file handles)", "6.14", err)
		}
		return nil
	})
})

func pidfsSupported() error {
	if forceNoPidfs {
		return unsupported("a unique process ID (pidfs)", "6.9", nil)
	}
	return probePidfs()
}

// pidfdID returns the pidfs inode number of a pidfd.
func pidfdID(fd int) (uint64, error) {
	if bits.UintSize == 64 {
		var st unix.Stat_t
		if err := unix.Fstat(fd, &st); err != nil {
			return 0, os.NewSyscallError("fstat", err)
		}
		return uint64(st.Ino), nil
	}
	return handleID(fd, "", unix.AT_EMPTY_PATH)
}

// handleID returns the 64-bit ID in a kernfs-style file handle.
func handleID(dirfd int, name string, flags int) (uint64, error) {
	fh, _, err := unix.NameToHandleAt(dirfd, name, flags)
	if err != nil {
		return 0, os.NewSyscallError("name_to_handle_at", err)
	}
	if b := fh.Bytes(); fh.Type() == fileIDKernfs && len(b) >= 8 {
		return binary.NativeEndian.Uint64(b), nil
	}
	return 0, fmt.Errorf("pexec: unexpected file handle (type %#x, %d bytes)", fh.Type(), fh.Size())
}

// ID returns the kernel's unique identifier of the process: the inode number
// of its pidfds in pidfs (Linux 6.9+; on 32-bit systems 6.14+), which, unlike
// a PID, is never reused while the system runs. It is the number fstat(2)
// reports for the process's pidfds, also seen by other programs (systemd's
// $MAINPIDFDID). ID keeps working after the process has exited, so it can
// be logged, compared with an ID recorded earlier to close [Open]'s race, or
// compared between two handles (see [Handle.SameProcess]).
//
// On older kernels, and for a Handle in [ModePID], ID returns an error
// wrapping [errors.ErrUnsupported].
func (h *Handle) ID() (uint64, error) {
	if err := h.check(); err != nil {
		return 0, err
	}
	if h.mode != ModePidFD {
		return 0, errNoPidfd
	}
	if err := pidfsSupported(); err != nil {
		return 0, err
	}
	if h.sys.id != 0 {
		return h.sys.id, nil
	}
	var id uint64
	var err error
	if cerr := h.control(func(fd int) { id, err = pidfdID(fd) }); cerr != nil {
		return 0, cerr
	}
	return id, err
}

// SameProcess reports whether h and o refer to the same process. It
// compares [Handle.ID]s where pidfs exists (Linux 6.9+). On older kernels it
// can still answer when the PIDs differ, while both processes are alive
// (two live processes never share a PID), and when one has exited and the
// other is alive after that (the PID was reused); when both have exited,
// and for handles in [ModePID] that are not the same Handle, it returns an
// error wrapping [errors.ErrUnsupported].
func (h *Handle) SameProcess(o *Handle) (bool, error) {
	if err := h.check(); err != nil {
		return false, err
	}
	if err := o.check(); err != nil {
		return false, err
	}
	if h == o {
		return true, nil
	}
	if h.mode != ModePidFD || o.mode != ModePidFD {
		return false, errNoPidfd
	}
	idErr := pidfsSupported()
	if idErr == nil {
		a, err := h.ID()
		if err != nil {
			return false, err
		}
		b, err := o.ID()
		if err != nil {
			return false, err
		}
		return a == b, nil
	}
	if h.pid != o.pid {
		return false, nil
	}
	// A process that has exited stays exited: the order of the Alive
	// checks is what makes each answer sound.
	hAlive, oAlive := h.Alive(), o.Alive()
	var same, known bool
	switch {
	case hAlive && oAlive:
		// Each process existed when its Handle was made, before the first
		// Alive check, and was alive after it: at that moment both were
		// alive with the same PID, so they are one process.
		same, known = true, true
	case !hAlive && oAlive, hAlive && !oAlive && h.Alive():
		// One was seen exited, and the other alive after that: two
		// processes, the second one with the PID reused.
		known = true
	}
	// A Handle closed meanwhile is not alive either: say it was closed.
	if err := h.check(); err != nil {
		return false, err
	}
	if err := o.check(); err != nil {
		return false, err
	}
	if !known {
		return false, fmt.Errorf("pexec: SameProcess(pid %d): both processes have exited, and only their IDs could tell: %w", h.pid, idErr)
	}
	return same, nil
}

// probeGetInfo checks, once, for the PIDFD_GET_INFO ioctl (Linux 6.13+).
var probeGetInfo = probe.OnceErr(func() error {
	return probeSelf("PIDFD_GET_INFO", func(fd int) error {
		var info unix.PidfdInfo
		if err := pidfdGetInfo(fd, unix.PIDFD_INFO_PID, &info); err != nil {
			return unsupported("PIDFD_GET_INFO", "6.13", err)
		}
		return nil
	})
})

// Info returns the process's IDs and cgroup. It asks the pidfd
// (PIDFD_GET_INFO, Linux 6.13+). On older kernels, and in [ModePID], it reads
// /proc/<pid>/status and /proc/<pid>/cgroup and then checks, through the
// pidfd (or, in ModePID, waitid on the unreaped child), that the process
// was still alive after the read: the PID was then still its own, so the
// answer can never describe another process that reused the PID.
//
// Once the process has exited (even as a zombie), Info returns an error
// wrapping [os.ErrProcessDone].
func (h *Handle) Info() (*Info, error) {
	if err := h.check(); err != nil {
		return nil, err
	}
	if h.hasExited() {
		return nil, os.ErrProcessDone
	}
	if h.mode == ModePID {
		return h.pidInfo()
	}
	if !forceProcInfo && probeGetInfo() == nil {
		return h.kernelInfo()
	}
	info, err := procInfo(h.pid)
	var gone bool
	if cerr := h.control(func(fd int) { gone = pidfdReadable(fd) }); cerr != nil {
		return nil, cerr
	}
	if gone {
		h.markExited()
		return nil, os.ErrProcessDone
	}
	return info, err
}

// kernelInfo asks the pidfd with PIDFD_GET_INFO.
func (h *Handle) kernelInfo() (*Info, error) {
	const want = unix.PIDFD_INFO_PID | unix.PIDFD_INFO_CREDS
	var pi unix.PidfdInfo
	var err error
	var gone bool
	if cerr := h.control(func(fd int) {
		err = pidfdGetInfo(fd, want|unix.PIDFD_INFO_CGROUPID, &pi)
		// A zombie still answers; report it as gone, as Signal does.
		gone = pidfdReadable(fd)
	}); cerr != nil {
		return nil, cerr
	}
	if gone {
		h.markExited()
		return nil, os.ErrProcessDone
	}
	if err != nil {
		return nil, err
	}
	if pi.Mask&want != want {
		return nil, fmt.Errorf("pexec: PIDFD_GET_INFO returned mask %#x, want %#x", pi.Mask, want)
	}
	info := &Info{
		Pid:  int(pi.Pid),
		PPid: int(pi.Ppid),
		UID:  int(pi.Ruid), EUID: int(pi.Euid),
		GID: int(pi.Rgid), EGID: int(pi.Egid),
	}
	if pi.Mask&unix.PIDFD_INFO_CGROUPID != 0 {
		info.CgroupID = pi.Cgroupid
	}
	return info, nil
}

// pidInfo is Info in ModePID: the child's PID stays its own while it is
// unreaped, which the reap gate guarantees for the duration of the read.
func (h *Handle) pidInfo() (*Info, error) {
	h.sys.reap.mu.RLock()
	defer h.sys.reap.mu.RUnlock()
	if h.sys.reap.reaped {
		return nil, os.ErrProcessDone
	}
	info, err := procInfo(h.pid)
	st, werr := waitid(unix.P_PID, h.pid, unix.WEXITED|unix.WNOHANG|unix.WNOWAIT, 0)
	if st != nil || isErrno(werr, unix.ECHILD) {
		h.markExited()
		return nil, os.ErrProcessDone
	}
	return info, err
}

// procInfo reads a process's Info from /proc. The caller must check
// afterwards that the process was still alive.
func procInfo(pid int) (*Info, error) {
	dir := "/proc/" + strconv.Itoa(pid)
	f, err := os.Open(dir + "/status")
	if err != nil {
		return nil, err
	}
	defer f.Close()
	info := new(Info)
	var seen int
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		key, val, ok := strings.Cut(sc.Text(), ":")
		if !ok {
			continue
		}
		fields := strings.Fields(val)
		if len(fields) == 0 {
			continue
		}
		var dst []*int
		switch key {
		case "Pid":
			dst = []*int{&info.Pid}
		case "PPid":
			dst = []*int{&info.PPid}
		case "Uid":
			dst = []*int{&info.UID, &info.EUID}
		case "Gid":
			dst = []*int{&info.GID, &info.EGID}
		default:
			continue
		}
		if len(fields) < len(dst) {
			return nil, fmt.Errorf("pexec: %s/status: malformed %s line", dir, key)
		}
		for i, p := range dst {
			if *p, err = strconv.Atoi(fields[i]); err != nil {
				return nil, fmt.Errorf("pexec: %s/status: %s: %w", dir, key, err)
			}
		}
		seen++
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	if seen != 4 {
		return nil, fmt.Errorf("pexec: %s/status: missing Pid, PPid, Uid or Gid", dir)
	}
	info.CgroupID = procCgroupID(dir)
	return info, nil
}

// procCgroupID returns the ID of the cgroup v2 cgroup listed in
// <dir>/cgroup, or 0 if it cannot be found.
func procCgroupID(dir string) uint64 {
	id, _ := cgroup.ProcessID(dir)
	return id
}
