package pexec

// Probes asks pexec's feature probes, by the feature they look for.
func Probes() map[string]error {
	return map[string]error{
		"pidfds":                     probePidfd(),
		"pidfs":                      probePidfs(),
		"PIDFD_GET_INFO":             probeGetInfo(),
		"PIDFD_SIGNAL_PROCESS_GROUP": probeGroupSignal(),
		"SO_PEERPIDFD":               probePeerPidfd(),
		"pidfd_getfd":                probeGetfd(),
	}
}
