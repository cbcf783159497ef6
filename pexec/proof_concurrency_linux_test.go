package pexec_test

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"runtime"
	"sort"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/pexec-dev/pexec/pexec"
	"github.com/pexec-dev/pexec/pexectest"
	"golang.org/x/sys/unix"
)

// Concurrency: many goroutines on shared handles under -race, and Close
// racing Signal while descriptor numbers are recycled as fast as possible.

// tally counts outcomes by name and remembers the disallowed ones.
type tally struct {
	mu   sync.Mutex
	seen map[string]int
	bad  []string
}

func (t *tally) add(op, outcome string, allowed ...string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.seen == nil {
		t.seen = map[string]int{}
	}
	t.seen[op+": "+outcome]++
	for _, a := range allowed {
		if outcome == a {
			return
		}
	}
	if len(t.bad) < 20 {
		t.bad = append(t.bad, fmt.Sprintf("%s: %s (allowed: %v)", op, outcome, allowed))
	}
}

func (t *tally) String() string {
	keys := make([]string, 0, len(t.seen))
	for k := range t.seen {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b []byte
	for _, k := range keys {
		b = fmt.Appendf(b, "\n\t%s x%d", k, t.seen[k])
	}
	return string(b)
}

func TestProofConcurrentHandles(t *testing.T) {
	for _, mode := range []string{"pidfd", "forced-pid"} {
		t.Run(mode, func(t *testing.T) {
			if mode == "forced-pid" {
				defer pexec.SetForcePIDMode(true)()
			}
			concurrentHandles(t)
		})
	}
}

// concurrentHandles runs 64 goroutines over 8 children's handles: every
// method at once, the children killed and half the handles closed in the
// middle of it.
func concurrentHandles(t *testing.T) {
	const (
		children   = 8
		goroutines = 64
		iterations = 200
	)
	start := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), proofTimeout)
	defer cancel()
	cmds := make([]*pexec.Cmd, children)
	hs := make([]*pexec.Handle, children)
	ids := make([]uint64, children)
	for k := range cmds {
		cmds[k] = pexectest.CommandContext(ctx, "sleep")
		if err := cmds[k].Start(); err != nil {
			t.Fatal(err)
		}
		hs[k] = cmds[k].Handle()
		ids[k], _ = hs[k].ID()
	}
	pidfdMode := hs[0].Mode() == pexec.ModePidFD
	const killed = "signal: killed [exited=false code=-1 success=false signaled=true sig=9]"

	var tl tally
	var wg sync.WaitGroup
	for g := range goroutines {
		wg.Go(func() {
			k := g % children
			h := hs[k]
			for j := range iterations {
				switch {
				case g < children/2 && j == iterations/2:
					// Handles 0..3 are never closed: their kills succeed.
					tl.add("Kill", proofErr(h.Kill()), "nil")
				case g >= children/2 && g < children && j == iterations/2:
					tl.add("Kill", proofErr(h.Kill()), "nil", "ErrClosed")
				case g >= children && g < children+children/2 && j == iterations/2:
					// Handles 4..7 are closed, before or after their kill.
					tl.add("Close", proofErr(hs[g-children/2].Close()), "nil")
				}
				switch (g + j) % 8 {
				case 0:
					tl.add("Signal(0)", proofErr(h.Signal(syscall.Signal(0))), "nil", "ErrProcessDone", "ErrClosed")
				case 1:
					h.Alive()
				case 2:
					wctx, cancel := context.WithTimeout(ctx, time.Millisecond)
					tl.add("WaitContext", proofWait(h.WaitContext(wctx)), "DeadlineExceeded", killed, "ErrClosed")
					cancel()
				case 3:
					info, err := h.Info()
					out := proofErr(err)
					if err == nil && info.Pid != h.Pid() {
						out = fmt.Sprintf("pid %d, want %d", info.Pid, h.Pid())
					}
					tl.add("Info", out, "nil", "ErrProcessDone", "ErrClosed")
				case 4:
					id, err := h.ID()
					out := proofErr(err)
					if err == nil && id != ids[k] {
						out = fmt.Sprintf("ID %d, want %d", id, ids[k])
					}
					if pidfdMode && kernel().Pidfs {
						tl.add("ID", out, "nil", "ErrClosed")
					} else { // PID mode, or no pidfs (before 6.9)
						tl.add("ID", out, "ErrUnsupported", "ErrClosed")
					}
				case 5:
					select {
					case <-h.Done():
					default:
					}
				case 6:
					same, err := h.SameProcess(hs[(k+1)%children])
					out := fmt.Sprintf("%v %s", same, proofErr(err))
					if pidfdMode {
						tl.add("SameProcess", out, "false nil", "false ErrClosed")
					} else {
						tl.add("SameProcess", out, "false ErrUnsupported", "false ErrClosed")
					}
				case 7:
					tl.add("Signal(SIGCONT)", proofErr(h.Signal(syscall.SIGCONT)), "nil", "ErrProcessDone", "ErrClosed")
				}
			}
			if k < children/2 {
				tl.add("final Wait", proofWait(h.WaitContext(ctx)), killed)
			} else {
				tl.add("final Wait", proofWait(h.WaitContext(ctx)), killed, "ErrClosed")
				tl.add("Close again", proofErr(h.Close()), "nil")
			}
		})
	}
	wg.Wait()
	for _, c := range cmds {
		// A kill through a handle closed first never happened.
		c.Process.Kill()
	}
	for k, c := range cmds {
		tl.add("Cmd.Wait", proofErr(proofCmdWait(ctx, c)), "ExitError(signal: killed)")
		if k < children/2 {
			tl.add("Wait after reap", proofWait(hs[k].Wait()), killed)
		}
	}
	for _, b := range tl.bad {
		t.Error(b)
	}
	t.Logf("%d goroutines x %d operations on %d handles (%s mode) in %v; outcomes:%s",
		goroutines, iterations, children, hs[0].Mode(), time.Since(start), &tl)
}

// TestProofCloseRacingSignal closes handles while other goroutines signal
// through them (Handle.Close of a Handle that owns its pidfd, and
// os.Process.Release under a Handle that uses the os.Process's), and meanwhile opens and closes pidfds of other live
// processes (and plain files) as fast as it can, so that every descriptor
// number a Close frees is taken again at once. A Signal that used a freed
// number would signal one of those bystanders (SIGTERM ends them) or fail
// with some error other than ErrClosed.
func TestProofCloseRacingSignal(t *testing.T) {
	if !pexec.Supported() {
		t.Skip("needs pidfds (Open)")
	}
	n := 3000
	if testing.Short() {
		n = 300
	}
	start := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), proofTimeout)
	defer cancel()

	// The victim ignores SIGTERM, so it outlives every signal aimed at it.
	victim := pexectest.CommandContext(ctx, "ignore-term")
	out, err := victim.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := victim.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { victim.Process.Kill(); proofCmdWait(ctx, victim) }()
	if line, err := bufio.NewReader(out).ReadString('\n'); err != nil || line != "ready\n" {
		t.Fatalf("victim: %q, %v", line, err)
	}
	// Bystanders die of SIGTERM.
	var bystanders []*pexec.Cmd
	for range 4 {
		c := pexec.CommandContext(ctx, "/bin/sleep", "1000")
		if err := c.Start(); err != nil {
			t.Fatal(err)
		}
		bystanders = append(bystanders, c)
	}
	defer func() {
		for _, c := range bystanders {
			if c.ProcessState == nil {
				c.Process.Kill()
				c.Wait()
			}
		}
	}()

	stop := make(chan struct{})
	var churned atomic.Int64
	var churn sync.WaitGroup
	for w := range 2 {
		churn.Go(func() {
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				var fds []int
				for _, b := range bystanders {
					if fd, err := unix.PidfdOpen(b.Process.Pid, 0); err == nil {
						fds = append(fds, fd)
					}
				}
				if f, err := os.Open(os.DevNull); err == nil {
					f.Close()
				}
				if h, err := pexec.Open(bystanders[(i+w)%len(bystanders)].Process.Pid); err == nil {
					h.Close()
				}
				for _, fd := range fds {
					unix.Close(fd)
				}
				churned.Add(int64(len(fds)) + 2)
				runtime.Gosched()
			}
		})
	}

	var tl tally
	var sent atomic.Int64
	for i := range n {
		// Even rounds: a Handle that owns its pidfd (Open), closed by
		// Handle.Close. Odd rounds: a Handle on an os.Process's pidfd, as
		// a Cmd child's is, closed under it by Process.Release.
		var h *pexec.Handle
		closeIt, closer := func() error { return h.Close() }, "Close"
		if i%2 == 0 {
			if h, err = pexec.Open(victim.Process.Pid); err != nil {
				t.Fatal(err)
			}
		} else {
			p, err := os.FindProcess(victim.Process.Pid) // a pidfd of its own
			if err != nil {
				t.Fatal(err)
			}
			if h = pexec.NewCmdChildHandle(p); h == nil {
				t.Fatal("os.FindProcess gave no pidfd")
			}
			closeIt, closer = p.Release, "Release"
		}
		var wg sync.WaitGroup
		for range 2 {
			wg.Go(func() {
				// Bounded, and yielding, so that the closer gets a CPU
				// soon on two cores.
				for k := range 1000 {
					err := h.Signal(syscall.SIGTERM)
					if err != nil {
						tl.add("Signal", proofErr(err), "ErrClosed")
						return
					}
					sent.Add(1)
					if k%4 == 3 {
						runtime.Gosched()
					}
				}
				tl.add("Signal", "not closed after 1000 signals", "not closed after 1000 signals")
			})
		}
		wg.Go(func() {
			for range i % 16 {
				runtime.Gosched()
			}
			tl.add(closer, proofErr(closeIt()), "nil")
		})
		wg.Wait()
	}
	close(stop)
	churn.Wait()

	for _, b := range bystanders {
		pid := b.Process.Pid
		if msg := untouched(pid, "/bin/sleep"); msg != "" {
			t.Errorf("bystander %d was touched: %s", pid, msg)
		}
		if !b.Handle().Alive() {
			t.Errorf("bystander %d is dead", pid)
		}
		b.Handle().Signal(syscall.SIGALRM)
		// Its end tells which signal reached it first: SIGALRM, unless a
		// SIGTERM went astray.
		tl.add("bystander end", proofErr(proofCmdWait(ctx, b)), "ExitError(signal: alarm clock)")
	}
	if !victim.Handle().Alive() {
		t.Error("victim died")
	}
	for _, b := range tl.bad {
		t.Error(b)
	}
	t.Logf("%d Close/Signal races on the victim, %d SIGTERMs delivered to it, %d descriptors churned meanwhile, %d bystanders watched; %v; outcomes:%s",
		n, sent.Load(), churned.Load(), len(bystanders), time.Since(start), &tl)
}

// TestProofWaitRacingReap starts Handle.Waits on an exited child at the
// moment Cmd.Wait reaps it: every one must report the child's status, none
// may mistake Cmd.Wait's reap for a foreign one.
func TestProofWaitRacingReap(t *testing.T) {
	rounds := 300
	if testing.Short() {
		rounds = 50
	}
	for _, mode := range []string{"pidfd", "forced-pid"} {
		t.Run(mode, func(t *testing.T) {
			if mode == "forced-pid" {
				defer pexec.SetForcePIDMode(true)()
			}
			start := time.Now()
			ctx, cancel := context.WithTimeout(context.Background(), proofTimeout)
			defer cancel()
			const want = "exit status 7 [exited=true code=7 success=false signaled=false sig=0]"
			var tl tally
			for range rounds {
				c := pexec.CommandContext(ctx, "/bin/sh", "-c", "exit 7")
				if err := c.Start(); err != nil {
					t.Fatal(err)
				}
				h := c.Handle()
				select {
				case <-h.Done():
				case <-ctx.Done():
					t.Fatal("child did not exit")
				}
				var wg sync.WaitGroup
				for range 8 {
					wg.Go(func() { tl.add("Handle.Wait", proofWait(h.WaitContext(ctx)), want) })
				}
				tl.add("Cmd.Wait", proofErr(proofCmdWait(ctx, c)), "ExitError(exit status 7)")
				wg.Wait()
			}
			for _, b := range tl.bad {
				t.Error(b)
			}
			t.Logf("%s: %d children, 8 Handle.Waits each racing Cmd.Wait's reap, in %v; outcomes:%s", mode, rounds, time.Since(start), &tl)
		})
	}
}
