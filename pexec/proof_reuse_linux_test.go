package pexec_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/pexec-dev/pexec/internal/testhelper"
	"github.com/pexec-dev/pexec/pexec"
	"github.com/pexec-dev/pexec/pexectest"
)

// Forced PID reuse. A helper runs as PID 1 of a new PID namespace
// (pexectest.InPIDNamespace), where nothing else creates processes. Each
// trial starts a child through pexec, lets it exit and reaps it with
// Cmd.Wait, then has the kernel give the very same PID to a new, unrelated
// process (pexectest.SetNextPID right before the fork). The old Handle is
// then aimed at a PID that belongs to the newcomer: every method must
// answer for the old process (gone) and leave the newcomer alone, while a
// plain kill(pid, 0) reaches the newcomer, which proves the PID really was
// reused. The old child leads a process group of its own (TreeGroup) and
// so does the newcomer, with the same ID: the group signals must miss it
// too.
//
// What a trial can check depends on the kernel. With pidfs (Linux 6.9) the
// old Handle's ID stays its own and differs from the newcomer's; before,
// there are no IDs (errors.ErrUnsupported), and SameProcess still tells the
// two apart, the old process having been seen exited before the newcomer
// alive. The "pidfd-no-pidfs" mode runs the pidfd trials as on such a
// kernel (pexec.SetForceNoPidfs) wherever pidfs exists.

func init() {
	testhelper.Register("proof-reuse", proofReuseHelper)
}

// reuseReport is what the PID-reuse helper observed.
type reuseReport struct {
	Setup   string
	Mode    string // the old handles' mode
	Trials  int    // trials run
	Reused  int    // trials whose newcomer got the old PID (must be all)
	Retries int    // forks that missed the PID and were redone
	// Abandoned counts trials whose PID a thread of the helper's own Go
	// runtime took (and keeps) before the newcomer could: replaced by
	// another trial, as they test nothing.
	Abandoned int
	Failures  []string
	Failed    int
	Elapsed   time.Duration
}

// proofReuseHelper runs args[1] trials with pidfd handles, PID-mode
// handles when args[0] is "pid", or adopted children and stored identities
// when it is "adopt" (adoptReuseTrial).
func proofReuseHelper(args []string) int {
	var rep reuseReport
	if len(args) != 2 {
		rep.Setup = fmt.Sprintf("usage: proof-reuse pidfd|pidfd-no-pidfs|pid|adopt trials, got %q", args)
		return testhelper.Report(rep)
	}
	trials, _ := strconv.Atoi(args[1])
	if pid := os.Getpid(); pid != 1 {
		rep.Setup = fmt.Sprintf("PID %d, not 1: start the helper with pexectest.InPIDNamespace", pid)
		return testhelper.Report(rep)
	}
	trial := reuseTrial
	switch args[0] {
	case "pid":
		pexec.SetForcePIDMode(true)
	case "pidfd-no-pidfs":
		pexec.SetForceNoPidfs(true)
	case "adopt":
		trial = adoptReuseTrial
	case "wrap-pid":
		pexec.SetForcePIDMode(true)
		fallthrough
	case "wrap":
		trial = wrapReuseTrial
	}
	start := time.Now()
	for i := 0; rep.Reused+rep.Failed < trials && i < trials+100; i++ {
		rep.Trials++
		msg := trial(&rep)
		if msg == errPIDTakenByThread {
			rep.Abandoned++
			continue
		}
		if msg != "" {
			rep.Failed++
			if len(rep.Failures) < 20 {
				rep.Failures = append(rep.Failures, fmt.Sprintf("trial %d: %s", i, msg))
			}
		}
	}
	rep.Elapsed = time.Since(start)
	return testhelper.Report(rep)
}

// newcomer starts /bin/sleep with the PID pid, which is free, and returns
// it, or nil and what went wrong (errPIDTakenByThread if a thread of this
// process took the PID for good).
func newcomer(rep *reuseReport, pid int) (*pexec.Cmd, string) {
	for attempt := 0; ; attempt++ {
		if attempt == 50 {
			return nil, fmt.Sprintf("PID %d not reused in %d forks", pid, attempt)
		}
		// Not pexectest.StartWithPID, which retries too, but does not
		// count the forks redone, nor tell a PID taken by a thread of
		// the runtime (a trial replaced) from a failure.
		if err := pexectest.SetNextPID(pid); err != nil {
			return nil, err.Error()
		}
		c := pexec.Command("/bin/sleep", "1000")
		c.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
		if err := c.Start(); err != nil {
			return nil, "start newcomer: " + err.Error()
		}
		if c.Process.Pid == pid {
			return c, ""
		}
		c.Process.Kill()
		c.Wait()
		if _, err := os.Stat("/proc/self/task/" + strconv.Itoa(pid)); err == nil {
			// A new thread of the Go runtime took the PID, for good.
			return nil, errPIDTakenByThread
		}
		rep.Retries++
	}
}

// errPIDTakenByThread is what reuseTrial returns when a thread of the Go
// runtime took the PID meant for the newcomer.
const errPIDTakenByThread = "PID taken by a runtime thread"

// reuseTrial runs one trial and returns "" or what went wrong.
func reuseTrial(rep *reuseReport) string {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	old := pexec.Command("/bin/false")
	old.Tree = pexec.TreeGroup // a group of its own, with its PID as ID
	if err := old.Start(); err != nil {
		return "start old: " + err.Error()
	}
	h := old.Handle()
	defer h.Close()
	rep.Mode = h.Mode().String()
	pid := h.Pid()
	oldID, oldIDErr := h.ID()
	if err := proofCmdWait(ctx, old); proofErr(err) != "ExitError(exit status 1)" {
		return "old Cmd.Wait: " + proofErr(err)
	}
	// The old child is reaped: its PID is free. Give it to a newcomer.
	nc, msg := newcomer(rep, pid)
	if nc == nil {
		return msg
	}
	rep.Reused++
	nh := nc.Handle()
	defer func() {
		if nc.ProcessState == nil {
			nc.Process.Kill()
			nc.Wait()
		}
	}()

	var bad []string
	expect := func(what, got, want string) {
		if got != want {
			bad = append(bad, fmt.Sprintf("%s: got %s, want %s", what, got, want))
		}
	}
	pidfdMode := h.Mode() == pexec.ModePidFD
	_, idErr := nh.ID()
	pidfs := idErr == nil // kernel().Pidfs, unless pexec.SetForceNoPidfs

	// The old handle, now that its PID names the newcomer.
	expect("Signal(TERM)", proofErr(h.Signal(syscall.SIGTERM)), "ErrProcessDone")
	expect("Signal(0)", proofErr(h.Signal(syscall.Signal(0))), "ErrProcessDone")
	expect("Kill", proofErr(h.Kill()), "ErrProcessDone")
	expect("SignalGroup(USR1)", proofErr(h.SignalGroup(syscall.SIGUSR1)), "ErrProcessDone")
	// Its group, gone with it: through the leader's pidfd where the kernel
	// can (PIDFD_SIGNAL_PROCESS_GROUP), which finds it empty; else not at
	// all, as the group's ID is now the newcomer's, unless the group's
	// watch (TreeDone) has already found it empty.
	if got := proofErr(h.KillTree()); got != "ErrProcessDone" && (got != "ErrUnsupported" || pidfdMode && kernel().GroupSignal) {
		bad = append(bad, fmt.Sprintf("KillTree: got %s, want ErrProcessDone (or ErrUnsupported without PIDFD_SIGNAL_PROCESS_GROUP)", got))
	}
	expect("Alive", fmt.Sprint(h.Alive()), "false")
	expect("Done", doneState(h.Done()), "closed")
	st, err := h.WaitContext(ctx)
	expect("Wait", proofWait(st, err), "exit status 1 [exited=true code=1 success=false signaled=false sig=0]")
	info, err := h.Info()
	expect("Info", proofErr(err), "ErrProcessDone")
	if info != nil {
		bad = append(bad, fmt.Sprintf("Info described %+v", *info))
	}
	f, err := h.GetFD(0)
	if f != nil {
		f.Close()
	}
	expect("GetFD(0)", proofErr(err), map[bool]string{true: "ErrProcessDone", false: "ErrUnsupported"}[pidfdMode])
	id, err := h.ID()
	newID, newErr := nh.ID()
	if pidfdMode {
		switch {
		case !pidfs:
			for _, e := range []error{oldIDErr, err, newErr} {
				expect("ID without pidfs", proofErr(e), "ErrUnsupported")
			}
		case err != nil || oldIDErr != nil || newErr != nil:
			bad = append(bad, fmt.Sprintf("ID: old %v/%v, newcomer %v", oldIDErr, err, newErr))
		case id != oldID || id == newID:
			bad = append(bad, fmt.Sprintf("ID: %d, before the exit %d, newcomer's %d", id, oldID, newID))
		}
		same, err := h.SameProcess(nh)
		expect("SameProcess(newcomer)", fmt.Sprintf("%v %s", same, proofErr(err)), "false nil")
		// The pidfd itself, passed on, still names only the old process.
		// A Cmd child's Handle uses its os.Process's pidfd, which the reap
		// closed: then there is nothing to pass on.
		if f, err := h.File(); err != nil {
			expect("File", proofErr(err), "ErrProcessDone")
		} else {
			g, err := pexec.FromFile(f)
			f.Close()
			expect("FromFile(File())", proofErr(err), "ErrProcessDone")
			if g != nil {
				bad = append(bad, fmt.Sprintf("FromFile gave a handle to PID %d", g.Pid()))
				g.Close()
			}
		}
	} else {
		expect("ID", proofErr(err), "ErrUnsupported")
	}

	// Proof that the PID really is the newcomer's: kill(2) by number
	// reaches it, and it is running, unsignalled.
	expect("kill(pid, 0)", proofErr(syscall.Kill(pid, 0)), "nil")
	if msg := untouched(pid, "/bin/sleep"); msg != "" {
		bad = append(bad, "newcomer touched: "+msg)
	}
	expect("newcomer Alive", fmt.Sprint(nh.Alive()), "true")
	// Its end tells which signal reached it first: ours, SIGALRM, if none
	// of the old handle's TERM, KILL or USR1 did.
	expect("newcomer Signal(ALRM)", proofErr(nh.Signal(syscall.SIGALRM)), "nil")
	expect("newcomer Cmd.Wait", proofErr(proofCmdWait(ctx, nc)), "ExitError(signal: alarm clock)")
	if len(bad) > 0 {
		return fmt.Sprintf("pid %d (%s mode): %v", pid, rep.Mode, bad)
	}
	return ""
}

func TestProofPIDReuse(t *testing.T) {
	trials := 1000
	if testing.Short() {
		trials = 100
	}
	for _, mode := range []string{"pidfd", "pidfd-no-pidfs", "pid", "adopt", "wrap", "wrap-pid"} {
		t.Run(mode, func(t *testing.T) {
			if mode != "pid" && mode != "wrap-pid" {
				skipNoPidfd(t)
			}
			if mode == "pidfd-no-pidfs" && !kernel().Pidfs {
				t.Skip(`no pidfs on this kernel: the "pidfd" mode ran without it`)
			}
			start := time.Now()
			ctx, cancel := context.WithTimeout(context.Background(), proofTimeout)
			defer cancel()
			cmd := pexectest.CommandContext(ctx, "proof-reuse", mode, strconv.Itoa(trials))
			testhelper.Uses("proof-reuse") // used, even where InPIDNamespace skips
			// It skips where no PID namespace can be made: it needs
			// CAP_SYS_ADMIN (root, or a user namespace of one's own;
			// CI runs as root).
			pexectest.InPIDNamespace(t, cmd)
			var rep reuseReport
			testhelper.RunReportCmd(ctx, t, cmd, &rep)
			if rep.Setup != "" {
				t.Fatalf("helper setup: %s", rep.Setup)
			}
			if want := map[string]string{"pidfd-no-pidfs": "pidfd", "adopt": "adopt", "wrap": "pidfd", "wrap-pid": "pid"}[mode]; want == "" && rep.Mode != mode || want != "" && rep.Mode != want {
				t.Errorf("old handles were in %s mode, want %s", rep.Mode, mode)
			}
			if rep.Reused != trials {
				t.Errorf("PID reused in %d trials, want %d", rep.Reused, trials)
			}
			for _, f := range rep.Failures {
				t.Error(f)
			}
			if rep.Failed > len(rep.Failures) {
				t.Errorf("... %d failed trials in all", rep.Failed)
			}
			t.Logf("%s mode: %d trials, PID reused in %d, %d failed; %d abandoned because a runtime thread took the PID, %d forks redone; helper %v, test %v",
				mode, rep.Trials, rep.Reused, rep.Failed, rep.Abandoned, rep.Retries, rep.Elapsed, time.Since(start))
			if rep.Failed == 0 {
				t.Logf("proved on %s: %s", kernelRelease(), reuseProved(mode))
			}
		})
	}
}

// reuseProved says what a passing run of mode proved on this kernel.
func reuseProved(mode string) string {
	k := kernel()
	never := "no call on the old Handle reached the newcomer that got its PID"
	switch mode {
	case "pid":
		return never + " (PID mode: every call checks the child is unreaped first); KillTree ErrUnsupported, or ErrProcessDone once the group was found empty"
	case "wrap", "wrap-pid":
		return never + " (a Handle from Wrap of a command reaped by a direct Process.Wait)"
	case "adopt":
		if !k.Pidfs {
			return never + " (a Handle from FromProcess on the library's child); no pidfs: Identity and OpenID ErrUnsupported, never a Handle"
		}
		return never + " (a Handle from FromProcess on the library's child); OpenID and Identity.Open of the stale identity ErrProcessDone, the newcomer's own opens"
	}
	ids := "IDs from pidfs: the old one kept, the newcomer's different"
	if !k.Pidfs || mode == "pidfd-no-pidfs" {
		ids = "no pidfs IDs (ErrUnsupported): SameProcess(newcomer) false from liveness alone"
	}
	group := "KillTree ErrProcessDone (PIDFD_SIGNAL_PROCESS_GROUP through the reaped leader's pidfd)"
	if !k.GroupSignal {
		group = "KillTree ErrUnsupported (no PIDFD_SIGNAL_PROCESS_GROUP: the group ID is no longer known to be the group's), or ErrProcessDone once the group was found empty"
	}
	return never + "; " + ids + "; " + group
}

// adoptReuseTrial: a child that "a library" starts through os/exec is
// adopted with FromProcess and its Identity stored; the library reaps it,
// and its PID goes to a newcomer. The adopted Handle must answer for the
// old process, and neither OpenID nor the stored Identity may ever give a
// Handle to the newcomer, while kill(pid, 0) proves the PID was reused.
func adoptReuseTrial(rep *reuseReport) string {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	rep.Mode = "adopt"
	lib := exec.Command("/bin/false")
	lib.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := lib.Start(); err != nil {
		return "start old: " + err.Error()
	}
	pid := lib.Process.Pid
	h, err := pexec.FromProcess(lib.Process)
	if err != nil {
		lib.Wait()
		return "FromProcess: " + err.Error()
	}
	defer h.Close()
	ident, identErr := h.Identity()
	pidfs := kernel().Pidfs
	switch {
	case pidfs && identErr != nil:
		lib.Wait()
		return "Identity: " + identErr.Error()
	case !pidfs && !errors.Is(identErr, errors.ErrUnsupported):
		lib.Wait()
		return fmt.Sprintf("Identity without pidfs: %v, want errors.ErrUnsupported", identErr)
	case !pidfs:
		ident = pexec.Identity{Pid: pid, ID: 1} // what a state file might hold
	}
	if err := lib.Wait(); proofErr(err) != "ExitError(exit status 1)" {
		return "the library's Wait: " + proofErr(err)
	}
	nc, msg := newcomer(rep, pid)
	if nc == nil {
		return msg
	}
	rep.Reused++
	defer func() {
		if nc.ProcessState == nil {
			nc.Process.Kill()
			nc.Wait()
		}
	}()
	var bad []string
	expect := func(what, got, want string) {
		if got != want {
			bad = append(bad, fmt.Sprintf("%s: got %s, want %s", what, got, want))
		}
	}
	expect("Signal(TERM)", proofErr(h.Signal(syscall.SIGTERM)), "ErrProcessDone")
	expect("Alive", fmt.Sprint(h.Alive()), "false")
	st, err := h.WaitContext(ctx)
	if err == nil {
		expect("Wait", proofWait(st, err), "exit status 1 [exited=true code=1 success=false signaled=false sig=0]")
	} else {
		expect("Wait", proofErr(err), "ErrStatusUnavailable")
	}
	for what, open := range map[string]func() (*pexec.Handle, error){
		"OpenID(stale)":        func() (*pexec.Handle, error) { return pexec.OpenID(ident.Pid, ident.ID) },
		"Identity.Open(stale)": ident.Open,
	} {
		g, err := open()
		// Without pidfs OpenID cannot tell any process from another.
		expect(what, proofErr(err), map[bool]string{true: "ErrProcessDone", false: "ErrUnsupported"}[pidfs])
		if g != nil {
			bad = append(bad, fmt.Sprintf("%s gave a Handle to PID %d, the newcomer", what, g.Pid()))
			g.Close()
		}
	}
	// The newcomer's own identity opens it: OpenID is not refusing blindly.
	if nid, err := nc.Handle().Identity(); !pidfs {
		expect("newcomer Identity", proofErr(err), "ErrUnsupported")
	} else if err != nil {
		bad = append(bad, "newcomer Identity: "+err.Error())
	} else if g, err := nid.Open(); err != nil {
		bad = append(bad, "OpenID(newcomer): "+err.Error())
	} else {
		g.Close()
	}
	expect("kill(pid, 0)", proofErr(syscall.Kill(pid, 0)), "nil")
	if msg := untouched(pid, "/bin/sleep"); msg != "" {
		bad = append(bad, "newcomer touched: "+msg)
	}
	if len(bad) > 0 {
		return fmt.Sprintf("pid %d (adopted): %v", pid, bad)
	}
	return ""
}

// wrapReuseTrial (issue #17 item 2): a command that other code started and
// reaped with a direct Process.Wait is wrapped afterwards; its PID goes to
// a newcomer. The Wrap'd Handle must answer for the old process and leave
// the newcomer alone, in both modes.
func wrapReuseTrial(rep *reuseReport) string {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	lib := exec.Command("/bin/false")
	lib.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := lib.Start(); err != nil {
		return "start old: " + err.Error()
	}
	pid := lib.Process.Pid
	if _, err := lib.Process.Wait(); err != nil {
		return "Process.Wait: " + err.Error()
	}
	nc, msg := newcomer(rep, pid)
	if nc == nil {
		return msg
	}
	rep.Reused++
	defer func() {
		if nc.ProcessState == nil {
			nc.Process.Kill()
			nc.Wait()
		}
	}()
	h := pexec.Wrap(lib).Handle()
	rep.Mode = h.Mode().String()
	var bad []string
	expect := func(what, got string, want ...string) {
		for _, w := range want {
			if got == w {
				return
			}
		}
		bad = append(bad, fmt.Sprintf("%s: got %s, want %s", what, got, want))
	}
	expect("Alive", fmt.Sprint(h.Alive()), "false")
	expect("Signal(TERM)", proofErr(h.Signal(syscall.SIGTERM)), "ErrProcessDone")
	expect("Kill", proofErr(h.Kill()), "ErrProcessDone")
	expect("SignalGroup(USR1)", proofErr(h.SignalGroup(syscall.SIGUSR1)), "ErrProcessDone")
	_, err := h.WaitContext(ctx)
	expect("Wait", proofErr(err), "ErrProcessDone", "ReapedError(<nil status>)")
	_, err = h.Stop(ctx, time.Millisecond)
	expect("Stop", proofErr(err), "ErrProcessDone", "ReapedError(<nil status>)")
	expect("kill(pid, 0)", proofErr(syscall.Kill(pid, 0)), "nil")
	if msg := untouched(pid, "/bin/sleep"); msg != "" {
		bad = append(bad, "newcomer touched: "+msg)
	}
	if len(bad) > 0 {
		return fmt.Sprintf("pid %d (wrap, %s mode): %v", pid, rep.Mode, bad)
	}
	return ""
}
