package pexec_test

import (
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/pexec-dev/pexec/internal/testhelper"
	"github.com/pexec-dev/pexec/pexectest"
	"golang.org/x/sys/unix"
)

func init() {
	testhelper.Register("stdio-modes", func([]string) int {
		var b strings.Builder
		for fd := range 3 {
			target, _ := os.Readlink("/proc/self/fd/" + strconv.Itoa(fd))
			flags, err := unix.FcntlInt(uintptr(fd), unix.F_GETFL, 0)
			mode := map[int]string{unix.O_RDONLY: "r", unix.O_WRONLY: "w", unix.O_RDWR: "rw"}[flags&unix.O_ACCMODE]
			if err != nil {
				mode = err.Error()
			}
			fmt.Fprintf(&b, "%d %s %s;", fd, target, mode)
		}
		// Report through a file: stdout itself is what is looked at.
		if err := os.WriteFile(os.Args[len(os.Args)-1], []byte(b.String()), 0o600); err != nil {
			return 1
		}
		return 0
	})
}

// TestNullStdio: with Stdin, Stdout and Stderr left nil, the child gets the
// null device, read-only as stdin and write-only as stdout and stderr,
// exactly as from os/exec, although pexec shares two descriptors of it
// between all children; and the Cmd's fields still read nil after Start.
func TestNullStdio(t *testing.T) {
	run := func(lib string) string {
		report := t.TempDir() + "/report"
		c := pexectest.Command("stdio-modes", report)
		switch lib {
		case "os/exec":
			oc := exec.Command(c.Path, c.Args[1:]...)
			oc.Env = c.Env
			if err := oc.Run(); err != nil {
				t.Fatal(err)
			}
		case "pexec":
			if err := c.Start(); err != nil {
				t.Fatal(err)
			}
			if c.Stdin != nil || c.Stdout != nil || c.Stderr != nil {
				t.Errorf("after Start: Stdin %v, Stdout %v, Stderr %v; want them left nil", c.Stdin, c.Stdout, c.Stderr)
			}
			if err := c.Wait(); err != nil {
				t.Fatal(err)
			}
		}
		b, err := os.ReadFile(report)
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	want := run("os/exec")
	if want != "0 /dev/null r;1 /dev/null w;2 /dev/null w;" {
		t.Fatalf("os/exec's child has %q: the test's expectation of os/exec is wrong", want)
	}
	for range 3 { // the shared descriptors, used again
		if diff := cmp.Diff(want, run("pexec")); diff != "" {
			t.Errorf("the child's stdio (-os/exec +pexec):\n%s", diff)
		}
	}
}
