// Package pidns runs a process as PID 1 of a PID namespace of its own (Linux,
// CAP_SYS_ADMIN), where nothing but that process creates processes, so it
// can choose the PID of its next child with SetNextPID, to force PID reuse.
// pexectest builds its public InPIDNamespace and SetNextPID on it (pexec's
// proof tests use those), and the demo, cmd/pidreuse, uses it directly.
package pidns
