package probe

import (
	"errors"
	"sync"
	"sync/atomic"

	"golang.org/x/sys/unix"
)

// transientErrnos are the errnos that report a shortage at the time of the
// call rather than what the system can do.
var transientErrnos = []error{
	unix.EMFILE,  // no descriptor free in the process (RLIMIT_NOFILE)
	unix.ENFILE,  // none free in the system (fs.file-max)
	unix.ENOMEM,  // no memory
	unix.ENOBUFS, // no buffer space (sockets)
	unix.EAGAIN,  // a limit reached for now (a pids limit, cgroup.max.descendants)
	unix.EINTR,   // interrupted by a signal
}

// Transient reports whether err, or an error it wraps, is one of the errnos
// that say only that a resource was short when the call was made: EMFILE,
// ENFILE, ENOMEM, ENOBUFS, EAGAIN or EINTR. The same call may succeed later.
func Transient(err error) bool {
	if err == nil {
		return false
	}
	for _, e := range transientErrnos {
		if errors.Is(err, e) {
			return true
		}
	}
	return false
}

// result is an answer kept by Once.
type result[T any] struct {
	v   T
	err error
}

// Once returns a function that calls fn and returns its results, like
// [sync.OnceValues], except that an answer whose error is [Transient] is
// returned but not kept: the next call runs fn again. Once an answer is
// kept (a nil error, or any other error), later calls return it without
// calling fn. The function may be called from several goroutines: calls
// made before an answer is kept run fn one at a time, and a call that
// waited for another's fn returns the answer that one kept. If fn panics,
// the panic reaches the caller and nothing is kept.
func Once[T any](fn func() (T, error)) func() (T, error) {
	var (
		mu   sync.Mutex // held while fn runs
		kept atomic.Pointer[result[T]]
	)
	return func() (T, error) {
		if r := kept.Load(); r != nil {
			return r.v, r.err
		}
		mu.Lock()
		defer mu.Unlock()
		if r := kept.Load(); r != nil {
			return r.v, r.err
		}
		v, err := fn()
		if !Transient(err) {
			kept.Store(&result[T]{v, err})
		}
		return v, err
	}
}

// OnceErr is [Once] for a probe that returns only an error.
func OnceErr(fn func() error) func() error {
	once := Once(func() (struct{}, error) { return struct{}{}, fn() })
	return func() error {
		_, err := once()
		return err
	}
}
