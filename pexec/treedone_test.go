package pexec_test

import (
	"testing"
	"time"

	"github.com/pexec-dev/pexec/pexec"
	"github.com/pexec-dev/pexec/pexectest"
)

// Without a tree, TreeDone is Done: a select on it ends when the child
// exits, where a nil channel would block for ever.
func TestTreeDoneWithoutTree(t *testing.T) {
	c := pexectest.Command("sleep") // a helper: runs on Windows too
	c.Tree = pexec.TreeNone
	if err := c.Start(); err != nil {
		t.Fatal(err)
	}
	defer c.Wait()
	h := c.Handle()
	if h.Tree() != pexec.TreeNone {
		t.Fatalf("Tree() = %v, want none", h.Tree())
	}
	select {
	case <-h.TreeDone():
		t.Fatal("TreeDone closed while the child runs")
	default:
	}
	if err := h.Kill(); err != nil {
		t.Fatal(err)
	}
	select {
	case <-h.TreeDone():
	case <-time.After(time.Minute):
		t.Fatal("TreeDone not closed a minute after the child was killed")
	}
}
