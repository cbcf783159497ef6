//go:build linux || windows

package pexec_test

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/pexec-dev/pexec/internal/testhelper"
	"github.com/pexec-dev/pexec/pexec"
	"github.com/pexec-dev/pexec/pexectest"
)

// dieTimeout bounds each wait for a process to die.
const dieTimeout = 30 * time.Second

func init() {
	// die-parent [die]: starts helper "grandchild" (with Cmd.DieWithParent
	// if asked), prints its PID and its grandchild's, then exits when a
	// line arrives on stdin, leaving both behind.
	testhelper.Register("die-parent", func(args []string) int {
		c := pexectest.Command("grandchild")
		c.DieWithParent = len(args) > 0 && args[0] == "die"
		out, err := c.StdoutPipe()
		if err == nil {
			err = c.Start()
		}
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		line, err := bufio.NewReader(out).ReadString('\n')
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		fmt.Println(c.Process.Pid, strings.TrimSpace(line))
		bufio.NewReader(os.Stdin).ReadString('\n')
		return 0
	})
}

// Cmd.DieWithParent: a child that outlives its parent by default (as with
// os/exec) dies with it when asked; on Windows its whole tree does (the
// job's KILL_ON_JOB_CLOSE), on Linux the child alone (Pdeathsig), its
// grandchild living on, as documented.
func TestDieWithParent(t *testing.T) {
	if runtime.GOOS == "linux" && !pexec.Supported() {
		t.Skip("needs pexec.Open on processes that are not children (pidfds)")
	}
	tests := []struct {
		name                  string
		die                   bool
		childDies, grandchild bool
	}{
		{"default: both outlive the parent", false, false, false},
		{"DieWithParent", true, true, runtime.GOOS == "windows"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			args := []string{}
			if tc.die {
				args = append(args, "die")
			}
			parent := pexectest.Command("die-parent", args...)
			parent.Tree = pexec.TreeNone
			in, err := parent.StdinPipe()
			if err != nil {
				t.Fatal(err)
			}
			out, err := parent.StdoutPipe()
			if err != nil {
				t.Fatal(err)
			}
			if err := parent.Start(); err != nil {
				t.Fatal(err)
			}
			line, err := bufio.NewReader(out).ReadString('\n')
			f := strings.Fields(line)
			if err != nil || len(f) != 2 {
				parent.Process.Kill()
				parent.Wait()
				t.Fatalf("parent: %q, %v; want two PIDs", line, err)
			}
			var hs [2]*pexec.Handle
			for i, s := range f {
				pid, _ := strconv.Atoi(s)
				if hs[i], err = pexec.Open(pid); err != nil {
					t.Fatalf("Open(%d): %v", pid, err)
				}
				h := hs[i]
				t.Cleanup(func() {
					h.Kill()
					select {
					case <-h.Done():
					case <-time.After(dieTimeout):
						t.Errorf("pid %d: not gone %v after Kill", h.Pid(), dieTimeout)
					}
					h.Close()
				})
			}
			fmt.Fprintln(in)
			if err := parent.Wait(); err != nil {
				t.Fatalf("parent: %v", err)
			}
			// What dies, dies by the parent's exit: wait for it. What
			// lives has not been signalled: it is alive now.
			alive := func(h *pexec.Handle, dies bool) bool {
				if !dies {
					return h.Alive()
				}
				ctx, cancel := context.WithTimeout(context.Background(), dieTimeout)
				defer cancel()
				_, err := h.WaitContext(ctx)
				return err != nil && ctx.Err() != nil
			}
			got := []bool{alive(hs[0], tc.childDies), alive(hs[1], tc.grandchild)}
			want := []bool{!tc.childDies, !tc.grandchild}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("child, grandchild alive after the parent exited: (-want +got):\n%s", diff)
			}
		})
	}
}
