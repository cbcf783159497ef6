package pexec

import (
	"os"
	"sync"
)

// For a nil Stdin, Stdout or Stderr, os/exec opens the null device for
// every child, and closes it again after the start: three opens and three
// closes per Run. pexec gives every child the same two descriptors of the
// null device instead, one read-only and one write-only, opened once for
// the life of the program. The child sees what os/exec gives it: the null
// device, with the same access mode. What a child can do to a shared file
// description has no effect on the null device: it has no offset, reads see
// end of file and writes are discarded whatever the file status flags
// (O_NONBLOCK, O_APPEND), and it never signals readiness (O_ASYNC). The one
// thing shared is a flock(2) lock, which one child could hold on the
// description of all; os/exec's children each have their own. The Cmd's
// fields stay nil, as with os/exec.

var (
	nullMu   sync.Mutex
	nullR    *os.File // read-only, for Stdin
	nullW    *os.File // write-only, for Stdout and Stderr
	nullOpen bool
)

// nullFiles returns the shared null-device files, opening them on first
// use. A failure (no descriptor free) is not remembered: it returns nils,
// and os/exec then opens the device itself, failing as it would.
func nullFiles() (r, w *os.File) {
	nullMu.Lock()
	defer nullMu.Unlock()
	if !nullOpen {
		rf, err := os.Open(os.DevNull)
		if err != nil {
			return nil, nil
		}
		wf, err := os.OpenFile(os.DevNull, os.O_WRONLY, 0)
		if err != nil {
			rf.Close()
			return nil, nil
		}
		nullR, nullW, nullOpen = rf, wf, true
	}
	return nullR, nullW
}
