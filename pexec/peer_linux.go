package pexec

import (
	"fmt"
	"net"
	"os"

	"github.com/pexec-dev/pexec/internal/probe"
	"golang.org/x/sys/unix"
)

// probePeerPidfd checks, once, for SO_PEERPIDFD (Linux 6.5+) on a socket
// pair, whose peer is the calling process; older kernels answer ENOPROTOOPT.
var probePeerPidfd = probe.OnceErr(func() error {
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return unsupported("SO_PEERPIDFD", "6.5", os.NewSyscallError("socketpair", err))
	}
	defer unix.Close(fds[0])
	defer unix.Close(fds[1])
	pfd, err := unix.GetsockoptInt(fds[0], unix.SOL_SOCKET, unix.SO_PEERPIDFD)
	if err != nil {
		return unsupported("SO_PEERPIDFD", "6.5", os.NewSyscallError("getsockopt", err))
	}
	unix.Close(pfd)
	return nil
})

// PeerHandle returns a Handle for the process at the other end of the
// connected Unix socket c: the process that connected to a listening
// socket, that c connected to, or that created the socket pair. It wraps
// getsockopt(SO_PEERPIDFD) (Linux 6.5+), which gives a pidfd for the very
// process whose credentials the socket recorded, so a server can identify
// and watch its client without the PID race of SO_PEERCRED. The Handle is
// not a [Cmd]'s: its Wait reaps the peer if it is the caller's child.
//
// If the peer has already been reaped, PeerHandle returns an error wrapping
// [os.ErrProcessDone]; for a socket without a peer (not connected), one
// wrapping [os.ErrInvalid]. On kernels without SO_PEERPIDFD, or without
// pidfd support, it returns an error wrapping [errors.ErrUnsupported].
func PeerHandle(c *net.UnixConn) (*Handle, error) {
	if c == nil {
		return nil, fmt.Errorf("pexec: PeerHandle: nil *net.UnixConn: %w", os.ErrInvalid)
	}
	if !Supported() {
		return nil, fmt.Errorf("pexec: PeerHandle: %w", errOpenPIDMode)
	}
	if err := probePeerPidfd(); err != nil {
		return nil, err
	}
	rc, err := c.SyscallConn()
	if err != nil {
		return nil, fmt.Errorf("pexec: PeerHandle: %w", err)
	}
	pfd := -1
	var serr error
	if err := rc.Control(func(fd uintptr) {
		pfd, serr = unix.GetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_PEERPIDFD)
	}); err != nil {
		// The only failure of RawConn.Control: c is closed.
		return nil, fmt.Errorf("pexec: PeerHandle: %w: %w", os.ErrClosed, err)
	}
	switch serr {
	case nil:
	case unix.ENODATA:
		return nil, fmt.Errorf("pexec: PeerHandle: the socket has no peer credentials (not connected): %w: %w", os.ErrInvalid, os.NewSyscallError("getsockopt", serr))
	case unix.ESRCH, unix.EINVAL:
		// Older kernels cannot make a pidfd for a peer that has exited.
		return nil, fmt.Errorf("pexec: PeerHandle: %w", os.ErrProcessDone)
	default:
		return nil, os.NewSyscallError("getsockopt", serr)
	}
	pid, err := pidfdPid("PeerHandle", pfd)
	if err != nil {
		unix.Close(pfd)
		return nil, err
	}
	return newOwnedHandle(pfd, pid, roleOwn), nil
}
