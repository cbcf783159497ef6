//go:build !linux

// Command supervisor is a small supervisor–worker system built on pexec
// Handles. It needs Linux: its workers watch their supervisor through
// pexec.Parent, which needs pidfds, and the scenario relies on a child
// subreaper. This stub explains.
package main

import (
	"fmt"
	"os"
	"runtime"
)

func main() {
	fmt.Fprintf(os.Stderr, "The supervisor example needs Linux (pidfds for pexec.Parent, PR_SET_CHILD_SUBREAPER); this is %s.\n", runtime.GOOS)
}
