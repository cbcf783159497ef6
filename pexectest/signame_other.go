//go:build !unix

package pexectest

import "syscall"

// signalName returns the signal's description, the best there is here.
func signalName(s syscall.Signal) string { return s.String() }
