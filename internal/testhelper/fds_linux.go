package testhelper

import (
	"errors"
	"fmt"
	"os"

	"golang.org/x/sys/unix"
)

// ExhaustFDs leaves the calling process without a free descriptor, as a
// program that has run out of them: it lowers the soft RLIMIT_NOFILE to
// limit (if it is higher) and opens the null device until open fails with
// EMFILE. It returns how many descriptors it opened and release, which
// closes them and restores the limit. The whole process is short of
// descriptors until release, so call it in a helper process, after setting
// up what the runtime needs one for (the netpoller: any [os.Pipe]).
func ExhaustFDs(limit uint64) (opened int, release func(), err error) {
	var old unix.Rlimit
	if err := unix.Getrlimit(unix.RLIMIT_NOFILE, &old); err != nil {
		return 0, nil, os.NewSyscallError("getrlimit", err)
	}
	if old.Cur > limit {
		lowered := unix.Rlimit{Cur: limit, Max: old.Max}
		if err := unix.Setrlimit(unix.RLIMIT_NOFILE, &lowered); err != nil {
			return 0, nil, os.NewSyscallError("setrlimit", err)
		}
	}
	var fds []int
	release = func() {
		for _, fd := range fds {
			unix.Close(fd)
		}
		fds = nil
		unix.Setrlimit(unix.RLIMIT_NOFILE, &old)
	}
	for {
		fd, err := unix.Open(os.DevNull, unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err == nil {
			fds = append(fds, fd)
			continue
		}
		if errors.Is(err, unix.EMFILE) {
			return len(fds), release, nil
		}
		release()
		return 0, nil, fmt.Errorf("testhelper: filling the descriptor table: open %s after %d: %w", os.DevNull, len(fds), err)
	}
}
