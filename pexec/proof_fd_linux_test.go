package pexec_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/pexec-dev/pexec/pexec"
	"github.com/pexec-dev/pexec/pexectest"
	"golang.org/x/sys/unix"
)

// FD hygiene: spawn/wait cycles leave the descriptor count as it was, and
// no child ever inherits a pidfd it was not given.

// fdCounts returns how many descriptors the process has open, and how many
// of them are pidfds.
func fdCounts(t *testing.T) (all, pidfds int) {
	t.Helper()
	fds, err := proofFDs("self")
	if err != nil {
		t.Fatal(err)
	}
	for _, target := range fds {
		if isPidfdLink(target) {
			pidfds++
		}
	}
	return len(fds), pidfds
}

// spawnCycles runs n cycles of start /bin/true, wait, over workers
// goroutines; every other cycle also waits through the Handle (through the
// exit poller). Each cycle also opens a Handle of its own on the child
// (Open: a pidfd that the Handle owns, unlike the Cmd child's Handle, which
// uses the os.Process's). closeHandles closes both Handles; otherwise they
// are simply dropped. Without pidfds (pexec.Supported() false) there is no
// Open, and the cycles count the PID-mode Handles alone.
func spawnCycles(t *testing.T, n, workers int, closeHandles bool) {
	t.Helper()
	open := pexec.Supported()
	var wg sync.WaitGroup
	var failed sync.Once
	next := make(chan int)
	for range workers {
		wg.Go(func() {
			for i := range next {
				c := pexec.Command("/bin/true")
				if err := c.Start(); err != nil {
					failed.Do(func() { t.Errorf("cycle %d: %v", i, err) })
					continue
				}
				h := c.Handle()
				var o *pexec.Handle
				if open {
					var err error
					o, err = pexec.Open(c.Process.Pid) // our unreaped child: race-free
					if err != nil {
						failed.Do(func() { t.Errorf("cycle %d: Open: %v", i, err) })
					}
				}
				if i%2 == 0 {
					if st, err := h.Wait(); err != nil || !st.Success() {
						failed.Do(func() { t.Errorf("cycle %d: Handle.Wait: %v, %v", i, st, err) })
					}
				}
				if err := c.Wait(); err != nil {
					failed.Do(func() { t.Errorf("cycle %d: Cmd.Wait: %v", i, err) })
				}
				if closeHandles {
					err := h.Close()
					if o != nil {
						err = errors.Join(err, o.Close())
					}
					if err != nil {
						failed.Do(func() { t.Errorf("cycle %d: Close: %v", i, err) })
					}
				}
			}
		})
	}
	for i := range n {
		next <- i
	}
	close(next)
	wg.Wait()
}

func TestProofFDCount(t *testing.T) {
	n := 10000
	if testing.Short() {
		n = 1000
	}
	workers := 2 * runtime.GOMAXPROCS(0)
	for _, tc := range []struct {
		name  string
		close bool
	}{{"close", true}, {"drop-and-gc", false}} {
		t.Run(tc.name, func(t *testing.T) {
			start := time.Now()
			spawnCycles(t, 100, workers, true) // warm up: threads, caches
			// Let earlier tests' dropped files be collected first, so that
			// they do not close during the count.
			baseAll, basePidfds := fdCounts(t)
			for range 10 {
				runtime.GC()
				time.Sleep(10 * time.Millisecond) // let cleanups run
				all, pidfds := fdCounts(t)
				if all == baseAll && pidfds == basePidfds {
					break
				}
				baseAll, basePidfds = all, pidfds
			}

			spawnCycles(t, n, workers, tc.close)
			afterAll, afterPidfds := fdCounts(t)

			// Dropped Open handles close their pidfds when collected (and
			// the Cmd children's os.Process their own, at the reap):
			// collect until the count is back, or give up at the deadline.
			deadline := time.Now().Add(10 * time.Second)
			all, pidfds := afterAll, afterPidfds
			gcs := 0
			for (all > baseAll || pidfds > basePidfds) && time.Now().Before(deadline) {
				runtime.GC()
				gcs++
				time.Sleep(10 * time.Millisecond) // let cleanups run
				all, pidfds = fdCounts(t)
			}
			switch {
			case all > baseAll || pidfds > basePidfds:
				t.Errorf("after %d cycles: %d fds (%d pidfds), before: %d (%d)", n, all, pidfds, baseAll, basePidfds)
			case all < baseAll:
				// Not ours: a file another test dropped was collected.
				t.Logf("fd count fell from %d to %d: another test's dropped file was collected meanwhile", baseAll, all)
			}
			t.Logf("%s: %d spawn/wait cycles on %d workers: fds %d (pidfds %d) before, %d (%d) right after, %d (%d) after %d GCs; %v",
				tc.name, n, workers, baseAll, basePidfds, afterAll, afterPidfds, all, pidfds, gcs, time.Since(start))
		})
	}
}

// childFDs runs the fds helper as c and returns its descriptors.
func childFDs(t *testing.T, c *pexec.Cmd) map[int]string {
	t.Helper()
	out, err := c.Output()
	if err != nil {
		t.Fatalf("fds helper: %v", err)
	}
	fds := map[int]string{}
	for line := range strings.Lines(string(out)) {
		num, target, _ := strings.Cut(strings.TrimSpace(line), " ")
		n, err := strconv.Atoi(num)
		if err != nil {
			t.Fatalf("fds helper line %q", line)
		}
		fds[n] = target
	}
	return fds
}

// pidfdsIn returns the descriptors of fds that are pidfds, sorted.
func pidfdsIn(fds map[int]string) []string {
	var out []string
	for n, target := range fds {
		if isPidfdLink(target) {
			out = append(out, fmt.Sprintf("%d:%s", n, target))
		}
	}
	sort.Strings(out)
	return out
}

// TestProofNoPidfdInherited needs pidfds in the parent (and a caller's own
// SysProcAttr.PidFD, which is CLONE_PIDFD): it skips without them.
func TestProofNoPidfdInherited(t *testing.T) {
	skipNoPidfd(t)
	start := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), proofTimeout)
	defer cancel()
	// Pidfds the parent holds while the children start: live children's
	// handles, a caller's own PidFD, an Open handle.
	var live []*pexec.Cmd
	defer func() {
		for _, c := range live {
			c.Process.Kill()
			c.Wait()
		}
	}()
	for range 3 {
		c := pexectest.Command("sleep")
		if err := c.Start(); err != nil {
			t.Fatal(err)
		}
		live = append(live, c)
	}
	callerFD := -1
	c := pexectest.Command("sleep")
	c.SysProcAttr = &syscall.SysProcAttr{PidFD: &callerFD}
	if err := c.Start(); err != nil {
		t.Fatal(err)
	}
	live = append(live, c)
	if callerFD < 0 {
		t.Fatalf("caller's PidFD = %d after Start", callerFD)
	}
	defer unix.Close(callerFD)
	if flags, err := unix.FcntlInt(uintptr(callerFD), unix.F_GETFD, 0); err != nil || flags&unix.FD_CLOEXEC == 0 {
		t.Errorf("caller's PidFD %d: flags %#x, %v: not close-on-exec", callerFD, flags, err)
	}
	o, err := pexec.Open(live[0].Process.Pid)
	if err != nil {
		t.Fatal(err)
	}
	defer o.Close()
	all, parentPidfds := fdCounts(t)
	if parentPidfds < 5 {
		t.Fatalf("the parent holds %d pidfds (of %d fds); want at least 5 for the test to mean something", parentPidfds, all)
	}

	devnull, err := os.Open(os.DevNull)
	if err != nil {
		t.Fatal(err)
	}
	defer devnull.Close()
	pr, pw, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer pr.Close()
	defer pw.Close()

	type variant struct {
		name  string
		setup func(c *pexec.Cmd)
		want  int // how many pidfds the child must have
	}
	var extraPidfd *os.File
	variants := []variant{
		{"plain", func(*pexec.Cmd) {}, 0},
		{"ExtraFiles", func(c *pexec.Cmd) { c.ExtraFiles = []*os.File{devnull, pw} }, 0},
		{"caller PidFD", func(c *pexec.Cmd) {
			fd := -1
			c.SysProcAttr = &syscall.SysProcAttr{PidFD: &fd}
			t.Cleanup(func() {
				if fd >= 0 {
					unix.Close(fd)
				}
			})
		}, 0},
		{"ExtraFiles and caller PidFD and Setpgid", func(c *pexec.Cmd) {
			fd := -1
			c.ExtraFiles = []*os.File{devnull, nil, pw}
			c.SysProcAttr = &syscall.SysProcAttr{PidFD: &fd, Setpgid: true}
			t.Cleanup(func() {
				if fd >= 0 {
					unix.Close(fd)
				}
			})
		}, 0},
		// The positive control: a pidfd the caller passes on purpose is
		// inherited, and seen as one.
		{"pidfd given in ExtraFiles", func(c *pexec.Cmd) {
			f, err := live[1].Handle().File()
			if err != nil {
				t.Fatal(err)
			}
			extraPidfd = f
			c.ExtraFiles = []*os.File{f}
		}, 1},
	}
	for _, mode := range []string{"pidfd", "forced-pid"} {
		for _, v := range variants {
			if mode == "forced-pid" && v.want > 0 {
				continue // File needs a pidfd handle
			}
			t.Run(mode+"/"+v.name, func(t *testing.T) {
				if mode == "forced-pid" {
					defer pexec.SetForcePIDMode(true)()
				}
				c := pexectest.CommandContext(ctx, "fds")
				v.setup(c)
				fds := childFDs(t, c)
				got := pidfdsIn(fds)
				if len(got) != v.want {
					t.Errorf("child's pidfds: %v, want %d; all its fds: %v", got, v.want, fds)
				}
				for i, f := range c.ExtraFiles {
					if f != nil && fds[3+i] == "" {
						t.Errorf("ExtraFiles[%d] missing in the child: %v", i, fds)
					}
				}
			})
		}
	}
	if extraPidfd != nil {
		extraPidfd.Close()
	}

	// And from outside: the descriptors of a running child, read from
	// /proc/<child>/fd once it has said it is ready (so its exec, and its
	// close-on-exec pass, are over).
	t.Run("proc-pid-fd", func(t *testing.T) {
		fd := -1
		c := pexectest.CommandContext(ctx, "ignore-term")
		c.ExtraFiles = []*os.File{devnull, pw}
		c.SysProcAttr = &syscall.SysProcAttr{PidFD: &fd}
		out, err := c.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := c.Start(); err != nil {
			t.Fatal(err)
		}
		defer unix.Close(fd)
		defer func() { c.Handle().Kill(); proofCmdWait(ctx, c) }()
		line, err := bufio.NewReader(out).ReadString('\n')
		if err != nil || line != "ready\n" {
			t.Fatalf("child: %q, %v", line, err)
		}
		fds, err := proofFDs(strconv.Itoa(c.Process.Pid))
		if err != nil {
			t.Fatal(err)
		}
		if got := pidfdsIn(fds); len(got) != 0 {
			t.Errorf("/proc/%d/fd holds pidfds %v; all: %v", c.Process.Pid, got, fds)
		}
		if fds[3] == "" || fds[4] == "" {
			t.Errorf("ExtraFiles missing from /proc/%d/fd: %v", c.Process.Pid, fds)
		}
	})
	t.Logf("parent held %d pidfds (of %d fds); %d variants in 2 modes; %v", parentPidfds, all, len(variants), time.Since(start))
}
