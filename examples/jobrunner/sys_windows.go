package main

import (
	"cmp"
	"os"
	"syscall"

	"github.com/pexec-dev/pexec/pexec"
)

// shell returns the command that runs line in the shell, cmd.exe. Go
// quotes line as one argument, by the rules of CommandLineToArgvW, which
// cmd.exe does not follow: a line with double quotes may not reach it
// intact.
func shell(line string) []string {
	return []string{cmp.Or(os.Getenv("ComSpec"), "cmd.exe"), "/C", line}
}

// allowGracefulStop prepares cmd for the graceful step of a stop: on
// Windows, that step is CTRL_BREAK_EVENT (os.Interrupt in a Go program) to
// the console process group that the job's process leads, which it does
// only if started with CREATE_NEW_PROCESS_GROUP. Without it the stop kills
// at once. (A Ctrl-C typed at the console then reaches the runner alone,
// which stops the jobs itself.)
func allowGracefulStop(cmd *pexec.Cmd) {
	if cmd.SysProcAttr == nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{}
	}
	cmd.SysProcAttr.CreationFlags |= syscall.CREATE_NEW_PROCESS_GROUP
}

// killedStatus is how the status of a process killed by the stop ladder
// reads: Windows has no signal statuses, and pexec terminates a process
// (or a job object) with exit code 1, as os/exec's Kill does.
const killedStatus = "exit status 1"
