package pexec

import (
	"bytes"
	"fmt"
	"os"
	"sync"

	"golang.org/x/sys/unix"
)

// threadState is what a child inherits from the thread that forks it and
// that one thread of a Go program can hold differently from the others:
// namespaces entered with setns or unshare, CPU affinity, credentials set by
// a raw system call, a seccomp filter installed without TSYNC, an LSM label,
// a scheduling policy or nice value, a working or root directory after
// unshare(CLONE_FS). A Pdeathsig child is started from a spawn thread only
// when the calling thread's state equals the spawn thread's (see
// startEngine), so that the child inherits exactly what os/exec would give
// it.
type threadState struct {
	ns       string // the links of /proc/thread-self/ns
	cpus     unix.CPUSet
	uid, gid [3]int // real, effective, saved
	groups   string // supplementary group IDs
	caps     [2]unix.CapUserData
	prctl    [4]int // PR_GET_SECCOMP, _NO_NEW_PRIVS, _SECUREBITS, _KEEPCAPS
	filters  string // the Seccomp_filters line of status, when filtered
	sched    unix.SchedAttr
	cwd      string
	root     string
	label    string // attr/current and attr/exec, where an LSM provides them
	err      error  // set when the state could not be read
}

// threadNamespaces are the namespaces a thread can hold apart from the
// others (a multithreaded process cannot change its user namespace), as
// named in /proc/thread-self/ns; the *_for_children ones are those a child
// is created in.
var threadNamespaces = [...]string{"cgroup", "ipc", "mnt", "net", "pid_for_children", "time_for_children", "uts"}

// hasLSMAttr reports whether /proc/thread-self/attr/current can be read:
// an LSM (SELinux, AppArmor, Smack) provides it. LSMs are fixed at boot.
var hasLSMAttr = sync.OnceValue(func() bool {
	_, err := os.ReadFile("/proc/thread-self/attr/current")
	return err == nil
})

// readThreadState reads the calling thread's state. The caller has locked
// its goroutine to its thread.
func readThreadState() threadState {
	var s threadState
	fail := func(err error) threadState { s.err = err; return s }
	dir, err := unix.Open("/proc/thread-self/ns", unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return fail(err)
	}
	// Each link reads "net:[4026531840]": the namespace's nsfs inode.
	var ns [len(threadNamespaces) * 32]byte
	at := 0
	for _, name := range threadNamespaces {
		n, err := unix.Readlinkat(dir, name, ns[at:at+31])
		if err != nil && err != unix.ENOENT { // time namespaces: Linux 5.6
			unix.Close(dir)
			return fail(os.NewSyscallError("readlinkat", err))
		}
		at += max(n, 0) + 1
	}
	s.ns = string(ns[:at])
	unix.Close(dir)
	if err := unix.SchedGetaffinity(0, &s.cpus); err != nil {
		return fail(err)
	}
	s.uid[0], s.uid[1], s.uid[2] = unix.Getresuid()
	s.gid[0], s.gid[1], s.gid[2] = unix.Getresgid()
	groups, err := unix.Getgroups()
	if err != nil {
		return fail(err)
	}
	s.groups = fmt.Sprint(groups)
	hdr := unix.CapUserHeader{Version: unix.LINUX_CAPABILITY_VERSION_3}
	if err := unix.Capget(&hdr, &s.caps[0]); err != nil {
		return fail(err)
	}
	for i, op := range []int{unix.PR_GET_SECCOMP, unix.PR_GET_NO_NEW_PRIVS, unix.PR_GET_SECUREBITS, unix.PR_GET_KEEPCAPS} {
		if s.prctl[i], err = unix.PrctlRetInt(op, 0, 0, 0, 0); err != nil && err != unix.EINVAL {
			return fail(err)
		}
	}
	if s.prctl[0] == unix.SECCOMP_MODE_FILTER {
		// Another filter on top of the process's shows only in the count.
		status, err := os.ReadFile("/proc/thread-self/status")
		if err != nil {
			return fail(err)
		}
		if i := bytes.Index(status, []byte("Seccomp_filters:")); i >= 0 {
			line, _, _ := bytes.Cut(status[i:], []byte("\n"))
			s.filters = string(line)
		}
	}
	attr, err := unix.SchedGetAttr(0, 0)
	if err != nil {
		return fail(err)
	}
	s.sched = *attr
	if s.cwd, err = os.Readlink("/proc/thread-self/cwd"); err != nil {
		return fail(err)
	}
	if s.root, err = os.Readlink("/proc/thread-self/root"); err != nil {
		return fail(err)
	}
	if hasLSMAttr() {
		cur, err := os.ReadFile("/proc/thread-self/attr/current")
		if err != nil {
			return fail(err)
		}
		exe, _ := os.ReadFile("/proc/thread-self/attr/exec")
		s.label = string(cur) + "\x00" + string(exe)
	}
	return s
}

// same reports whether a child forked by a thread in state s inherits what
// one forked by a thread in state o would. A state that could not be read
// is the same as none.
func (s *threadState) same(o *threadState) bool {
	return s.err == nil && o.err == nil && *s == *o
}
