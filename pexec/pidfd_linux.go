package pexec

import (
	"sync/atomic"

	"golang.org/x/sys/unix"
)

// ownedFD is a pidfd that a Handle owns (every Handle but a Cmd child's).
// Every use holds a reference; Close marks it closing, and the descriptor
// is closed when the last reference is released, so a goroutine using it
// can never see its number recycled. The scheme is the standard library's
// os.Process handle's: one word, the reference count shifted left by one,
// with the low bit set once closing.
type ownedFD struct {
	fd   int
	word atomic.Uint64
	reg  atomic.Pointer[pollReg] // the exit-poller entry, dropped before the close
}

const fdClosing = 1

// acquire takes a reference, or reports false once the descriptor is
// closing.
func (o *ownedFD) acquire() bool {
	for {
		w := o.word.Load()
		if w&fdClosing != 0 {
			return false
		}
		if o.word.CompareAndSwap(w, w+2) {
			return true
		}
	}
}

// release drops a reference, closing the descriptor if it was the last one
// of a closing descriptor.
func (o *ownedFD) release() {
	if o.word.Add(^uint64(1)) == fdClosing {
		o.closeNow()
	}
}

// close marks the descriptor closing, and closes it now if nobody uses it.
// It reports false if it was already closing.
func (o *ownedFD) close() bool {
	for {
		w := o.word.Load()
		if w&fdClosing != 0 {
			return false
		}
		if o.word.CompareAndSwap(w, w|fdClosing) {
			if w == 0 {
				o.closeNow()
			}
			return true
		}
	}
}

func (o *ownedFD) closeNow() {
	if r := o.reg.Load(); r != nil {
		if p := pollerPtr.Load(); p != nil {
			p.drop(o.fd, r)
		}
	}
	unix.Close(o.fd)
}
