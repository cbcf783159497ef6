package pexec_test

import (
	"context"
	"fmt"
	"os"
	"runtime/debug"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/pexec-dev/pexec/internal/testhelper"
	"github.com/pexec-dev/pexec/pexec"
	"github.com/pexec-dev/pexec/pexectest"
)

// The core behaviour table: exit codes, signals, Alive, Wait, Done,
// WaitContext, Close and their errors. It is a function that returns what
// each case observed, so that the same table runs in-process (pidfd mode,
// and PID mode forced with SetForcePIDMode) and in a helper jailed by a
// seccomp filter that denies the pidfd syscalls (proof_fallback_linux_test.go),
// where it reports its observations back as JSON. The expectations are the
// same in every mode except where a case says otherwise (wantPID).

// tableCase is one row of the behaviour table.
type tableCase struct {
	name string
	run  func(r *tableRun)
	want []string
	// wantPID, if not nil, replaces want in ModePID.
	wantPID []string
}

// tableRun is the state of one case: its deadline, what it observed and
// the children to clean up.
type tableRun struct {
	ctx   context.Context
	lines []string
	cmds  []*pexec.Cmd
}

func (r *tableRun) add(format string, args ...any) {
	r.lines = append(r.lines, fmt.Sprintf(format, args...))
}

// start starts c and returns its Handle, or records the failure and
// returns nil.
func (r *tableRun) start(c *pexec.Cmd) *pexec.Handle {
	if err := c.Start(); err != nil {
		r.add("start: %v", err)
		return nil
	}
	r.cmds = append(r.cmds, c)
	return c.Handle()
}

// awaitDone waits until h reports the exit, within the case's deadline.
func (r *tableRun) awaitDone(h *pexec.Handle) bool {
	select {
	case <-h.Done():
		return true
	case <-r.ctx.Done():
		r.add("Done: not closed: %v", r.ctx.Err())
		return false
	}
}

// doneState reports whether ch is closed, without blocking.
func doneState(ch <-chan struct{}) string {
	select {
	case <-ch:
		return "closed"
	default:
		return "open"
	}
}

// exitCase is the row for a child that exits with code.
func exitCase(code int) tableCase {
	success := code == 0
	cmdErr := "nil"
	if !success {
		cmdErr = fmt.Sprintf("ExitError(exit status %d)", code)
	}
	return tableCase{
		name: fmt.Sprintf("exit-%d", code),
		run: func(r *tableRun) {
			c := pexectest.Command("exit", fmt.Sprint(code))
			h := r.start(c)
			if h == nil {
				return
			}
			r.add("Wait: %s", proofWait(h.WaitContext(r.ctx)))
			r.add("Alive: %v", h.Alive())
			r.add("Cmd.Wait: %s", proofErr(proofCmdWait(r.ctx, c)))
			r.add("ProcessState: %v", c.ProcessState)
			r.add("Wait again: %s", proofWait(h.WaitContext(r.ctx)))
		},
		want: []string{
			fmt.Sprintf("Wait: exit status %d [exited=true code=%d success=%v signaled=false sig=0]", code, code, success),
			"Alive: false",
			"Cmd.Wait: " + cmdErr,
			fmt.Sprintf("ProcessState: exit status %d", code),
			fmt.Sprintf("Wait again: exit status %d [exited=true code=%d success=%v signaled=false sig=0]", code, code, success),
		},
	}
}

// signalCase is the row for a running child ended by sig through the
// Handle (kill: through Kill).
func signalCase(name string, sig syscall.Signal, kill bool) tableCase {
	word := "signal: " + sig.String()
	return tableCase{
		name: name,
		run: func(r *tableRun) {
			c := pexectest.Command("sleep")
			h := r.start(c)
			if h == nil {
				return
			}
			r.add("Alive before: %v", h.Alive())
			r.add("Signal(0) before: %s", proofErr(h.Signal(syscall.Signal(0))))
			if kill {
				r.add("Kill: %s", proofErr(h.Kill()))
			} else {
				r.add("Signal: %s", proofErr(h.Signal(sig)))
			}
			r.awaitDone(h)
			r.add("Alive after exit: %v", h.Alive())
			r.add("Signal after exit: %s", proofErr(h.Signal(sig)))
			r.add("Wait: %s", proofWait(h.WaitContext(r.ctx)))
			r.add("Cmd.Wait: %s", proofErr(proofCmdWait(r.ctx, c)))
			r.add("Kill after reap: %s", proofErr(h.Kill()))
		},
		want: []string{
			"Alive before: true",
			"Signal(0) before: nil",
			map[bool]string{true: "Kill: nil", false: "Signal: nil"}[kill],
			"Alive after exit: false",
			"Signal after exit: ErrProcessDone",
			fmt.Sprintf("Wait: %s [exited=false code=-1 success=false signaled=true sig=%d]", word, int(sig)),
			"Cmd.Wait: ExitError(" + word + ")",
			"Kill after reap: ErrProcessDone",
		},
	}
}

// proofOtherSignal is an os.Signal that is not a syscall.Signal.
type proofOtherSignal struct{}

func (proofOtherSignal) String() string { return "other" }
func (proofOtherSignal) Signal()        {}

// proofTable returns the behaviour table.
func proofTable() []tableCase {
	return []tableCase{
		exitCase(0), exitCase(1), exitCase(3), exitCase(127), exitCase(255),
		signalCase("signal-TERM", syscall.SIGTERM, false),
		signalCase("signal-HUP", syscall.SIGHUP, false),
		signalCase("kill", syscall.SIGKILL, true),
		{
			name: "kill-self",
			run: func(r *tableRun) {
				c := pexectest.Command("kill-self", "15")
				h := r.start(c)
				if h == nil {
					return
				}
				r.add("Wait: %s", proofWait(h.WaitContext(r.ctx)))
				r.add("Cmd.Wait: %s", proofErr(proofCmdWait(r.ctx, c)))
			},
			want: []string{
				"Wait: signal: terminated [exited=false code=-1 success=false signaled=true sig=15]",
				"Cmd.Wait: ExitError(signal: terminated)",
			},
		},
		{
			name: "zombie",
			run: func(r *tableRun) {
				// Exited, not yet reaped by Cmd.Wait: not alive, cannot be
				// signalled, its PID still its own.
				c := pexectest.Command("exit", "4")
				h := r.start(c)
				if h == nil || !r.awaitDone(h) {
					return
				}
				r.add("Alive: %v", h.Alive())
				r.add("Signal(0): %s", proofErr(h.Signal(syscall.Signal(0))))
				r.add("Kill: %s", proofErr(h.Kill()))
				r.add("Info: %s", proofErr(infoErr(h.Info())))
				r.add("Wait: %s", proofWait(h.WaitContext(r.ctx)))
				r.add("Cmd.Wait: %s", proofErr(proofCmdWait(r.ctx, c)))
			},
			want: []string{
				"Alive: false",
				"Signal(0): ErrProcessDone",
				"Kill: ErrProcessDone",
				"Info: ErrProcessDone",
				"Wait: exit status 4 [exited=true code=4 success=false signaled=false sig=0]",
				"Cmd.Wait: ExitError(exit status 4)",
			},
		},
		{
			name: "done",
			run: func(r *tableRun) {
				c := pexectest.Command("sleep")
				h := r.start(c)
				if h == nil {
					return
				}
				r.add("Done while running: %s", doneState(h.Done()))
				r.add("Kill: %s", proofErr(h.Kill()))
				r.awaitDone(h)
				r.add("Done after exit: %s", doneState(h.Done()))
				r.add("Cmd.Wait: %s", proofErr(proofCmdWait(r.ctx, c)))
				r.add("Done after reap: %s", doneState(h.Done()))
			},
			want: []string{
				"Done while running: open",
				"Kill: nil",
				"Done after exit: closed",
				"Cmd.Wait: ExitError(signal: killed)",
				"Done after reap: closed",
			},
		},
		{
			name: "waitcontext",
			run: func(r *tableRun) {
				c := pexectest.Command("sleep")
				h := r.start(c)
				if h == nil {
					return
				}
				// The child sleeps for an hour: the deadline, not the
				// child, ends this wait, whatever the machine's speed.
				ctx, cancel := context.WithTimeout(r.ctx, 20*time.Millisecond)
				r.add("WaitContext(expiring): %s", proofWait(h.WaitContext(ctx)))
				cancel()
				ctx, cancel = context.WithCancel(r.ctx)
				cancel()
				r.add("WaitContext(canceled): %s", proofWait(h.WaitContext(ctx)))
				r.add("Alive after: %v", h.Alive())
				r.add("Kill: %s", proofErr(h.Kill()))
				r.add("WaitContext: %s", proofWait(h.WaitContext(r.ctx)))
				r.add("Cmd.Wait: %s", proofErr(proofCmdWait(r.ctx, c)))
			},
			want: []string{
				"WaitContext(expiring): DeadlineExceeded",
				"WaitContext(canceled): Canceled",
				"Alive after: true",
				"Kill: nil",
				"WaitContext: signal: killed [exited=false code=-1 success=false signaled=true sig=9]",
				"Cmd.Wait: ExitError(signal: killed)",
			},
		},
		{
			name: "close",
			run: func(r *tableRun) {
				c := pexectest.Command("sleep")
				h := r.start(c)
				if h == nil {
					return
				}
				r.add("Close: %s", proofErr(h.Close()))
				r.add("Close again: %s", proofErr(h.Close()))
				r.add("Alive: %v", h.Alive())
				r.add("Signal: %s", proofErr(h.Signal(syscall.SIGTERM)))
				r.add("Kill: %s", proofErr(h.Kill()))
				r.add("SignalGroup: %s", proofErr(h.SignalGroup(syscall.SIGTERM)))
				r.add("Wait: %s", proofWait(h.Wait()))
				r.add("WaitContext: %s", proofWait(h.WaitContext(r.ctx)))
				r.add("Info: %s", proofErr(infoErr(h.Info())))
				_, err := h.ID()
				r.add("ID: %s", proofErr(err))
				r.add("Control: %s", proofErr(h.Control(func(int) {})))
				r.add("Pid kept: %v", h.Pid() == c.Process.Pid)
				// The child is untouched by Close; Cmd.Wait still reaps it.
				r.add("child alive: %s", proofErr(c.Process.Signal(syscall.Signal(0))))
				r.add("Process.Kill: %s", proofErr(c.Process.Kill()))
				r.add("Cmd.Wait: %s", proofErr(proofCmdWait(r.ctx, c)))
			},
			want: []string{
				"Close: nil",
				"Close again: nil",
				"Alive: false",
				"Signal: ErrClosed",
				"Kill: ErrClosed",
				"SignalGroup: ErrClosed",
				"Wait: ErrClosed",
				"WaitContext: ErrClosed",
				"Info: ErrClosed",
				"ID: ErrClosed",
				"Control: ErrClosed",
				"Pid kept: true",
				"child alive: nil",
				"Process.Kill: nil",
				"Cmd.Wait: ExitError(signal: killed)",
			},
		},
		{
			name: "close-unblocks-wait",
			run: func(r *tableRun) {
				c := pexectest.Command("sleep")
				h := r.start(c)
				if h == nil {
					return
				}
				got := make(chan string, 1)
				go func() { got <- proofWait(h.WaitContext(r.ctx)) }()
				r.add("Close: %s", proofErr(h.Close()))
				select {
				case s := <-got:
					r.add("blocked Wait: %s", s)
				case <-r.ctx.Done():
					r.add("blocked Wait: still blocked")
				}
				c.Process.Kill()
				r.add("Cmd.Wait: %s", proofErr(proofCmdWait(r.ctx, c)))
			},
			want: []string{
				"Close: nil",
				"blocked Wait: ErrClosed",
				"Cmd.Wait: ExitError(signal: killed)",
			},
		},
		{
			name: "concurrent-waits",
			run: func(r *tableRun) {
				// Eight Handle.Waits and Cmd.Wait at once: one reap, one
				// outcome for all, and the I/O copying is not lost.
				c := pexectest.Command("byte-then-exit", "7")
				var out strings.Builder
				c.Stdout = &out
				h := r.start(c)
				if h == nil {
					return
				}
				var wg sync.WaitGroup
				res := make([]string, 8)
				for i := range res {
					wg.Go(func() { res[i] = proofWait(h.WaitContext(r.ctx)) })
				}
				r.add("Cmd.Wait: %s", proofErr(proofCmdWait(r.ctx, c)))
				wg.Wait()
				seen := map[string]int{}
				for _, s := range res {
					seen[s]++
				}
				r.add("Waits: %v", seen)
				r.add("stdout: %q", out.String())
			},
			want: []string{
				"Cmd.Wait: ExitError(exit status 7)",
				"Waits: map[exit status 7 [exited=true code=7 success=false signaled=false sig=0]:8]",
				`stdout: "x"`,
			},
		},
		{
			name: "cmd-wait-first",
			run: func(r *tableRun) {
				c := pexectest.Command("exit", "5")
				h := r.start(c)
				if h == nil {
					return
				}
				r.add("Cmd.Wait: %s", proofErr(proofCmdWait(r.ctx, c)))
				r.add("Cmd.Wait again: %s", proofErr(proofCmdWait(r.ctx, c)))
				r.add("Wait after reap: %s", proofWait(h.WaitContext(r.ctx)))
				st, _ := h.Wait()
				r.add("ProcessState kept: %v", st != nil && st.ProcessState() == c.ProcessState)
				r.add("Signal after reap: %s", proofErr(h.Signal(syscall.SIGTERM)))
				r.add("SignalGroup after reap: %s", proofErr(h.SignalGroup(syscall.SIGTERM)))
			},
			want: []string{
				"Cmd.Wait: ExitError(exit status 5)",
				"Cmd.Wait again: other(exec: Wait was already called)",
				"Wait after reap: exit status 5 [exited=true code=5 success=false signaled=false sig=0]",
				"ProcessState kept: true",
				"Signal after reap: ErrProcessDone",
				"SignalGroup after reap: ErrProcessDone",
			},
		},
		{
			name: "signal-errors",
			run: func(r *tableRun) {
				c := pexectest.Command("sleep")
				h := r.start(c)
				if h == nil {
					return
				}
				r.add("Signal(other type): %s", proofErr(h.Signal(proofOtherSignal{})))
				for _, s := range []int{-1, 65, 1000} {
					r.add("Signal(%d): %s", s, proofErr(h.Signal(syscall.Signal(s))))
				}
				r.add("SignalGroup(not leader): %s", proofErr(h.SignalGroup(syscall.SIGTERM)))
				r.add("Alive: %v", h.Alive())
				r.add("Kill: %s", proofErr(h.Kill()))
				r.add("Cmd.Wait: %s", proofErr(proofCmdWait(r.ctx, c)))
			},
			want: []string{
				"Signal(other type): ErrUnsupported",
				"Signal(-1): EINVAL",
				"Signal(65): EINVAL",
				"Signal(1000): EINVAL",
				"SignalGroup(not leader): ErrInvalid",
				"Alive: true",
				"Kill: nil",
				"Cmd.Wait: ExitError(signal: killed)",
			},
		},
		{
			name: "signal-group",
			run: func(r *tableRun) {
				c := pexectest.Command("sleep")
				c.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
				h := r.start(c)
				if h == nil {
					return
				}
				r.add("SignalGroup(0): %s", proofErr(h.SignalGroup(syscall.Signal(0))))
				r.add("SignalGroup(TERM): %s", proofErr(h.SignalGroup(syscall.SIGTERM)))
				r.add("Wait: %s", proofWait(h.WaitContext(r.ctx)))
				r.add("SignalGroup after exit: %s", proofErr(h.SignalGroup(syscall.SIGTERM)))
				r.add("Cmd.Wait: %s", proofErr(proofCmdWait(r.ctx, c)))
			},
			want: []string{
				"SignalGroup(0): nil",
				"SignalGroup(TERM): nil",
				"Wait: signal: terminated [exited=false code=-1 success=false signaled=true sig=15]",
				"SignalGroup after exit: ErrProcessDone",
				"Cmd.Wait: ExitError(signal: terminated)",
			},
		},
		{
			name: "mode",
			run: func(r *tableRun) {
				c := pexectest.Command("sleep")
				h := r.start(c)
				if h == nil {
					return
				}
				r.add("Supported: %v", pexec.Supported())
				r.add("Mode: %v", h.Mode())
				fd := -1
				r.add("Control: %s", proofErr(h.Control(func(pidfd int) { fd = pidfd })))
				r.add("Control gave fd: %v", fd >= 0)
				f, err := h.File()
				if f != nil {
					f.Close()
				}
				r.add("File: %s", proofErr(err))
				id, err := h.ID()
				r.add("ID: %s nonzero=%v", proofErr(err), id != 0)
				info, err := h.Info()
				r.add("Info: %s", proofErr(err))
				if err == nil {
					r.add("Info: pid matches=%v ppid is us=%v uid is ours=%v", info.Pid == h.Pid(), info.PPid == os.Getpid(), info.UID == os.Getuid())
				}
				o, err := pexec.Open(h.Pid())
				r.add("Open: %s", proofErr(err))
				if err == nil {
					same, err := o.SameProcess(h)
					r.add("SameProcess: %v %s", same, proofErr(err))
					o.Close()
				}
				r.add("Kill: %s", proofErr(h.Kill()))
				r.awaitDone(h)
				r.add("Info after exit: %s", proofErr(infoErr(h.Info())))
				r.add("Cmd.Wait: %s", proofErr(proofCmdWait(r.ctx, c)))
			},
			want: []string{
				"Supported: true",
				"Mode: pidfd",
				"Control: nil",
				"Control gave fd: true",
				"File: nil",
				pidfsIDLine(),
				"Info: nil",
				"Info: pid matches=true ppid is us=true uid is ours=true",
				"Open: nil",
				"SameProcess: true nil",
				"Kill: nil",
				"Info after exit: ErrProcessDone",
				"Cmd.Wait: ExitError(signal: killed)",
			},
			wantPID: []string{
				"Supported: false",
				"Mode: pid",
				"Control: ErrUnsupported",
				"Control gave fd: false",
				"File: ErrUnsupported",
				"ID: ErrUnsupported nonzero=false",
				"Info: nil",
				"Info: pid matches=true ppid is us=true uid is ours=true",
				"Open: ErrUnsupported",
				"Kill: nil",
				"Info after exit: ErrProcessDone",
				"Cmd.Wait: ExitError(signal: killed)",
			},
		},
		{
			name: "nil-and-zero-handle",
			run: func(r *tableRun) {
				for _, h := range []*pexec.Handle{nil, new(pexec.Handle)} {
					name := map[bool]string{true: "nil", false: "zero"}[h == nil]
					_, idErr := h.ID()
					r.add("%s: Pid=%d Alive=%v Done=%v Signal=%s Kill=%s SignalGroup=%s Wait=%s WaitContext=%s Info=%s ID=%s Control=%s Close=%s",
						name, h.Pid(), h.Alive(), h.Done() == nil,
						proofErr(h.Signal(syscall.SIGTERM)), proofErr(h.Kill()), proofErr(h.SignalGroup(syscall.SIGTERM)),
						proofWait(h.Wait()), proofWait(h.WaitContext(r.ctx)), proofErr(infoErr(h.Info())), proofErr(idErr),
						proofErr(h.Control(func(int) {})), proofErr(h.Close()))
				}
			},
			want: []string{
				"nil: Pid=-1 Alive=false Done=true Signal=ErrInvalid Kill=ErrInvalid SignalGroup=ErrInvalid Wait=ErrInvalid WaitContext=ErrInvalid Info=ErrInvalid ID=ErrInvalid Control=ErrInvalid Close=ErrInvalid",
				"zero: Pid=-1 Alive=false Done=true Signal=ErrInvalid Kill=ErrInvalid SignalGroup=ErrInvalid Wait=ErrInvalid WaitContext=ErrInvalid Info=ErrInvalid ID=ErrInvalid Control=ErrInvalid Close=ErrInvalid",
			},
		},
	}
}

// infoErr keeps the error of an Info call.
func infoErr(_ *pexec.Info, err error) error { return err }

// pidfsIDLine is what the "mode" case observes of Handle.ID in ModePidFD:
// an ID where pidfs gives one (Linux 6.9), errors.ErrUnsupported before.
func pidfsIDLine() string {
	if !kernel().Pidfs {
		return "ID: ErrUnsupported nonzero=false"
	}
	return "ID: nil nonzero=true"
}

// runProofTable runs every case with its own deadline and returns what each
// observed. A case that panics or overruns its deadline reports so.
func runProofTable() map[string][]string {
	out := map[string][]string{}
	for _, tc := range proofTable() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		r := &tableRun{ctx: ctx}
		done := make(chan struct{})
		go func() {
			defer close(done)
			defer func() {
				if p := recover(); p != nil {
					r.add("panic: %v\n%s", p, debug.Stack())
				}
			}()
			tc.run(r)
		}()
		select {
		case <-done:
			out[tc.name] = r.lines
		case <-ctx.Done():
			out[tc.name] = append([]string{"hang"}, r.lines...)
		}
		cancel()
		for _, c := range r.cmds {
			if c.ProcessState == nil {
				c.Process.Kill()
			}
		}
	}
	return out
}

// checkProofTable compares what a run of the table observed, in mode, with
// the expectations.
func checkProofTable(t *testing.T, got map[string][]string, mode pexec.Mode) {
	for _, tc := range proofTable() {
		t.Run(tc.name, func(t *testing.T) {
			want := tc.want
			if mode == pexec.ModePID && tc.wantPID != nil {
				want = tc.wantPID
			}
			g, ok := got[tc.name]
			if !ok {
				t.Fatal("case did not run")
			}
			if diff := cmp.Diff(want, g); diff != "" {
				t.Errorf("%s mode (-want +got):\n%s", mode, diff)
			}
		})
	}
}

// TestProofTable runs the behaviour table in pidfd mode and in PID mode
// forced on this pidfd kernel; TestProofFallbackJailed runs it where the
// pidfd syscalls really fail. Its point is that the pidfd column really
// runs in CI: where pidfds are unavailable it fails, unless the run
// declares that they are expected to be (testhelper.RequirePidfd; .ci/qemu
// does), and then it skips.
func TestProofTable(t *testing.T) {
	start := time.Now()
	testhelper.RequirePidfd(t)
	t.Run("pidfd", func(t *testing.T) {
		checkProofTable(t, runProofTable(), pexec.ModePidFD)
	})
	t.Run("forced-pid", func(t *testing.T) {
		defer pexec.SetForcePIDMode(true)()
		checkProofTable(t, runProofTable(), pexec.ModePID)
	})
	k := kernel()
	t.Logf("%d cases x 2 modes in %v, on %s: in the pidfd column, ID %s, SignalGroup %s",
		len(proofTable()), time.Since(start), kernelRelease(),
		map[bool]string{true: "is the pidfs inode", false: "is errors.ErrUnsupported (no pidfs, 6.9)"}[k.Pidfs],
		map[bool]string{true: "goes through PIDFD_SIGNAL_PROCESS_GROUP", false: "is kill(-pid) while the child lives (no PIDFD_SIGNAL_PROCESS_GROUP, 6.9)"}[k.GroupSignal])
}
