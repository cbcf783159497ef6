package pexectest

import (
	"errors"
	"fmt"
	"os"
	"os/signal"
	"runtime"
	"strconv"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/pexec-dev/pexec/internal/pidns"
	"github.com/pexec-dev/pexec/pexec"
)

// inPIDNamespace is set in a helper that Main set up as PID 1 of a new PID
// namespace.
var inPIDNamespace atomic.Bool

// faultUnsupported says why fault injection cannot work here, or "".
func faultUnsupported() string { return "" }

// setupHelper sets up, in a helper, the faults its environment asks for:
// the jail first, before anything probes for pidfds.
func setupHelper() error {
	defer func() {
		for _, k := range []string{jailEnv, pidnsEnv, reaperEnv} {
			os.Unsetenv(k)
		}
	}()
	if v, ok := os.LookupEnv(jailEnv); ok {
		j := JailNoPidfd
		if v == JailNoPidfdSpawn.String() {
			j = JailNoPidfdSpawn
		} else if v != j.String() {
			return fmt.Errorf("unknown jail %q", v)
		}
		if err := EnterJail(j); err != nil {
			return fmt.Errorf("jail %s: %w", v, err)
		}
	}
	if _, ok := os.LookupEnv(pidnsEnv); ok {
		if err := pidns.Enter(); err != nil {
			return fmt.Errorf("PID namespace: %w", err)
		}
		inPIDNamespace.Store(true)
	}
	if v, ok := os.LookupEnv(reaperEnv); ok {
		switch v {
		case ReaperWait4.String():
			reapAll()
		case ReaperIgnoreSIGCHLD.String():
			signal.Ignore(syscall.SIGCHLD)
		default:
			return fmt.Errorf("unknown foreign reaper %q", v)
		}
	}
	return nil
}

// reapers is the number of goroutines of ReaperWait4: while one returns
// from wait4 with a child, another is already blocked in it.
const reapers = 2

// reapSpin is how long a reaper of ReaperWait4 polls without pause, yielding
// between tries, after it last found no child: a child started meanwhile
// finds it blocked in wait4 before it exits. Then it sleeps a millisecond
// between tries, which costs no CPU while the helper has no child.
const reapSpin = 50 * time.Millisecond

// reapAll runs the foreign reaper of ReaperWait4: goroutines that reap
// every child of the process with wait4(-1) as soon as it exits. Each
// blocks in wait4 while there are children; while there are none, it
// polls, without pause for reapSpin after it last reaped, every millisecond
// after that.
func reapAll() {
	for range reapers {
		go func() {
			var ws unix.WaitStatus
			last := time.Now()
			for {
				pid, err := unix.Wait4(-1, &ws, 0, nil)
				switch {
				case pid > 0:
					last = time.Now()
				case err != unix.ECHILD:
				case time.Since(last) < reapSpin:
					runtime.Gosched()
				default:
					time.Sleep(time.Millisecond)
				}
			}
		}()
	}
}

// setPIDNamespace sets cmd's SysProcAttr to start it as PID 1 of new PID
// and mount namespaces, and of a new user namespace unless the caller is
// root.
func setPIDNamespace(cmd *pexec.Cmd) error {
	attr := pidns.SysProcAttr()
	if cmd.SysProcAttr != nil {
		cp := *cmd.SysProcAttr
		cp.Cloneflags |= attr.Cloneflags
		attr = &cp
	}
	if uid := os.Geteuid(); uid != 0 {
		attr.Cloneflags |= unix.CLONE_NEWUSER
		if attr.UidMappings == nil {
			attr.UidMappings = []syscall.SysProcIDMap{{ContainerID: 0, HostID: uid, Size: 1}}
		}
		if attr.GidMappings == nil {
			attr.GidMappings = []syscall.SysProcIDMap{{ContainerID: 0, HostID: os.Getegid(), Size: 1}}
		}
	}
	cmd.SysProcAttr = attr
	return nil
}

// probeFault runs in the probe helper, after Main set up its faults.
func probeFault() int {
	if inPIDNamespace.Load() {
		if err := SetNextPID(2); err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 2
		}
	}
	return 0
}

// SetNextPID makes pid the ID the kernel gives the next process (or
// thread) created in the caller's PID namespace, if pid is free then: it
// writes pid-1 to /proc/sys/kernel/ns_last_pid. It works only in a helper
// started with [InPIDNamespace], where nothing else creates processes, and
// returns an error elsewhere (on the system's own namespace it would steer
// every process on the machine). Prefer [StartWithPID], which checks the
// result and retries: a thread the Go runtime starts in between may take
// the PID.
func SetNextPID(pid int) error {
	if !inPIDNamespace.Load() {
		return errors.New("pexectest: SetNextPID: only in a helper started with pexectest.InPIDNamespace")
	}
	if pid < 2 {
		return fmt.Errorf("pexectest: SetNextPID(%d): PIDs start at 1, which the helper has", pid)
	}
	if err := pidns.SetNextPID(pid); err != nil {
		return fmt.Errorf("pexectest: SetNextPID: %w", err)
	}
	return nil
}

// startWithPIDTries bounds the attempts of StartWithPID.
const startWithPIDTries = 20

// StartWithPID starts a command made by newCmd so that its process gets
// PID pid, in a helper started with [InPIDNamespace]: for example the PID
// of a child that exited and was reaped, so that a stranger takes it and
// the test can prove that the code under test never signals the stranger.
// It sets the namespace's next PID with [SetNextPID] and starts the
// command; when a thread of the Go runtime took the PID first, it kills and
// reaps that process and tries again with a new command from newCmd (a
// Cmd cannot be started twice), up to 20 times. It returns an error if pid
// is in use, if a thread of this process holds it, or if the process
// cannot be started.
func StartWithPID(pid int, newCmd func() *pexec.Cmd) (*pexec.Cmd, error) {
	if _, err := os.Stat("/proc/" + strconv.Itoa(pid)); err == nil {
		return nil, fmt.Errorf("pexectest: StartWithPID: PID %d is in use", pid)
	}
	for range startWithPIDTries {
		if err := SetNextPID(pid); err != nil {
			return nil, err
		}
		c := newCmd()
		if err := c.Start(); err != nil {
			return nil, fmt.Errorf("pexectest: StartWithPID: %w", err)
		}
		if c.Process.Pid == pid {
			return c, nil
		}
		if err := c.Handle().Kill(); err != nil {
			c.Process.Kill()
		}
		c.Wait()
		if _, err := os.Stat("/proc/self/task/" + strconv.Itoa(pid)); err == nil {
			return nil, fmt.Errorf("pexectest: StartWithPID: PID %d was taken by a thread of this process", pid)
		}
	}
	return nil, fmt.Errorf("pexectest: StartWithPID: PID %d not obtained in %d tries", pid, startWithPIDTries)
}
