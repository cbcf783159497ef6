package pexec

import (
	"os"
	"runtime"
	"strconv"
	"strings"
	"syscall"
)

// SetForcePIDMode makes Supported report false until the returned function
// is called, so tests can run the PID-mode paths on a pidfd kernel.
func SetForcePIDMode(on bool) (restore func()) {
	old := forcePIDMode
	forcePIDMode = on
	return func() { forcePIDMode = old }
}

// SetNoExitPoller makes Cmd children started until the returned function is
// called wait without the exit poller (as where epoll cannot be set up): a
// thread blocks in poll(2) on the pidfd.
func SetNoExitPoller(on bool) (restore func()) {
	old := noExitPoller.Swap(on)
	return func() { noExitPoller.Store(old) }
}

// SetNoPark makes the exit poller's reader block a thread in epoll_wait
// instead of parking on the netpoller (as where the netpoller refuses the
// epoll descriptor), until the returned function is called.
func SetNoPark(on bool) (restore func()) {
	old := noPark.Swap(on)
	return func() { noPark.Store(old) }
}

// ExitPollerUp reports whether the shared exit poller has been set up.
func ExitPollerUp() bool { return pollerPtr.Load() != nil }

// SignalPastCheck sends sig as Signal does after its checks of the Handle,
// as a Signal that passed them just before a Close would.
func SignalPastCheck(h *Handle, sig syscall.Signal) error { return h.sysSignal(sig) }

// WaitPastCheck runs one step of WaitContext's wait as a WaitContext that
// read the Handle's phase just before a Close would.
func WaitPastCheck(h *Handle, stop <-chan struct{}) error { return h.sysWait(stop) }

// Observers returns the number of waiters that hold h's pidfd and may read
// its status (see Handle.observing).
func Observers(h *Handle) int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.sys.observers
}

// ExitPollerEntries returns the number of descriptors in the exit poller's
// epoll instance (the "tfd:" lines of its fdinfo), its eventfd included,
// or -1 if the poller is not set up.
func ExitPollerEntries() int {
	p := pollerPtr.Load()
	if p == nil {
		return -1
	}
	b, err := os.ReadFile("/proc/self/fdinfo/" + strconv.Itoa(p.epfd))
	if err != nil {
		return -1
	}
	return strings.Count(string(b), "tfd:")
}

// SetForceNoGroupSignal makes pexec behave as on kernels without
// PIDFD_SIGNAL_PROCESS_GROUP (before 6.9) until restore is called.
func SetForceNoGroupSignal(on bool) (restore func()) {
	old := forceNoGroupSignal.Swap(on)
	return func() { forceNoGroupSignal.Store(old) }
}

// ReadThreadState reads the calling thread's inheritable state, as each
// Start with Pdeathsig does, and reports whether it could be read whole.
func ReadThreadState() bool {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	st := readThreadState()
	return st.err == nil
}
