//go:build !linux

// Command bench compares os/exec and pexec on Linux, where pexec waits for
// all its children through one epoll instance instead of a thread each. On other systems pexec works through the
// standard library's os.Process, so there is nothing to compare; this stub
// says so.
package main

import (
	"fmt"
	"os"
	"runtime"
)

func main() {
	fmt.Fprintf(os.Stderr, "bench: the os/exec vs pexec benchmark needs Linux (pidfds); this is %s\n", runtime.GOOS)
	os.Exit(2)
}
