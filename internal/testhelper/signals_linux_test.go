package testhelper

import (
	"fmt"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/pexec-dev/pexec/internal/procfs"
)

// signalsChildEnv makes the test binary, re-executed by
// TestDefaultChildSignals with SIGHUP, SIGINT and SIGQUIT ignored, report
// which of them a child of its own inherits ignored.
const signalsChildEnv = "TESTHELPER_SIGNALS_CHILD"

// TestDefaultChildSignals starts the test binary as nohup would (the three
// signals ignored), and reads which of them a child of it has ignored
// (sigignore in /proc/<pid>/stat), with and without DefaultChildSignals:
// without, the child has what the binary has; with, none.
func TestDefaultChildSignals(t *testing.T) {
	if mode := os.Getenv(signalsChildEnv); mode != "" {
		self := ignoredIn(os.Getpid())
		if mode == "reset" {
			DefaultChildSignals()
		}
		fmt.Printf("%s\n%s\n", self, ignoredByChild())
		os.Exit(0)
	}
	for _, mode := range []string{"reset", "keep"} {
		t.Run(mode, func(t *testing.T) {
			cmd := exec.Command("sh", "-c", `trap "" HUP INT QUIT; exec "$0" -test.run='^TestDefaultChildSignals$'`, os.Args[0])
			cmd.Env = append(os.Environ(), signalsChildEnv+"="+mode, "GORACE=atexit_sleep_ms=0")
			out, err := cmd.Output()
			if err != nil {
				t.Fatalf("%v: %s", err, out)
			}
			self, child, _ := strings.Cut(strings.TrimSpace(string(out)), "\n")
			// The Go runtime catches SIGQUIT itself. Under QEMU user
			// mode the emulator keeps the guest's dispositions to itself
			// and the kernel shows none ignored: then only the reset
			// case says something.
			if self != "[hangup interrupt]" {
				t.Logf("the kernel shows %s ignored by the re-executed binary, not [hangup interrupt] (an emulator?)", self)
			}
			want := self
			if mode == "reset" {
				want = "[]"
			}
			if diff := cmp.Diff(want, child); diff != "" {
				t.Errorf("signals a child inherits ignored (-want +got):\n%s", diff)
			}
		})
	}
}

// ignoredByChild starts sleep and names the signals among SIGHUP, SIGINT
// and SIGQUIT that it has ignored.
func ignoredByChild() string {
	c := exec.Command("sleep", "60")
	if err := c.Start(); err != nil {
		return err.Error()
	}
	defer c.Wait()
	defer c.Process.Kill()
	return ignoredIn(c.Process.Pid)
}

// ignoredIn names the signals among SIGHUP, SIGINT and SIGQUIT that the
// kernel shows ignored by process pid.
func ignoredIn(pid int) string {
	st, err := procfs.ReadStat(pid)
	if err != nil {
		return err.Error()
	}
	var names []string
	for _, sig := range []syscall.Signal{syscall.SIGHUP, syscall.SIGINT, syscall.SIGQUIT} {
		if st.SigIgnore&(1<<(sig-1)) != 0 {
			names = append(names, sig.String())
		}
	}
	return fmt.Sprint(names)
}
