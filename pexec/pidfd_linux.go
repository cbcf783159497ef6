package pexec

import (
	"sync/atomic"

	"golang.org/x/sys/unix"
)

// ownedFD is a pidfd that a Handle owns (every Handle but a Cmd child's).
// Every use holds a reference (refs), so a goroutine using it can never see
// its number recycled.
type ownedFD struct {
	fd  int
	use refs
	reg atomic.Pointer[pollReg] // the exit-poller entry, dropped before the close
}

// acquire takes a reference, or reports false once the descriptor is
// closing.
func (o *ownedFD) acquire() bool { return o.use.acquire() }

// release drops a reference, closing the descriptor if it was the last one
// of a closing descriptor.
func (o *ownedFD) release() {
	if o.use.release() {
		o.closeNow()
	}
}

// close marks the descriptor closing, and closes it now if nobody uses it.
// It reports false if it was already closing.
func (o *ownedFD) close() bool {
	first, unused := o.use.markClosing()
	if unused {
		o.closeNow()
	}
	return first
}

func (o *ownedFD) closeNow() {
	if r := o.reg.Load(); r != nil {
		if p := pollerPtr.Load(); p != nil {
			p.drop(o.fd, r)
		}
	}
	unix.Close(o.fd)
}
