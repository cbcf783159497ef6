package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// The re-executed roles. The scale and supervisor phases measure OS threads
// and peak RSS, which a Go process only ever grows (it never gives back a
// thread it has created, and VmHWM is a high-water mark): measured in one
// process, one run would pollute the next. So each run happens in a fresh
// re-execution of this program in a role, named by an environment variable
// and parameterized by others. The role process leads a process group of
// its own that its children join, so that whatever way it ends (including
// Go's "program exceeds 10000-thread limit" crash), the parent kills the
// whole group and, being a child subreaper, reaps every orphan.

// Environment of the roles.
const (
	roleEnv  = "PEXEC_BENCH_ROLE"
	libEnv   = "PEXEC_BENCH_LIB"
	sleepEnv = "PEXEC_BENCH_SLEEP"
)

// Library names, as printed.
const (
	libOSExec = "os/exec"
	libPexec  = "pexec"
)

// roles are the roles by name; each returns the process's exit status.
var roles = map[string]func() int{
	"scale":      scaleChild,
	"supervisor": supervisorChild,
}

// runRole runs the re-executed role of this program.
func runRole(role string) int {
	if f, ok := roles[role]; ok {
		return f()
	}
	fmt.Fprintf(os.Stderr, "bench: unknown role %q\n", role)
	return 2
}

// printResult is a role's last line on stdout: "result {json}".
func printResult(v any) {
	b, _ := json.Marshal(v)
	fmt.Printf("result %s\n", b)
}

// roleRun is how one role process ended, seen from the parent.
type roleRun struct {
	Stdout   []byte // the first MiB
	Stderr   []byte // the first 16 KiB
	Err      error  // from exec.Cmd.Run
	TimedOut error  // the context's error, if it ended the run
}

// runRoleProcess runs this program in role, with env added to the
// environment, for at most timeout; then it kills what is left of the role
// process's group and reaps it.
func runRoleProcess(ctx context.Context, role string, timeout time.Duration, env ...string) (roleRun, error) {
	exe, err := os.Executable()
	if err != nil {
		return roleRun{}, err
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, exe)
	cmd.Env = append(append(os.Environ(), roleEnv+"="+role), env...)
	// Built with -race (go test -race), the role process would sleep a
	// second as it exits, waiting for late race reports (GORACE's
	// atexit_sleep_ms); a role has ended its goroutines by then, and a race
	// it did report still fails the run through its exit status (66).
	if g := os.Getenv("GORACE"); !strings.Contains(g, "atexit_sleep_ms") {
		cmd.Env = append(cmd.Env, "GORACE="+strings.TrimSpace(g+" atexit_sleep_ms=0"))
	}
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	stdout := &headBuffer{max: 1 << 20}
	stderr := &headBuffer{max: 16 << 10}
	cmd.Stdout, cmd.Stderr = stdout, stderr
	runErr := cmd.Run()
	if cmd.Process != nil {
		killGroup(cmd.Process.Pid)
	}
	return roleRun{Stdout: stdout.buf, Stderr: stderr.buf, Err: runErr, TimedOut: ctx.Err()}, nil
}

// eachLine calls fn with the first word and the rest of every line a role
// printed, such as "progress 100" or "result {...}".
func (r roleRun) eachLine(fn func(key, rest string)) {
	sc := bufio.NewScanner(bytes.NewReader(r.Stdout))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		key, rest, _ := strings.Cut(sc.Text(), " ")
		fn(key, rest)
	}
}

// result decodes the role's "result" line into v and reports whether there
// was one.
func (r roleRun) result(v any) bool {
	found := false
	r.eachLine(func(key, rest string) {
		if key == "result" && json.Unmarshal([]byte(rest), v) == nil {
			found = true
		}
	})
	return found
}

// crashLine picks the runtime's own words from a crashed Go program's
// stderr ("runtime: program exceeds 10000-thread limit"), with the exit
// status.
func crashLine(stderr []byte, runErr error) string {
	var msg []string
	for _, line := range strings.Split(string(stderr), "\n") {
		if strings.HasPrefix(line, "runtime: ") || strings.HasPrefix(line, "fatal error: ") {
			msg = append(msg, strings.TrimSpace(line))
		}
		if len(msg) == 2 {
			break
		}
	}
	if len(msg) == 0 {
		msg = append(msg, "no runtime message")
	}
	return fmt.Sprintf("%s (%v)", strings.Join(msg, "; "), runErr)
}

func firstLines(b []byte, n int) string {
	lines := strings.SplitN(string(b), "\n", n+1)
	return strings.Join(lines[:min(n, len(lines))], "\n")
}

// becomeSubreaper makes orphans of a crashed role process come to this
// process, to be reaped by killGroup.
func becomeSubreaper() error {
	if err := unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0); err != nil {
		return os.NewSyscallError("prctl(PR_SET_CHILD_SUBREAPER)", err)
	}
	return nil
}

// killGroup kills every process left in process group pgid and reaps them:
// orphans of a crashed role process are reparented to this process, which
// is a child subreaper.
func killGroup(pgid int) {
	unix.Kill(-pgid, unix.SIGKILL)
	for {
		var info unix.Siginfo
		err := unix.Waitid(unix.P_PGID, pgid, &info, unix.WEXITED, nil)
		if err == unix.EINTR {
			continue
		}
		if err != nil { // ECHILD: none left
			return
		}
	}
}

// headBuffer keeps the first max bytes written to it and discards the rest.
type headBuffer struct {
	mu  sync.Mutex
	buf []byte
	max int
}

func (h *headBuffer) Write(p []byte) (int, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if room := h.max - len(h.buf); room > 0 {
		h.buf = append(h.buf, p[:min(room, len(p))]...)
	}
	return len(p), nil
}
