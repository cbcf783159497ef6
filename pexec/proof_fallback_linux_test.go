package pexec_test

import (
	"context"
	"fmt"
	"os/exec"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/pexec-dev/pexec/internal/testhelper"
	"github.com/pexec-dev/pexec/pexec"
)

// Fallback for real: the behaviour table runs in a helper process jailed by
// a seccomp filter (testhelper.DenyPidfd) under which pidfd_open,
// pidfd_send_signal, pidfd_getfd, clone3 and clone(CLONE_PIDFD) fail with
// ENOSYS, as on a kernel without pidfds. The filter is installed first
// thing in the helper, before Go's runtime or pexec probe for pidfds, so
// both fall back to PIDs; the helper proves it and reports the table's
// observations as JSON.

func init() {
	testhelper.Register("proof-jail", proofJailHelper)
}

// jailReport is what the jailed helper observed.
type jailReport struct {
	Setup  string            // error installing the filter, if any
	Probes map[string]string // testhelper.ProbePidfdSyscalls in the jail
	// Supported is pexec.Supported() in the jail.
	Supported bool
	// Pidfds counts the pidfds the process held while an os/exec child
	// and a pexec child were running: 0 when neither Go's runtime nor
	// pexec holds one.
	Pidfds     int
	HandleMode string
	OSExec     string // os/exec's result for a child exiting with 3
	// CallerPidFD is what Start does, for pexec and os/exec, when the
	// caller sets SysProcAttr.PidFD in the jail.
	CallerPidFD map[string]string
	Cases       map[string][]string
}

func proofJailHelper(args []string) int {
	var rep jailReport
	if err := testhelper.DenyPidfd(); err != nil {
		rep.Setup = err.Error()
		return testhelper.Report(rep)
	}
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
		rep.Setup = "pexec start: " + err.Error()
		return testhelper.Report(rep)
	}
	rep.HandleMode = pc.Handle().Mode().String()
	fds, err := proofFDs("self")
	if err != nil {
		rep.Setup = err.Error()
		return testhelper.Report(rep)
	}
	for _, target := range fds {
		if isPidfdLink(target) {
			rep.Pidfds++
		}
	}
	oc.Process.Kill()
	oc.Wait()
	pc.Process.Kill()
	pc.Wait()
	rep.OSExec = fmt.Sprint(exec.Command("/bin/sh", "-c", "exit 3").Run())

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
// fail, and checks that the run really was in fallback mode.
func TestProofFallbackJailed(t *testing.T) {
	start := time.Now()
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

	ctx, cancel := context.WithTimeout(context.Background(), proofTimeout)
	defer cancel()
	var rep jailReport
	testhelper.RunReport(ctx, t, nil, &rep, "proof-jail")
	if rep.Setup != "" {
		t.Fatalf("jail setup: %s", rep.Setup)
	}
	t.Run("really-fallback", func(t *testing.T) {
		if diff := cmp.Diff(map[string]string{
			"pidfd_open":         "ENOSYS",
			"pidfd_send_signal":  "ENOSYS",
			"pidfd_getfd":        "ENOSYS",
			"clone3":             "ENOSYS",
			"clone(CLONE_PIDFD)": "ENOSYS",
			"clone":              "EINVAL",
		}, rep.Probes); diff != "" {
			t.Errorf("probes in the jail (-want +got):\n%s", diff)
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
		// A caller's own SysProcAttr.PidFD makes Go's runtime ask for
		// CLONE_PIDFD, which the jail refuses: pexec fails exactly as
		// os/exec does (it passes the caller's attributes through).
		if rep.CallerPidFD["pexec"] != rep.CallerPidFD["os/exec"] {
			t.Errorf("caller PidFD in the jail: pexec %q, os/exec %q", rep.CallerPidFD["pexec"], rep.CallerPidFD["os/exec"])
		}
		t.Logf("jail: probes %v; Supported=%v; Handle mode %s; pidfds held %d (outside %d); caller PidFD: %v",
			rep.Probes, rep.Supported, rep.HandleMode, rep.Pidfds, outside, rep.CallerPidFD)
	})
	t.Run("table", func(t *testing.T) {
		checkProofTable(t, rep.Cases, pexec.ModePID)
	})
	t.Logf("jailed helper: %d cases in %v", len(rep.Cases), time.Since(start))
}
