package pexec

import (
	"syscall"
	"unsafe"

	"golang.org/x/sys/windows"
)

// ExitWaits returns how many processes the exit waiter watches, and in how
// many batches (one thread each).
func ExitWaits() (processes, batches int) {
	waiter.mu.Lock()
	defer waiter.mu.Unlock()
	for _, b := range waiter.batches {
		processes += b.count
	}
	return processes, len(waiter.batches)
}

// SetAssignFails makes AssignProcessToJobObject fail with err until the
// returned function is called, as where the caller's own job forbids
// nesting (before Windows 8).
func SetAssignFails(err error) (restore func()) {
	old := assignProcess
	assignProcess = func(windows.Handle, windows.Handle) error { return err }
	return func() { assignProcess = old }
}

// SignalPastCheck sends sig as Signal does after its checks of the Handle,
// as a Signal that passed them just before a Close would.
func SignalPastCheck(h *Handle, sig syscall.Signal) error { return h.sysSignal(sig) }

// isProcessInJob is kernel32's IsProcessInJob, which
// golang.org/x/sys/windows does not wrap.
var isProcessInJob = windows.NewLazySystemDLL("kernel32.dll").NewProc("IsProcessInJob")

// InTreeJob reports whether the process of ph is in the job of h's tree.
func InTreeJob(h *Handle, ph windows.Handle) (bool, error) {
	t, ok := h.tree.(*jobTree)
	if !ok || !t.job.acquire() {
		return false, syscall.EINVAL
	}
	defer t.job.release()
	var in int32
	if r, _, err := isProcessInJob.Call(uintptr(ph), uintptr(t.job.h), uintptr(unsafe.Pointer(&in))); r == 0 {
		return false, err
	}
	return in != 0, nil
}

// ActiveInTree returns the number of live processes in the job of h's
// tree.
func ActiveInTree(h *Handle) (int, error) {
	t, ok := h.tree.(*jobTree)
	if !ok || !t.job.acquire() {
		return 0, syscall.EINVAL
	}
	defer t.job.release()
	n, err := t.active()
	return int(n), err
}
