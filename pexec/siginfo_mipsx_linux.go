//go:build linux && (mips || mipsle || mips64 || mips64le)

package pexec

// siginfoChild is the SIGCHLD view of the kernel's siginfo_t; MIPS puts
// si_code before si_errno.
type siginfoChild struct {
	Signo  int32
	Code   int32
	Errno  int32
	_      [0]uintptr
	Pid    int32
	Uid    uint32
	Status int32
	_      [128]byte // the kernel writes up to 128 bytes in all
}
