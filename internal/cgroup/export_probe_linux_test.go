package cgroup

// ProbeCgroupInfo exposes probeCgroupInfo.
func ProbeCgroupInfo() error { return probeCgroupInfo() }

// SupportError exposes supportError, the wording of Supported's answer.
func SupportError(err error) error { return supportError(err) }
