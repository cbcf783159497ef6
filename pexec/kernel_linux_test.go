package pexec_test

import (
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/pexec-dev/pexec/pexec"
)

// The pidfd features that arrived after 5.4 (README, "Kernel versions"),
// as this kernel has them. The tests expect, for each, the feature's
// behaviour where the kernel has it, and what the kernel table promises
// below its version where it does not (errors.ErrUnsupported,
// ErrStatusUnavailable, the /proc fallback of Info, ...). Each is found by
// calling the kernel directly, not through pexec: pexec's own probes are
// what the tests check.
type kernelFeatures struct {
	PeerPidfd   bool // SO_PEERPIDFD (6.5)
	Pidfs       bool // pidfds in pidfs, one inode per process (6.9)
	GroupSignal bool // PIDFD_SIGNAL_PROCESS_GROUP (6.9)
	ThreadPidfd bool // pidfd_open(PIDFD_THREAD) (6.9)
	ReapHUP     bool // a reaped process's pidfd reports POLLHUP (6.9)
	GetInfo     bool // ioctl(PIDFD_GET_INFO) (6.13)
	InfoExit    bool // PIDFD_INFO_EXIT: the exit status kept after the reap (6.15)
}

// kernelFeatureList is kernelFeatures' fields with the version that brought
// each (the README's table), for TestKernelFeatures.
var kernelFeatureList = []struct {
	name, since string
	has         func(kernelFeatures) bool
}{
	{"SO_PEERPIDFD", "6.5", func(k kernelFeatures) bool { return k.PeerPidfd }},
	{"pidfs", "6.9", func(k kernelFeatures) bool { return k.Pidfs }},
	{"PIDFD_SIGNAL_PROCESS_GROUP", "6.9", func(k kernelFeatures) bool { return k.GroupSignal }},
	{"PIDFD_THREAD", "6.9", func(k kernelFeatures) bool { return k.ThreadPidfd }},
	{"POLLHUP after the reap", "6.9", func(k kernelFeatures) bool { return k.ReapHUP }},
	{"PIDFD_GET_INFO", "6.13", func(k kernelFeatures) bool { return k.GetInfo }},
	{"PIDFD_INFO_EXIT", "6.15", func(k kernelFeatures) bool { return k.InfoExit }},
}

// String lists the features the kernel has and those it lacks.
func (k kernelFeatures) String() string {
	var has, lacks []string
	for _, f := range kernelFeatureList {
		if f.has(k) {
			has = append(has, f.name)
		} else {
			lacks = append(lacks, f.name+" ("+f.since+")")
		}
	}
	return fmt.Sprintf("has [%s]; lacks [%s]", strings.Join(has, ", "), strings.Join(lacks, ", "))
}

// kernel probes, once, the features of the running kernel. Where there are
// no pidfds at all (pidfd_open fails: a kernel before 5.3, a seccomp
// filter) it has none of them.
var kernel = sync.OnceValue(func() kernelFeatures {
	var k kernelFeatures
	self, err := unix.PidfdOpen(os.Getpid(), 0)
	if err != nil {
		return k
	}
	defer unix.Close(self)
	var sfs unix.Statfs_t
	k.Pidfs = unix.Fstatfs(self, &sfs) == nil && sfs.Type == unix.PID_FS_MAGIC
	// Signal 0 to the group the test process leads: ESRCH (it leads
	// none) or EPERM still say that the flag is known; EINVAL, that it is not.
	err = unix.PidfdSendSignal(self, 0, nil, unix.PIDFD_SIGNAL_PROCESS_GROUP)
	k.GroupSignal = err != unix.EINVAL
	if fd, err := unix.PidfdOpen(unix.Gettid(), unix.PIDFD_THREAD); err == nil {
		unix.Close(fd)
		k.ThreadPidfd = true
	}
	var info unix.PidfdInfo
	k.GetInfo = pidfdGetInfo(self, unix.PIDFD_INFO_PID, &info) == nil
	if fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0); err == nil {
		if fd, err := unix.GetsockoptInt(fds[0], unix.SOL_SOCKET, unix.SO_PEERPIDFD); err == nil {
			unix.Close(fd)
			k.PeerPidfd = true
		}
		unix.Close(fds[0])
		unix.Close(fds[1])
	}
	// A child reaped under a pidfd of its own: POLLHUP, and the status.
	c := exec.Command("/bin/sh", "-c", "exit 7")
	if c.Start() != nil {
		return k
	}
	fd, err := unix.PidfdOpen(c.Process.Pid, 0)
	c.Wait()
	if err != nil {
		return k
	}
	defer unix.Close(fd)
	fds := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}
	k.ReapHUP = pollNow(fds) && fds[0].Revents&unix.POLLHUP != 0
	if k.GetInfo {
		info = unix.PidfdInfo{}
		k.InfoExit = pidfdGetInfo(fd, unix.PIDFD_INFO_EXIT, &info) == nil && info.Mask&unix.PIDFD_INFO_EXIT != 0 &&
			syscall.WaitStatus(info.Exit_code).ExitStatus() == 7
	}
	return k
})

// pollNow polls fds without blocking and reports whether it could.
func pollNow(fds []unix.PollFd) bool {
	for {
		_, err := unix.Poll(fds, 0)
		if err != unix.EINTR {
			return err == nil
		}
	}
}

// pidfdGetInfo wraps ioctl(PIDFD_GET_INFO).
func pidfdGetInfo(fd int, mask uint64, info *unix.PidfdInfo) error {
	info.Mask = mask
	_, _, e := unix.Syscall(unix.SYS_IOCTL, uintptr(fd), unix.PIDFD_GET_INFO, uintptr(unsafe.Pointer(info)))
	if e != 0 {
		return e
	}
	return nil
}

// releaseAtLeast reports whether the kernel's release (uname -r) is at least
// version, a "major.minor" string.
func releaseAtLeast(release, version string) bool {
	leading := func(s string) int { // the number s starts with
		end := strings.IndexFunc(s, func(r rune) bool { return r < '0' || r > '9' })
		if end < 0 {
			end = len(s)
		}
		n, _ := strconv.Atoi(s[:end])
		return n
	}
	num := func(s string) (maj, min int) {
		a, b, _ := strings.Cut(s, ".")
		return leading(a), leading(b)
	}
	rm, rn := num(release)
	vm, vn := num(version)
	return rm > vm || rm == vm && rn >= vn
}

// kernelRelease names the running kernel for the proofs' logs: "Linux
// 6.1.0-57-cloud-amd64".
func kernelRelease() string {
	var uts unix.Utsname
	if err := unix.Uname(&uts); err != nil {
		return "Linux (uname: " + err.Error() + ")"
	}
	return "Linux " + unix.ByteSliceToString(uts.Release[:])
}

// TestKernelFeatures says which of the pidfd features of the README's
// kernel table this kernel has, which tells what the other tests checked
// here: the feature, or what pexec promises without it. pexec probes by
// calling, never by the version; this test compares the probes above with
// the table. A kernel older than a feature's version may have it
// backported (distribution kernels do), so only the opposite fails the
// test: a feature missing on a kernel at least as new as the table says.
// It would mean a broken probe, and the tests would then check the
// fallbacks where the feature should have been tested.
func TestKernelFeatures(t *testing.T) {
	if !pexec.Supported() {
		t.Skip("no pidfds here (pexec.Supported() is false): the features below need them")
	}
	release := strings.TrimPrefix(kernelRelease(), "Linux ")
	k := kernel()
	t.Logf("Linux %s: %s", release, k)
	for _, f := range kernelFeatureList {
		if releaseAtLeast(release, f.since) && !f.has(k) {
			t.Errorf("Linux %s lacks %s, which Linux %s brought: is the probe broken?", release, f.name, f.since)
		}
	}
}

func TestReleaseAtLeast(t *testing.T) {
	for _, tt := range []struct {
		release, version string
		want             bool
	}{
		{"6.1.0-57-cloud-amd64", "6.5", false},
		{"6.1.0-57-cloud-amd64", "6.1", true},
		{"6.18.44-fc-v595", "6.15", true},
		{"6.18.44-fc-v595", "6.9", true},
		{"5.10.0-35-cloud-amd64", "6.5", false},
		{"7.0", "6.15", true},
		{"6.9-rc1", "6.9", true},
		{"6.10", "6.9", true},
	} {
		if got := releaseAtLeast(tt.release, tt.version); got != tt.want {
			t.Errorf("releaseAtLeast(%q, %q) = %v, want %v", tt.release, tt.version, got, tt.want)
		}
	}
}
