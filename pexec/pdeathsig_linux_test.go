package pexec_test

import (
	"errors"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"syscall"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/pexec-dev/pexec/pexec"
	"golang.org/x/sys/unix"
)

// Issue #17 item 4: a Pdeathsig child must inherit exactly what the os/exec
// child would from the thread that starts it (pexec used to start it from
// its spawn threads, and a sandboxed helper started from a thread in a
// network namespace of its own landed on the host's), and its signal must
// follow the process, not a thread. Where the calling thread holds state of
// its own, the child is started from it, as os/exec does.

// threadProbe prints what a child inherited from its forking thread: its
// host name (UTS namespace), CPU affinity and nice value.
const threadProbe = `hostname; grep Cpus_allowed_list /proc/self/status; cut -d' ' -f19 /proc/self/stat`

// onChangedThread runs fn on a goroutine locked to a thread that change has
// altered, and lets the thread exit with the goroutine, so that the change
// never reaches another goroutine.
func onChangedThread(t *testing.T, change func() error, fn func()) {
	t.Helper()
	errc := make(chan error, 1)
	for {
		mainThread := make(chan bool, 1)
		go func() {
			runtime.LockOSThread() // never unlocked: the thread exits with the goroutine
			if unix.Gettid() == os.Getpid() {
				// Go never lets the main thread exit: try another.
				runtime.UnlockOSThread()
				mainThread <- true
				return
			}
			mainThread <- false
			if err := change(); err != nil {
				errc <- err
				return
			}
			fn()
			errc <- nil
		}()
		if !<-mainThread {
			break
		}
	}
	if err := <-errc; err != nil {
		t.Skip("cannot change the thread:", err)
	}
}

func TestPdeathsigInheritsThread(t *testing.T) {
	tests := []struct {
		name   string
		root   bool
		change func() error
		want   func(out string) string // "" if out shows the change
	}{
		{
			name: "UTS namespace",
			root: true,
			change: func() error {
				if err := unix.Unshare(unix.CLONE_NEWUTS); err != nil {
					return err
				}
				return unix.Sethostname([]byte("pexec-thread-uts"))
			},
			want: func(out string) string {
				if !strings.HasPrefix(out, "pexec-thread-uts\n") {
					return "host name not the thread's namespace's"
				}
				return ""
			},
		},
		{
			name: "CPU affinity",
			change: func() error {
				if runtime.NumCPU() < 2 {
					return errors.New("one CPU only")
				}
				var set unix.CPUSet
				set.Set(1)
				return unix.SchedSetaffinity(0, &set)
			},
			want: func(out string) string {
				if !strings.Contains(out, "Cpus_allowed_list:\t1\n") {
					return "affinity not the thread's (CPU 1)"
				}
				return ""
			},
		},
		{
			name:   "nice value",
			change: func() error { return unix.Setpriority(unix.PRIO_PROCESS, 0, 7) },
			want: func(out string) string {
				if !strings.HasSuffix(out, "\n7\n") {
					return "nice value not the thread's (7)"
				}
				return ""
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.root && os.Geteuid() != 0 {
				t.Skip("needs root (CAP_SYS_ADMIN) to unshare a namespace")
			}
			attr := func() *syscall.SysProcAttr { return &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL} }
			var osOut, pOut []byte
			var osErr, pErr error
			onChangedThread(t, tt.change, func() {
				oc := exec.Command("sh", "-c", threadProbe)
				oc.SysProcAttr = attr()
				osOut, osErr = oc.Output()
				pc := pexec.Command("sh", "-c", threadProbe)
				pc.SysProcAttr = attr()
				pOut, pErr = pc.Output()
			})
			if osErr != nil || pErr != nil {
				t.Fatalf("os/exec: %v; pexec: %v", osErr, pErr)
			}
			if diff := cmp.Diff(string(osOut), string(pOut)); diff != "" {
				t.Errorf("what the Pdeathsig child inherited from a changed thread (-os/exec +pexec):\n%s", diff)
			}
			if msg := tt.want(string(pOut)); msg != "" {
				t.Errorf("pexec child: %s:\n%s", msg, pOut)
			}
		})
	}
}

// TestPdeathsigChangedThreadFollowsThread: the other side of the rule. A
// Pdeathsig child started from a thread with state of its own is started
// from that thread, as by os/exec, so its signal comes when that thread
// exits (TestPdeathsigFollowsProcess shows a child from an ordinary thread
// outliving it).
func TestPdeathsigChangedThreadFollowsThread(t *testing.T) {
	ctx := waitTestContext(t)
	c := pexec.Command("sleep", "3600")
	// SIGTERM, told apart from the SIGKILL of waitBounded's deadline.
	c.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGTERM}
	var startErr error
	onChangedThread(t, func() error { return unix.Setpriority(unix.PRIO_PROCESS, 0, 7) }, func() {
		startErr = c.Start()
	})
	if startErr != nil {
		t.Fatal(startErr)
	}
	defer c.Handle().Kill()
	err := waitBounded(ctx, t, c.Wait, func() { c.Process.Kill() })
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ProcessState.Sys().(syscall.WaitStatus).Signal() != syscall.SIGTERM {
		t.Errorf("child of a changed thread that exited: %v; want killed by its Pdeathsig", err)
	}
}
