//go:build linux

package pexec_test

import (
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"syscall"

	"golang.org/x/sys/unix"

	"github.com/pexec-dev/pexec/pexec"
)

// Open a handle to any process by PID. Here it is this process itself; see
// Open's documentation for the one race this cannot avoid.
func ExampleOpen() {
	h, err := pexec.Open(os.Getpid())
	if err != nil {
		fmt.Println(err)
		return
	}
	defer h.Close()
	fmt.Println(h.Pid() == os.Getpid(), h.Alive())
	// Output: true true
}

// A worker watches its supervisor and stops when it goes away.
func ExampleParent() {
	parent, err := pexec.Parent()
	if err != nil {
		fmt.Println(err)
		return
	}
	defer parent.Close()
	select {
	case <-parent.Done():
		fmt.Println("supervisor gone: shutting down")
	default:
		fmt.Println("supervisor alive:", parent.Pid() == os.Getppid())
	}
	// Output: supervisor alive: true
}

// Two handles obtained in different ways refer to the same process exactly
// when their IDs are equal.
func ExampleHandle_SameProcess() {
	a, err := pexec.Open(os.Getpid())
	if err != nil {
		fmt.Println(err)
		return
	}
	defer a.Close()
	b, err := pexec.Parent()
	if err != nil {
		fmt.Println(err)
		return
	}
	defer b.Close()
	same, err := a.SameProcess(a)
	fmt.Println(same, err)
	same, err = a.SameProcess(b)
	fmt.Println(same, err)
	// Output:
	// true <nil>
	// false <nil>
}

// ID gives a number that names the process for as long as the system runs,
// for logs or to check later that a PID still names the same process.
func ExampleHandle_ID() {
	h, err := pexec.Open(os.Getpid())
	if err != nil {
		fmt.Println(err)
		return
	}
	defer h.Close()
	id, err := h.ID()
	if err != nil {
		fmt.Println("no unique IDs on this kernel:", err)
		return
	}
	fmt.Println("process", h.Pid(), "has ID", id)
}

func ExampleHandle_Info() {
	h, err := pexec.Open(os.Getpid())
	if err != nil {
		fmt.Println(err)
		return
	}
	defer h.Close()
	info, err := h.Info()
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(info.Pid == os.Getpid(), info.PPid == os.Getppid(), info.EUID == os.Geteuid())
	// Output: true true true
}

// A handle travels as a file: here it is rebuilt in the same process; a
// Unix socket (SCM_RIGHTS) or Cmd.ExtraFiles carry it to another process.
func ExampleFromFile() {
	h, err := pexec.Open(os.Getpid())
	if err != nil {
		fmt.Println(err)
		return
	}
	defer h.Close()
	f, err := h.File()
	if err != nil {
		fmt.Println(err)
		return
	}
	defer f.Close()
	h2, err := pexec.FromFile(f)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer h2.Close()
	same, err := h.SameProcess(h2)
	fmt.Println(same, err)
	// Output: true <nil>
}

// Stop a command together with everything it started in its process group.
func ExampleHandle_SignalGroup() {
	cmd := pexec.Command("sh", "-c", "sleep 60 & sleep 60")
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		fmt.Println(err)
		return
	}
	if err := cmd.Handle().SignalGroup(syscall.SIGKILL); err != nil {
		fmt.Println(err)
	}
	fmt.Println(cmd.Wait())
	// Output: signal: killed
}

// Duplicate a descriptor out of a process (here this one, from a file it
// has open).
func ExampleHandle_GetFD() {
	f, err := os.Open(os.DevNull)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer f.Close()
	h, err := pexec.Open(os.Getpid())
	if err != nil {
		fmt.Println(err)
		return
	}
	defer h.Close()
	dup, err := h.GetFD(int(f.Fd()))
	if err != nil {
		fmt.Println(err)
		return
	}
	defer dup.Close()
	a, _ := f.Stat()
	b, _ := dup.Stat()
	fmt.Println(os.SameFile(a, b))
	// Output: true
}

// A server identifies the process at the other end of a Unix socket
// connection, and can watch it with Done. Linux before 6.5 has no
// SO_PEERPIDFD (PeerHandle returns an error wrapping errors.ErrUnsupported):
// there the server has only the PID the kernel recorded at connect
// (SO_PEERCRED), which the client's exit lets another process reuse.
func ExamplePeerHandle() {
	dir, err := os.MkdirTemp("", "peer")
	if err != nil {
		fmt.Println(err)
		return
	}
	defer os.RemoveAll(dir)
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: filepath.Join(dir, "sock"), Net: "unix"})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer ln.Close()
	client, err := net.Dial("unix", ln.Addr().String())
	if err != nil {
		fmt.Println(err)
		return
	}
	defer client.Close()
	conn, err := ln.AcceptUnix()
	if err != nil {
		fmt.Println(err)
		return
	}
	defer conn.Close()
	peer, err := pexec.PeerHandle(conn)
	if errors.Is(err, errors.ErrUnsupported) {
		raw, err := conn.SyscallConn()
		if err != nil {
			fmt.Println(err)
			return
		}
		var cred *unix.Ucred
		raw.Control(func(fd uintptr) { cred, err = unix.GetsockoptUcred(int(fd), unix.SOL_SOCKET, unix.SO_PEERCRED) })
		if err != nil {
			fmt.Println(err)
			return
		}
		fmt.Println("client is this process:", int(cred.Pid) == os.Getpid())
		return
	}
	if err != nil {
		fmt.Println(err)
		return
	}
	defer peer.Close()
	fmt.Println("client is this process:", peer.Pid() == os.Getpid())
	// Output: client is this process: true
}
