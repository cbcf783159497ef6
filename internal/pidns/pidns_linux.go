package pidns

import (
	"fmt"
	"os"
	"strconv"
	"syscall"

	"golang.org/x/sys/unix"
)

// SysProcAttr returns the SysProcAttr that starts a process as PID 1 of a
// new PID namespace, with a mount namespace of its own so that [Enter] can
// mount a /proc that shows the new namespace. When that process exits, the
// kernel kills every process left in the namespace.
func SysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Cloneflags: unix.CLONE_NEWPID | unix.CLONE_NEWNS}
}

// Enter prepares a process started with [SysProcAttr]: it checks that the
// process is PID 1, stops mount propagation to the parent's namespace and
// mounts a fresh /proc, so /proc/<pid> names the processes of the new
// namespace by their PIDs there.
func Enter() error {
	if pid := os.Getpid(); pid != 1 {
		return fmt.Errorf("pidns: Enter: PID %d, not 1: not started with SysProcAttr", pid)
	}
	if err := unix.Mount("", "/", "", unix.MS_REC|unix.MS_PRIVATE, ""); err != nil {
		return os.NewSyscallError("mount(MS_PRIVATE)", err)
	}
	if err := unix.Mount("proc", "/proc", "proc", unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOEXEC, ""); err != nil {
		return os.NewSyscallError("mount(proc)", err)
	}
	return nil
}

// SetNextPID makes pid the ID the kernel gives the next process or thread
// created in the caller's PID namespace, if pid is free then: it writes
// pid-1 to /proc/sys/kernel/ns_last_pid, which applies to the namespace of
// the writer. The caller must create the process right away and check its
// PID: a thread the Go runtime starts in between takes the PID instead.
func SetNextPID(pid int) error {
	return os.WriteFile("/proc/sys/kernel/ns_last_pid", []byte(strconv.Itoa(pid-1)), 0)
}
