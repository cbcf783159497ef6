package pexec

import (
	"sync/atomic"

	"golang.org/x/sys/windows"
)

// ownedHandle is a HANDLE that pexec owns: a process's (every Handle's,
// duplicated, never reopened from a PID) or a job object's (a tree's).
// Every use holds a reference; close marks it closing, and the HANDLE is
// closed when the last reference is released, so a goroutine using it can
// never see its value recycled for another object. The scheme is
// ownedFD's on Linux, and the standard library's os.Process's: one word,
// the reference count shifted left by one, with the low bit set once
// closing.
type ownedHandle struct {
	h    windows.Handle
	word atomic.Uint64

	// For a process HANDLE, its registration with the exit waiter
	// (exitwait_windows.go), made by the first wait and kept until the
	// process exits or the HANDLE closes; both under waiter.mu.
	exited chan struct{} // closed by the exit waiter once the process has exited
	batch  *waitBatch    // the batch watching it, if any
}

const handleClosing = 1

// acquire takes a reference, or reports false once the HANDLE is closing.
func (o *ownedHandle) acquire() bool {
	for {
		w := o.word.Load()
		if w&handleClosing != 0 {
			return false
		}
		if o.word.CompareAndSwap(w, w+2) {
			return true
		}
	}
}

// release drops a reference, closing the HANDLE if it was the last one of
// a closing HANDLE.
func (o *ownedHandle) release() {
	if o.word.Add(^uint64(1)) == handleClosing {
		windows.CloseHandle(o.h)
	}
}

// close marks the HANDLE closing, and closes it now if nobody uses it; a
// batch of the exit waiter that holds it is woken to let it go. It reports
// false if it was already closing.
func (o *ownedHandle) close() bool {
	for {
		w := o.word.Load()
		if w&handleClosing != 0 {
			return false
		}
		if o.word.CompareAndSwap(w, w|handleClosing) {
			if w == 0 {
				windows.CloseHandle(o.h)
			} else {
				unwatch(o)
			}
			return true
		}
	}
}

// duplicate returns a duplicate of h, a HANDLE of the calling process,
// with the same access rights.
func duplicate(h windows.Handle) (windows.Handle, error) {
	var dup windows.Handle
	self := windows.CurrentProcess()
	if err := windows.DuplicateHandle(self, h, self, &dup, 0, false, windows.DUPLICATE_SAME_ACCESS); err != nil {
		return 0, err
	}
	return dup, nil
}
