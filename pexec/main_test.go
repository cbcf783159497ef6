package pexec_test

import (
	"testing"

	"github.com/pexec-dev/pexec/internal/testhelper"
	"github.com/pexec-dev/pexec/pexec"
)

func TestMain(m *testing.M) { testhelper.Main(m, nil) }

// helper returns a pexec.Cmd that runs the named testhelper helper.
func helper(name string, args ...string) *pexec.Cmd {
	path, argv, env := testhelper.Command(name, args...)
	c := pexec.Command(path, argv[1:]...)
	c.Env = env
	return c
}
