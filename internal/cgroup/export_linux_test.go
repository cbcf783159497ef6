//go:build linux

package cgroup

import (
	"testing"
	"time"
)

// ParseRoot exposes parseRoot.
func ParseRoot(mountinfo, cgroup string) (mount, dir, rel string, err error) {
	w, err := parseRoot([]byte(mountinfo), []byte(cgroup))
	return w.mount, w.dir, w.rel, err
}

// Creator is a leaf creator's identity, as a leaf name encodes it.
type Creator struct {
	Pid   int
	Kind  byte // 'i': pidfs inode number, 't': start time
	Key   uint64
	PidNS uint64
}

// LeafName returns the name of c's leaf number seq.
func LeafName(c Creator, seq uint64) string {
	return creator{pid: c.Pid, kind: c.Kind, key: c.Key, pidns: c.PidNS}.leafName(seq)
}

// ParseLeafName exposes parseLeafName.
func ParseLeafName(name string) (Creator, uint64, bool) {
	c, seq, ok := parseLeafName(name)
	return Creator{Pid: c.pid, Kind: c.kind, Key: c.key, PidNS: c.pidns}, seq, ok
}

// Identity returns the calling process's creator identity.
func Identity() (Creator, error) {
	c, err := identity()
	return Creator{Pid: c.pid, Kind: c.kind, Key: c.key, PidNS: c.pidns}, err
}

// PidfsID exposes pidfsID.
func PidfsID(pidfd int) (uint64, error) { return pidfsID(pidfd) }

// StartTime exposes startTime.
func StartTime(pid int) (uint64, error) { return startTime(pid) }

// CloneError exposes cloneError.
func CloneError(err error, dir string) error { return cloneError(err, dir) }

// ForceNoKillFile makes Kill work as on kernels without cgroup.kill until
// the test ends.
func ForceNoKillFile(t testing.TB) {
	forceNoKillFile = true
	t.Cleanup(func() { forceNoKillFile = false })
}

// ForceProcCgroup makes Signal check membership through /proc, as on
// kernels without PIDFD_GET_INFO, until the test ends.
func ForceProcCgroup(t testing.TB) {
	forceProcCgroup = true
	t.Cleanup(func() { forceProcCgroup = false })
}

// AddFakeMembers makes Signal treat pids as if cgroup.procs had listed
// them (members whose PIDs were then reused) until the test ends.
func AddFakeMembers(t testing.TB, pids ...int) {
	testExtraPIDs = pids
	t.Cleanup(func() { testExtraPIDs = nil })
}

// SetFreezeTimeout changes how long Signal waits for "frozen 1" until the
// test ends.
func SetFreezeTimeout(t testing.TB, d time.Duration) {
	old := freezeTimeout
	freezeTimeout = d
	t.Cleanup(func() { freezeTimeout = old })
}
