package pexec

// Info describes a running process, as returned by [Handle.Info]. IDs are
// as seen from the caller's PID and user namespaces.
type Info struct {
	// Pid is the process ID.
	Pid int
	// PPid is the parent's process ID, 0 if the parent is outside the
	// caller's PID namespace.
	PPid int
	// UID and EUID are the real and effective user IDs.
	UID, EUID int
	// GID and EGID are the real and effective group IDs.
	GID, EGID int
	// CgroupID identifies the process's cgroup v2 cgroup (the inode number
	// of its directory in the cgroup2 file system), or is 0 when unknown.
	CgroupID uint64
}
