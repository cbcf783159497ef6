package pexec

// SetForceProcInfo makes Handle.Info read /proc, as on kernels without
// PIDFD_GET_INFO, until the returned function is called.
func SetForceProcInfo(on bool) (restore func()) {
	old := forceProcInfo
	forceProcInfo = on
	return func() { forceProcInfo = old }
}

// SetForceNoPidfs makes pexec behave as on kernels without pidfs (before
// 6.9) for Handle.ID and Handle.SameProcess, until restore is called.
func SetForceNoPidfs(on bool) (restore func()) {
	old := forceNoPidfs
	forceNoPidfs = on
	return func() { forceNoPidfs = old }
}

// SetParentHook makes Parent call fn between opening the parent and
// checking that it is still the parent, until restore is called.
func SetParentHook(fn func()) (restore func()) {
	old := parentHook
	parentHook = fn
	return func() { parentHook = old }
}
