package pexec

import (
	"os"
	"reflect"
	"runtime"
	"syscall"
	"time"
)

// A Cmd's cancellation has one owner: what the engine (os/exec) calls when
// the context is done is always Cmd.interrupt, which runs the Cancel (the
// caller's, or pexec's own: defaultCancel), or Grace's ladder, and arms
// WaitDelay's final kill of the tree; Cmd.Wait waits for what it started
// before it returns. Every signal goes through Handle.signalTree, which
// reaches the tree and ignores the caller's Close of the Handle.

// cmdStop is what a Cmd's cancellation started.
type cmdStop struct {
	ready    chan struct{} // closed once the fields below are set
	ladder   *ladder       // the stop ladder, if one runs
	late     *time.Timer   // WaitDelay's final kill of the tree
	lateDone chan struct{} // closed once that kill is sent
}

// interrupt is the engine's Cancel: it runs when the context is done.
func (c *Cmd) interrupt() error {
	h := c.handle
	s := &cmdStop{ready: make(chan struct{})}
	c.stop.Store(s) // Wait waits for it, before the reap and after
	defer close(s.ready)
	var err error
	switch {
	case c.Cancel != nil:
		err = c.Cancel()
	case c.Grace > 0:
		_, err = h.startStop(c.Grace)
	default:
		// Nothing to interrupt (os/exec's nil Cancel): keep os/exec from
		// reporting the context's error for an exit that is the
		// process's own.
		err = os.ErrProcessDone
	}
	h.mu.Lock()
	s.ladder = h.ladder
	h.mu.Unlock()
	if c.WaitDelay > 0 && h.tree != nil {
		// os/exec's own final kill, at the same moment, reaches the
		// process alone.
		s.lateDone = make(chan struct{})
		s.late = time.AfterFunc(c.WaitDelay, func() {
			defer close(s.lateDone)
			h.signalTree(syscall.SIGKILL)
		})
	}
	return err
}

// defaultCancel is the Cancel of CommandContext (and of a Wrap'd
// exec.CommandContext): SIGKILL to the process and its tree, or with
// Grace, the stop ladder. It reports os.ErrProcessDone if nothing was left
// to signal.
func (c *Cmd) defaultCancel() error {
	h := c.handle
	if h == nil {
		return os.ErrProcessDone
	}
	if c.Grace > 0 {
		_, err := h.startStop(c.Grace)
		return err
	}
	return h.signalTree(syscall.SIGKILL)
}

// finish waits, for Cmd.Wait, until the cancellation's Cancel has
// returned and what it started has ended: the ladder (everything exited,
// or SIGKILL sent); and, as WaitDelay bounds the wait for a command that
// fails to exit once cancelled, the tree's exit or WaitDelay's kill of the
// tree, whichever comes first.
func (s *cmdStop) finish(h *Handle) {
	if s == nil {
		return
	}
	<-s.ready
	if s.ladder != nil {
		<-s.ladder.ended
	}
	if s.late == nil {
		return
	}
	select {
	case <-h.gone():
		if s.late.Stop() {
			close(s.lateDone) // called off: finish may be called again
			return
		}
		<-s.lateDone // firing already, or called off before
	case <-s.lateDone:
	}
}

// execDefaultCancel names the function exec.CommandContext sets as Cancel
// (a closure that kills the Process alone); TestExecDefaultCancelName
// checks the name against this Go's os/exec.
const execDefaultCancel = "os/exec.CommandContext.func1"

// isExecDefaultCancel reports whether f is exec.CommandContext's default
// Cancel, which Wrap replaces with pexec's, so that the cancellation of a
// command with a tree reaches the tree.
func isExecDefaultCancel(f func() error) bool {
	if f == nil {
		return false
	}
	fn := runtime.FuncForPC(reflect.ValueOf(f).Pointer())
	return fn != nil && fn.Name() == execDefaultCancel
}
