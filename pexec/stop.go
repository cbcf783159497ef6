package pexec

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sync"
	"syscall"
	"time"
)

// Stop stops the process gracefully first and certainly last: it sends
// SIGTERM and then SIGCONT (so that a stopped process can act on the
// SIGTERM), to the whole tree when the child has one (see [Cmd.Tree]);
// waits up to grace for the process to exit and its tree to empty; then
// sends SIGKILL (to the tree) and waits for the exit. It returns the
// process's final Status, as [Handle.Wait] does; for a [Cmd]'s child,
// [Cmd.Wait] must still be called to reap it.
//
// A process has one stop ladder (systemd's unit_kill_context), however many
// callers ask: the first Stop starts it; a later or concurrent Stop joins
// it, never sends a second SIGTERM, and may only bring the SIGKILL
// forward, to its own grace. A signal that cannot be delivered to some
// member never keeps the ladder from its SIGKILL. Stop returns the Status
// once the process has exited and its tree is empty, with an error that
// lists the signals that could not be delivered, if any (both may be
// non-nil). After the process has exited, Stop returns the Status at once
// if the process has no tree or its tree is empty, and otherwise stops what
// is left of the tree as above. It holds no OS thread while it waits in
// ModePidFD. [Cmd.Grace] runs the same ladder when a command's context is
// done.
//
// On Windows the graceful step is os.Interrupt (CTRL_BREAK_EVENT) to the
// console process group of a child started with CREATE_NEW_PROCESS_GROUP;
// without that flag there is none, and Stop kills at once
// (TerminateJobObject for a TreeJob tree, TerminateProcess without).
//
// ctx bounds the wait: if it is done first, Stop sends SIGKILL if it has
// not yet, and returns an error wrapping ctx.Err(); the process is then
// dying and can be waited for. A grace of 0 or less kills at once.
func (h *Handle) Stop(ctx context.Context, grace time.Duration) (*Status, error) {
	if err := h.check(); err != nil {
		return nil, err
	}
	if ctx == nil {
		ctx = context.Background()
	}
	gone := h.gone()
	var l *ladder
	if !isClosed(gone) {
		l, _ = h.startStop(grace)
	}
	select {
	case <-gone:
	case <-h.closedC():
		return nil, os.ErrClosed
	case <-ctx.Done():
		l.killNow()
		what := "process"
		if h.hasExited() {
			what = "tree"
		}
		return nil, fmt.Errorf("pexec: stop pid %d: its %s is not gone: %w", h.pid, what, errors.Join(ctx.Err(), l.err()))
	}
	st, err := h.WaitContext(ctx)
	return st, errors.Join(err, l.err())
}

// ladder is a process's one stop ladder: SIGTERM and SIGCONT, a grace
// period that any caller may shorten, SIGKILL, to the process and its tree.
type ladder struct {
	h     *Handle
	moved chan struct{} // killAt was brought forward (buffered)
	ended chan struct{} // closed once SIGKILL is sent or nothing is left

	mu     sync.Mutex
	killAt time.Time
	errs   []error // signals that could not be delivered
}

// startStop starts h's stop ladder, with SIGKILL grace from now, or joins
// the one already running, bringing its SIGKILL forward to grace from now
// if that is earlier. It returns the ladder, and the result of the
// ladder's first signal (SIGTERM, or SIGKILL at once for a grace of 0 or
// less) when this call started it: os.ErrProcessDone if nothing was left
// to signal.
func (h *Handle) startStop(grace time.Duration) (*ladder, error) {
	at := time.Now().Add(grace)
	h.mu.Lock()
	if l := h.ladder; l != nil {
		h.mu.Unlock()
		l.killBy(at)
		return l, nil
	}
	l := &ladder{h: h, moved: make(chan struct{}, 1), ended: make(chan struct{}), killAt: at}
	h.ladder = l
	h.mu.Unlock()
	steps := h.gracefulSignals()
	sig := syscall.SIGKILL
	if grace > 0 && len(steps) > 0 {
		sig = steps[0]
	}
	err := l.send(sig)
	if sig == syscall.SIGKILL {
		close(l.ended)
		return l, err
	}
	for _, s := range steps[1:] {
		l.send(s)
	}
	go l.run()
	return l, err
}

// run waits for the process and its tree to be gone, or for the time to
// send SIGKILL, and sends it.
func (l *ladder) run() {
	defer close(l.ended)
	gone := l.h.gone()
	for {
		l.mu.Lock()
		at := l.killAt
		l.mu.Unlock()
		t := time.NewTimer(time.Until(at))
		select {
		case <-gone:
			t.Stop()
			return
		case <-l.moved:
			t.Stop()
			continue
		case <-t.C:
		}
		l.send(syscall.SIGKILL)
		return
	}
}

// send signals the process and its tree, recording a failure to deliver.
func (l *ladder) send(sig syscall.Signal) error {
	err := l.h.signalTree(sig)
	if err != nil && !errors.Is(err, os.ErrProcessDone) {
		l.mu.Lock()
		l.errs = append(l.errs, fmt.Errorf("%v: %w", sig, err))
		l.mu.Unlock()
	}
	return err
}

// killBy brings the SIGKILL forward to at, if that is earlier.
func (l *ladder) killBy(at time.Time) {
	if l == nil {
		return
	}
	l.mu.Lock()
	earlier := at.Before(l.killAt)
	if earlier {
		l.killAt = at
	}
	l.mu.Unlock()
	if earlier {
		select {
		case l.moved <- struct{}{}:
		default:
		}
	}
}

// killNow brings the SIGKILL forward to now and waits until it is sent
// (or nothing is left).
func (l *ladder) killNow() {
	if l == nil {
		return
	}
	l.killBy(time.Now())
	<-l.ended
}

// err returns the signals that could not be delivered, joined.
func (l *ladder) err() error {
	if l == nil {
		return nil
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	return errors.Join(l.errs...)
}
