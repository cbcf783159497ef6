package pexectest

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// procStat is what the leak checks read of a process in /proc/<pid>/stat.
type procStat struct {
	ppid  int
	pgrp  int  // the process group's ID
	state byte // R, S, D, T, t, Z, X, ...
	comm  string
	start uint64 // start time, in clock ticks after boot (field 22)
	// exitCode is the status in the form wait(2) reports it (field 52,
	// Linux 3.5+), meaningful once the process is a zombie.
	exitCode int
}

// readStat reads /proc/<pid>/stat.
func readStat(pid int) (procStat, error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return procStat{}, err
	}
	// The program's name, in parentheses, may itself contain spaces and
	// parentheses: the fields resume after the last ')'.
	open, end := bytes.IndexByte(b, '('), bytes.LastIndexByte(b, ')')
	if open < 0 || end < open {
		return procStat{}, fmt.Errorf("pexectest: bad /proc/%d/stat: %q", pid, b)
	}
	f := strings.Fields(string(b[end+1:])) // f[0] is field 3, the state
	if len(f) < 20 || len(f[0]) != 1 {
		return procStat{}, fmt.Errorf("pexectest: bad /proc/%d/stat: %q", pid, b)
	}
	st := procStat{state: f[0][0], comm: string(b[open+1 : end])}
	st.ppid, _ = strconv.Atoi(f[1])
	st.pgrp, _ = strconv.Atoi(f[2])
	st.start, _ = strconv.ParseUint(f[19], 10, 64)
	if len(f) > 49 {
		st.exitCode, _ = strconv.Atoi(f[49])
	}
	return st, nil
}

// gone reports whether the state is that of a process that has exited.
func (st procStat) gone() bool { return st.state == 'Z' || st.state == 'X' }

// procStart returns the start time of process pid, 0 if unknown.
func procStart(pid int) uint64 {
	st, err := readStat(pid)
	if err != nil {
		return 0
	}
	return st.start
}

// hasChildrenFiles reports whether /proc/<pid>/task/<tid>/children exists
// (CONFIG_PROC_CHILDREN).
var hasChildrenFiles = sync.OnceValue(func() bool {
	_, err := os.Stat("/proc/thread-self/children")
	return err == nil
})

// childrenOf lists the children of process pid: from the children file of
// each of its threads where the kernel has them, otherwise by scanning
// every /proc/<pid>/stat for the parent's PID.
func childrenOf(pid int) ([]int, error) {
	var out []int
	if hasChildrenFiles() {
		dir := "/proc/" + strconv.Itoa(pid) + "/task"
		tasks, err := os.ReadDir(dir)
		if err != nil {
			return nil, err
		}
		for _, task := range tasks {
			b, err := os.ReadFile(dir + "/" + task.Name() + "/children")
			if err != nil {
				continue // the thread has exited; its children moved to another
			}
			for _, w := range strings.Fields(string(b)) {
				if n, err := strconv.Atoi(w); err == nil {
					out = append(out, n)
				}
			}
		}
	} else {
		ents, err := os.ReadDir("/proc")
		if err != nil {
			return nil, err
		}
		for _, e := range ents {
			n, err := strconv.Atoi(e.Name())
			if err != nil {
				continue
			}
			if st, err := readStat(n); err == nil && st.ppid == pid {
				out = append(out, n)
			}
		}
	}
	slices.Sort(out)
	return slices.Compact(out), nil
}

// currentChildren returns the children of the calling process.
func currentChildren() []procKey {
	pids, _ := childrenOf(os.Getpid())
	var out []procKey
	for _, pid := range pids {
		if st, err := readStat(pid); err == nil {
			out = append(out, procKey{pid, st.start})
		}
	}
	return out
}

// cmdline returns the command line of process pid, whose kernel name is
// comm, words separated by spaces, and its first word; both "" once the
// process has exited. For a program that the kernel runs through a
// binfmt_misc interpreter, it is the program's own command line (see
// [programArgs]).
func cmdline(pid int, comm string) (line, argv0 string) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/cmdline")
	if err != nil || len(b) == 0 {
		return "", ""
	}
	words := strings.Split(strings.TrimSuffix(string(b), "\x00"), "\x00")
	words = programArgs(words, comm, binfmtInterpreters())
	return strings.Join(words, " "), words[0]
}

// programArgs returns the command line of a program from words, the
// /proc/<pid>/cmdline of its process, whose kernel name is comm. Where
// binfmt_misc runs the program through an interpreter (qemu-user, for a
// binary of another architecture: the test binary built for linux/arm64 and
// run on amd64), the kernel gives the interpreter the argument vector
// [interpreter, program path, program arguments...], or, with the
// registration's P flag (preserve-argv0), [interpreter, program path,
// program argv[0], program arguments...]; programArgs removes what the
// kernel put in front, so that reports and [IgnoreCommand] see the
// command line the program was started with. It does so only if words[0]
// is an interpreter registered with binfmt_misc (interps maps each to
// whether it has the P flag) and comm is the name of the program, not of
// the interpreter: the kernel names a process after the file that was
// executed. Otherwise it returns words unchanged.
func programArgs(words []string, comm string, interps map[string]bool) []string {
	if len(words) < 2 {
		return words
	}
	preserve, ok := interps[words[0]]
	if !ok || comm == "" || commOf(words[1]) != comm || commOf(words[0]) == comm {
		return words
	}
	if preserve && len(words) > 2 {
		return words[2:]
	}
	return words[1:]
}

// commOf returns the kernel's name for a process that executed the file
// path: its last element, cut to 15 bytes (TASK_COMM_LEN - 1).
func commOf(path string) string {
	base := filepath.Base(path)
	if len(base) > 15 {
		base = base[:15]
	}
	return base
}

// binfmtInterpreters returns the interpreters registered with binfmt_misc
// (from /proc/sys/fs/binfmt_misc, where it is mounted), each mapped to
// whether its registration has the P flag. It reads them once.
var binfmtInterpreters = sync.OnceValue(func() map[string]bool {
	const dir = "/proc/sys/fs/binfmt_misc"
	ents, _ := os.ReadDir(dir)
	out := map[string]bool{}
	for _, e := range ents {
		if e.Name() == "register" || e.Name() == "status" {
			continue
		}
		b, err := os.ReadFile(dir + "/" + e.Name())
		if err != nil {
			continue
		}
		interp, preserve := "", false
		for line := range strings.Lines(string(b)) {
			line = strings.TrimSpace(line)
			if v, ok := strings.CutPrefix(line, "interpreter "); ok {
				interp = v
			} else if v, ok := strings.CutPrefix(line, "flags:"); ok {
				preserve = strings.Contains(v, "P")
			}
		}
		if interp != "" {
			out[interp] = preserve
		}
	}
	return out
})

// helperOf returns the helper process pid runs, from its environment.
func helperOf(pid int) string {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/environ")
	if err != nil {
		return ""
	}
	for kv := range strings.SplitSeq(string(b), "\x00") {
		if v, ok := strings.CutPrefix(kv, HelperEnv+"="); ok {
			return v
		}
	}
	return ""
}

// describe fills in what a Leak says about process pid.
func describe(pid int, st procStat) Leak {
	l := Leak{PID: pid, State: "running"}
	switch {
	case st.gone():
		ws := syscall.WaitStatus(st.exitCode)
		how := "exit status " + strconv.Itoa(ws.ExitStatus())
		if ws.Signaled() {
			how = "signal " + signalName(ws.Signal())
			if ws.CoreDump() {
				how += " (core dumped)"
			}
		}
		l.State = "exited (" + how + "), not reaped"
	case st.state == 'T' || st.state == 't':
		l.State = "stopped"
	}
	var argv0 string
	l.Command, argv0 = cmdline(pid, st.comm)
	if argv0 != "" {
		l.Helper = helperOf(pid)
	}
	if l.Command == "" {
		l.Command = "[" + st.comm + "]"
	}
	return l
}

// scanChildren lists the children of the test process that the options do
// not exempt.
func scanChildren(o *options) ([]leaked, error) {
	if _, err := os.Stat("/proc/self/stat"); err != nil {
		return nil, errNoProc
	}
	self := os.Getpid()
	pids, err := childrenOf(self)
	if err != nil {
		return nil, fmt.Errorf("listing the children of pid %d: %w", self, err)
	}
	var out []leaked
	for _, pid := range pids {
		st, err := readStat(pid)
		if err != nil || st.ppid != self {
			continue // reaped since it was listed
		}
		k := procKey{pid, st.start}
		b, isBound := boundTo(k)
		if o.ignorePIDs[pid] || o.ignoreProcs[k] || b.pending {
			continue
		}
		l := describe(pid, st)
		_, argv0 := cmdline(pid, st.comm)
		if o.ignoredCommand(argv0, st.comm, l.Helper) {
			continue
		}
		if isBound {
			l.Test = b.test
			if strings.HasPrefix(l.Command, "[") {
				l.Command = b.command
			}
		}
		out = append(out, leaked{Leak: l, key: k, zombie: st.gone()})
	}
	return out, nil
}

// maxDescendants bounds the descendants a report lists.
const maxDescendants = 100

// describeDescendants fills in the Descendants of each leak.
func describeDescendants(leaks []leaked) {
	n := 0
	var walk func(pid int) []Leak
	walk = func(pid int) []Leak {
		kids, _ := childrenOf(pid)
		var out []Leak
		for _, k := range kids {
			st, err := readStat(k)
			if err != nil || st.ppid != pid || n >= maxDescendants {
				continue
			}
			n++
			l := describe(k, st)
			l.Descendants = walk(k)
			out = append(out, l)
		}
		return out
	}
	for i := range leaks {
		if !leaks[i].zombie && leaks[i].tree == nil {
			leaks[i].Descendants = walk(leaks[i].PID)
		}
	}
}

// target is a process the clean-up signals: through its pidfd, or by PID
// where pidfds do not work (fd is -1).
type target struct {
	pid int
	fd  int
}

func (t target) signal(sig syscall.Signal) error {
	if t.fd >= 0 {
		return unix.PidfdSendSignal(t.fd, sig, nil, 0)
	}
	return unix.Kill(t.pid, sig)
}

func (t target) close() {
	if t.fd >= 0 {
		unix.Close(t.fd)
	}
}

// noPidfd reports whether err from pidfd_open means that pidfds do not work
// here: an old kernel or a seccomp filter.
func noPidfd(err error) bool {
	return err == unix.ENOSYS || err == unix.EPERM || err == unix.EINVAL
}

// open returns a target for process pid if it is still the process with
// start time start whose parent is ppid, and ok false if it is gone.
//
// For a child of the caller (ppid is the caller), the pidfd is opened
// first, the process is checked in /proc second, and waitid(WNOWAIT) third
// confirms that it is still an unreaped child: an unreaped child keeps its
// PID, so the process /proc showed is the one the pidfd refers to. For a
// grandchild, the caller has stopped its parent, which then can neither
// reap it nor start another process that could take its PID.
func open(pid int, start uint64, ppid int) (t target, ok bool, err error) {
	t = target{pid: pid, fd: -1}
	fd, err := unix.PidfdOpen(pid, 0)
	switch {
	case err == nil:
		t.fd = fd
	case err == unix.ESRCH:
		return t, false, nil
	case !noPidfd(err):
		return t, false, os.NewSyscallError("pidfd_open", err)
	}
	st, err := readStat(pid)
	if err != nil || st.start != start || st.ppid != ppid {
		t.close()
		return t, false, nil
	}
	if ppid == os.Getpid() {
		idType, id := unix.P_PIDFD, t.fd
		if t.fd < 0 {
			idType, id = unix.P_PID, pid
		}
		var info unix.Siginfo
		if err := unix.Waitid(idType, id, &info, unix.WEXITED|unix.WNOHANG|unix.WNOWAIT, nil); err != nil {
			t.close()
			return t, false, nil // reaped meanwhile, by someone else
		}
	}
	return t, true, nil
}

// killLeak kills a leaked child and its descendants, and reaps the child.
func killLeak(l leaked) error {
	t, ok, err := open(l.key.pid, l.key.start, os.Getpid())
	if !ok {
		return err
	}
	defer t.close()
	if st, err := readStat(t.pid); err == nil && !st.gone() {
		// Freeze the tree top down, so that nobody in it can start or reap
		// a process while it is listed, then kill it.
		var tree []target
		stopTree(t, &tree)
		for _, d := range slices.Backward(tree) {
			d.signal(unix.SIGKILL)
			d.close()
		}
		if err := t.signal(unix.SIGKILL); err != nil && err != unix.ESRCH {
			return fmt.Errorf("SIGKILL: %w", err)
		}
	}
	return reap(t, 5*time.Second)
}

// stopTree stops t, waits until it is stopped, and does the same for each
// of its children, recursively; it appends the descendants it opened to
// tree.
func stopTree(t target, tree *[]target) {
	if t.signal(unix.SIGSTOP) != nil || !waitState(t.pid, time.Second, func(st procStat) bool {
		return st.state == 'T' || st.state == 't'
	}) {
		return // exited, or not stopping: its children stay unlisted
	}
	kids, _ := childrenOf(t.pid)
	for _, k := range kids {
		st, err := readStat(k)
		if err != nil || st.ppid != t.pid || st.gone() {
			continue
		}
		d, ok, _ := open(k, st.start, t.pid)
		if !ok {
			continue
		}
		*tree = append(*tree, d)
		stopTree(d, tree)
	}
}

// waitState waits up to d for process pid to be in a state cond accepts,
// or to be gone; it reports whether cond accepted.
func waitState(pid int, d time.Duration, cond func(procStat) bool) bool {
	deadline := time.Now().Add(d)
	delay := 100 * time.Microsecond
	for {
		st, err := readStat(pid)
		if err != nil || st.gone() {
			return false
		}
		if cond(st) {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(delay)
		delay = min(2*delay, 20*time.Millisecond)
	}
}

// reap waits up to d for the killed child t to exit, then reaps it. A
// child someone else reaped meanwhile is not an error.
func reap(t target, d time.Duration) error {
	if t.fd >= 0 {
		fds := []unix.PollFd{{Fd: int32(t.fd), Events: unix.POLLIN}}
		deadline := time.Now().Add(d)
		for {
			n, err := unix.Poll(fds, int(max(time.Until(deadline), 0)/time.Millisecond))
			if n > 0 || (err != nil && err != unix.EINTR) || time.Now().After(deadline) {
				break
			}
		}
		var info unix.Siginfo
		err := unix.Waitid(unix.P_PIDFD, t.fd, &info, unix.WEXITED|unix.WNOHANG, nil)
		if err != nil && err != unix.ECHILD {
			return os.NewSyscallError("waitid", err)
		}
		if err == nil && !fdExited(t.fd) {
			return fmt.Errorf("still running %v after SIGKILL", d)
		}
		return nil
	}
	// PID mode: the child cannot be reaped by anyone but this process's
	// waiters, so its PID stays its own until the wait4 below. /proc
	// cannot tell when to call it: the main thread of a multi-threaded
	// process shows as a zombie while its other threads are still exiting,
	// and it cannot be reaped until they have.
	deadline := time.Now().Add(d)
	delay := 100 * time.Microsecond
	for {
		var ws unix.WaitStatus
		pid, err := unix.Wait4(t.pid, &ws, unix.WNOHANG, nil)
		switch {
		case err == unix.ECHILD:
			return nil
		case err == unix.EINTR:
			continue
		case err != nil:
			return os.NewSyscallError("wait4", err)
		case pid != 0:
			return nil
		case time.Now().After(deadline):
			return fmt.Errorf("still running %v after SIGKILL", d)
		}
		time.Sleep(delay)
		delay = min(2*delay, 20*time.Millisecond)
	}
}

// fdExited reports whether the process of a pidfd has exited (the pidfd
// polls readable).
func fdExited(fd int) bool {
	fds := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}
	n, _ := unix.Poll(fds, 0)
	return n > 0
}

// errNoProc is returned where /proc is not mounted: the leak checks
// cannot list children then.
var errNoProc = fmt.Errorf("pexectest: no /proc/self/stat: the leak checks need procfs: %w", errors.ErrUnsupported)
