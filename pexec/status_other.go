//go:build !unix

package pexec

import "os"

// statusFromState converts the standard library's record.
func statusFromState(ps *os.ProcessState) *Status {
	return &Status{pid: ps.Pid(), exited: true, code: ps.ExitCode(), state: ps}
}
