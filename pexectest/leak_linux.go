package pexectest

import (
	"errors"
	"fmt"
	"github.com/pexec-dev/pexec/internal/procfs"
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

// procStart returns the start time of process pid, 0 if unknown.
func procStart(pid int) uint64 {
	st, err := procfs.ReadStat(pid)
	if err != nil {
		return 0
	}
	return st.Start
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
			if st, err := procfs.ReadStat(n); err == nil && st.PPid == pid {
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
		if st, err := procfs.ReadStat(pid); err == nil {
			out = append(out, procKey{pid, st.Start})
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

// helperOf returns the helper process pid runs and the test that started
// it or its ancestor, from its environment.
func helperOf(pid int) (helper, test string) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/environ")
	if err != nil {
		return "", ""
	}
	for kv := range strings.SplitSeq(string(b), "\x00") {
		if v, ok := strings.CutPrefix(kv, HelperEnv+"="); ok {
			helper = v
		} else if v, ok := strings.CutPrefix(kv, testEnv+"="); ok {
			test = v // the last one counts, as in exec
		}
	}
	return helper, test
}

// testBinaryComm returns the kernel's name of the test binary's program,
// which helpers run too.
var testBinaryComm = sync.OnceValue(func() string {
	path, err := os.Executable()
	if err != nil {
		path = os.Args[0]
	}
	return commOf(path)
})

// execSettle bounds the wait for the command line of a process caught in
// execve.
const execSettle = 500 * time.Millisecond

// describe fills in what a Leak says about process pid.
func describe(pid int, st procfs.Stat) Leak {
	l := Leak{PID: pid, State: "running"}
	switch {
	case st.Exited():
		ws := syscall.WaitStatus(st.ExitCode)
		l.State = "exited (" + howEnded(ws.Signaled(), ws.Signal(), ws.CoreDump(), ws.ExitStatus()) + "), not reaped"
	case st.State == 'T' || st.State == 't':
		l.State = "stopped"
	}
	// A child caught inside execve has no command line yet: Start returns
	// once the new program has closed the close-on-exec descriptors, and
	// the kernel sets the arguments' place in memory only after that. On
	// some kernels (Linux 6.1) Start can even return while /proc still
	// shows the parent's program, command line and environment: the
	// process is then marked as forked but not yet executed (checked
	// before the command line is read, which is then the new program's).
	// A process that runs gets its own within moments.
	forked := func() bool {
		cur, err := procfs.ReadStat(pid)
		return err == nil && cur.Start == st.Start && cur.ForkedNoExec()
	}
	notYet := forked()
	var argv0 string
	l.Command, argv0 = cmdline(pid, st.Comm)
	for deadline := time.Now().Add(execSettle); !st.Exited() && (notYet || argv0 == "") && time.Now().Before(deadline); {
		time.Sleep(time.Millisecond)
		notYet = forked()
		l.Command, argv0 = cmdline(pid, st.Comm)
	}
	if argv0 != "" {
		l.Helper, l.Test = helperOf(pid)
		if st.Comm != testBinaryComm() {
			l.Helper = "" // a program a helper started: it inherits the variable
		}
	}
	if l.Command == "" {
		// Gone with the process: what it recorded as it started.
		if r, ok := helperRecordOf(procKey{pid, st.Start}); ok {
			l.Command, l.Helper, l.Test = r.Command, r.Helper, r.Test
		} else {
			l.Command = "[" + st.Comm + "]"
		}
	}
	return l
}

// scanChildren lists the children of the test process that the options do
// not exempt. It reaps the adopted orphans that have exited.
func scanChildren(o *options) ([]leaked, error) {
	if _, err := os.Stat("/proc/self/stat"); err != nil {
		return nil, errNoProc
	}
	self := os.Getpid()
	pids, err := childrenOf(self)
	if err != nil {
		return nil, fmt.Errorf("listing the children of pid %d: %w", self, err)
	}
	orphans := findOrphans()
	var out []leaked
	for _, pid := range pids {
		st, err := procfs.ReadStat(pid)
		if err != nil || st.PPid != self {
			continue // reaped since it was listed
		}
		k := procKey{pid, st.Start}
		b, isBound := boundTo(k)
		if o.ignorePIDs[pid] || o.ignoreProcs[k] || b.pending {
			continue
		}
		orphan := orphans.has(k)
		if st.Exited() && orphans.reapable(k) {
			reapOrphan(k)
			continue
		}
		if !st.Exited() && inKnownTree(pid, st) {
			continue // an orphan: its tree's clean-up, or report, answers for it
		}
		l := describe(pid, st)
		l.Orphaned = orphan
		_, argv0 := cmdline(pid, st.Comm)
		if o.ignoredCommand(argv0, st.Comm, l.Helper) {
			continue
		}
		if isBound {
			l.Test = b.test
			if l.Helper == "" {
				l.Helper = b.helper
			}
			if strings.HasPrefix(l.Command, "[") {
				l.Command = b.command
			}
		}
		out = append(out, leaked{Leak: l, key: k, zombie: st.Exited()})
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
			st, err := procfs.ReadStat(k)
			if err != nil || st.PPid != pid || n >= maxDescendants {
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
	st, err := procfs.ReadStat(pid)
	if err != nil || st.Start != start || st.PPid != ppid {
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
	if st, err := procfs.ReadStat(t.pid); err == nil && !st.Exited() {
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
	if t.signal(unix.SIGSTOP) != nil || !waitState(t.pid, time.Second, func(st procfs.Stat) bool {
		return st.State == 'T' || st.State == 't'
	}) {
		return // exited, or not stopping: its children stay unlisted
	}
	kids, _ := childrenOf(t.pid)
	for _, k := range kids {
		st, err := procfs.ReadStat(k)
		if err != nil || st.PPid != t.pid || st.Exited() {
			continue
		}
		d, ok, _ := open(k, st.Start, t.pid)
		if !ok {
			continue
		}
		*tree = append(*tree, d)
		stopTree(d, tree)
	}
}

// waitState waits up to d for process pid to be in a state cond accepts,
// or to be gone; it reports whether cond accepted.
func waitState(pid int, d time.Duration, cond func(procfs.Stat) bool) bool {
	deadline := time.Now().Add(d)
	delay := 100 * time.Microsecond
	for {
		st, err := procfs.ReadStat(pid)
		if err != nil || st.Exited() {
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
