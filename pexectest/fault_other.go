//go:build !linux

package pexectest

import (
	"errors"
	"fmt"
	"os"
	"runtime"

	"github.com/pexec-dev/pexec/pexec"
)

// errNotLinux is what the fault injections return outside Linux.
func errNotLinux(what string) error {
	return fmt.Errorf("pexectest: %s needs Linux, not %s: %w", what, runtime.GOOS, errors.ErrUnsupported)
}

func faultUnsupported() string { return errNotLinux("fault injection").Error() }

// setupHelper refuses the faults, which a helper here cannot set up.
func setupHelper() error {
	for _, k := range []string{jailEnv, pidnsEnv, reaperEnv} {
		if _, ok := os.LookupEnv(k); ok {
			return errNotLinux(k)
		}
	}
	return nil
}

func setPIDNamespace(*pexec.Cmd) error { return errNotLinux("InPIDNamespace") }

func probeFault() int { return 2 }

// EnterJail returns an error wrapping [errors.ErrUnsupported]: seccomp
// filters are Linux's.
func EnterJail(j Jail) error { return errNotLinux("EnterJail") }

// SetNextPID returns an error wrapping [errors.ErrUnsupported]: PID
// namespaces are Linux's.
func SetNextPID(pid int) error { return errNotLinux("SetNextPID") }

// StartWithPID returns an error wrapping [errors.ErrUnsupported]: PID
// namespaces are Linux's.
func StartWithPID(pid int, newCmd func() *pexec.Cmd) (*pexec.Cmd, error) {
	return nil, errNotLinux("StartWithPID")
}
