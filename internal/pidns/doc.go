// Package pidns runs a process as PID 1 of a PID namespace of its own (Linux,
// CAP_SYS_ADMIN), where nothing but that process creates processes, so it
// can choose the PID of its next child with SetNextPID: the proof tests and
// the demo use it to force PID reuse.
package pidns
