package pexec

import "os"

// childHandle builds the Handle of a child that Cmd.Wait will reap. Since
// Go 1.23 the runtime itself spawns every child with CLONE_PIDFD (clone, or
// clone3 when SysProcAttr asks for a cgroup) wherever Go found pidfds
// usable, and keeps that pidfd in the os.Process: the child's Handle uses
// it. Where Go found them unusable the Handle holds the PID. The choice is
// made by the system alone, never by the Process: while pidfds are
// supported, a Process without one (released, reaped, or made by hand)
// gives a pidfd-mode Handle that refuses everything, never a PID-mode one.
func childHandle(p *os.Process) *Handle {
	if Supported() {
		return newBorrowedHandle(p, roleCmd)
	}
	return newPIDHandle(p)
}

// childMode is the mode of a Cmd child's Handle here.
func childMode() Mode {
	if Supported() {
		return ModePidFD
	}
	return ModePID
}
