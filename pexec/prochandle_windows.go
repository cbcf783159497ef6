package pexec

import "golang.org/x/sys/windows"

// ownedHandle is a HANDLE that pexec owns: a process's (every Handle's,
// duplicated, never reopened from a PID) or a job object's (a tree's).
// Every use holds a reference (refs, as ownedFD's on Linux), so a goroutine
// using it can never see its value recycled for another object.
type ownedHandle struct {
	h   windows.Handle
	use refs

	// For a process HANDLE, its registration with the exit waiter
	// (exitwait_windows.go), made by the first wait and kept until the
	// process exits or the HANDLE closes; both under waiter.mu.
	exited chan struct{} // closed by the exit waiter once the process has exited
	batch  *waitBatch    // the batch watching it, if any
}

// acquire takes a reference, or reports false once the HANDLE is closing.
func (o *ownedHandle) acquire() bool { return o.use.acquire() }

// release drops a reference, closing the HANDLE if it was the last one of
// a closing HANDLE.
func (o *ownedHandle) release() {
	if o.use.release() {
		windows.CloseHandle(o.h)
	}
}

// closing reports whether the HANDLE has been marked closing.
func (r *refs) closing() bool { return r.word.Load()&refsClosing != 0 }

// close marks the HANDLE closing, and closes it now if nobody uses it; a
// batch of the exit waiter that holds it is woken to let it go. It reports
// false if it was already closing.
func (o *ownedHandle) close() bool {
	first, unused := o.use.markClosing()
	switch {
	case unused:
		windows.CloseHandle(o.h)
	case first:
		unwatch(o)
	}
	return first
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
