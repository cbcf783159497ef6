package pexec

// StatusFromWaitStatus exposes statusFromWaitStatus, the reading of a
// wait(2)-style status word from the pidfd exit record, to FuzzStatus.
func StatusFromWaitStatus(pid int, word int32) *Status { return statusFromWaitStatus(pid, word) }
