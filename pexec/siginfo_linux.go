//go:build linux && !(mips || mipsle || mips64 || mips64le)

package pexec

// siginfoChild is the SIGCHLD view of the kernel's siginfo_t: the three
// leading ints, then the union, which is aligned like a pointer.
type siginfoChild struct {
	Signo  int32
	Errno  int32
	Code   int32
	_      [0]uintptr
	Pid    int32
	Uid    uint32
	Status int32
	_      [128]byte // the kernel writes up to 128 bytes in all
}
