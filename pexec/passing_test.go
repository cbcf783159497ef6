//go:build linux

package pexec_test

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"golang.org/x/sys/unix"

	"github.com/pexec-dev/pexec/internal/testhelper"
	"github.com/pexec-dev/pexec/pexec"
	"github.com/pexec-dev/pexec/pexectest"
)

func init() {
	// recv-handle: receives a pidfd over the Unix socket on descriptor 3,
	// builds a Handle with FromFile, prints "pid PID", kills the process,
	// prints "killed" once it has exited, then, after a line on stdin (the
	// process's parent has reaped it by then), prints "status STATUS".
	testhelper.Register("recv-handle", func(args []string) int {
		fail := func(err error) int { fmt.Println("error", err); return 1 }
		sock, err := net.FileConn(os.NewFile(3, "socket"))
		if err != nil {
			return fail(err)
		}
		conn := sock.(*net.UnixConn)
		conn.SetDeadline(time.Now().Add(extraTimeout))
		oob := make([]byte, unix.CmsgSpace(4))
		_, oobn, _, _, err := conn.ReadMsgUnix(make([]byte, 1), oob)
		if err != nil {
			return fail(err)
		}
		msgs, err := unix.ParseSocketControlMessage(oob[:oobn])
		if err != nil || len(msgs) != 1 {
			return fail(fmt.Errorf("control messages %v: %v", msgs, err))
		}
		fds, err := unix.ParseUnixRights(&msgs[0])
		if err != nil || len(fds) != 1 {
			return fail(fmt.Errorf("rights %v: %v", fds, err))
		}
		f := os.NewFile(uintptr(fds[0]), "received pidfd")
		h, err := pexec.FromFile(f)
		f.Close()
		if err != nil {
			return fail(err)
		}
		fmt.Println("pid", h.Pid())
		if err := h.Kill(); err != nil {
			return fail(err)
		}
		select {
		case <-h.Done():
			fmt.Println("killed")
		case <-time.After(extraTimeout):
			return fail(fmt.Errorf("process %d did not die", h.Pid()))
		}
		if _, err := bufio.NewReader(os.Stdin).ReadString('\n'); err != nil {
			return fail(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), extraTimeout)
		defer cancel()
		st, err := h.WaitContext(ctx)
		if err != nil {
			fmt.Println("status", errIs(err))
			return 0
		}
		fmt.Println("status", st)
		return 0
	})
	// getfd-parent: prints "result SENTINEL MESSAGE" for GetFD(0) on its
	// parent.
	testhelper.Register("getfd-parent", func(args []string) int {
		h, err := pexec.Parent()
		if err != nil {
			fmt.Println("error", err)
			return 1
		}
		f, err := h.GetFD(0)
		if err == nil {
			f.Close()
		}
		fmt.Println("result", errIs(err), err)
		return 0
	})
}

// TestPassHandle passes a Handle over a Unix socket (SCM_RIGHTS) to a second
// process, which kills the target and waits for it.
func TestPassHandle(t *testing.T) {
	skipNoPidfd(t)
	target := startSleep(t)
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	ours, theirs := os.NewFile(uintptr(fds[0]), "ours"), os.NewFile(uintptr(fds[1]), "theirs")
	defer ours.Close()
	sock, err := net.FileConn(ours)
	if err != nil {
		t.Fatal(err)
	}
	defer sock.Close()
	stdin, goAhead, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer goAhead.Close()
	recv := pexectest.Command("recv-handle")
	recv.ExtraFiles = []*os.File{theirs}
	recv.Stdin = stdin
	p := startLined(t, recv)
	theirs.Close()
	stdin.Close()

	f, err := target.Handle().File()
	if err != nil {
		t.Fatal(err)
	}
	rc, err := f.SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	var werr error
	if err := rc.Control(func(fd uintptr) {
		sock.SetWriteDeadline(time.Now().Add(extraTimeout))
		_, _, werr = sock.(*net.UnixConn).WriteMsgUnix([]byte{0}, unix.UnixRights(int(fd)), nil)
	}); err != nil || werr != nil {
		t.Fatalf("sending the pidfd: %v %v", err, werr)
	}
	f.Close()

	got := []string{p.line(), p.line()}
	want := []string{"pid " + strconv.Itoa(target.Process.Pid), "killed"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Fatalf("receiver's output (-want +got):\n%s", diff)
	}
	err = target.wait()
	if diff := cmp.Diff("signal: killed", fmt.Sprint(err)); diff != "" {
		t.Errorf("target's Cmd.Wait (-want +got):\n%s", diff)
	}
	if _, err := goAhead.Write([]byte("\n")); err != nil {
		t.Fatal(err)
	}
	wantStatus := "status signal: killed"
	if !pidfdInfoExit(t) {
		wantStatus = "status ErrStatusUnavailable"
	}
	if diff := cmp.Diff(wantStatus, p.line()); diff != "" {
		t.Errorf("receiver's Handle.Wait (-want +got):\n%s", diff)
	}
	if err := p.wait(); err != nil {
		t.Errorf("receiver: %v", err)
	}
}

func TestFileFromFile(t *testing.T) {
	skipNoPidfd(t)
	type observed struct {
		Err      string
		Pid      int
		Same     bool   // SameProcess with the source Handle
		SameErr  string // and its error
		Alive    bool
		Nonblock bool // the file's O_NONBLOCK after FromFile
	}
	nonblock := func(t *testing.T, f *os.File) bool {
		rc, err := f.SyscallConn()
		if err != nil {
			t.Fatal(err)
		}
		var fl int
		rc.Control(func(fd uintptr) { fl, _ = unix.FcntlInt(fd, unix.F_GETFL, 0) })
		return fl&unix.O_NONBLOCK != 0
	}
	// pidfdFile opens a pidfd with pidfd_open flags, outside pexec.
	pidfdFile := func(t *testing.T, pid, flags int) *os.File {
		fd, err := unix.PidfdOpen(pid, flags)
		if err != nil {
			t.Fatal(err)
		}
		f := os.NewFile(uintptr(fd), "pidfd")
		t.Cleanup(func() { f.Close() })
		return f
	}
	fileOf := func(t *testing.T, h *pexec.Handle) *os.File {
		f, err := h.File()
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { f.Close() })
		return f
	}
	tests := []struct {
		name string
		// file returns the file to pass to FromFile and the Handle it is
		// expected to match, if any.
		file    func(t *testing.T) (*os.File, *pexec.Handle)
		pidMode bool
		want    func(src *pexec.Handle) observed
	}{
		{
			name: "child",
			file: func(t *testing.T) (*os.File, *pexec.Handle) {
				h := startSleep(t).Handle()
				return fileOf(t, h), h
			},
			want: func(src *pexec.Handle) observed {
				return observed{Err: "<nil>", Pid: src.Pid(), Same: true, SameErr: "<nil>", Alive: true}
			},
		},
		{
			name: "non-child",
			file: func(t *testing.T) (*os.File, *pexec.Handle) {
				pid, _ := grandchild(t)
				h := mustOpen(t, pid)
				return fileOf(t, h), h
			},
			want: func(src *pexec.Handle) observed {
				return observed{Err: "<nil>", Pid: src.Pid(), Same: true, SameErr: "<nil>", Alive: true}
			},
		},
		{
			name: "self, nonblocking pidfd",
			file: func(t *testing.T) (*os.File, *pexec.Handle) {
				return pidfdFile(t, os.Getpid(), unix.PIDFD_NONBLOCK), mustOpen(t, os.Getpid())
			},
			want: func(src *pexec.Handle) observed {
				return observed{Err: "<nil>", Pid: os.Getpid(), Same: true, SameErr: "<nil>", Alive: true, Nonblock: true}
			},
		},
		{
			name: "zombie",
			file: func(t *testing.T) (*os.File, *pexec.Handle) {
				h := exitedChild(t).Handle()
				return fileOf(t, h), h
			},
			want: func(src *pexec.Handle) observed {
				if !kernel().Pidfs {
					// Both have exited: only pidfs IDs (6.9) could tell.
					return observed{Err: "<nil>", Pid: src.Pid(), SameErr: "ErrUnsupported"}
				}
				return observed{Err: "<nil>", Pid: src.Pid(), Same: true, SameErr: "<nil>"}
			},
		},
		{
			name: "reaped",
			file: func(t *testing.T) (*os.File, *pexec.Handle) {
				c := exitedChild(t)
				f := fileOf(t, c.Handle())
				waitCmd(t, c)
				return f, nil
			},
			want: func(*pexec.Handle) observed { return observed{Err: "ErrProcessDone"} },
		},
		{
			name: "nil",
			file: func(t *testing.T) (*os.File, *pexec.Handle) { return nil, nil },
			want: func(*pexec.Handle) observed { return observed{Err: "ErrInvalid"} },
		},
		{
			name: "regular file",
			file: func(t *testing.T) (*os.File, *pexec.Handle) {
				f, err := os.Open("/proc/self/status")
				if err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() { f.Close() })
				return f, nil
			},
			want: func(*pexec.Handle) observed { return observed{Err: "ErrInvalid"} },
		},
		{
			name: "pipe",
			file: func(t *testing.T) (*os.File, *pexec.Handle) {
				r, w, err := os.Pipe()
				if err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() { r.Close(); w.Close() })
				return r, nil
			},
			want: func(*pexec.Handle) observed { return observed{Err: "ErrInvalid"} },
		},
		{
			name: "thread pidfd",
			file: func(t *testing.T) (*os.File, *pexec.Handle) {
				if !kernel().ThreadPidfd {
					t.Skip("no thread pidfds before Linux 6.9 (pidfd_open with PIDFD_THREAD is EINVAL): nothing for FromFile to refuse")
				}
				return pidfdFile(t, os.Getpid(), unix.PIDFD_THREAD), nil
			},
			want: func(*pexec.Handle) observed { return observed{Err: "ErrInvalid"} },
		},
		{
			name: "closed file",
			file: func(t *testing.T) (*os.File, *pexec.Handle) {
				f := pidfdFile(t, os.Getpid(), 0)
				f.Close()
				return f, nil
			},
			want: func(*pexec.Handle) observed { return observed{Err: "ErrClosed"} },
		},
		{
			name: "PID mode",
			file: func(t *testing.T) (*os.File, *pexec.Handle) {
				return pidfdFile(t, os.Getpid(), 0), nil
			},
			pidMode: true,
			want:    func(*pexec.Handle) observed { return observed{Err: "ErrUnsupported"} },
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f, src := tt.file(t)
			if tt.pidMode {
				defer pexec.SetForcePIDMode(true)()
			}
			h, err := pexec.FromFile(f)
			got := observed{Err: errIs(err)}
			if err == nil {
				defer h.Close()
				// The caller keeps f: closing it leaves h working.
				got.Nonblock = nonblock(t, f)
				if err := f.Close(); err != nil {
					t.Errorf("closing the caller's file: %v", err)
				}
				got.Pid, got.Alive = h.Pid(), h.Alive()
				got.Same, err = h.SameProcess(src)
				got.SameErr = errIs(err)
			}
			if diff := cmp.Diff(tt.want(src), got); diff != "" {
				t.Errorf("FromFile (-want +got):\n%s", diff)
			}
		})
	}
}

// TestFile checks Handle.File's own errors, and that the file outlives the
// Handle and can signal the process through a second Handle.
func TestFile(t *testing.T) {
	skipNoPidfd(t)
	t.Run("outlives the Handle", func(t *testing.T) {
		c := startSleep(t)
		h := mustOpen(t, c.Process.Pid)
		f, err := h.File()
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		h.Close()
		h2, err := pexec.FromFile(f)
		if err != nil {
			t.Fatal(err)
		}
		defer h2.Close()
		if err := h2.Kill(); err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff("signal: killed", fmt.Sprint(c.wait())); diff != "" {
			t.Errorf("Cmd.Wait after killing through the passed file (-want +got):\n%s", diff)
		}
	})
	for _, tt := range []struct {
		name    string
		handle  func(t *testing.T) *pexec.Handle
		pidMode bool
		want    string
	}{
		{"closed", func(t *testing.T) *pexec.Handle { h := mustOpen(t, os.Getpid()); h.Close(); return h }, false, "ErrClosed"},
		{"nil", func(t *testing.T) *pexec.Handle { return nil }, false, "ErrInvalid"},
		{"PID mode", func(t *testing.T) *pexec.Handle { return startSleep(t).Handle() }, true, "ErrUnsupported"},
		{"zombie", func(t *testing.T) *pexec.Handle { return exitedChild(t).Handle() }, false, "<nil>"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if tt.pidMode {
				defer pexec.SetForcePIDMode(true)()
			}
			f, err := tt.handle(t).File()
			if err == nil {
				f.Close()
			}
			if diff := cmp.Diff(tt.want, errIs(err)); diff != "" {
				t.Errorf("File (-want +got):\n%s", diff)
			}
		})
	}
}

func TestGetFD(t *testing.T) {
	skipNoPidfd(t)
	if f, err := mustOpen(t, os.Getpid()).GetFD(0); err == nil {
		f.Close()
	} else {
		skipUnsupported(t, err)
	}
	// sameFile reports whether f and g are the same open file.
	sameFile := func(t *testing.T, f, g *os.File) bool {
		a, err := f.Stat()
		if err != nil {
			t.Fatal(err)
		}
		b, err := g.Stat()
		if err != nil {
			t.Fatal(err)
		}
		return os.SameFile(a, b)
	}
	tmp := func(t *testing.T) *os.File {
		f, err := os.CreateTemp(t.TempDir(), "getfd")
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { f.Close() })
		return f
	}
	type observed struct {
		Err  string
		Same bool // the duplicate is the expected file
	}
	tests := []struct {
		name string
		// setup returns the Handle, the descriptor to get and the file it
		// should be.
		setup   func(t *testing.T) (h *pexec.Handle, fd int, want *os.File)
		pidMode bool
		want    observed
		wantMsg string
	}{
		{
			name: "child's stdout",
			setup: func(t *testing.T) (*pexec.Handle, int, *os.File) {
				out := tmp(t)
				c := pexectest.Command("sleep")
				c.Stdout = out
				pexectest.Start(t, c, noTree)
				return c.Handle(), 1, out
			},
			want: observed{Err: "<nil>", Same: true},
		},
		{
			name: "self",
			setup: func(t *testing.T) (*pexec.Handle, int, *os.File) {
				f := tmp(t)
				rc, err := f.SyscallConn()
				if err != nil {
					t.Fatal(err)
				}
				fd := -1
				rc.Control(func(d uintptr) { fd = int(d) })
				return mustOpen(t, os.Getpid()), fd, f
			},
			want: observed{Err: "<nil>", Same: true},
		},
		{
			name: "non-child's stdin",
			setup: func(t *testing.T) (*pexec.Handle, int, *os.File) {
				null, err := os.Open(os.DevNull)
				if err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() { null.Close() })
				pid, _ := grandchild(t)
				return mustOpen(t, pid), 0, null
			},
			want: observed{Err: "<nil>", Same: true},
		},
		{
			name: "descriptor not open",
			setup: func(t *testing.T) (*pexec.Handle, int, *os.File) {
				return startSleep(t).Handle(), 1000, nil
			},
			want:    observed{Err: "EBADF"},
			wantMsg: "no such open descriptor",
		},
		{
			name: "negative descriptor",
			setup: func(t *testing.T) (*pexec.Handle, int, *os.File) {
				return startSleep(t).Handle(), -1, nil
			},
			want: observed{Err: "ErrInvalid"},
		},
		{
			name: "zombie",
			setup: func(t *testing.T) (*pexec.Handle, int, *os.File) {
				return exitedChild(t).Handle(), 0, nil
			},
			want: observed{Err: "ErrProcessDone"},
		},
		{
			name: "reaped",
			setup: func(t *testing.T) (*pexec.Handle, int, *os.File) {
				c := exitedChild(t)
				h := mustOpen(t, c.Process.Pid)
				waitCmd(t, c)
				return h, 0, nil
			},
			want: observed{Err: "ErrProcessDone"},
		},
		{
			name: "closed",
			setup: func(t *testing.T) (*pexec.Handle, int, *os.File) {
				h := mustOpen(t, os.Getpid())
				h.Close()
				return h, 0, nil
			},
			want: observed{Err: "ErrClosed"},
		},
		{
			name: "PID mode",
			setup: func(t *testing.T) (*pexec.Handle, int, *os.File) {
				return startSleep(t).Handle(), 0, nil
			},
			pidMode: true,
			want:    observed{Err: "ErrUnsupported"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.pidMode {
				defer pexec.SetForcePIDMode(true)()
			}
			h, fd, wantFile := tt.setup(t)
			f, err := h.GetFD(fd)
			got := observed{Err: errIs(err)}
			if err == nil {
				got.Same = sameFile(t, f, wantFile)
				f.Close()
			} else if tt.wantMsg != "" && !strings.Contains(err.Error(), tt.wantMsg) {
				t.Errorf("GetFD(%d) error %q does not mention %q", fd, err, tt.wantMsg)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("GetFD(%d) (-want +got):\n%s", fd, diff)
			}
		})
	}
	t.Run("no ptrace permission", func(t *testing.T) {
		// An unprivileged helper asks for a descriptor of this (root)
		// process, its parent.
		p := startLined(t, helperAs(t, 65534, 65534, "getfd-parent"))
		got := p.field("result")
		sentinel, msg, _ := strings.Cut(got, " ")
		if diff := cmp.Diff("ErrPermission", sentinel); diff != "" {
			t.Errorf("GetFD without permission (-want +got):\n%s", diff)
		}
		if !strings.Contains(msg, "ptrace") {
			t.Errorf("GetFD error %q does not say that ptrace permission is needed", msg)
		}
		if err := p.wait(); err != nil {
			t.Errorf("helper: %v", err)
		}
	})
}
