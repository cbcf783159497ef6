//go:build unix

package pexec

import (
	"os"
	"syscall"
)

// statusFromState converts the standard library's record.
func statusFromState(ps *os.ProcessState) *Status {
	ws, _ := ps.Sys().(syscall.WaitStatus)
	return &Status{
		pid:      ps.Pid(),
		exited:   ws.Exited(),
		code:     ws.ExitStatus(),
		signal:   ws.Signal(),
		coreDump: ws.CoreDump(),
		state:    ps,
	}
}
