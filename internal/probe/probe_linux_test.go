package probe_test

import (
	"errors"
	"fmt"
	"os"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/pexec-dev/pexec/internal/probe"
	"golang.org/x/sys/unix"
)

func TestTransient(t *testing.T) {
	tests := []struct {
		name string
		err  error
		want bool
	}{
		{"nil", nil, false},
		{"EMFILE", unix.EMFILE, true},
		{"ENFILE", unix.ENFILE, true},
		{"ENOMEM", unix.ENOMEM, true},
		{"ENOBUFS", unix.ENOBUFS, true},
		{"EAGAIN", unix.EAGAIN, true},
		{"EINTR", unix.EINTR, true},
		{"EMFILE in a SyscallError", os.NewSyscallError("pidfd_open", unix.EMFILE), true},
		{"EMFILE in a PathError", &os.PathError{Op: "open", Path: "/proc/self/mountinfo", Err: unix.EMFILE}, true},
		{"EMFILE wrapped twice", fmt.Errorf("cgroup: %w", &os.PathError{Op: "openat", Path: "x", Err: unix.EMFILE}), true},
		{"ENOSYS", unix.ENOSYS, false},
		{"EPERM", os.NewSyscallError("clone3", unix.EPERM), false},
		{"EINVAL", unix.EINVAL, false},
		{"EOPNOTSUPP", unix.EOPNOTSUPP, false},
		{"ENOENT", unix.ENOENT, false},
		{"ErrUnsupported", errors.ErrUnsupported, false},
		{"EMFILE only in the text", errors.New("open: too many open files"), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := probe.Transient(tt.err); got != tt.want {
				t.Errorf("Transient(%v) = %v; want %v", tt.err, got, tt.want)
			}
		})
	}
}

// TestOnceKeeps: a probe's answers in turn, and which calls ran it.
func TestOnceKeeps(t *testing.T) {
	definite := os.NewSyscallError("pidfd_open", unix.ENOSYS)
	tests := []struct {
		name    string
		answers []error // what fn returns on its 1st, 2nd, ... run
		calls   int
		want    []error // what the calls return
		runs    int     // how often fn ran
	}{
		{"success kept", []error{nil}, 3, []error{nil, nil, nil}, 1},
		{"definite error kept", []error{definite}, 3, []error{definite, definite, definite}, 1},
		{"EMFILE not kept", []error{unix.EMFILE, nil}, 3, []error{unix.EMFILE, nil, nil}, 2},
		{"transient errors in a row", []error{unix.EINTR, os.NewSyscallError("socketpair", unix.ENFILE), unix.EAGAIN, definite}, 5,
			[]error{unix.EINTR, os.NewSyscallError("socketpair", unix.ENFILE), unix.EAGAIN, definite, definite}, 4},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			runs := 0
			once := probe.Once(func() (int, error) {
				err := tt.answers[runs]
				runs++
				return runs, err
			})
			var got []error
			var vals []int
			for range tt.calls {
				v, err := once()
				got = append(got, err)
				vals = append(vals, v)
			}
			if diff := cmp.Diff(tt.want, got, cmp.Comparer(func(a, b error) bool { return fmt.Sprint(a) == fmt.Sprint(b) })); diff != "" {
				t.Errorf("errors (-want +got):\n%s", diff)
			}
			if runs != tt.runs {
				t.Errorf("fn ran %d times; want %d", runs, tt.runs)
			}
			// The value comes with its error: the kept one is the last run's.
			if last := vals[len(vals)-1]; last != tt.runs {
				t.Errorf("last call's value = %d; want %d (the run whose answer was kept)", last, tt.runs)
			}
		})
	}
}

// TestOnceErr: OnceErr keeps and forgets as Once does.
func TestOnceErr(t *testing.T) {
	answers := []error{unix.ENOMEM, unix.EOPNOTSUPP}
	runs := 0
	once := probe.OnceErr(func() error { runs++; return answers[runs-1] })
	var got []string
	for range 3 {
		got = append(got, fmt.Sprint(once()))
	}
	want := []string{unix.ENOMEM.Error(), unix.EOPNOTSUPP.Error(), unix.EOPNOTSUPP.Error()}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("OnceErr answers (-want +got):\n%s", diff)
	}
	if runs != 2 {
		t.Errorf("fn ran %d times; want 2", runs)
	}
}

// TestOnceConcurrent: many goroutines make the first call at once. fn never
// runs twice at the same time; while it fails transiently each failure is
// seen by one caller only; once it succeeds it never runs again and every
// later caller gets its value.
func TestOnceConcurrent(t *testing.T) {
	const goroutines, transient = 64, 5
	var inFlight, overlap, runs atomic.Int32
	start := make(chan struct{})
	once := probe.Once(func() (int32, error) {
		if inFlight.Add(1) > 1 {
			overlap.Add(1)
		}
		defer inFlight.Add(-1)
		n := runs.Add(1)
		if n <= transient {
			return 0, unix.EMFILE
		}
		return n, nil
	})
	var (
		wg       sync.WaitGroup
		mu       sync.Mutex
		failures int
		values   = map[int32]int{}
	)
	for range goroutines {
		wg.Go(func() {
			<-start
			v, err := once()
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				failures++
				return
			}
			values[v]++
		})
	}
	close(start)
	wg.Wait()
	if n := overlap.Load(); n != 0 {
		t.Errorf("fn ran concurrently with itself %d times", n)
	}
	if n := runs.Load(); n != transient+1 {
		t.Errorf("fn ran %d times; want %d (%d transient failures, then one kept success)", n, transient+1, transient)
	}
	want := map[int32]int{transient + 1: goroutines - transient}
	if diff := cmp.Diff(want, values); diff != "" {
		t.Errorf("values seen by the callers that succeeded (-want +got):\n%s", diff)
	}
	if failures != transient {
		t.Errorf("%d callers saw EMFILE; want %d, one per transient run", failures, transient)
	}
}

// TestOncePanic: a panic in fn reaches the caller and is not kept.
func TestOncePanic(t *testing.T) {
	runs := 0
	once := probe.OnceErr(func() error {
		runs++
		if runs == 1 {
			panic("probe failed")
		}
		return nil
	})
	func() {
		defer func() {
			if r := recover(); r != "probe failed" {
				t.Errorf("recovered %v; want the probe's panic", r)
			}
		}()
		once()
	}()
	if err := once(); err != nil || runs != 2 {
		t.Errorf("after a panic: %v after %d runs; want nil after 2", err, runs)
	}
}
