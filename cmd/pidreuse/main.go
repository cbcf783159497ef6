//go:build linux

// Command pidreuse shows, live, why a PID is not a safe way to refer to a
// process, and what a pexec Handle does instead.
//
// It starts a worker through pexec and keeps both its PID and its Handle.
// The worker exits and is reaped, so its PID is free again. As root, the
// demo then forces an innocent newcomer to take the very same PID (in a
// private PID namespace, by writing ns_last_pid just before the fork) and
// tries both ways of sending SIGTERM to "the worker":
//
//   - handle.Signal(SIGTERM) refuses with os.ErrProcessDone: the Handle
//     refers to the worker through its pidfd, which names the worker for
//     ever, and the worker is gone;
//   - syscall.Kill(pid, SIGTERM) succeeds, and kills the innocent newcomer.
//
// Without root it does the same inside a user namespace of its own where
// the system allows that. Where it cannot force the reuse, it explains why
// and shows the part that needs no privilege.
//
//	go run ./cmd/pidreuse
package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/pexec-dev/pexec/internal/pidns"
	"github.com/pexec-dev/pexec/pexec"
)

// The program re-executes itself in several roles, chosen by this
// environment variable.
const roleEnv = "PEXEC_PIDREUSE_ROLE"

const (
	roleNamespace = "namespace" // PID 1 of a private PID namespace: runs the forced reuse
	roleWorker    = "worker"    // the process whose PID is kept: exits at once
	roleNewcomer  = "newcomer"  // the innocent process that gets the PID: waits to be killed
)

// resultFD is the descriptor on which the namespace role reports its Result
// to the process that started it.
const resultFD = 3

// timeout bounds the whole demo.
const timeout = 20 * time.Second

// errNoNamespace reports that the private PID namespace could not be set up
// (no CAP_SYS_ADMIN, a container's seccomp filter, a read-only /proc/sys).
var errNoNamespace = errors.New("cannot set up a private PID namespace")

// Result is what the demo observed.
type Result struct {
	// Forced reports that a newcomer was made to take the worker's PID.
	Forced bool
	// Reason says why the reuse was not forced, when it was not.
	Reason string `json:",omitempty"`
	// PID is the worker's PID, kept after it was reaped.
	PID int
	// WorkerStatus is how the worker ended ("exit status 0").
	WorkerStatus string
	// HandleErr is what the worker's handle.Signal(SIGTERM) returned once
	// the worker had been reaped, and HandleRefused whether that error is
	// os.ErrProcessDone.
	HandleErr     string
	HandleRefused bool
	// NewcomerPID is the PID the newcomer got; Attempts counts the forks
	// it took (a Go runtime thread may take the PID first).
	NewcomerPID int `json:",omitempty"`
	Attempts    int `json:",omitempty"`
	// NewcomerAlive reports that the newcomer was still alive after
	// handle.Signal, which must not have touched it.
	NewcomerAlive bool `json:",omitempty"`
	// KillErr is what syscall.Kill(PID, SIGTERM) returned ("" for nil), and
	// NewcomerStatus how the newcomer ended ("signal: terminated").
	KillErr        string `json:",omitempty"`
	NewcomerStatus string `json:",omitempty"`
}

func main() {
	if role := os.Getenv(roleEnv); role != "" {
		os.Exit(runRole(role))
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	if _, err := demo(ctx, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "pidreuse:", err)
		os.Exit(1)
	}
}

// runRole runs the program in one of its re-executed roles.
func runRole(role string) int {
	switch role {
	case roleWorker:
		return 0
	case roleNewcomer:
		// Not handling SIGTERM: its default action kills us.
		fmt.Println("ready")
		time.Sleep(timeout)
		return 0
	case roleNamespace:
		return namespaceMain()
	}
	fmt.Fprintf(os.Stderr, "pidreuse: unknown role %q\n", role)
	return 2
}

// demo runs the demo, writing what happens to w: the forced reuse where
// the system allows it, the part that needs no privilege otherwise.
func demo(ctx context.Context, w io.Writer) (*Result, error) {
	res, err := inNamespace(ctx, w)
	if !errors.Is(err, errNoNamespace) {
		return res, err
	}
	why := strings.TrimPrefix(err.Error(), errNoNamespace.Error()+": ")
	fmt.Fprintf(w, "Cannot force a PID to be reused here: %s.\n", why)
	fmt.Fprintln(w, "(It needs CAP_SYS_ADMIN over a PID namespace, to set ns_last_pid: root, or a user")
	fmt.Fprintln(w, "namespace where the system allows one.) The part that needs no privilege:")
	res, err = unprivileged(w)
	if err == nil && os.Geteuid() != 0 {
		fmt.Fprintln(w, "As root (go build -o /tmp/pidreuse ./cmd/pidreuse && sudo /tmp/pidreuse) you can")
		fmt.Fprintln(w, "watch a PID-based kill hit an innocent process.")
	}
	return res, err
}

// step prints one numbered line of the demo, its label padded so that the
// results line up.
func step(w io.Writer, n int, label, format string, args ...any) {
	fmt.Fprintf(w, "  %d. %-34s %s\n", n, label, fmt.Sprintf(format, args...))
}

// self returns a Cmd that re-executes this program in role.
func self(ctx context.Context, role string) (*pexec.Cmd, error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, err
	}
	cmd := pexec.CommandContext(ctx, exe)
	cmd.Env = append(os.Environ(), roleEnv+"="+role)
	cmd.Stderr = os.Stderr
	return cmd, nil
}

// startWorker starts the worker, keeps its PID and Handle, and waits for it
// to exit and be reaped: from then on the PID is free for anyone.
func startWorker(w io.Writer, res *Result) (*pexec.Handle, error) {
	cmd, err := self(context.Background(), roleWorker)
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	res.PID = cmd.Process.Pid // what code usually keeps...
	h := cmd.Handle()         // ...and what pexec adds
	if err := cmd.Wait(); err != nil {
		return nil, fmt.Errorf("worker: %w", err)
	}
	res.WorkerStatus = cmd.ProcessState.String()
	step(w, 1, "started a worker through pexec:", "pid %d (we keep the number and its pexec Handle)", res.PID)
	step(w, 2, "the worker exited and was reaped:", "%s; pid %d is free again", res.WorkerStatus, res.PID)
	return h, nil
}

// signalHandle sends SIGTERM through the worker's Handle, which must refuse.
func signalHandle(h *pexec.Handle, res *Result) {
	err := h.Signal(syscall.SIGTERM)
	res.HandleErr = fmt.Sprint(err)
	res.HandleRefused = errors.Is(err, os.ErrProcessDone)
}

// unprivileged shows what needs no privilege: the Handle refuses once its
// process is gone, whereas the PID is just a number that the next process
// may get.
func unprivileged(w io.Writer) (*Result, error) {
	res := &Result{Reason: "not forced"}
	h, err := startWorker(w, res)
	if err != nil {
		return nil, err
	}
	defer h.Close()
	signalHandle(h, res)
	step(w, 3, "handle.Signal(SIGTERM)", "-> %s (errors.Is ErrProcessDone: %t)", res.HandleErr, res.HandleRefused)
	holder := "whichever process gets that number next (none yet)"
	if err := unix.Kill(res.PID, 0); err == nil {
		holder = "a process that already took the number: " + comm(res.PID)
	}
	step(w, 4, fmt.Sprintf("syscall.Kill(%d, SIGTERM)", res.PID), "-> would hit %s", holder)
	return res, nil
}

// comm returns the name of process pid, for display.
func comm(pid int) string {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/comm")
	if err != nil {
		return "pid " + strconv.Itoa(pid)
	}
	return strings.TrimSpace(string(b))
}

// inNamespace re-executes the program as PID 1 of a private PID and mount
// namespace, where nothing else forks, and returns what it observed. When
// that process exits, the kernel kills everything left in the namespace.
// Without root, it also creates a user namespace, in which the program is
// root (most distributions allow this; some restrict it).
func inNamespace(ctx context.Context, w io.Writer) (*Result, error) {
	cmd, err := self(ctx, roleNamespace)
	if err != nil {
		return nil, err
	}
	r, pw, err := os.Pipe()
	if err != nil {
		return nil, err
	}
	defer r.Close()
	cmd.Stdout = w
	cmd.ExtraFiles = []*os.File{pw}
	cmd.SysProcAttr = pidns.SysProcAttr()
	if uid := os.Geteuid(); uid != 0 {
		cmd.Args = append(cmd.Args, "userns")
		cmd.SysProcAttr.Cloneflags |= syscall.CLONE_NEWUSER
		cmd.SysProcAttr.UidMappings = []syscall.SysProcIDMap{{ContainerID: 0, HostID: uid, Size: 1}}
		cmd.SysProcAttr.GidMappings = []syscall.SysProcIDMap{{ContainerID: 0, HostID: os.Getegid(), Size: 1}}
	}
	err = cmd.Start()
	pw.Close()
	if err != nil {
		return nil, fmt.Errorf("%w: %v", errNoNamespace, err)
	}
	data, rerr := io.ReadAll(r)
	if err := cmd.Wait(); err != nil {
		return nil, fmt.Errorf("namespace: %w", err)
	}
	if rerr != nil {
		return nil, rerr
	}
	res := new(Result)
	if err := json.Unmarshal(data, res); err != nil {
		return nil, fmt.Errorf("namespace result %q: %w", data, err)
	}
	if !res.Forced {
		return res, fmt.Errorf("%w: %s", errNoNamespace, res.Reason)
	}
	return res, nil
}

// namespaceMain runs as PID 1 of the private namespace and reports its
// Result on resultFD.
func namespaceMain() int {
	out := os.NewFile(resultFD, "result")
	syscall.CloseOnExec(resultFD) // our children must not hold it open
	res, err := forced(os.Stdout)
	switch {
	case errors.Is(err, errNoNamespace):
		res = &Result{Reason: strings.TrimPrefix(err.Error(), errNoNamespace.Error()+": ")}
	case err != nil:
		fmt.Fprintln(os.Stderr, "pidreuse:", err)
		return 1
	}
	if err := json.NewEncoder(out).Encode(res); err != nil {
		fmt.Fprintln(os.Stderr, "pidreuse:", err)
		return 1
	}
	return 0
}

// forced makes a newcomer take the worker's PID and signals it both ways.
func forced(w io.Writer) (*Result, error) {
	// Mounts made here must not propagate back to the host; then /proc
	// shows this namespace's processes.
	if err := pidns.Enter(); err != nil {
		return nil, fmt.Errorf("%w: %v", errNoNamespace, err)
	}
	// Check that ns_last_pid is writable before printing anything.
	if err := pidns.SetNextPID(2); err != nil {
		return nil, fmt.Errorf("%w: %v", errNoNamespace, err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()

	if len(os.Args) > 1 && os.Args[1] == "userns" {
		fmt.Fprintln(w, "PID reuse, live (in a private user and PID namespace; no root needed):")
	} else {
		fmt.Fprintln(w, "PID reuse, live (as root, in a private PID namespace):")
	}
	res := &Result{}
	h, err := startWorker(w, res)
	if err != nil {
		return nil, err
	}
	defer h.Close()

	nc, ready, err := newcomer(ctx, res)
	if err != nil {
		return nil, err
	}
	step(w, 3, "an innocent newcomer started:", "pid %d  <- the same number (forced: ns_last_pid=%d)", res.NewcomerPID, res.PID-1)
	if err := ready(); err != nil {
		return nil, err
	}

	signalHandle(h, res)
	res.NewcomerAlive = nc.Handle().Alive()
	step(w, 4, "handle.Signal(SIGTERM)", "-> %s (newcomer untouched, alive: %t)", res.HandleErr, res.NewcomerAlive)

	kerr := syscall.Kill(res.PID, syscall.SIGTERM)
	if kerr != nil {
		res.KillErr = kerr.Error()
	}
	werr := nc.Wait()
	if nc.ProcessState == nil {
		return nil, fmt.Errorf("newcomer: %w", werr)
	}
	res.NewcomerStatus = nc.ProcessState.String()
	step(w, 5, fmt.Sprintf("syscall.Kill(%d, SIGTERM)", res.PID), "-> %v: it killed the newcomer (%s)", kerr, res.NewcomerStatus)
	fmt.Fprintln(w, "A PID names whoever holds the number now; the pexec Handle named the worker, which is gone.")
	res.Forced = res.NewcomerPID == res.PID
	return res, nil
}

// newcomer starts the innocent newcomer with the worker's PID. A Go runtime
// thread may take the PID between the write to ns_last_pid and the fork, so
// it retries a few times. ready waits until the newcomer runs.
func newcomer(ctx context.Context, res *Result) (*pexec.Cmd, func() error, error) {
	for res.Attempts < 20 {
		res.Attempts++
		cmd, err := self(ctx, roleNewcomer)
		if err != nil {
			return nil, nil, err
		}
		stdout, err := cmd.StdoutPipe()
		if err != nil {
			return nil, nil, err
		}
		if err := pidns.SetNextPID(res.PID); err != nil {
			return nil, nil, err
		}
		if err := cmd.Start(); err != nil {
			return nil, nil, err
		}
		if cmd.Process.Pid != res.PID {
			cmd.Handle().Kill()
			cmd.Wait()
			continue
		}
		res.NewcomerPID = cmd.Process.Pid
		ready := func() error {
			line, err := bufio.NewReader(stdout).ReadString('\n')
			if line != "ready\n" {
				return fmt.Errorf("newcomer did not start: %q, %v", line, err)
			}
			return nil
		}
		return cmd, ready, nil
	}
	return nil, nil, fmt.Errorf("pid %d was taken by another thread %d times in a row", res.PID, res.Attempts)
}
