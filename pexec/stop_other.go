//go:build !windows

package pexec

import "syscall"

// gracefulSignal is Stop's first step: SIGTERM.
const gracefulSignal = syscall.SIGTERM
