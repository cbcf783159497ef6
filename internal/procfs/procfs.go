// Package procfs reads the per-process files of /proc that pexec,
// pexectest and internal/cgroup share: /proc/<pid>/stat and the cgroup v2
// line of /proc/<pid>/cgroup. What it reads about a process by PID
// describes whatever process has that PID at the moment of the read: the
// callers check afterwards (a pidfd, a start time) that it was the one they
// meant.
package procfs

import (
	"bytes"
	"fmt"
	"os"
	"strconv"
	"strings"
)

// Stat is what /proc/<pid>/stat says of a process.
type Stat struct {
	Comm    string // the program's name (field 2)
	State   byte   // R, S, D, T, t, Z, X, ... (field 3)
	PPid    int    // parent (field 4)
	Pgrp    int    // process group (field 5)
	Session int    // session (field 6)
	Flags   uint64 // the kernel's PF_* flags of the process (field 9)
	Start   uint64 // start time, in clock ticks after boot (field 22)
	// SigIgnore is the set of ignored signals, bit n-1 for signal n
	// (field 33).
	SigIgnore uint64
	// ExitCode is the status in the form wait(2) reports it (field 52,
	// Linux 3.5+), meaningful once the process is a zombie.
	ExitCode int
}

// Exited reports whether the state is that of a process that has exited
// (a zombie, or dead).
func (s Stat) Exited() bool { return s.State == 'Z' || s.State == 'X' }

// pfForkNoExec is PF_FORKNOEXEC, "forked but didn't exec", from the
// kernel's include/linux/sched.h (golang.org/x/sys has no PF_* flags; they
// appear only in this field of /proc/<pid>/stat).
const pfForkNoExec = 0x00000040

// ForkedNoExec reports whether the process has not yet executed a program
// of its own since it was forked: it still runs its parent's (or is inside
// execve, not yet past the point where the kernel clears the flag). Its
// command line and environment may then be its parent's.
func (s Stat) ForkedNoExec() bool { return s.Flags&pfForkNoExec != 0 }

// ReadStat reads /proc/<pid>/stat.
func ReadStat(pid int) (Stat, error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return Stat{}, err
	}
	return ParseStat(b)
}

// ParseStat parses the contents of a /proc/<pid>/stat.
func ParseStat(b []byte) (Stat, error) {
	// The program's name, in parentheses, may itself contain spaces and
	// parentheses: the fields resume after the last ')'.
	open, end := bytes.IndexByte(b, '('), bytes.LastIndexByte(b, ')')
	if open < 0 || end < open {
		return Stat{}, fmt.Errorf("procfs: bad stat %q", b)
	}
	f := strings.Fields(string(b[end+1:])) // f[0] is field 3, the state
	if len(f) < 31 || len(f[0]) != 1 {
		return Stat{}, fmt.Errorf("procfs: bad stat %q", b)
	}
	s := Stat{State: f[0][0], Comm: string(b[open+1 : end])}
	s.PPid, _ = strconv.Atoi(f[1])
	s.Pgrp, _ = strconv.Atoi(f[2])
	s.Session, _ = strconv.Atoi(f[3])
	s.Flags, _ = strconv.ParseUint(f[6], 10, 64)
	s.Start, _ = strconv.ParseUint(f[19], 10, 64)
	s.SigIgnore, _ = strconv.ParseUint(f[30], 10, 64)
	if len(f) > 49 {
		s.ExitCode, _ = strconv.Atoi(f[49])
	}
	return s, nil
}

// CgroupPath returns the cgroup v2 path of process pid: the "0::" line of
// /proc/<pid>/cgroup.
func CgroupPath(pid int) (string, bool) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/cgroup")
	if err != nil {
		return "", false
	}
	return ParseCgroup(b)
}

// ParseCgroup returns the path on the "0::" line of the contents of a
// /proc/<pid>/cgroup.
func ParseCgroup(b []byte) (string, bool) {
	for line := range strings.Lines(string(b)) {
		if p, ok := strings.CutPrefix(line, "0::"); ok {
			return strings.TrimRight(p, "\n"), true
		}
	}
	return "", false
}
