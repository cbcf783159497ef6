//go:build !windows

package main

import "github.com/pexec-dev/pexec/pexec"

// shell returns the command that runs line in the shell.
func shell(line string) []string { return []string{"sh", "-c", line} }

// allowGracefulStop prepares cmd for the graceful step of a stop: nothing
// to do on Unix, where SIGTERM reaches any process.
func allowGracefulStop(*pexec.Cmd) {}

// killedStatus is how the status of a process killed by the stop ladder
// reads.
const killedStatus = "signal: killed"
