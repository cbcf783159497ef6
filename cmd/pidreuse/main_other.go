//go:build !linux

// Command pidreuse shows, live, a PID being reused: a PID-based kill hitting
// an innocent newcomer while a pexec Handle refuses with os.ErrProcessDone.
// It needs Linux, where pexec's Handles hold pidfds; this stub explains.
package main

import (
	"fmt"
	"runtime"

	"github.com/pexec-dev/pexec/pexec"
)

func main() {
	fmt.Printf("The PID-reuse demo needs Linux: it relies on pidfds (Linux 5.3+) and, to force\n"+
		"a PID to be reused, on a private PID namespace. On %s, pexec works with plain\n"+
		"PIDs (pexec.Supported() = %t): a Handle still refuses to signal a child that has\n"+
		"been reaped, but cannot tell a reused PID from the original process otherwise.\n",
		runtime.GOOS, pexec.Supported())
}
