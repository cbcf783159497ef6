package pexec

import "syscall"

// gracefulSignal is Stop's first step on Windows: os.Interrupt, which is
// CTRL_BREAK_EVENT to the console process group the child leads (see
// Handle.Signal).
const gracefulSignal = syscall.SIGINT
