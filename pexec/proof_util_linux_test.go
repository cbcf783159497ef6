package pexec_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime/debug"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/pexec-dev/pexec/pexec"
)

// Shared by the proof_*_test.go files: outcome wording, deadlines and /proc
// readers. Outcomes are strings so that they compare with cmp.Diff and
// travel as JSON from helper processes.

// proofTimeout bounds every proof test body that could block.
const proofTimeout = 2 * time.Minute

// proofErr names the sentinel an error matches, for outcome lines.
func proofErr(err error) string {
	var ee *exec.ExitError
	var re *pexec.ReapedError
	switch {
	case err == nil:
		return "nil"
	case errors.As(err, &re):
		return "ReapedError(" + proofStatus(re.Status) + ")"
	case errors.As(err, &ee):
		return "ExitError(" + ee.String() + ")"
	case errors.Is(err, os.ErrProcessDone):
		return "ErrProcessDone"
	case errors.Is(err, os.ErrClosed):
		return "ErrClosed"
	case errors.Is(err, context.DeadlineExceeded):
		return "DeadlineExceeded"
	case errors.Is(err, context.Canceled):
		return "Canceled"
	case errors.Is(err, pexec.ErrStatusUnavailable):
		return "ErrStatusUnavailable"
	case errors.Is(err, errors.ErrUnsupported):
		return "ErrUnsupported"
	case errors.Is(err, os.ErrInvalid):
		return "ErrInvalid"
	case errors.Is(err, syscall.ECHILD):
		return "ECHILD"
	case errors.Is(err, syscall.EINVAL):
		return "EINVAL"
	case errors.Is(err, os.ErrPermission):
		return "ErrPermission"
	}
	return "other(" + err.Error() + ")"
}

// proofStatus describes a Status by everything it reports.
func proofStatus(st *pexec.Status) string {
	if st == nil {
		return "<nil status>"
	}
	return fmt.Sprintf("%s [exited=%v code=%d success=%v signaled=%v sig=%d]",
		st, st.Exited(), st.ExitCode(), st.Success(), st.Signaled(), int(st.Signal()))
}

// proofWait describes a Handle.Wait result.
func proofWait(st *pexec.Status, err error) string {
	if err != nil {
		return proofErr(err)
	}
	return proofStatus(st)
}

// proofCmdWait runs c.Wait, giving up (and killing the child) when ctx is
// done first, so that a hang is reported instead of stalling the test.
func proofCmdWait(ctx context.Context, c *pexec.Cmd) error {
	done := make(chan error, 1)
	go func() { done <- c.Wait() }()
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
		c.Process.Kill()
		return fmt.Errorf("Cmd.Wait hung: %w", ctx.Err())
	}
}

// proofDeadline runs fn and fails t if fn panics or has not returned
// within d: bad input must never panic nor hang.
func proofDeadline(t *testing.T, d time.Duration, fn func()) {
	t.Helper()
	done := make(chan any, 1)
	go func() {
		defer func() {
			if p := recover(); p != nil {
				done <- fmt.Sprintf("panic: %v\n%s", p, debug.Stack())
				return
			}
			done <- nil
		}()
		fn()
	}()
	select {
	case p := <-done:
		if p != nil {
			t.Fatal(p)
		}
	case <-time.After(d):
		t.Fatalf("did not return within %v", d)
	}
}

// proofFDs lists the open descriptors of process pid ("self" for the
// caller) as number -> link target.
func proofFDs(pid string) (map[int]string, error) {
	dir := "/proc/" + pid + "/fd"
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	out := make(map[int]string, len(ents))
	for _, e := range ents {
		n, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		target, err := os.Readlink(dir + "/" + e.Name())
		if err != nil {
			continue // closed since ReadDir (our own directory descriptor)
		}
		out[n] = target
	}
	return out, nil
}

// isPidfdLink reports whether a /proc/<pid>/fd link target is a pidfd
// ("anon_inode:[pidfd]", or "pidfd:[N]" on pidfs kernels that name it).
func isPidfdLink(target string) bool { return strings.Contains(target, "pidfd") }

// proofProcStatus reads the named fields of /proc/<pid>/status.
func proofProcStatus(pid int, keys ...string) (map[string]string, error) {
	f, err := os.Open("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		return nil, err
	}
	defer f.Close()
	want := map[string]bool{}
	for _, k := range keys {
		want[k] = true
	}
	out := map[string]string{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ":")
		if ok && want[k] {
			out[k] = strings.TrimSpace(v)
		}
	}
	return out, sc.Err()
}

// awaitExec waits until process pid, just started, runs exe: Start returns
// once the child has closed its close-on-exec descriptors in execve, and
// on Linux 6.1 /proc can still show the parent's program for a moment
// after that (its exe, command line and flags). It returns "" or why not.
func awaitExec(pid int, exe string) string {
	if want, err := filepath.EvalSymlinks(exe); err == nil {
		exe = want
	}
	var got string
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(time.Millisecond) {
		var err error
		if got, err = os.Readlink("/proc/" + strconv.Itoa(pid) + "/exe"); err != nil {
			return err.Error()
		}
		if got == exe {
			return ""
		}
	}
	return fmt.Sprintf("process %d still runs %s, not %s, 10 s after its Start", pid, got, exe)
}

// untouched checks, from /proc, that process pid runs the program exe, is
// running (not a zombie) and has no signal pending: a signal aimed at it
// would show in SigPnd or ShdPnd until delivered, and a fatal one would
// have ended it (SIGURG excepted, see below). It returns "" when all is well and a description
// otherwise. (The exe link is set early in execve, before the exec is known
// to have succeeded; the Name line only after, so it is not checked.)
func untouched(pid int, exe string) string {
	if want, err := filepath.EvalSymlinks(exe); err == nil {
		exe = want
	}
	if msg := awaitExec(pid, exe); msg != "" {
		return msg
	}
	got, err := os.Readlink("/proc/" + strconv.Itoa(pid) + "/exe")
	if err != nil {
		return err.Error()
	}
	st, err := proofProcStatus(pid, "State", "SigPnd", "ShdPnd")
	if err != nil {
		return err.Error()
	}
	// A Go child's runtime sends SIGURG to its own threads to preempt
	// goroutines: that one may be pending any time.
	pending := func(key string) bool {
		mask, err := strconv.ParseUint(st[key], 16, 64)
		return err != nil || mask&^(1<<(uint(syscall.SIGURG)-1)) != 0
	}
	if got != exe || st["State"] == "" || st["State"][0] == 'Z' || st["State"][0] == 'X' ||
		pending("SigPnd") || pending("ShdPnd") {
		return fmt.Sprintf("process %d: exe %s, %v", pid, got, st)
	}
	return ""
}
