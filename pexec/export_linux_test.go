package pexec

// SetForcePIDMode makes Supported report false until the returned function
// is called, so tests can run the PID-mode paths on a pidfd kernel.
func SetForcePIDMode(on bool) (restore func()) {
	old := forcePIDMode
	forcePIDMode = on
	return func() { forcePIDMode = old }
}
