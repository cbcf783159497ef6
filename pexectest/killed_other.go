//go:build !windows

package pexectest

import (
	"syscall"

	"github.com/pexec-dev/pexec/pexec"
)

// killedBy reports whether the stop ladder's SIGKILL ended cmd's process,
// whose status is st.
func killedBy(cmd *pexec.Cmd, st *pexec.Status) bool {
	return st.Signaled() && st.Signal() == syscall.SIGKILL
}
