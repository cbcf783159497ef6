package main

import (
	"fmt"
	"os"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// Limits the scale runs can hit, and what the benchmark raises. A Go
// process waiting for N children through os/exec uses about N threads (up to
// Go's own limit of 10,000), each with a PID; pexec holds one descriptor per
// child (the pidfd kept by os.Process, which the child's Handle uses).

// limitChange is one limit the benchmark looked at: raised, or found enough.
type limitChange struct {
	Name    string `json:"name"`
	From    string `json:"from"`
	To      string `json:"to,omitempty"` // empty when left unchanged
	Need    int64  `json:"need"`
	Comment string `json:"comment,omitempty"`
}

func (c limitChange) String() string {
	switch {
	case c.To == "" && c.Comment != "":
		return fmt.Sprintf("%s %s (need %d): %s", c.Name, c.From, c.Need, c.Comment)
	case c.To == "":
		return fmt.Sprintf("%s %s, enough for %d, unchanged", c.Name, c.From, c.Need)
	}
	return fmt.Sprintf("%s raised %s -> %s (need %d)", c.Name, c.From, c.To, c.Need)
}

// raiseLimits makes room for maxN children waited at once: RLIMIT_NOFILE
// (inherited by the scale subprocesses), and, as root, kernel.pid_max and
// kernel.threads-max. restore puts the sysctls back; call it on every path.
func raiseLimits(maxN int) (changes []limitChange, restore func(), err error) {
	var undo []func()
	restore = func() {
		for i := len(undo) - 1; i >= 0; i-- {
			undo[i]()
		}
	}

	// One descriptor per child (its os.Process's pidfd, which pexec's
	// Handle shares), plus the runtime's and some slack.
	needFiles := uint64(maxN + 1024)
	var rl unix.Rlimit
	if err := unix.Getrlimit(unix.RLIMIT_NOFILE, &rl); err != nil {
		return nil, restore, os.NewSyscallError("getrlimit", err)
	}
	ch := limitChange{Name: "RLIMIT_NOFILE", From: fmt.Sprintf("%d/%d", rl.Cur, rl.Max), Need: int64(needFiles)}
	if rl.Cur < needFiles {
		nl := unix.Rlimit{Cur: needFiles, Max: max(rl.Max, needFiles)}
		if err := unix.Setrlimit(unix.RLIMIT_NOFILE, &nl); err != nil {
			ch.Comment = fmt.Sprintf("cannot raise: %v", err)
			if nl.Max > rl.Max && !hasCapability(unix.CAP_SYS_RESOURCE) {
				ch.Comment += " (raising the hard limit needs CAP_SYS_RESOURCE, which this process lacks)"
			}
		} else {
			ch.To = fmt.Sprintf("%d/%d", nl.Cur, nl.Max)
		}
	}
	changes = append(changes, ch)

	// Tasks: the children, a Go process at its thread limit, what runs now.
	tasks := runningTasks()
	needTasks := int64(maxN + 10000 + tasks + 2000)
	for _, sysctl := range []string{"kernel.pid_max", "kernel.threads-max"} {
		ch, undoFn := raiseSysctl(sysctl, needTasks)
		changes = append(changes, ch)
		if undoFn != nil {
			undo = append(undo, undoFn)
		}
	}
	return changes, restore, nil
}

// raiseSysctl raises the integer sysctl name to need if it is lower, and
// returns how to put it back.
func raiseSysctl(name string, need int64) (limitChange, func()) {
	path := "/proc/sys/" + strings.ReplaceAll(name, ".", "/")
	ch := limitChange{Name: name, Need: need}
	b, err := os.ReadFile(path)
	if err != nil {
		ch.From, ch.Comment = "?", err.Error()
		return ch, nil
	}
	old := strings.TrimSpace(string(b))
	ch.From = old
	cur, err := strconv.ParseInt(old, 10, 64)
	if err != nil || cur >= need {
		return ch, nil
	}
	to := strconv.FormatInt(need, 10)
	if err := os.WriteFile(path, []byte(to), 0); err != nil {
		ch.Comment = fmt.Sprintf("cannot raise (root needed): %v", err)
		return ch, nil
	}
	ch.To = to
	return ch, func() { os.WriteFile(path, []byte(old), 0) }
}

// runningTasks returns the number of threads on the system (the second
// half of the fourth field of /proc/loadavg), or 1000 if unknown.
func runningTasks() int {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return 1000
	}
	f := strings.Fields(string(b))
	if len(f) < 4 {
		return 1000
	}
	_, total, _ := strings.Cut(f[3], "/")
	n, err := strconv.Atoi(total)
	if err != nil {
		return 1000
	}
	return n
}

// procStatusField returns the value of field (such as "Threads") in
// /proc/self/status, trimmed.
func procStatusField(field string) (string, bool) {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return "", false
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, field+":"); ok {
			return strings.TrimSpace(v), true
		}
	}
	return "", false
}

// procStatus returns the value of field (such as "Threads" or "VmHWM") in
// /proc/self/status as an integer (kB for memory fields), or -1.
func procStatus(field string) int64 {
	v, _ := procStatusField(field)
	n, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(v, "kB")), 10, 64)
	if err != nil {
		return -1
	}
	return n
}

// hasCapability reports whether capability c is in the effective set
// (CapEff in /proc/self/status).
func hasCapability(c int) bool {
	v, _ := procStatusField("CapEff")
	mask, err := strconv.ParseUint(v, 16, 64)
	return err == nil && mask&(1<<uint(c)) != 0
}
