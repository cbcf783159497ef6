package pexec

import (
	"errors"
	"slices"
	"sync"

	"golang.org/x/sys/windows"
)

// Waiting for processes to exit, on Windows. os/exec blocks one OS thread
// per waited child, in WaitForSingleObject. pexec waits for every process
// of every Handle (Cmd children, with or without a tree, and Handles from
// Open and FromProcess) through one exit waiter: batches of up to 63
// process HANDLEs, each batch watched by one goroutine blocked in
// WaitForMultipleObjects on them and on an event that wakes it to take
// more or let some go. A waiter (Handle.Wait, Done, Cmd.Wait) parks on a
// channel, on Go's scheduler, that the batch closes when the process
// exits. 100 children waited for at once cost 2 OS threads, not 100
// (TestWaitThreads).
//
// Why not the others:
//   - A job object's completion port (JOB_OBJECT_MSG_EXIT_PROCESS) serves
//     only processes in a job, and Windows does not guarantee the delivery
//     of those messages ("messages are intended only as notifications");
//     pexec reads it for trees (jobport_windows.go), where it is the only
//     notice of an empty job, and checks the count behind it.
//   - RegisterWaitForSingleObject runs its callback on a thread of the
//     system's pool, a thread Go does not know, for every exit; it also
//     batches 63 HANDLEs a thread underneath, so it saves nothing.
//   - NtAssociateWaitCompletionPacket (Windows 8+) would let one port
//     serve every wait, but it is undocumented, golang.org/x/sys/windows
//     does not have it, and Wine 8.0, where CI runs, does not either.

// maximumWaitObjects is MAXIMUM_WAIT_OBJECTS (winnt.h), the most HANDLEs
// one WaitForMultipleObjects waits for; x/sys/windows does not define it.
const maximumWaitObjects = 64

// batchMax is how many processes a batch watches: its other slot is its
// wake event.
const batchMax = maximumWaitObjects - 1

// waiter is the exit waiter. Its mutex guards every batch's pending list
// and count, and every ownedHandle's exited and batch fields.
var waiter struct {
	mu      sync.Mutex
	batches []*waitBatch
}

// waitBatch is a goroutine blocked in WaitForMultipleObjects on up to
// batchMax process HANDLEs.
type waitBatch struct {
	wake    windows.Handle // auto-reset event: take pending, let closing go
	pending []*ownedHandle // added, not yet waited for (under waiter.mu)
	count   int            // processes watched or pending (under waiter.mu)

	// Only the batch's goroutine uses these; handles[0] is wake.
	handles []windows.Handle
	owners  []*ownedHandle
}

// errHandleClosing reports that a HANDLE could not be used: it is
// closing.
var errHandleClosing = errors.New("pexec: HANDLE closing")

// errWaiter reports that the exit waiter could not make a batch (no event
// could be created): the waiter then blocks a thread of its own.
var errWaiter = errors.New("pexec: exit waiter unavailable")

// watch returns the channel closed once o's process has exited,
// registering o with a batch the first time. It fails with os.ErrClosed
// once o is closing, unless the exit was seen before.
func (o *ownedHandle) watch() (<-chan struct{}, error) {
	waiter.mu.Lock()
	defer waiter.mu.Unlock()
	if o.exited == nil {
		o.exited = make(chan struct{})
	}
	if o.batch != nil || isClosed(o.exited) {
		return o.exited, nil
	}
	if !o.acquire() {
		return nil, errHandleClosing
	}
	b := batchWithRoom()
	if b == nil {
		o.release()
		return nil, errWaiter
	}
	b.pending = append(b.pending, o)
	b.count++
	o.batch = b
	windows.SetEvent(b.wake)
	return o.exited, nil
}

// batchWithRoom returns a batch that can take one more process, starting
// a new one if needed, or nil if none can be made. The caller holds
// waiter.mu.
func batchWithRoom() *waitBatch {
	for _, b := range waiter.batches {
		if b.count < batchMax {
			return b
		}
	}
	ev, err := windows.CreateEvent(nil, 0, 0, nil)
	if err != nil {
		return nil
	}
	b := &waitBatch{wake: ev, handles: []windows.Handle{ev}, owners: []*ownedHandle{nil}}
	waiter.batches = append(waiter.batches, b)
	go b.run()
	return b
}

// unwatch wakes the batch that holds o, which is closing, to let it go.
// (A batch is retired, and its event closed, only once it holds nothing,
// under waiter.mu: the event is never signalled after its close.)
func unwatch(o *ownedHandle) {
	waiter.mu.Lock()
	defer waiter.mu.Unlock()
	if o.batch != nil {
		windows.SetEvent(o.batch.wake)
	}
}

// run waits until every process of the batch has exited or been let go,
// then retires the batch.
func (b *waitBatch) run() {
	for {
		if !b.update() {
			return
		}
		r, err := windows.WaitForMultipleObjects(b.handles, false, windows.INFINITE)
		n := uint32(len(b.handles))
		switch {
		case r == windows.WAIT_OBJECT_0:
			// Woken: update takes the pending and lets closing go.
		case r > windows.WAIT_OBJECT_0 && r < windows.WAIT_OBJECT_0+n:
			waiter.mu.Lock()
			b.remove(int(r-windows.WAIT_OBJECT_0), true)
			waiter.mu.Unlock()
		default:
			// WAIT_FAILED (err says why): every HANDLE is held, so none
			// should be invalid. Look at each alone, and let go, as
			// exited, those that cannot be waited for: their waiters then
			// read the error from GetExitCodeProcess, and none waits for
			// ever.
			_ = err
			waiter.mu.Lock()
			for i := len(b.owners) - 1; i >= 1; i-- {
				if s, _ := windows.WaitForSingleObject(b.handles[i], 0); s != uint32(windows.WAIT_TIMEOUT) {
					b.remove(i, true)
				}
			}
			waiter.mu.Unlock()
		}
	}
}

// update takes the pending processes and lets go of those whose HANDLE is
// closing. If none is left, it retires the batch and reports false.
func (b *waitBatch) update() bool {
	waiter.mu.Lock()
	defer waiter.mu.Unlock()
	for _, o := range b.pending {
		b.handles = append(b.handles, o.h)
		b.owners = append(b.owners, o)
	}
	clear(b.pending)
	b.pending = b.pending[:0]
	for i := len(b.owners) - 1; i >= 1; i-- {
		if o := b.owners[i]; o.use.closing() {
			s, _ := windows.WaitForSingleObject(o.h, 0)
			b.remove(i, s == windows.WAIT_OBJECT_0)
		}
	}
	if len(b.owners) > 1 {
		return true
	}
	waiter.batches = slices.DeleteFunc(waiter.batches, func(x *waitBatch) bool { return x == b })
	windows.CloseHandle(b.wake)
	return false
}

// remove lets go of the process in slot i, closing its exited channel if
// it has exited. The caller holds waiter.mu.
func (b *waitBatch) remove(i int, exited bool) {
	o := b.owners[i]
	last := len(b.owners) - 1
	b.handles[i], b.owners[i] = b.handles[last], b.owners[last]
	b.handles, b.owners[last] = b.handles[:last], nil
	b.owners = b.owners[:last]
	b.count--
	o.batch = nil
	if exited {
		close(o.exited)
	}
	o.release()
}
