package testhelper

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// signalsChildEnv makes the test binary, re-executed by
// TestDefaultChildSignals with SIGHUP, SIGINT and SIGQUIT ignored, report
// which of them a child of its own inherits ignored.
const signalsChildEnv = "TESTHELPER_SIGNALS_CHILD"

// TestDefaultChildSignals starts the test binary as nohup would (the three
// signals ignored), and reads which of them a child of it has ignored
// (SigIgn in /proc/<pid>/status), with and without DefaultChildSignals.
func TestDefaultChildSignals(t *testing.T) {
	if mode := os.Getenv(signalsChildEnv); mode != "" {
		if mode == "reset" {
			DefaultChildSignals()
		}
		fmt.Println(ignoredByChild())
		os.Exit(0)
	}
	for _, tc := range []struct {
		mode string
		want string
	}{
		{"reset", "[]"},
		{"keep", "[hangup interrupt]"}, // the Go runtime catches SIGQUIT itself
	} {
		t.Run(tc.mode, func(t *testing.T) {
			cmd := exec.Command("sh", "-c", `trap "" HUP INT QUIT; exec "$0" -test.run='^TestDefaultChildSignals$'`, os.Args[0])
			cmd.Env = append(os.Environ(), signalsChildEnv+"="+tc.mode, "GORACE=atexit_sleep_ms=0")
			out, err := cmd.Output()
			if err != nil {
				t.Fatalf("%v: %s", err, out)
			}
			if diff := cmp.Diff(tc.want, strings.TrimSpace(string(out))); diff != "" {
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
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", c.Process.Pid))
	if err != nil {
		return err.Error()
	}
	defer f.Close()
	s := bufio.NewScanner(f)
	for s.Scan() {
		hex, ok := strings.CutPrefix(s.Text(), "SigIgn:")
		if !ok {
			continue
		}
		mask, err := strconv.ParseUint(strings.TrimSpace(hex), 16, 64)
		if err != nil {
			return err.Error()
		}
		var names []string
		for _, sig := range []syscall.Signal{syscall.SIGHUP, syscall.SIGINT, syscall.SIGQUIT} {
			if mask&(1<<(sig-1)) != 0 {
				names = append(names, sig.String())
			}
		}
		return fmt.Sprint(names)
	}
	return "no SigIgn line"
}
