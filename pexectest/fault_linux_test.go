package pexectest_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/pexec-dev/pexec/internal/testhelper"
	"github.com/pexec-dev/pexec/pexec"
	"github.com/pexec-dev/pexec/pexectest"
)

func init() {
	pexectest.Register("in-jail", inJail)
	pexectest.Register("reuse", reuse)
	pexectest.Register("reaper", reaper)
}

// report writes v as JSON on stdout and returns exit code 0.
func report(v any) int {
	if err := json.NewEncoder(os.Stdout).Encode(v); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 3
	}
	return 0
}

// runReport runs helper cmd and decodes its report into v.
func runReport(t *testing.T, cmd *pexec.Cmd, v any) {
	t.Helper()
	o := pexectest.Run(testContext(t), cmd)
	if o.Exit != 0 || o.Signal != "" || o.Err != "" {
		t.Fatalf("%s: %v", cmd, o)
	}
	if err := json.Unmarshal([]byte(o.Stdout), v); err != nil {
		t.Fatalf("%s: report %q: %v; stderr:\n%s", cmd, o.Stdout, err, o.Stderr)
	}
}

// osExec returns an os/exec Cmd for helper name.
func osExec(name string, args ...string) *exec.Cmd {
	c := pexectest.Command(name, args...)
	e := exec.Command(c.Path, c.Args[1:]...)
	e.Env = c.Env
	return e
}

// jailReport is what the in-jail helper observed.
type jailReport struct {
	Probes     map[string]string // testhelper.ProbePidfdSyscalls
	Supported  bool              // pexec.Supported
	OSExec     string            // an os/exec child that exits with 3
	PexecStart string            // a pexec child's Start error, if any
	Mode       string            // its Handle's mode
	PID        int               // its PID
	Leak       string            // what VerifyNone said of it, left running
	StillChild bool              // whether it was still a child afterwards
}

func inJail([]string) int {
	rep := jailReport{Probes: testhelper.ProbePidfdSyscalls(), Supported: pexec.Supported()}
	rep.OSExec = fmt.Sprint(osExec("exit", "3").Run())
	c := pexectest.Command("sleep")
	if err := c.Start(); err != nil {
		rep.PexecStart = err.Error()
		return report(rep)
	}
	rep.Mode, rep.PID = c.Handle().Mode().String(), c.Process.Pid
	tb := new(fakeTB)
	pexectest.VerifyNone(tb, pexectest.MaxWait(0))
	rep.Leak = tb.errors()
	rep.StillChild = isChild(c.Process.Pid)
	return report(rep)
}

// Jailed helpers: the jail denies what each profile says, and in the
// no-pidfd jail pexec, Go's runtime and the leak check run in PID mode.
func TestJailed(t *testing.T) {
	outside := testhelper.ProbePidfdSyscalls()
	if diff := cmp.Diff(map[string]string{
		"pidfd_open": "ok", "pidfd_send_signal": "EBADF", "pidfd_getfd": "EBADF",
		"clone3": "EINVAL", "clone(CLONE_PIDFD)": "EINVAL", "clone": "EINVAL",
	}, outside); diff != "" {
		t.Skipf("pidfds do not all work outside the jail, so the jail proves nothing here (-want +got):\n%s", diff)
	}
	tests := []struct {
		jail   pexectest.Jail
		probes map[string]string
	}{
		{pexectest.JailNoPidfd, map[string]string{
			"pidfd_open": "ENOSYS", "pidfd_send_signal": "ENOSYS", "pidfd_getfd": "ENOSYS",
			"clone3": "ENOSYS", "clone(CLONE_PIDFD)": "ENOSYS", "clone": "EINVAL",
		}},
		{pexectest.JailNoPidfdSpawn, map[string]string{
			"pidfd_open": "ok", "pidfd_send_signal": "EBADF", "pidfd_getfd": "EBADF",
			"clone3": "ENOSYS", "clone(CLONE_PIDFD)": "ENOSYS", "clone": "EINVAL",
		}},
	}
	for _, tc := range tests {
		t.Run(tc.jail.String(), func(t *testing.T) {
			c := pexectest.Command("in-jail")
			pexectest.Jailed(t, c, tc.jail)
			var rep jailReport
			runReport(t, c, &rep)
			if diff := cmp.Diff(tc.probes, rep.Probes); diff != "" {
				t.Errorf("probes in the jail (-want +got):\n%s", diff)
			}
			if rep.OSExec != "exit status 3" {
				t.Errorf("os/exec in the jail: %s, want exit status 3", rep.OSExec)
			}
			if tc.jail == pexectest.JailNoPidfd {
				if rep.Supported || rep.Mode != pexec.ModePID.String() {
					t.Errorf("pexec in the jail: Supported %v, Handle.Mode %q; want false, %q", rep.Supported, rep.Mode, pexec.ModePID)
				}
				if rep.PexecStart != "" {
					t.Errorf("pexec Start in the jail: %s", rep.PexecStart)
				}
			}
			if rep.PexecStart != "" {
				// pexec's own business (its proof tests); logged here.
				t.Logf("pexec in the %s jail: Supported %v, Start: %s", tc.jail, rep.Supported, rep.PexecStart)
				return
			}
			if want := fmt.Sprintf(`pid %d, running: helper "sleep"`, rep.PID); !strings.Contains(rep.Leak, want) || rep.StillChild {
				t.Errorf("VerifyNone in the jail (%s mode): %q, child afterwards: %v; want %q, and no child", rep.Mode, rep.Leak, rep.StillChild, want)
			}
			t.Logf("%s jail: pexec Supported %v, Handle mode %s", tc.jail, rep.Supported, rep.Mode)
		})
	}
}

func TestJailedNotHelper(t *testing.T) {
	for name, fn := range map[string]func(testing.TB, *pexec.Cmd){
		"Jailed":            func(t testing.TB, c *pexec.Cmd) { pexectest.Jailed(t, c, pexectest.JailNoPidfd) },
		"InPIDNamespace":    pexectest.InPIDNamespace,
		"WithForeignReaper": func(t testing.TB, c *pexec.Cmd) { pexectest.WithForeignReaper(t, c, pexectest.ReaperWait4) },
	} {
		tb := &fakeTB{TB: t}
		tb.inGoroutine(func(tb testing.TB) { fn(tb, pexec.Command("/bin/true")) })
		if want := "pexectest: " + name + ": /bin/true is not a helper command"; !strings.Contains(tb.errors(), want) {
			t.Errorf("%s: errors %q, want %q", name, tb.errors(), want)
		}
		tb = &fakeTB{TB: t}
		tb.inGoroutine(func(tb testing.TB) { fn(tb, pexectest.Command("no-such-helper")) })
		if want := "pexectest: " + name + `: pexectest: unknown helper "no-such-helper"`; !strings.Contains(tb.errors(), want) || tb.skipped != "" {
			t.Errorf("%s: errors %q (skipped: %q), want %q", name, tb.errors(), tb.skipped, want)
		}
	}
}

// reuseReport is what the reuse helper observed.
type reuseReport struct {
	PID       int // the helper's own PID
	Trials    int
	Reused    int // strangers that got the PID of the old, reaped child
	Refused   int // old handles that refused to signal, with ErrProcessDone
	Reachable int // PIDs that kill(pid, 0) reached, in the stranger
	Untouched int // strangers alive after the old handle's SIGTERM, then killed by us
	Failures  []string
}

// reuse runs args[0] trials of forced PID reuse: a child exits and is
// reaped, a stranger gets its PID, and the child's old Handle is aimed at
// it.
func reuse(args []string) int {
	n, _ := strconv.Atoi(arg(args, 0))
	rep := reuseReport{PID: os.Getpid()}
	for range n {
		rep.Trials++
		old := pexectest.Command("exit", "0")
		if err := old.Start(); err != nil {
			rep.Failures = append(rep.Failures, err.Error())
			continue
		}
		h, pid := old.Handle(), old.Process.Pid
		old.Wait()
		stranger, err := pexectest.StartWithPID(pid, func() *pexec.Cmd { return pexectest.Command("sleep") })
		if err != nil {
			rep.Failures = append(rep.Failures, err.Error())
			continue
		}
		if stranger.Process.Pid == pid {
			rep.Reused++
		}
		if err := h.Signal(syscall.SIGTERM); errors.Is(err, os.ErrProcessDone) {
			rep.Refused++
		}
		if syscall.Kill(pid, 0) == nil {
			rep.Reachable++
		}
		alive := stranger.Handle().Alive()
		stranger.Handle().Kill()
		stranger.Wait()
		if alive && stranger.ProcessState.String() == "signal: killed" {
			rep.Untouched++
		}
	}
	return report(rep)
}

// Forced PID reuse in a helper's own PID namespace, counted.
func TestInPIDNamespaceReuse(t *testing.T) {
	const trials = 5
	c := pexectest.Command("reuse", strconv.Itoa(trials))
	pexectest.InPIDNamespace(t, c)
	var rep reuseReport
	runReport(t, c, &rep)
	want := reuseReport{PID: 1, Trials: trials, Reused: trials, Refused: trials, Reachable: trials, Untouched: trials}
	if diff := cmp.Diff(want, rep); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
}

// Outside a helper's PID namespace, SetNextPID and StartWithPID refuse.
func TestSetNextPIDOutside(t *testing.T) {
	if err := pexectest.SetNextPID(300); err == nil || !strings.Contains(err.Error(), "InPIDNamespace") {
		t.Errorf("SetNextPID: %v, want a refusal naming InPIDNamespace", err)
	}
	called := false
	c, err := pexectest.StartWithPID(300, func() *pexec.Cmd { called = true; return pexectest.Command("sleep") })
	if err == nil || called || c != nil {
		t.Errorf("StartWithPID: %v, %v (started: %v), want an error and nothing started", c, err, called)
	}
}

// reaperReport is what the reaper helper observed.
type reaperReport struct {
	Children int
	Lost     int // os/exec children whose Wait returned ECHILD
	Other    []string
	Pexec    []string // pexec: Handle.Wait status and Cmd.Wait error
}

// reaper starts args[0] children through os/exec and, once a foreign
// reaper has reaped each (it is gone from /proc), waits for it; then as
// many through pexec, whose results it only reports.
func reaper(args []string) int {
	n, _ := strconv.Atoi(arg(args, 0))
	rep := reaperReport{Children: n}
	for i := range n {
		c := osExec("exit", strconv.Itoa(i%4))
		if err := c.Start(); err != nil {
			rep.Other = append(rep.Other, err.Error())
			continue
		}
		deadline := time.Now().Add(5 * time.Second)
		for _, _, _, ok := procStat(c.Process.Pid); ok; _, _, _, ok = procStat(c.Process.Pid) {
			if time.Now().After(deadline) {
				break
			}
			time.Sleep(time.Millisecond) // until the foreign reaper has reaped it
		}
		if err := c.Wait(); errors.Is(err, syscall.ECHILD) {
			rep.Lost++
		} else {
			rep.Other = append(rep.Other, fmt.Sprintf("child %d: not reaped by the foreign reaper within 5s; Wait: %v", i, err))
			break
		}
	}
	for i := range n {
		c := pexectest.Command("exit", strconv.Itoa(i%4))
		if err := c.Start(); err != nil {
			rep.Pexec = append(rep.Pexec, err.Error())
			continue
		}
		st, err := c.Handle().Wait()
		rep.Pexec = append(rep.Pexec, fmt.Sprintf("%v %v / %v", st, err, c.Wait()))
	}
	return report(rep)
}

// A foreign reaper in a helper reaps its children behind its back: every
// os/exec child's Wait fails with ECHILD.
func TestWithForeignReaper(t *testing.T) {
	const n = 4
	for _, r := range []pexectest.Reaper{pexectest.ReaperWait4, pexectest.ReaperIgnoreSIGCHLD} {
		t.Run(r.String(), func(t *testing.T) {
			c := pexectest.Command("reaper", strconv.Itoa(n))
			pexectest.WithForeignReaper(t, c, r)
			var rep reaperReport
			runReport(t, c, &rep)
			if rep.Lost != n || len(rep.Other) > 0 {
				t.Errorf("os/exec: %d of %d Waits failed with ECHILD (others: %q); want all", rep.Lost, n, rep.Other)
			}
			t.Logf("pexec beside the %s reaper: %q", r, rep.Pexec)
		})
	}
}
