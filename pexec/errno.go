package pexec

import (
	"errors"
	"syscall"
)

// isErrno reports whether err is or wraps errno e.
func isErrno(err error, e syscall.Errno) bool {
	var got syscall.Errno
	return errors.As(err, &got) && got == e
}
