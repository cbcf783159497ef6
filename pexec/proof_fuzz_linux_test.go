package pexec_test

import (
	"context"
	"errors"
	"math"
	"os"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/pexec-dev/pexec/pexec"
	"github.com/pexec-dev/pexec/pexectest"
)

// Fuzz targets for the inputs that are numbers. Their seed corpus runs in
// every plain `go test`; CI fuzzes each briefly (see /work/notes/CI-fuzz.txt).

// FuzzOpen opens arbitrary PIDs: Open must return a Handle for exactly that
// PID or an error wrapping os.ErrInvalid (not a process ID) or
// os.ErrProcessDone (no such process), and nothing it returns may panic or
// hang. Only signal 0 is sent.
func FuzzOpen(f *testing.F) {
	for _, pid := range []int{-1, 0, 1, 2, os.Getpid(), os.Getppid(), math.MaxInt32, math.MinInt, math.MaxInt, 1 << 22, 1<<22 + 1} {
		f.Add(pid)
	}
	if !pexec.Supported() {
		f.Skip("Open needs pidfds")
	}
	f.Fuzz(func(t *testing.T, pid int) {
		proofDeadline(t, 10*time.Second, func() {
			h, err := pexec.Open(pid)
			if err != nil {
				if h != nil {
					t.Errorf("Open(%d) returned a Handle and %v", pid, err)
				}
				if !errors.Is(err, os.ErrInvalid) && !errors.Is(err, os.ErrProcessDone) {
					t.Errorf("Open(%d): %v, want an error wrapping os.ErrInvalid or os.ErrProcessDone", pid, err)
				}
				if pid <= 0 && !errors.Is(err, os.ErrInvalid) {
					t.Errorf("Open(%d): %v, want os.ErrInvalid", pid, err)
				}
				return
			}
			defer h.Close()
			if pid <= 0 || h.Pid() != pid || h.Mode() != pexec.ModePidFD {
				t.Errorf("Open(%d) = Handle for %d in mode %v", pid, h.Pid(), h.Mode())
			}
			h.Alive()
			if err := h.Signal(syscall.Signal(0)); err != nil && !errors.Is(err, os.ErrProcessDone) && !errors.Is(err, os.ErrPermission) {
				t.Errorf("Open(%d).Signal(0): %v", pid, err)
			}
			if _, err := h.Info(); err != nil && !errors.Is(err, os.ErrProcessDone) {
				t.Errorf("Open(%d).Info: %v", pid, err)
			}
			if _, err := h.ID(); err != nil && (kernel().Pidfs || !errors.Is(err, errors.ErrUnsupported)) {
				t.Errorf("Open(%d).ID: %v", pid, err) // ErrUnsupported only before pidfs (6.9)
			}
			if err := h.Close(); err != nil {
				t.Errorf("Close: %v", err)
			}
		})
	})
}

// maxSignal is the largest signal number the kernel accepts (_NSIG).
func maxSignal() int {
	if strings.HasPrefix(runtime.GOARCH, "mips") {
		return 128
	}
	return 64
}

// FuzzSignal sends arbitrary signal numbers, through Signal and
// SignalGroup, to a child that leads its own process group: numbers in
// [0, _NSIG] must be delivered (nil), all others refused with EINVAL, and
// none may panic, hang, or reach the child as another signal. A child that
// a real signal ended is replaced.
func FuzzSignal(f *testing.F) {
	seeds := []int{0, -1, 65, 1000, math.MaxInt32, math.MinInt32, 9, 15, 18, 19, 28, 32, 64}
	if strconv.IntSize == 64 {
		big := int64(1) << 32
		seeds = append(seeds, int(big), int(big)+9, int(-big)+15)
	}
	for _, s := range seeds {
		f.Add(s)
	}
	var c *pexec.Cmd
	reap := func() {
		if c != nil {
			c.Process.Kill()
			c.Wait()
			c = nil
		}
	}
	f.Cleanup(reap)
	f.Fuzz(func(t *testing.T, sig int) {
		proofDeadline(t, 10*time.Second, func() {
			if c == nil || !c.Handle().Alive() {
				reap()
				c = pexectest.Command("sleep")
				c.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
				if err := c.Start(); err != nil {
					t.Errorf("start: %v", err)
					c = nil
					return
				}
			}
			h := c.Handle()
			valid := sig >= 0 && sig <= maxSignal()
			for _, call := range []struct {
				name string
				fn   func(os.Signal) error
			}{{"Signal", h.Signal}, {"SignalGroup", h.SignalGroup}} {
				err := call.fn(syscall.Signal(sig))
				switch {
				case valid && err != nil && !errors.Is(err, os.ErrProcessDone):
					// ErrProcessDone: the first call's signal was fatal.
					t.Errorf("%s(%d): %v, want nil", call.name, sig, err)
				case !valid && !errors.Is(err, syscall.EINVAL):
					t.Errorf("%s(%d): %v, want EINVAL", call.name, sig, err)
				}
			}
			switch {
			case valid && sig != 0:
				// The signal may end or stop the child, a little later:
				// the next input gets a fresh one.
				reap()
			case !valid:
				// A refused number must not have reached the child as a
				// truncated one (1<<32 + 9 as SIGKILL).
				ctx, cancel := context.WithTimeout(context.Background(), 5*time.Millisecond)
				defer cancel()
				if st, err := h.WaitContext(ctx); err == nil {
					t.Errorf("signal %d refused, yet the child ended: %v", sig, st)
				}
				if msg := untouched(h.Pid(), c.Path); msg != "" {
					t.Errorf("signal %d refused, yet the child has: %s", sig, msg)
				}
			}
		})
	})
}

// FuzzStatus reads arbitrary status words as the pidfd exit record gives
// them: the Status must agree with syscall.WaitStatus and word itself as
// os.ProcessState does, and never panic.
func FuzzStatus(f *testing.F) {
	for _, w := range []int32{0, 1 << 8, 255 << 8, 9, 15, 0x80 | 6, 0x137f, 0xffff, -1, math.MinInt32, math.MaxInt32} {
		f.Add(w)
	}
	f.Fuzz(func(t *testing.T, word int32) {
		st := pexec.StatusFromWaitStatus(1234, word)
		ws := syscall.WaitStatus(word)
		s := st.String()
		if st.Pid() != 1234 || s == "" {
			t.Fatalf("word %#x: pid %d, String %q", word, st.Pid(), s)
		}
		if st.Exited() && st.Signaled() {
			t.Fatalf("word %#x: both exited and signaled", word)
		}
		if c := st.ExitCode(); c < -1 || c > 255 || st.Success() != (st.Exited() && c == 0) {
			t.Fatalf("word %#x: ExitCode %d, Success %v", word, c, st.Success())
		}
		switch {
		case ws.Exited():
			if !st.Exited() || st.ExitCode() != ws.ExitStatus() || s != "exit status "+strconv.Itoa(ws.ExitStatus()) {
				t.Fatalf("word %#x: %s (exited %v, code %d), want exit status %d", word, s, st.Exited(), st.ExitCode(), ws.ExitStatus())
			}
		case ws.Signaled():
			want := "signal: " + ws.Signal().String()
			if ws.CoreDump() {
				want += " (core dumped)"
			}
			if !st.Signaled() || st.Signal() != ws.Signal() || st.CoreDump() != ws.CoreDump() || st.ExitCode() != -1 || s != want {
				t.Fatalf("word %#x: %s (signal %d, core %v), want %s", word, s, st.Signal(), st.CoreDump(), want)
			}
		default:
			// Not a word a dead process can have (stopped, continued):
			// the Status must claim neither an exit nor a death by signal.
			if st.Exited() || st.ExitCode() != -1 || st.Signaled() || st.Signal() != 0 || st.CoreDump() {
				t.Fatalf("word %#x: %s, exited %v, signaled %v (%d)", word, s, st.Exited(), st.Signaled(), st.Signal())
			}
		}
	})
}
