package pexec

import (
	"context"
	"errors"
	"fmt"
	"os"
	"syscall"
	"time"
)

// Stop stops the process gracefully first and certainly last: it sends
// SIGTERM (to the whole tree when the child has one, see [Cmd.Tree]), waits
// up to grace for the process to exit (and its tree to empty), then sends
// SIGKILL (to the tree) and waits for the exit. It returns the process's
// final Status, as [Handle.Wait] does; for a [Cmd]'s child, [Cmd.Wait] must
// still be called to reap it.
//
// Stop is safe to call concurrently (every caller gets the same Status; the
// first grace to run out sends the SIGKILL) and after the process has
// exited: it then returns the Status at once if the process has no tree or
// its tree is empty, and otherwise stops what is left of the tree as above.
// It holds no OS thread while it waits in ModePidFD. Where the tree cannot
// be signalled (TreeGroup without pidfds, once the leader has been reaped),
// it returns that error.
//
// ctx bounds the whole call: if it is done first, Stop sends SIGKILL if it
// has not yet, and returns an error wrapping ctx.Err(); the process is then
// dying and can be waited for. A grace of 0 or less kills at once.
func (h *Handle) Stop(ctx context.Context, grace time.Duration) (*Status, error) {
	if err := h.check(); err != nil {
		return nil, err
	}
	if ctx == nil {
		ctx = context.Background()
	}
	if grace > 0 {
		if err := h.stopSignal(syscall.SIGTERM); err != nil {
			return nil, err
		}
		gctx, cancel := context.WithTimeout(ctx, grace)
		st, err := h.awaitStopped(gctx)
		cancel()
		if err == nil || ctx.Err() == nil && !errors.Is(err, context.DeadlineExceeded) {
			return st, err
		}
	}
	if err := h.stopSignal(syscall.SIGKILL); err != nil {
		return nil, err
	}
	return h.awaitStopped(ctx)
}

// stopSignal sends sig to the tree, or to the process without one; a
// process (or tree) that is already gone is not an error.
func (h *Handle) stopSignal(sig syscall.Signal) error {
	var err error
	if h.tree != nil {
		err = h.SignalTree(sig)
	} else {
		err = h.Signal(sig)
	}
	if err != nil && !errors.Is(err, os.ErrProcessDone) {
		return err
	}
	return nil
}

// awaitStopped waits for the process's exit and its tree's.
func (h *Handle) awaitStopped(ctx context.Context) (*Status, error) {
	st, err := h.WaitContext(ctx)
	if err != nil || h.tree == nil {
		return st, err
	}
	select {
	case <-h.tree.done(h):
		return st, nil
	case <-ctx.Done():
		return nil, fmt.Errorf("pexec: stop pid %d: its tree is not empty: %w", h.pid, ctx.Err())
	}
}
