//go:build linux

package pexec_test

import (
	"errors"
	"fmt"
	"net"
	"os"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"golang.org/x/sys/unix"

	"github.com/pexec-dev/pexec/internal/testhelper"
	"github.com/pexec-dev/pexec/pexec"
	"github.com/pexec-dev/pexec/pexectest"
)

func init() {
	// dial addr [exit]: connects to the Unix socket addr, prints
	// "connected PID", then exits at once with "exit", or else waits until the
	// other end closes the connection.
	testhelper.Register("dial", func(args []string) int {
		c, err := net.Dial("unix", args[0])
		if err != nil {
			fmt.Println("error", err)
			return 1
		}
		fmt.Println("connected", os.Getpid())
		if len(args) > 1 && args[1] == "exit" {
			return 0
		}
		c.SetDeadline(time.Now().Add(extraTimeout))
		c.Read(make([]byte, 1))
		return 0
	})
}

var peerSockets atomic.Int64

// listenPeer listens on a new abstract Unix socket and returns it with its
// address.
func listenPeer(t *testing.T) (*net.UnixListener, string) {
	t.Helper()
	addr := "@pexec-test-" + strconv.Itoa(os.Getpid()) + "-" + strconv.FormatInt(peerSockets.Add(1), 10)
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: addr, Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	return ln, addr
}

// accept accepts one connection, with a deadline.
func accept(t *testing.T, ln *net.UnixListener) *net.UnixConn {
	t.Helper()
	ln.SetDeadline(time.Now().Add(extraTimeout))
	c, err := ln.AcceptUnix()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func TestPeerHandle(t *testing.T) {
	skipNoPidfd(t)
	type observed struct {
		Err   string
		Pid   int
		Same  bool // SameProcess with the expected process's Handle
		Alive bool
	}
	tests := []struct {
		name string
		// setup returns the connection and a Handle of the expected peer.
		setup   func(t *testing.T) (*net.UnixConn, *pexec.Handle)
		pidMode bool
		want    func(peer *pexec.Handle) observed
	}{
		{
			name: "child",
			setup: func(t *testing.T) (*net.UnixConn, *pexec.Handle) {
				ln, addr := listenPeer(t)
				p := startLined(t, pexectest.Command("dial", addr))
				c := accept(t, ln)
				if got := p.pidField("connected"); got != p.Process.Pid {
					t.Fatalf("dial helper's PID is %d, want %d", got, p.Process.Pid)
				}
				return c, p.Handle()
			},
			want: func(peer *pexec.Handle) observed {
				return observed{Err: "<nil>", Pid: peer.Pid(), Same: true, Alive: true}
			},
		},
		{
			name: "non-child",
			setup: func(t *testing.T) (*net.UnixConn, *pexec.Handle) {
				ln, addr := listenPeer(t)
				mid := startLined(t, pexectest.Command("spawn", "dial", addr))
				c := accept(t, ln)
				return c, killLater(t, mid.pidFieldAnywhere("connected"))
			},
			want: func(peer *pexec.Handle) observed {
				return observed{Err: "<nil>", Pid: peer.Pid(), Same: true, Alive: true}
			},
		},
		{
			name: "self (socket pair)",
			setup: func(t *testing.T) (*net.UnixConn, *pexec.Handle) {
				fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
				if err != nil {
					t.Fatal(err)
				}
				unix.Close(fds[1])
				f := os.NewFile(uintptr(fds[0]), "socketpair")
				defer f.Close()
				c, err := net.FileConn(f)
				if err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() { c.Close() })
				return c.(*net.UnixConn), mustOpen(t, os.Getpid())
			},
			want: func(*pexec.Handle) observed {
				return observed{Err: "<nil>", Pid: os.Getpid(), Same: true, Alive: true}
			},
		},
		{
			name: "peer exited (zombie)",
			setup: func(t *testing.T) (*net.UnixConn, *pexec.Handle) {
				ln, addr := listenPeer(t)
				p := startLined(t, pexectest.Command("dial", addr, "exit"))
				c := accept(t, ln)
				awaitDone(t, p.Handle())
				return c, p.Handle()
			},
			want: func(peer *pexec.Handle) observed {
				return observed{Err: "<nil>", Pid: peer.Pid(), Same: true}
			},
		},
		{
			name: "peer reaped",
			setup: func(t *testing.T) (*net.UnixConn, *pexec.Handle) {
				ln, addr := listenPeer(t)
				p := startLined(t, pexectest.Command("dial", addr, "exit"))
				c := accept(t, ln)
				p.wait()
				return c, nil
			},
			want: func(*pexec.Handle) observed { return observed{Err: "ErrProcessDone"} },
		},
		{
			name: "not connected",
			setup: func(t *testing.T) (*net.UnixConn, *pexec.Handle) {
				c, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Net: "unixgram"})
				if err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() { c.Close() })
				return c, nil
			},
			want: func(*pexec.Handle) observed { return observed{Err: "ErrInvalid"} },
		},
		{
			name: "closed",
			setup: func(t *testing.T) (*net.UnixConn, *pexec.Handle) {
				ln, addr := listenPeer(t)
				startLined(t, pexectest.Command("dial", addr))
				c := accept(t, ln)
				c.Close()
				return c, nil
			},
			want: func(*pexec.Handle) observed { return observed{Err: "ErrClosed"} },
		},
		{
			name:  "nil",
			setup: func(t *testing.T) (*net.UnixConn, *pexec.Handle) { return nil, nil },
			want:  func(*pexec.Handle) observed { return observed{Err: "ErrInvalid"} },
		},
		{
			name: "PID mode",
			setup: func(t *testing.T) (*net.UnixConn, *pexec.Handle) {
				ln, addr := listenPeer(t)
				startLined(t, pexectest.Command("dial", addr))
				return accept(t, ln), nil
			},
			pidMode: true,
			want:    func(*pexec.Handle) observed { return observed{Err: "ErrUnsupported"} },
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, peer := tt.setup(t)
			if tt.pidMode {
				defer pexec.SetForcePIDMode(true)()
			}
			h, err := pexec.PeerHandle(c)
			got := observed{Err: errIs(err)}
			if err == nil {
				defer h.Close()
				got.Pid, got.Alive = h.Pid(), h.Alive()
				if got.Same, err = h.SameProcess(peer); err != nil {
					t.Errorf("SameProcess: %v", err)
				}
			}
			want := tt.want(peer)
			if !kernel().PeerPidfd && c != nil {
				// No SO_PEERPIDFD before 6.5: PeerHandle says so first,
				// whatever the connection, as in PID mode.
				want = observed{Err: "ErrUnsupported"}
			}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("PeerHandle (-want +got):\n%s", diff)
			}
		})
	}
	t.Run("watch and kill the client", func(t *testing.T) {
		ln, addr := listenPeer(t)
		p := startLined(t, pexectest.Command("dial", addr))
		h, err := pexec.PeerHandle(accept(t, ln))
		if !kernel().PeerPidfd {
			if !errors.Is(err, errors.ErrUnsupported) {
				t.Errorf("PeerHandle without SO_PEERPIDFD = %v, want errors.ErrUnsupported", err)
			}
			return
		}
		if err != nil {
			t.Fatal(err)
		}
		defer h.Close()
		if err := h.Kill(); err != nil {
			t.Fatal(err)
		}
		awaitDone(t, h)
		if diff := cmp.Diff("signal: killed", fmt.Sprint(p.wait())); diff != "" {
			t.Errorf("client's Cmd.Wait (-want +got):\n%s", diff)
		}
	})
}
