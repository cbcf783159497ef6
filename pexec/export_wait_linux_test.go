package pexec

import "os"

// NewCmdChildHandle returns a Handle for the exited, unreaped child p, built
// as Cmd.Start builds its child's (on p's pidfd, registered with the exit
// poller; Handle.Wait observes the exit without reaping). Benchmarks use it
// to time a first Handle.Wait again and again on one exited child, each time
// with a fresh os.Process for it (os.FindProcess opens a new pidfd).
func NewCmdChildHandle(p *os.Process) *Handle { return newBorrowedHandle(p, roleCmd) }
