package pexectest

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pexec-dev/pexec/pexec"
)

// Fault injection: a helper made by [Command] can run where pidfds are
// denied ([Jailed]), as PID 1 of a PID namespace of its own where PIDs can
// be handed out on demand ([InPIDNamespace], [StartWithPID]), or beside a
// foreign reaper ([WithForeignReaper]). Each sets up the helper's Cmd
// before Start; [Main], in the helper, sets the fault up before it runs the
// helper's function. Each first checks, once per test binary, that the
// system allows the fault (by starting a helper with it), and skips the
// test with the reason where it does not. They need Linux; elsewhere they
// skip the test.

// Jail selects the seccomp filter of [Jailed] and [EnterJail].
type Jail int

const (
	// JailNoPidfd makes every pidfd system call fail with ENOSYS, as on a
	// kernel before 5.3: pidfd_open, pidfd_send_signal, pidfd_getfd,
	// clone3 and clone with CLONE_PIDFD. Go's runtime and pexec fall back
	// to PIDs ([pexec.ModePID]).
	JailNoPidfd Jail = iota + 1
	// JailNoPidfdSpawn makes only the ways to get a pidfd at spawn fail
	// with ENOSYS (clone3, and clone with CLONE_PIDFD), while pidfd_open,
	// pidfd_send_signal and pidfd_getfd work: what QEMU's user-mode
	// emulation does, and the case a probe of pidfd_open alone gets wrong.
	JailNoPidfdSpawn
)

// String returns "no-pidfd" or "no-pidfd-spawn".
func (j Jail) String() string {
	switch j {
	case JailNoPidfd:
		return "no-pidfd"
	case JailNoPidfdSpawn:
		return "no-pidfd-spawn"
	}
	return fmt.Sprintf("Jail(%d)", int(j))
}

// Reaper selects the foreign reaper of [WithForeignReaper].
type Reaper int

const (
	// ReaperWait4 runs goroutines that reap every child of the helper
	// with wait4(-1) as soon as it exits, as a careless library or cgo
	// code does: two of them, so that one is blocked in wait4 while the
	// other returns from it with a child. While the helper has no child,
	// they try again without pause (yielding) for 50ms after the last
	// reap, so that they are already waiting for the next child the
	// helper starts, and every millisecond after that.
	ReaperWait4 Reaper = iota + 1
	// ReaperIgnoreSIGCHLD sets SIGCHLD to SIG_IGN, so that the kernel reaps
	// every child of the helper as it exits (POSIX's SA_NOCLDWAIT).
	ReaperIgnoreSIGCHLD
)

// String returns "wait4" or "sigchld-ignored".
func (r Reaper) String() string {
	switch r {
	case ReaperWait4:
		return "wait4"
	case ReaperIgnoreSIGCHLD:
		return "sigchld-ignored"
	}
	return fmt.Sprintf("Reaper(%d)", int(r))
}

// Jailed makes the helper cmd (from [Command]) run inside the seccomp jail
// j, installed with [EnterJail] before the helper's function runs, so that
// code under test meets a system without pidfds (or without pidfds at
// spawn) for real, on any modern kernel: use it to test a PID-mode
// fallback in CI. Jailed skips t where seccomp filters cannot be installed
// (not Linux, a kernel without CONFIG_SECCOMP_FILTER, an architecture the
// filter does not know); it fails t if cmd is not a helper or has started.
func Jailed(t testing.TB, cmd *pexec.Cmd, j Jail) {
	t.Helper()
	mustHelper(t, "Jailed", cmd)
	if j != JailNoPidfd && j != JailNoPidfdSpawn {
		t.Fatalf("pexectest: Jailed: unknown %v", j)
	}
	setEnv(cmd, jailEnv, j.String())
	if why := probe("jail "+j.String(), func(c *pexec.Cmd) error {
		setEnv(c, jailEnv, j.String())
		return nil
	}); why != "" {
		t.Skipf("pexectest: Jailed: cannot jail a helper here: %s", why)
	}
}

// InPIDNamespace makes the helper cmd (from [Command]) run as PID 1 of a
// new PID namespace, with a mount namespace and a /proc of its own, where
// nothing but the helper and its descendants creates processes: there
// [StartWithPID] gives a chosen PID to a new process, to force PID reuse.
// When the helper exits, the kernel kills every process left in the
// namespace. As PID 1 the helper gets only the signals it handles; SIGKILL
// from outside always works.
//
// It needs CAP_SYS_ADMIN: as root it creates the namespaces directly; as
// another user it also creates a user namespace in which the helper is
// root (mapped to the caller's user and group), where the system allows
// unprivileged user namespaces. It skips t where the namespace cannot be
// created (not Linux, no privilege, a container's seccomp policy, a
// read-only /proc/sys); it fails t if cmd is not a helper or has started.
// It sets cmd.SysProcAttr's clone flags and ID mappings, keeping the rest.
func InPIDNamespace(t testing.TB, cmd *pexec.Cmd) {
	t.Helper()
	mustHelper(t, "InPIDNamespace", cmd)
	setup := func(c *pexec.Cmd) error {
		setEnv(c, pidnsEnv, "1")
		return setPIDNamespace(c)
	}
	if err := setup(cmd); err != nil {
		t.Skipf("pexectest: InPIDNamespace: %v", err)
	}
	if why := probe("pidns", setup); why != "" {
		t.Skipf("pexectest: InPIDNamespace: cannot create a PID namespace here (it needs root, or unprivileged user namespaces): %s", why)
	}
}

// WithForeignReaper makes the helper cmd (from [Command]) run with the
// foreign reaper r active before its function runs, so that code under
// test meets a host that reaps its children behind its back. It skips t
// where it is not supported (not Linux); it fails t if cmd is not a helper
// or has started.
func WithForeignReaper(t testing.TB, cmd *pexec.Cmd, r Reaper) {
	t.Helper()
	mustHelper(t, "WithForeignReaper", cmd)
	if r != ReaperWait4 && r != ReaperIgnoreSIGCHLD {
		t.Fatalf("pexectest: WithForeignReaper: unknown %v", r)
	}
	setEnv(cmd, reaperEnv, r.String())
	if why := probe("reaper "+r.String(), func(c *pexec.Cmd) error {
		setEnv(c, reaperEnv, r.String())
		return nil
	}); why != "" {
		t.Skipf("pexectest: WithForeignReaper: %s", why)
	}
}

// mustHelper fails t unless cmd is an unstarted helper command that can
// start (Main is called and the helper is registered).
func mustHelper(t testing.TB, fn string, cmd *pexec.Cmd) {
	t.Helper()
	switch {
	case cmd == nil || helperName(cmd) == "":
		t.Fatalf("pexectest: %s: %v is not a helper command: make it with pexectest.Command", fn, cmd)
	case cmd.Err != nil:
		t.Fatalf("pexectest: %s: %v", fn, cmd.Err)
	case cmd.Process != nil:
		t.Fatalf("pexectest: %s: %v has already started", fn, cmd)
	}
}

// setEnv sets key=value in cmd.Env, replacing an earlier value.
func setEnv(cmd *pexec.Cmd, key, value string) {
	cmd.Env = slices.DeleteFunc(cmd.Env, func(kv string) bool { return strings.HasPrefix(kv, key+"=") })
	cmd.Env = append(cmd.Env, key+"="+value)
}

// probeHelper is the helper that probe runs: Main has set up the fault
// before calling it, or exited with code 2 and the reason.
const probeHelper = reservedPrefix + "probe"

var probes sync.Map // what → func() string

// probe checks, once per what, that a helper set up by setup starts and
// runs, and returns why not, or "".
func probe(what string, setup func(*pexec.Cmd) error) string {
	once, _ := probes.LoadOrStore(what, sync.OnceValue(func() string {
		if why := faultUnsupported(); why != "" {
			return why
		}
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		c := CommandContext(ctx, probeHelper)
		if err := setup(c); err != nil {
			return err.Error()
		}
		if o := Run(ctx, c); o != (Outcome{}) {
			return strings.TrimSpace(o.String())
		}
		return ""
	}))
	return once.(func() string)()
}

func init() {
	internalHelpers[probeHelper] = func([]string) int { return probeFault() }
}
