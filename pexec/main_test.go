package pexec_test

import (
	"testing"

	"github.com/pexec-dev/pexec/internal/testhelper"
	"github.com/pexec-dev/pexec/pexec"
	"github.com/pexec-dev/pexec/pexectest"
)

// TestMain runs the helper processes that pexectest.Command starts (the
// standard ones, testhelper.Standard, and those the test files register)
// and the tests, and fails the run if they leave a child process behind.
func TestMain(m *testing.M) { testhelper.Main(m, nil) }

// noTree is the option with which pexec's tests bind a child to the test
// with pexectest.Start: no tree (pexec.TreeNone), so that the child is
// started as os/exec users start theirs, which is what the tests observe;
// pexectest.Start would otherwise contain it (TreeAuto), with another spawn
// path and, in the process-group fallback, a group of its own.
var noTree = pexectest.Tree(pexec.TreeNone)
