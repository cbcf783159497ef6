//go:build linux

package cgroup_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/pexec-dev/pexec/internal/cgroup"
	"github.com/pexec-dev/pexec/internal/procfs"
	"github.com/pexec-dev/pexec/internal/testhelper"
	"golang.org/x/sys/unix"
)

// long bounds every wait for something that must happen; it is never what
// a test asserts on.
const long = 30 * time.Second

// needCgroup skips the test where leaves cannot be used: no cgroup2, not
// root and no delegation, or no clone3 into a cgroup. Anything else that
// makes Supported fail is a test failure.
func needCgroup(t *testing.T) {
	t.Helper()
	skip := func(format string, args ...any) {
		t.Helper()
		testhelper.Nested(helperNames()...)
		t.Skipf(format, args...)
	}
	if _, _, err := cgroup.Root(); err != nil {
		if errors.Is(err, errors.ErrUnsupported) {
			skip("no cgroup2 here: %v", err)
		}
		t.Fatalf("Root: %v", err)
	}
	err := cgroup.Supported()
	switch {
	case err == nil:
	case os.Geteuid() != 0 && errors.Is(err, os.ErrPermission):
		skip("not root, and the own cgroup is not delegated to this user: %v", err)
	case errors.Is(err, errors.ErrUnsupported):
		skip("cannot start children in a cgroup here: %v", err)
	default:
		t.Fatalf("Supported: %v", err)
	}
}

// newLeaf makes a leaf that is killed and removed when the test ends.
func newLeaf(t *testing.T) *cgroup.Leaf {
	t.Helper()
	l, err := cgroup.New()
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(func() { destroy(t, l) })
	return l
}

// destroy kills everything in l, waits until it is empty and removes it.
func destroy(t *testing.T, l *cgroup.Leaf) {
	t.Helper()
	if l.FD() < 0 {
		return
	}
	if err := l.Kill(); err != nil {
		t.Errorf("cleanup: Kill: %v", err)
	}
	if err := waitEmpty(l); err != nil {
		t.Errorf("cleanup: %v", err)
	}
	if err := l.Remove(); err != nil {
		t.Errorf("cleanup: Remove: %v", err)
	}
}

// waitEmpty waits, through the POLLPRI notification of l.EventsFD, until
// l.Populated says false. Each read of Populated re-arms the notification,
// so no change between the read and the poll is lost.
func waitEmpty(l *cgroup.Leaf) error {
	deadline := time.Now().Add(long)
	for {
		p, err := l.Populated()
		if err != nil {
			return err
		}
		if !p {
			return nil
		}
		left := time.Until(deadline)
		if left <= 0 {
			return fmt.Errorf("%s still populated after %v", l.Path(), long)
		}
		fds := []unix.PollFd{{Fd: int32(l.EventsFD()), Events: unix.POLLPRI}}
		if _, err := unix.Poll(fds, int(left.Milliseconds())+1); err != nil && err != unix.EINTR {
			return err
		}
	}
}

// tree is a process tree started in a leaf by a shell script that prints
// "<cgroup> <pid>" for each member it starts (cgroup relative to the
// leaf, "." for the leaf itself) and "end" after the last.
type tree struct {
	cmd     *exec.Cmd
	members map[string][]int // by cgroup
	lines   <-chan string    // the rest of stdout
}

// startTree runs script with sh in l ($LEAF is l's directory), waits for
// its "end" line and for n member lines, and arranges for the tree to be
// killed and the shell reaped when the test ends.
func startTree(t *testing.T, l *cgroup.Leaf, script string, n int) *tree {
	t.Helper()
	cmd := exec.Command("sh", "-c", script)
	cmd.Env = append(os.Environ(), "LEAF="+l.Path())
	cmd.Stderr = os.Stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{UseCgroupFD: true, CgroupFD: l.FD()}
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatalf("starting %q in %s: %v", script, l.Path(), err)
	}
	t.Cleanup(func() {
		if l.Kill() != nil {
			cmd.Process.Kill()
		}
		cmd.Wait()
	})
	tr := &tree{cmd: cmd, members: map[string][]int{}, lines: readLines(out)}
	seen, end := 0, false
	for !end || seen < n {
		line := next(t, tr.lines)
		if line == "end" {
			end = true
			continue
		}
		cg, pid, ok := strings.Cut(line, " ")
		p, err := strconv.Atoi(pid)
		if !ok || err != nil {
			t.Fatalf("unexpected output %q", line)
		}
		tr.members[cg] = append(tr.members[cg], p)
		seen++
	}
	return tr
}

// readLines sends the lines of r to the channel it returns, which it
// closes at EOF.
func readLines(r io.Reader) <-chan string {
	c := make(chan string, 100)
	go func() {
		defer close(c)
		sc := bufio.NewScanner(r)
		for sc.Scan() {
			c <- sc.Text()
		}
	}()
	return c
}

// next returns the next line from c.
func next(t *testing.T, c <-chan string) string {
	t.Helper()
	select {
	case line, ok := <-c:
		if !ok {
			t.Fatal("output ended early")
		}
		return line
	case <-time.After(long):
		t.Fatalf("no output for %v", long)
	}
	return ""
}

// procs returns the sorted PIDs in dir/cgroup.procs.
func procs(t *testing.T, dir string) []int {
	t.Helper()
	b, err := os.ReadFile(dir + "/cgroup.procs")
	if err != nil {
		t.Fatal(err)
	}
	var pids []int
	for f := range strings.FieldsSeq(string(b)) {
		p, err := strconv.Atoi(f)
		if err != nil {
			t.Fatalf("%s/cgroup.procs: %q", dir, b)
		}
		pids = append(pids, p)
	}
	slices.Sort(pids)
	return pids
}

func sorted(s []int) []int {
	s = slices.Clone(s)
	slices.Sort(s)
	return s
}

// pidfd opens a pidfd for pid, closed when the test ends.
func pidfd(t *testing.T, pid int) int {
	t.Helper()
	fd, err := unix.PidfdOpen(pid, 0)
	if err != nil {
		t.Fatalf("pidfd_open(%d): %v", pid, err)
	}
	t.Cleanup(func() { unix.Close(fd) })
	return fd
}

// exited reports whether the process behind fd exits within d.
func exited(t *testing.T, fd int, d time.Duration) bool {
	t.Helper()
	fds := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}
	for {
		n, err := unix.Poll(fds, int(d.Milliseconds()))
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		return n > 0
	}
}

// cgroupID returns the cgroup ID of process pid, whose pidfd is fd: the
// kernel's answer through the pidfd (PIDFD_GET_INFO, Linux 6.13+), or on
// older kernels the inode number of the directory that /proc/<pid>/cgroup
// names, read while the pidfd shows the process alive before and after.
func cgroupID(t *testing.T, pid, fd int) uint64 {
	t.Helper()
	info := unix.PidfdInfo{Mask: unix.PIDFD_INFO_CGROUPID}
	err := unix.IoctlPidfdInfo(fd, &info)
	if err == nil {
		return info.Cgroupid
	}
	if err != unix.ENOTTY && err != unix.EINVAL {
		t.Fatalf("PIDFD_GET_INFO: %v", err)
	}
	_, selfDir, err := cgroup.Root()
	if err != nil {
		t.Fatal(err)
	}
	selfRel, ok1 := procfs.CgroupPath(os.Getpid())
	rel, ok2 := procfs.CgroupPath(pid)
	if !ok1 || !ok2 || !strings.HasPrefix(rel, selfRel) || exited(t, fd, 0) {
		t.Fatalf("process %d: cgroup %q (ok %v), this process's %q (ok %v); exited: %v", pid, rel, ok2, selfRel, ok1, exited(t, fd, 0))
	}
	return dirIno(t, filepath.Join(selfDir, strings.TrimPrefix(rel, selfRel)))
}

// dirIno returns the inode number of dir, which is its cgroup ID.
func dirIno(t *testing.T, dir string) uint64 {
	t.Helper()
	var st unix.Stat_t
	if err := unix.Stat(dir, &st); err != nil {
		t.Fatal(err)
	}
	return st.Ino
}

// noLeavesOfMine fails t if a leaf of this process is left in its cgroup.
func noLeavesOfMine(t *testing.T) {
	t.Helper()
	_, dir, err := cgroup.Root()
	if err != nil {
		t.Fatal(err)
	}
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	me, err := cgroup.Identity()
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		if c, _, ok := cgroup.ParseLeafName(e.Name()); ok && c == me {
			t.Errorf("leaf %s left behind", e.Name())
		}
	}
}

func TestParseRoot(t *testing.T) {
	const (
		cg2  = "41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw\n"
		cg1  = "33 31 0:30 / /sys/fs/cgroup/memory rw - cgroup cgroup rw,memory\n"
		self = "4:memory:/x\n0::/a/b\n"
	)
	tests := []struct {
		name, mountinfo, cgroup string
		mount, dir, rel         string
		unsupported             bool
	}{
		{name: "hybrid", mountinfo: cg1 + cg2, cgroup: self, mount: "/sys/fs/cgroup/unified", dir: "/sys/fs/cgroup/unified/a/b", rel: "/a/b"},
		{name: "root cgroup", mountinfo: cg2, cgroup: "0::/\n", mount: "/sys/fs/cgroup/unified", dir: "/sys/fs/cgroup/unified", rel: "/"},
		{
			name:      "mount shows a subtree",
			mountinfo: "50 31 0:38 /a /mnt/cg\\040x rw - cgroup2 cgroup2 rw\n",
			cgroup:    self, mount: "/mnt/cg x", dir: "/mnt/cg x/b", rel: "/a/b",
		},
		{
			name:      "prefix is not a parent",
			mountinfo: "50 31 0:38 /a/bb /mnt/cg rw - cgroup2 cgroup2 rw\n" + cg2,
			cgroup:    self, mount: "/sys/fs/cgroup/unified", dir: "/sys/fs/cgroup/unified/a/b", rel: "/a/b",
		},
		{
			name:      "read-write mount preferred",
			mountinfo: "50 31 0:38 / /ro ro,relatime - cgroup2 cgroup2 rw\n" + cg2,
			cgroup:    self, mount: "/sys/fs/cgroup/unified", dir: "/sys/fs/cgroup/unified/a/b", rel: "/a/b",
		},
		{name: "no cgroup2 mount", mountinfo: cg1, cgroup: self, unsupported: true},
		{name: "v1 only", mountinfo: cg1 + cg2, cgroup: "4:memory:/x\n", unsupported: true},
		{name: "outside the namespace", mountinfo: cg2, cgroup: "0::/../x\n", unsupported: true},
		{name: "not under the mount", mountinfo: "50 31 0:38 /c /mnt rw - cgroup2 cgroup2 rw\n", cgroup: self, unsupported: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			mount, dir, rel, err := cgroup.ParseRoot(tt.mountinfo, tt.cgroup)
			if tt.unsupported {
				if !errors.Is(err, errors.ErrUnsupported) {
					t.Fatalf("err = %v, want one wrapping errors.ErrUnsupported", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			got := []string{mount, dir, rel}
			if diff := cmp.Diff([]string{tt.mount, tt.dir, tt.rel}, got); diff != "" {
				t.Errorf("mount, dir, rel (-want +got):\n%s", diff)
			}
		})
	}
}

func TestRoot(t *testing.T) {
	mount, dir, err := cgroup.Root()
	if errors.Is(err, errors.ErrUnsupported) {
		t.Skipf("no cgroup2 here: %v", err)
	}
	if err != nil {
		t.Fatal(err)
	}
	var sfs unix.Statfs_t
	if err := unix.Statfs(mount, &sfs); err != nil {
		t.Fatal(err)
	}
	if sfs.Type != unix.CGROUP2_SUPER_MAGIC {
		t.Errorf("%s: file system magic %#x, want CGROUP2_SUPER_MAGIC", mount, sfs.Type)
	}
	if !slices.Contains(procs(t, dir), os.Getpid()) {
		t.Errorf("%s/cgroup.procs does not list this process (%d)", dir, os.Getpid())
	}
}

func TestLeafName(t *testing.T) {
	for _, c := range []cgroup.Creator{
		{Pid: 1, Kind: 'i', Key: 1, PidNS: 4026531836},
		{Pid: 4194304, Kind: 't', Key: 1<<64 - 1, PidNS: 1<<64 - 1},
	} {
		name := cgroup.LeafName(c, 42)
		t.Run(name, func(t *testing.T) {
			got, seq, ok := cgroup.ParseLeafName(name)
			if !ok || seq != 42 {
				t.Fatalf("ParseLeafName(%q) = %v, %d, %v", name, got, seq, ok)
			}
			if diff := cmp.Diff(c, got); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
	for _, name := range []string{
		"pexec", "pexec-", "pexec-1-i2-n3", "pexec-1-i2-n3-4-5", "pexec-1-x2-n3-4", "pexec-1-i2-m3-4",
		"pexec-01-i2-n3-4", "pexec-1-i-n3-4", "pexec-0-i2-n3-4", "pexec-1-i+2-n3-4", "other-1-i2-n3-4",
		"pexec-1-i18446744073709551616-n3-4",
	} {
		t.Run(name, func(t *testing.T) {
			if c, seq, ok := cgroup.ParseLeafName(name); ok {
				t.Errorf("ParseLeafName(%q) = %v, %d, true; want false", name, c, seq)
			}
		})
	}
}

func TestNew(t *testing.T) {
	needCgroup(t)
	l := newLeaf(t)
	_, dir, _ := cgroup.Root()
	if got := filepath.Dir(l.Path()); got != dir {
		t.Errorf("leaf %s is not in the own cgroup %s", l.Path(), dir)
	}
	c, _, ok := cgroup.ParseLeafName(filepath.Base(l.Path()))
	me, err := cgroup.Identity()
	if err != nil {
		t.Fatal(err)
	}
	if !ok || c != me {
		t.Errorf("leaf name %s does not name this process (%+v)", filepath.Base(l.Path()), me)
	}
	if me.Kind == 'i' {
		fd := pidfd(t, os.Getpid())
		if id, err := cgroup.PidfsID(fd); err != nil || id != me.Key {
			t.Errorf("pidfs ID = %d, %v; the name says %d", id, err, me.Key)
		}
	}
	id, err := l.ID()
	if err != nil {
		t.Fatal(err)
	}
	if want := dirIno(t, l.Path()); id != want {
		t.Errorf("ID = %d, want the directory's inode %d", id, want)
	}
	if p, err := l.Populated(); err != nil || p {
		t.Errorf("Populated = %v, %v; want false", p, err)
	}
	l2 := newLeaf(t)
	if l2.Path() == l.Path() {
		t.Errorf("two leaves share %s", l.Path())
	}
}

// treeScript starts four members that outlive their shell's knowledge of
// them: two background children, one in a session of its own, and an
// orphan whose parent (a subshell) has exited; then the shell itself.
const treeScript = `
sleep 60 & echo . $!
sleep 60 & echo . $!
setsid sleep 60 & echo . $!
(sleep 60 & echo . $!)
echo . $$
echo end
exec sleep 60
`

// nestedScript has a member move itself into a cgroup it creates below
// the leaf, as a nested pexec user would.
const nestedScript = `
mkdir "$LEAF/sub" || exit 1
sh -c 'echo $$ > "$LEAF/sub/cgroup.procs" && echo sub $$ && exec sleep 60' &
sleep 60 & echo . $!
echo . $$
echo end
exec sleep 60
`

// forkingScript is still forking when it is killed.
const forkingScript = `
echo . $$
echo end
for i in $(seq 400); do sleep 60 & done
wait
`

func TestKill(t *testing.T) {
	needCgroup(t)
	tests := []struct {
		name     string
		noKill   bool // as without cgroup.kill: freeze and SIGKILL each
		script   string
		members  int
		complete bool // the script lists every member
	}{
		{"tree", false, treeScript, 5, true},
		{"tree without cgroup.kill", true, treeScript, 5, true},
		{"nested cgroup", false, nestedScript, 3, true},
		{"nested cgroup without cgroup.kill", true, nestedScript, 3, true},
		{"forking", false, forkingScript, 1, false},
		{"forking without cgroup.kill", true, forkingScript, 1, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.noKill {
				cgroup.ForceNoKillFile(t)
			}
			l := newLeaf(t)
			tr := startTree(t, l, tt.script, tt.members)
			var fds []int
			for cg, pids := range tr.members {
				dir := filepath.Join(l.Path(), cg)
				got := procs(t, dir)
				if tt.complete {
					if diff := cmp.Diff(sorted(pids), got); diff != "" {
						t.Errorf("%s/cgroup.procs (-want +got):\n%s", dir, diff)
					}
				}
				for _, pid := range pids {
					if !slices.Contains(got, pid) {
						t.Errorf("%s/cgroup.procs = %v, lacks %d", dir, got, pid)
					}
					fd := pidfd(t, pid)
					if id, want := cgroupID(t, pid, fd), dirIno(t, dir); id != want {
						t.Errorf("process %d is in cgroup %d, want %d (%s)", pid, id, want, dir)
					}
					fds = append(fds, fd)
				}
			}
			if err := l.Kill(); err != nil {
				t.Fatalf("Kill: %v", err)
			}
			if err := waitEmpty(l); err != nil {
				t.Fatal(err)
			}
			// "populated 0" comes before the members are zombies: wait.
			for i, fd := range fds {
				if !exited(t, fd, long) {
					t.Errorf("member %d still alive %v after Populated said false", i, long)
				}
			}
			err := tr.cmd.Wait()
			var ee *exec.ExitError
			if !errors.As(err, &ee) || ee.Sys().(syscall.WaitStatus).Signal() != syscall.SIGKILL {
				t.Errorf("shell: Wait = %v, want killed by SIGKILL", err)
			}
			if err := l.Remove(); err != nil {
				t.Fatalf("Remove: %v", err)
			}
			if _, err := os.Stat(l.Path()); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("after Remove: Stat(%s) = %v, want ErrNotExist", l.Path(), err)
			}
			noLeavesOfMine(t)
		})
	}
}

func TestPopulatedNotifies(t *testing.T) {
	needCgroup(t)
	l := newLeaf(t)
	ep, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(ep)
	ev := unix.EpollEvent{Events: unix.EPOLLPRI, Fd: int32(l.EventsFD())}
	if err := unix.EpollCtl(ep, unix.EPOLL_CTL_ADD, l.EventsFD(), &ev); err != nil {
		t.Fatal(err)
	}
	// wait waits for EPOLLPRI, then reads Populated, until it says want.
	wait := func(want bool) {
		t.Helper()
		for range 10 {
			evs := make([]unix.EpollEvent, 1)
			n, err := unix.EpollWait(ep, evs, int(long.Milliseconds()))
			if err == unix.EINTR {
				continue
			}
			if err != nil {
				t.Fatal(err)
			}
			if n != 1 || evs[0].Events&unix.EPOLLPRI == 0 {
				t.Fatalf("epoll_wait = %d, events %#x; want EPOLLPRI", n, evs[0].Events)
			}
			t.Logf("epoll events %#x (EPOLLPRI %#x, EPOLLERR %#x)", evs[0].Events, unix.EPOLLPRI, unix.EPOLLERR)
			p, err := l.Populated()
			if err != nil {
				t.Fatal(err)
			}
			if p == want {
				return
			}
		}
		t.Fatalf("Populated never became %v", want)
	}
	if p, err := l.Populated(); err != nil || p {
		t.Fatalf("Populated before start = %v, %v; want false", p, err)
	}
	cmd := exec.Command("sleep", "60")
	cmd.SysProcAttr = &syscall.SysProcAttr{UseCgroupFD: true, CgroupFD: l.FD()}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	wait(true)
	if err := l.Kill(); err != nil {
		t.Fatal(err)
	}
	wait(false)
}

// signalScript starts members that die of SIGTERM, one in a cgroup below
// the leaf, and one that ignores SIGTERM ("ign"), which it reports only
// once the disposition is set.
const signalScript = `
mkdir "$LEAF/sub" || exit 1
sleep 60 & echo die $!
sh -c 'echo $$ > "$LEAF/sub/cgroup.procs" && echo die $$ && exec sleep 60' &
sh -c 'trap "" TERM; echo ign $$; exec sleep 60' &
echo die $$
echo end
wait
`

func TestSignal(t *testing.T) {
	needCgroup(t)
	for _, viaProc := range []bool{false, true} {
		t.Run(fmt.Sprintf("proc=%v", viaProc), func(t *testing.T) {
			if viaProc {
				cgroup.ForceProcCgroup(t)
			}
			l := newLeaf(t)
			tr := startTree(t, l, signalScript, 4)
			var die []int
			for _, pid := range tr.members["die"] {
				die = append(die, pidfd(t, pid))
			}
			ign := tr.members["ign"]
			if len(ign) != 1 || len(die) != 3 {
				t.Fatalf("members %v", tr.members)
			}
			ignFD := pidfd(t, ign[0])
			if err := l.Signal(syscall.SIGTERM); err != nil {
				t.Fatalf("Signal: %v", err)
			}
			for i, fd := range die {
				if !exited(t, fd, long) {
					t.Errorf("member %d (of %v) survived SIGTERM for %v", i, tr.members["die"], long)
				}
			}
			// An ignored signal is discarded when it is sent, so the
			// ignoring member is alive for good now.
			if exited(t, ignFD, 0) {
				t.Errorf("the member ignoring SIGTERM (%d) exited", ign[0])
			}
			// A process leaves cgroup.procs before its pidfd turns readable.
			if got, sub := procs(t, l.Path()), procs(t, l.Path()+"/sub"); !slices.Equal(got, ign) || len(sub) != 0 {
				t.Errorf("cgroup.procs = %v, sub %v; want %v, []", got, sub, ign)
			}
			b, err := os.ReadFile(l.Path() + "/cgroup.freeze")
			if err != nil || strings.TrimSpace(string(b)) != "0" {
				t.Errorf("cgroup.freeze = %q, %v after Signal; want 0 (thawed)", b, err)
			}
			if p, err := l.Populated(); err != nil || !p {
				t.Errorf("Populated = %v, %v; want true", p, err)
			}
		})
	}
}

// signalsScript prints "ready", then "TERM" for each SIGTERM and "WINCH"
// for a SIGWINCH, after which it exits. A shell is single-threaded and
// runs pending traps lowest signal number first, so a SIGTERM sent before
// a SIGWINCH is always reported before it. (A Go program may report them
// the other way round: two threads can take the two signals.)
const signalsScript = `
trap 'echo TERM' TERM
trap 'echo WINCH; kill $! 2>/dev/null; exit 0' WINCH
echo ready
while :; do sleep 1 & wait $!; done
`

// TestSignalOnlyMembers makes Signal see the PID of a process outside the
// leaf among the members, as when a member's PID is reused between the
// cgroup.procs read and pidfd_open, and checks that the outsider gets no
// signal. The process reports the signals it gets: a SIGWINCH sent after
// Signal returned is reported after any SIGTERM Signal sent, so "WINCH"
// alone proves that no SIGTERM came. The same process inside the leaf
// reports both.
func TestSignalOnlyMembers(t *testing.T) {
	needCgroup(t)
	for _, viaProc := range []bool{false, true} {
		for _, inLeaf := range []bool{false, true} {
			t.Run(fmt.Sprintf("proc=%v/member=%v", viaProc, inLeaf), func(t *testing.T) {
				if viaProc {
					cgroup.ForceProcCgroup(t)
				}
				l := newLeaf(t)
				cmd := exec.Command("sh", "-c", signalsScript)
				if inLeaf {
					cmd.SysProcAttr = &syscall.SysProcAttr{UseCgroupFD: true, CgroupFD: l.FD()}
				}
				out, err := cmd.StdoutPipe()
				if err != nil {
					t.Fatal(err)
				}
				if err := cmd.Start(); err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
				lines := readLines(out)
				if got := next(t, lines); got != "ready" {
					t.Fatalf("script said %q", got)
				}
				cgroup.AddFakeMembers(t, cmd.Process.Pid)
				if err := l.Signal(syscall.SIGTERM); err != nil {
					t.Fatalf("Signal: %v", err)
				}
				// cmd is our unreaped child: its PID is its own.
				if err := cmd.Process.Signal(syscall.SIGWINCH); err != nil {
					t.Fatal(err)
				}
				var got []string
				for {
					line := next(t, lines)
					got = append(got, line)
					if line == "WINCH" {
						break
					}
				}
				want := []string{"WINCH"}
				if inLeaf {
					want = []string{"TERM", "WINCH"}
				}
				if diff := cmp.Diff(want, got); diff != "" {
					t.Errorf("signals received (-want +got):\n%s", diff)
				}
				if err := cmd.Wait(); err != nil {
					t.Errorf("script: %v", err)
				}
			})
		}
	}
}

func TestRemove(t *testing.T) {
	needCgroup(t)
	l := newLeaf(t)
	tr := startTree(t, l, "echo . $$; echo end; exec sleep 60", 1)
	// An empty cgroup below a live leaf may belong to a nested user.
	if err := os.Mkdir(l.Path()+"/sub", 0o755); err != nil {
		t.Fatal(err)
	}
	err := l.Remove()
	if !errors.Is(err, syscall.EBUSY) {
		t.Fatalf("Remove of a populated leaf = %v, want EBUSY", err)
	}
	if _, err := os.Stat(l.Path() + "/sub"); err != nil {
		t.Fatalf("a failed Remove touched the cgroup below the leaf: %v", err)
	}
	if l.FD() < 0 || l.EventsFD() < 0 {
		t.Fatal("a failed Remove closed the descriptors")
	}
	if p, err := l.Populated(); err != nil || !p {
		t.Fatalf("after a failed Remove: Populated = %v, %v; want true", p, err)
	}
	if err := l.Kill(); err != nil {
		t.Fatal(err)
	}
	if err := waitEmpty(l); err != nil {
		t.Fatal(err)
	}
	// Not yet reaped: a zombie does not keep the leaf.
	if err := l.Remove(); err != nil {
		t.Fatalf("Remove: %v", err)
	}
	tr.cmd.Wait()
	if err := l.Remove(); err != nil {
		t.Errorf("second Remove: %v", err)
	}
	if l.FD() != -1 || l.EventsFD() != -1 {
		t.Errorf("FD, EventsFD = %d, %d after Remove; want -1", l.FD(), l.EventsFD())
	}
	for name, err := range map[string]error{
		"Kill":   l.Kill(),
		"Signal": l.Signal(syscall.SIGTERM),
		"Populated": func() error {
			_, err := l.Populated()
			return err
		}(),
	} {
		if !errors.Is(err, os.ErrClosed) {
			t.Errorf("%s after Remove = %v, want os.ErrClosed", name, err)
		}
	}
	if _, err := os.Stat(l.Path()); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("Stat(%s) = %v after Remove", l.Path(), err)
	}
}

func TestCleanStale(t *testing.T) {
	needCgroup(t)
	_, dir, err := cgroup.Root()
	if err != nil {
		t.Fatal(err)
	}
	me, err := cgroup.Identity()
	if err != nil {
		t.Fatal(err)
	}

	// A process that has exited, with the identity New would have given it.
	cmd := exec.Command("true")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	dead := cgroup.Creator{Pid: cmd.Process.Pid, PidNS: me.PidNS}
	// Until Wait, the PID is the exited child's own.
	fd := pidfd(t, dead.Pid)
	pidfsID, pidfsErr := cgroup.PidfsID(fd)
	start, err := cgroup.StartTime(dead.Pid)
	if err != nil {
		t.Fatal(err)
	}
	cmd.Wait()
	deadI, deadT := dead, dead
	deadI.Kind, deadI.Key = 'i', pidfsID
	deadT.Kind, deadT.Key = 't', start
	reused := me // our PID, another identity: the PID was reused
	reused.Key++
	otherNS := deadT
	otherNS.PidNS++
	meT := me
	if meT.Kind != 't' {
		meT.Kind = 't'
		if meT.Key, err = cgroup.StartTime(me.Pid); err != nil {
			t.Fatal(err)
		}
	}

	type leaf struct {
		name     string
		sub      bool // has an empty cgroup below it
		busy     bool // a process lives in it
		removed  bool // CleanStale must remove it
		needsPfs bool
	}
	leaves := []leaf{
		{name: cgroup.LeafName(deadT, 0), removed: true},
		{name: cgroup.LeafName(deadT, 1), sub: true, removed: true},
		{name: cgroup.LeafName(deadT, 2), busy: true},
		{name: cgroup.LeafName(deadI, 0), removed: true, needsPfs: true},
		{name: cgroup.LeafName(reused, 0), removed: true},
		{name: cgroup.LeafName(me, 1<<40)},
		{name: cgroup.LeafName(meT, 1<<41)},
		{name: cgroup.LeafName(otherNS, 0)},
		{name: fmt.Sprintf("pexec-junk-%d", os.Getpid())},
		{name: fmt.Sprintf("cgroup-test-%d", os.Getpid())},
	}
	live := newLeaf(t) // a real leaf of this live process

	var want []string
	for _, lf := range leaves {
		if lf.needsPfs && pidfsErr != nil {
			continue
		}
		p := filepath.Join(dir, lf.name)
		if err := os.Mkdir(p, 0o755); err != nil {
			t.Fatal(err)
		}
		// Runs after the member's cleanup (registered later) reaped it.
		t.Cleanup(func() {
			os.Remove(p + "/sub")
			if err := os.Remove(p); err != nil && !errors.Is(err, os.ErrNotExist) {
				t.Errorf("cleanup: %v", err)
			}
		})
		if lf.sub {
			if err := os.Mkdir(p+"/sub", 0o755); err != nil {
				t.Fatal(err)
			}
		}
		if lf.busy {
			cfd, err := unix.Open(p, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
			if err != nil {
				t.Fatal(err)
			}
			defer unix.Close(cfd)
			c := exec.Command("sleep", "60")
			c.SysProcAttr = &syscall.SysProcAttr{UseCgroupFD: true, CgroupFD: cfd}
			if err := c.Start(); err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { c.Process.Kill(); c.Wait() })
		}
		if lf.removed {
			want = append(want, p)
		}
	}

	removed, err := cgroup.CleanStale()
	busy := filepath.Join(dir, cgroup.LeafName(deadT, 2))
	if !errors.Is(err, syscall.EBUSY) || !strings.Contains(fmt.Sprint(err), busy) {
		t.Errorf("CleanStale error = %v, want EBUSY for %s", err, busy)
	}
	// Leaves of other processes (other test runs) may be removed too; only
	// ours are asserted on.
	var got []string
	for _, p := range removed {
		for _, lf := range leaves {
			if p == filepath.Join(dir, lf.name) {
				got = append(got, p)
			}
		}
	}
	slices.Sort(got)
	slices.Sort(want)
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("removed (-want +got):\n%s", diff)
	}
	for _, lf := range leaves {
		p := filepath.Join(dir, lf.name)
		_, err := os.Stat(p)
		if gone := errors.Is(err, os.ErrNotExist); gone != (lf.removed || (lf.needsPfs && pidfsErr != nil)) {
			t.Errorf("%s: exists = %v, want %v", lf.name, !gone, !lf.removed)
		}
	}
	if _, err := os.Stat(live.Path()); err != nil {
		t.Errorf("the live leaf: %v", err)
	}
}

// TestCloneErrors checks which errno clone3 gives for each kind of
// cgroup a child cannot start in, and how CloneError classifies it.
func TestCloneErrors(t *testing.T) {
	needCgroup(t)
	_, dir, err := cgroup.Root()
	if err != nil {
		t.Fatal(err)
	}
	mkdir := func(t *testing.T, p string) {
		t.Helper()
		if err := os.Mkdir(p, 0o755); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { os.Remove(p) })
	}
	tests := []struct {
		name  string
		setup func(t *testing.T) string // returns the cgroup directory
		open  func(t *testing.T, dir string) int
		errno syscall.Errno
		is    error // what CloneError wraps; nil: CloneError returns nil
	}{
		{
			name:  "leaf",
			setup: func(t *testing.T) string { return newLeaf(t).Path() },
			errno: unix.ENOTDIR, // the probe's chdir: clone3 succeeded
		},
		{
			name: "removed",
			setup: func(t *testing.T) string {
				p := filepath.Join(dir, fmt.Sprintf("cgroup-test-%d-removed", os.Getpid()))
				mkdir(t, p)
				return p
			},
			open: func(t *testing.T, p string) int {
				fd := openDir(t, p)
				if err := os.Remove(p); err != nil {
					t.Fatal(err)
				}
				return fd
			},
			errno: unix.ENOENT,
			is:    unix.ENOENT,
		},
		{
			name: "domain invalid",
			setup: func(t *testing.T) string {
				p := filepath.Join(dir, fmt.Sprintf("cgroup-test-%d-threaded", os.Getpid()))
				mkdir(t, p)
				mkdir(t, p+"/thr")
				if err := os.WriteFile(p+"/thr/cgroup.type", []byte("threaded"), 0); err != nil {
					t.Fatal(err)
				}
				mkdir(t, p+"/thr/invalid")
				return p + "/thr/invalid"
			},
			errno: unix.EOPNOTSUPP,
			is:    errors.ErrUnsupported,
		},
		{
			name:  "not a cgroup",
			setup: func(t *testing.T) string { return t.TempDir() },
			errno: unix.EBADF,
			is:    errors.ErrUnsupported,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := tt.setup(t)
			open := tt.open
			if open == nil {
				open = openDir
			}
			fd := open(t, p)
			proc, err := os.StartProcess("/", []string{"/"}, &os.ProcAttr{
				Dir: "/proc/self/exe",
				Sys: &syscall.SysProcAttr{UseCgroupFD: true, CgroupFD: fd},
			})
			if err == nil {
				proc.Kill()
				proc.Wait()
				t.Fatal("StartProcess succeeded")
			}
			var errno syscall.Errno
			if !errors.As(err, &errno) || errno != tt.errno {
				t.Errorf("StartProcess: %v, want %s", err, unix.ErrnoName(tt.errno))
			}
			cerr := cgroup.CloneError(err, p)
			if tt.is == nil && cerr != nil || tt.is != nil && !errors.Is(cerr, tt.is) {
				t.Errorf("CloneError = %v, want one wrapping %v", cerr, tt.is)
			}
		})
	}
}

func openDir(t *testing.T, p string) int {
	t.Helper()
	fd, err := unix.Open(p, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { unix.Close(fd) })
	return fd
}

func TestUnprivileged(t *testing.T) {
	needCgroup(t)
	if os.Geteuid() != 0 {
		t.Skip("needs root to drop to another user")
	}
	l := newLeaf(t)
	var r unprivilegedReport
	testhelper.RunReport(context.Background(), t, nil, &r, "cgroup-unprivileged", l.Path())
	if r.UID != 65534 {
		t.Fatalf("helper ran as uid %d", r.UID)
	}
	if !r.NewPermission {
		t.Errorf("New as nobody: %s; want os.ErrPermission", r.NewErr)
	}
	if r.CloneErrno != "EACCES" || !r.ClonePermission {
		t.Errorf("clone3 into a root-owned leaf as nobody: %s (%s); want EACCES, os.ErrPermission", r.CloneErrno, r.CloneErr)
	}
	if !r.SupportedPermission {
		t.Errorf("Supported as nobody: %s; want os.ErrPermission", r.SupportedErr)
	}
	t.Logf("New: %s", r.NewErr)
	t.Logf("clone3: %s", r.CloneErr)
}

func TestSeccomp(t *testing.T) {
	needCgroup(t)
	var r seccompReport
	testhelper.RunReport(context.Background(), t, nil, &r, "cgroup-seccomp")
	if r.Jail["clone3"] != "ENOSYS" || r.Jail["pidfd_open"] != "ENOSYS" {
		t.Fatalf("not jailed: %v", r.Jail)
	}
	if !r.SupportedUnsupported || r.SupportedErrno != "ENOSYS" {
		t.Errorf("Supported in the jail: %s; want errors.ErrUnsupported with ENOSYS", r.SupportedErr)
	}
	if r.Kind != "t" {
		t.Errorf("identity kind %q without pidfd_open, want t (start time)", r.Kind)
	}
	if !r.SignalUnsupported {
		t.Errorf("Signal without pidfd_open: %s; want errors.ErrUnsupported", r.SignalErr)
	}
	switch {
	case !r.HasKillFile:
		// Before Linux 5.14 Kill freezes the leaf and kills each member
		// through a pidfd: without pidfd_open it cannot, and says so.
		if !r.KillUnsupported || r.RemoveErr != "<nil>" {
			t.Errorf("Kill without cgroup.kill and pidfd_open: %s, Remove: %s; want errors.ErrUnsupported, <nil>", r.KillErr, r.RemoveErr)
		}
	case r.KillErr != "<nil>" || r.StillPopulated || r.RemoveErr != "<nil>":
		t.Errorf("Kill: %s, populated after: %v, Remove: %s; want <nil>, false, <nil>", r.KillErr, r.StillPopulated, r.RemoveErr)
	}
	t.Logf("cgroup.kill: %v; Kill in the jail: %s", r.HasKillFile, r.KillErr)
}

func TestThreadedOwnCgroup(t *testing.T) {
	needCgroup(t)
	_, dir, err := cgroup.Root()
	if err != nil {
		t.Fatal(err)
	}
	top := filepath.Join(dir, fmt.Sprintf("cgroup-test-%d-own-threaded", os.Getpid()))
	thr := top + "/thr"
	for _, p := range []string{top, thr} {
		if err := os.Mkdir(p, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	t.Cleanup(func() {
		for _, p := range []string{thr, top} {
			if err := os.Remove(p); err != nil {
				t.Errorf("cleanup: %v", err)
			}
		}
	})
	if err := os.WriteFile(thr+"/cgroup.type", []byte("threaded"), 0); err != nil {
		t.Fatal(err)
	}
	var r threadedReport
	testhelper.RunReport(context.Background(), t, nil, &r, "cgroup-threaded", thr)
	if r.Dir != thr {
		t.Fatalf("helper's own cgroup: %s (%q), want %s", r.Dir, r.CgroupOfSelf, thr)
	}
	if !r.Unsupported || !strings.Contains(r.NewErr, "domain invalid") {
		t.Errorf("New in a threaded cgroup: %s; want errors.ErrUnsupported naming \"domain invalid\"", r.NewErr)
	}
	if len(r.LeavesLeft) != 0 {
		t.Errorf("New left %v behind", r.LeavesLeft)
	}
}

func TestSignalFreezeTimeout(t *testing.T) {
	needCgroup(t)
	// A zero timeout: Signal gives up waiting for "frozen 1" at once
	// unless the leaf is already frozen, and must still signal.
	cgroup.SetFreezeTimeout(t, 0)
	l := newLeaf(t)
	tr := startTree(t, l, "sleep 60 & echo . $!; echo . $$; echo end; wait", 2)
	var fds []int
	for _, pid := range tr.members["."] {
		fds = append(fds, pidfd(t, pid))
	}
	err := l.Signal(syscall.SIGKILL)
	if err != nil && !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("Signal: %v", err)
	}
	t.Logf("Signal with a zero freeze timeout: %v", err)
	for i, fd := range fds {
		if !exited(t, fd, long) {
			t.Errorf("member %d survived", i)
		}
	}
}

// BenchmarkKill50 measures Kill until Populated says false (through the
// events descriptor), for a leaf with 50 processes, with cgroup.kill and
// with the freeze-and-pidfd fallback.
func BenchmarkKill50(b *testing.B) {
	if _, _, err := cgroup.Root(); err != nil {
		b.Skip(err)
	}
	if err := cgroup.Supported(); err != nil {
		b.Skip(err)
	}
	for _, noKill := range []bool{false, true} {
		name := "cgroup.kill"
		if noKill {
			name = "freeze+pidfd"
		}
		b.Run(name, func(b *testing.B) {
			if noKill {
				cgroup.ForceNoKillFile(b)
			}
			b.StopTimer()
			for range b.N {
				kill50(b)
			}
		})
	}
}

// kill50 times one Kill of 50 processes, with the timer stopped before and
// after.
func kill50(b *testing.B) {
	l, err := cgroup.New()
	if err != nil {
		b.Fatal(err)
	}
	defer l.Remove()
	cmd := exec.Command("sh", "-c", "for i in $(seq 49); do sleep 60 & done; echo end; wait")
	cmd.SysProcAttr = &syscall.SysProcAttr{UseCgroupFD: true, CgroupFD: l.FD()}
	out, err := cmd.StdoutPipe()
	if err != nil {
		b.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	defer cmd.Wait()
	defer l.Kill()
	bufio.NewReader(out).ReadString('\n')
	if n := len(strings.Fields(readString(l.Path() + "/cgroup.procs"))); n != 50 {
		b.Fatalf("%d members, want 50", n)
	}
	b.StartTimer()
	if err := l.Kill(); err != nil {
		b.Fatal(err)
	}
	if err := waitEmpty(l); err != nil {
		b.Fatal(err)
	}
	b.StopTimer()
}

func readString(p string) string {
	b, _ := os.ReadFile(p)
	return string(b)
}
