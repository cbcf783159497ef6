//go:build linux || windows

package pexec

import "sync/atomic"

// refs counts the uses of an object pexec owns and must close (a pidfd on
// Linux, a process or job HANDLE on Windows), so that closing it while
// another goroutine uses it never lets its number be recycled under that
// goroutine: every use holds a reference, closing marks it, and the object
// is closed when the last reference goes. The scheme is the standard
// library's os.Process handle's: one word, the count shifted left by one,
// with the low bit set once closing.
type refs struct{ word atomic.Uint64 }

const refsClosing = 1

// acquire takes a reference, or reports false once the object is closing.
func (r *refs) acquire() bool {
	for {
		w := r.word.Load()
		if w&refsClosing != 0 {
			return false
		}
		if r.word.CompareAndSwap(w, w+2) {
			return true
		}
	}
}

// release drops a reference. It reports whether it was the last one of a
// closing object: the caller closes the object then.
func (r *refs) release() (last bool) {
	return r.word.Add(^uint64(1)) == refsClosing
}

// markClosing marks the object closing. It reports whether this call did
// (false if it was closing already), and whether no reference was held:
// the caller closes the object at once then, otherwise the last release
// does.
func (r *refs) markClosing() (first, unused bool) {
	for {
		w := r.word.Load()
		if w&refsClosing != 0 {
			return false, false
		}
		if r.word.CompareAndSwap(w, w|refsClosing) {
			return true, w == 0
		}
	}
}
