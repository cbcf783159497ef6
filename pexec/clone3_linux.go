package pexec

import "os"

// childHandle builds the Handle of a child that Cmd.Wait will reap. Since
// Go 1.23 the runtime itself spawns every child with CLONE_PIDFD (clone, or
// clone3 when SysProcAttr asks for a cgroup) wherever Go found pidfds
// usable, and keeps that pidfd in the os.Process: the child's Handle uses
// it. Where Go found them unusable, or in PID mode, the Handle holds the
// PID.
func childHandle(p *os.Process) *Handle {
	if Supported() {
		if h := newBorrowedHandle(p, roleCmd); h != nil {
			return h
		}
	}
	return newPIDHandle(p.Pid)
}
