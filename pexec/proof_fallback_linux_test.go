package pexec_test

import (
	"context"
	"fmt"
	"os/exec"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"golang.org/x/sys/unix"

	"github.com/pexec-dev/pexec/internal/testhelper"
	"github.com/pexec-dev/pexec/pexec"
	"github.com/pexec-dev/pexec/pexectest"
)

// Fallback for real: the behaviour table runs in a helper process jailed by
// a seccomp filter (pexectest.Jailed), in each of two profiles:
//
//   - pexectest.JailNoPidfd: pidfd_open, pidfd_send_signal, pidfd_getfd,
//     clone3 and clone(CLONE_PIDFD) fail with ENOSYS, as on a kernel
//     without pidfds;
//   - pexectest.JailNoPidfdSpawn: only clone3 and clone(CLONE_PIDFD) fail,
//     while pidfd_open and the rest work: what QEMU's user-mode emulation
//     does (.ci/qemu), and the case a probe of pidfd_open alone gets wrong.
//
// pexectest.Main installs the filter in the helper before the helper's
// function runs, so before Go's runtime or pexec probe for pidfds; both
// must then fall back to PIDs. The helper reports what it observed as JSON,
// and the test checks it was in PID mode for real.

func init() {
	testhelper.Register("proof-jail", proofJailHelper)
}

// jailReport is what the jailed helper observed.
type jailReport struct {
	Setup  string            // what went wrong in the helper, if anything
	Probes map[string]string // testhelper.ProbePidfdSyscalls in the jail
	// Supported is pexec.Supported() in the jail.
	Supported bool
	// Pidfds counts the pidfds the process held while an os/exec child
	// and a pexec child were running: 0 when neither Go's runtime nor
	// pexec holds one.
	Pidfds     int
	HandleMode string
	// PidfdOpenChild is what pidfd_open, then pidfd_send_signal with
	// signal 0, did on the running pexec child: "ok" where the jail lets
	// pidfd_open through, although pexec does not use it (it follows Go's
	// runtime, which has no pidfd without CLONE_PIDFD).
	PidfdOpenChild string
	// AutoTree is what a TreeAuto child got in the jail, what KillTree
	// did, and how the child ended.
	AutoTree string
	OSExec   string // os/exec's result for a child exiting with 3
	// Run is pexec's Cmd.Run for children that exit with 0 and with 3.
	Run []string
	// CallerPidFD is what Start does, for pexec and os/exec, when the
	// caller sets SysProcAttr.PidFD in the jail.
	CallerPidFD map[string]string
	Cases       map[string][]string
}

// proofJailHelper runs in the jail pexectest.Jailed set up for it.
func proofJailHelper(args []string) int {
	var rep jailReport
	rep.Probes = testhelper.ProbePidfdSyscalls()
	rep.Supported = pexec.Supported()

	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	oc := exec.CommandContext(ctx, "/bin/sleep", "1000")
	pc := pexec.CommandContext(ctx, "/bin/sleep", "1000")
	if err := oc.Start(); err != nil {
		rep.Setup = "os/exec start: " + err.Error()
		return testhelper.Report(rep)
	}
	if err := pc.Start(); err != nil {
		oc.Process.Kill()
		oc.Wait()
		rep.Setup = "pexec start: " + err.Error()
		return testhelper.Report(rep)
	}
	rep.HandleMode = pc.Handle().Mode().String()
	fds, err := proofFDs("self")
	if err != nil {
		rep.Setup = err.Error()
	}
	for _, target := range fds {
		if isPidfdLink(target) {
			rep.Pidfds++
		}
	}
	// Counted first: this pidfd is the test's, not Go's or pexec's.
	fd, err := unix.PidfdOpen(pc.Process.Pid, 0)
	if err == nil {
		err = unix.PidfdSendSignal(fd, 0, nil, 0)
		unix.Close(fd)
	}
	rep.PidfdOpenChild = testhelper.ErrnoName(err)
	oc.Process.Kill()
	oc.Wait()
	pc.Process.Kill()
	pc.Wait()
	if rep.Setup != "" {
		return testhelper.Report(rep)
	}
	rep.OSExec = fmt.Sprint(exec.Command("/bin/sh", "-c", "exit 3").Run())
	for _, code := range []string{"0", "3"} {
		rep.Run = append(rep.Run, proofErr(pexec.Command("/bin/sh", "-c", "exit "+code).Run()))
	}

	tc := pexec.Command("/bin/sleep", "1000")
	tc.Tree = pexec.TreeAuto
	if err := tc.Start(); err != nil {
		rep.AutoTree = "start: " + err.Error()
	} else {
		rep.AutoTree = tc.Handle().Tree().String() + " " + proofErr(tc.Handle().KillTree()) + " " + proofErr(tc.Wait())
	}

	rep.CallerPidFD = map[string]string{}
	pidfd := -2
	c := pexec.Command("/bin/true")
	c.SysProcAttr = &syscall.SysProcAttr{PidFD: &pidfd}
	rep.CallerPidFD["pexec"] = fmt.Sprintf("%s pidfd=%d", proofErr(c.Run()), pidfd)
	pidfd = -2
	e := exec.Command("/bin/true")
	e.SysProcAttr = &syscall.SysProcAttr{PidFD: &pidfd}
	rep.CallerPidFD["os/exec"] = fmt.Sprintf("%s pidfd=%d", proofErr(e.Run()), pidfd)

	rep.Cases = runProofTable()
	return testhelper.Report(rep)
}

// TestProofFallbackJailed runs the behaviour table where the pidfd syscalls
// fail (both jail profiles), and checks that each run really was in
// fallback mode.
func TestProofFallbackJailed(t *testing.T) {
	// The jail's effects mean something only against a process where
	// pidfds work.
	testhelper.RequirePidfd(t)
	// Outside the jail, the same probes tell the filter's work apart from
	// the kernel's own answers.
	if diff := cmp.Diff(map[string]string{
		"pidfd_open":         "ok",
		"pidfd_send_signal":  "EBADF",
		"pidfd_getfd":        "EBADF",
		"clone3":             "EINVAL",
		"clone(CLONE_PIDFD)": "EINVAL",
		"clone":              "EINVAL",
	}, testhelper.ProbePidfdSyscalls()); diff != "" {
		t.Fatalf("probes outside the jail (-want +got):\n%s", diff)
	}
	// Outside, the same measure counts the pidfds Go and pexec hold.
	oc := exec.Command("/bin/sleep", "1000")
	if err := oc.Start(); err != nil {
		t.Fatal(err)
	}
	fds, err := proofFDs("self")
	oc.Process.Kill()
	oc.Wait()
	if err != nil {
		t.Fatal(err)
	}
	outside := 0
	for _, target := range fds {
		if isPidfdLink(target) {
			outside++
		}
	}
	if outside == 0 {
		t.Fatal("outside the jail, Go's runtime holds no pidfd for a running os/exec child; the jail's pidfd count proves nothing")
	}

	for _, tc := range []struct {
		jail   pexectest.Jail
		probes map[string]string
		// pidfdOpen is what pidfd_open and pidfd_send_signal do on the
		// running child in the jail.
		pidfdOpen string
	}{
		{pexectest.JailNoPidfd, map[string]string{
			"pidfd_open":         "ENOSYS",
			"pidfd_send_signal":  "ENOSYS",
			"pidfd_getfd":        "ENOSYS",
			"clone3":             "ENOSYS",
			"clone(CLONE_PIDFD)": "ENOSYS",
			"clone":              "EINVAL",
		}, "ENOSYS"},
		// QEMU's case: pidfd_open works, clone gives no pidfd.
		{pexectest.JailNoPidfdSpawn, map[string]string{
			"pidfd_open":         "ok",
			"pidfd_send_signal":  "EBADF",
			"pidfd_getfd":        "EBADF",
			"clone3":             "ENOSYS",
			"clone(CLONE_PIDFD)": "ENOSYS",
			"clone":              "EINVAL",
		}, "ok"},
	} {
		t.Run(tc.jail.String(), func(t *testing.T) {
			start := time.Now()
			ctx, cancel := context.WithTimeout(context.Background(), proofTimeout)
			defer cancel()
			cmd := pexectest.CommandContext(ctx, "proof-jail")
			testhelper.Uses("proof-jail") // used, even where Jailed skips
			pexectest.Jailed(t, cmd, tc.jail)
			var rep jailReport
			testhelper.RunReportCmd(ctx, t, cmd, &rep)
			if rep.Setup != "" {
				t.Fatalf("jailed helper: %s", rep.Setup)
			}
			t.Run("really-fallback", func(t *testing.T) {
				if diff := cmp.Diff(tc.probes, rep.Probes); diff != "" {
					t.Errorf("probes in the jail (-want +got):\n%s", diff)
				}
				// Where pidfds are denied, so is clone3 (a filter cannot
				// read its flags): no cgroup tree, a process group.
				if want := "group nil ExitError(signal: killed)"; rep.AutoTree != want {
					t.Errorf("a TreeAuto child in the jail, KillTree, Wait: %s; want %s", rep.AutoTree, want)
				}
				if rep.PidfdOpenChild != tc.pidfdOpen {
					t.Errorf("pidfd_open and pidfd_send_signal(0) on the running child in the jail: %s, want %s", rep.PidfdOpenChild, tc.pidfdOpen)
				}
				if rep.Supported {
					t.Error("pexec.Supported() = true in the jail")
				}
				if rep.HandleMode != pexec.ModePID.String() {
					t.Errorf("Handle.Mode() = %s in the jail, want %s", rep.HandleMode, pexec.ModePID)
				}
				if rep.Pidfds != 0 {
					t.Errorf("the jailed process held %d pidfds with an os/exec and a pexec child running, want 0 (outside: %d)", rep.Pidfds, outside)
				}
				if rep.OSExec != "exit status 3" {
					t.Errorf("os/exec in the jail: %s, want exit status 3", rep.OSExec)
				}
				if diff := cmp.Diff([]string{"nil", "ExitError(exit status 3)"}, rep.Run); diff != "" {
					t.Errorf("pexec Cmd.Run of exit 0 and exit 3 in the jail (-want +got):\n%s", diff)
				}
				// A caller's own SysProcAttr.PidFD makes Go's runtime ask
				// for CLONE_PIDFD, which the jail refuses: pexec fails
				// exactly as os/exec does (it passes the caller's
				// attributes through).
				if rep.CallerPidFD["pexec"] != rep.CallerPidFD["os/exec"] {
					t.Errorf("caller PidFD in the jail: pexec %q, os/exec %q", rep.CallerPidFD["pexec"], rep.CallerPidFD["os/exec"])
				}
				t.Logf("%s jail: probes %v; pidfd_open on a child: %s; Supported=%v; Handle mode %s; pidfds held %d (outside %d); caller PidFD: %v",
					tc.jail, rep.Probes, rep.PidfdOpenChild, rep.Supported, rep.HandleMode, rep.Pidfds, outside, rep.CallerPidFD)
			})
			t.Run("table", func(t *testing.T) {
				checkProofTable(t, rep.Cases, pexec.ModePID)
			})
			t.Logf("%s jailed helper: %d cases in %v", tc.jail, len(rep.Cases), time.Since(start))
		})
	}
}
