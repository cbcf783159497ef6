package pexec

// NewCmdChildHandle returns a Handle for the child pid built as Cmd.Start
// builds its child's (Handle.Wait observes the exit without reaping), taking
// ownership of pidfd. Benchmarks use it to time a first Handle.Wait again
// and again on one exited child, with a duplicate of its pidfd each time.
func NewCmdChildHandle(pidfd, pid int) (*Handle, error) { return newPidfdHandle(pidfd, pid, true) }
