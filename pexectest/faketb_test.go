package pexectest_test

import (
	"fmt"
	"runtime"
	"strings"
	"sync"
	"testing"
)

// fakeTB is a testing.TB that records failures, logs and clean-ups instead
// of acting on them, so that tests can check what pexectest reports. The
// embedded TB (which may be nil in a helper process) only provides the
// interface's unexported method; every method pexectest calls is here.
type fakeTB struct {
	testing.TB
	mu       sync.Mutex
	errs     []string
	logs     []string
	cleanups []func()
	skipped  string
}

func (f *fakeTB) Name() string { return "TestFake" }
func (f *fakeTB) Helper()      {}

func (f *fakeTB) Error(args ...any) { f.add(&f.errs, fmt.Sprint(args...)) }
func (f *fakeTB) Errorf(format string, args ...any) {
	f.add(&f.errs, fmt.Sprintf(format, args...))
}
func (f *fakeTB) Log(args ...any) { f.add(&f.logs, fmt.Sprint(args...)) }
func (f *fakeTB) Logf(format string, args ...any) {
	f.add(&f.logs, fmt.Sprintf(format, args...))
}
func (f *fakeTB) Fatalf(format string, args ...any) {
	f.Errorf(format, args...)
	runtime.Goexit()
}
func (f *fakeTB) Skipf(format string, args ...any) {
	f.mu.Lock()
	f.skipped = fmt.Sprintf(format, args...)
	f.mu.Unlock()
	runtime.Goexit()
}
func (f *fakeTB) Cleanup(fn func()) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.cleanups = append(f.cleanups, fn)
}

func (f *fakeTB) add(to *[]string, s string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	*to = append(*to, s)
}

// runCleanups runs the registered clean-ups, last first, as testing does.
func (f *fakeTB) runCleanups() {
	f.mu.Lock()
	fns := f.cleanups
	f.cleanups = nil
	f.mu.Unlock()
	for i := len(fns) - 1; i >= 0; i-- {
		fns[i]()
	}
}

func (f *fakeTB) errors() string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return strings.Join(f.errs, "\n")
}

// logged returns what was logged, but for Start's note of the tree a
// process got (see startNotes).
func (f *fakeTB) logged() string {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []string
	for _, l := range f.logs {
		if !strings.HasPrefix(l, startNote) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

// startNote starts the line Start logs about the tree a process got.
const startNote = "pexectest: Start: "

// startNotes returns what Start logged about the trees the processes got.
func (f *fakeTB) startNotes() string {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []string
	for _, l := range f.logs {
		if strings.HasPrefix(l, startNote) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

// inGoroutine runs fn(f) in a goroutine of its own, as testing runs a test,
// so that Fatalf and Skipf can end it, and waits for it.
func (f *fakeTB) inGoroutine(fn func(tb testing.TB)) {
	done := make(chan struct{})
	go func() {
		defer close(done)
		fn(f)
	}()
	<-done
}
