package pexec_test

import (
	"os"
	"testing"

	"github.com/pexec-dev/pexec/internal/testhelper"
	"github.com/pexec-dev/pexec/pexec"
)

func TestMain(m *testing.M) { testhelper.Main(m, nil) }

func helper(name string, args ...string) *pexec.Cmd {
	path, argv, env := testhelper.Command(name, args...)
	c := pexec.Command(path, argv[1:]...)
	c.Env = env
	return c
}

func TestSmoke(t *testing.T) {
	c := helper("exit", "3")
	if err := c.Start(); err != nil {
		t.Fatal(err)
	}
	h := c.Handle()
	t.Log(h.Mode(), h.Pid())
	st, err := h.Wait()
	t.Log(st, err)
	err = c.Wait()
	t.Log(err, c.ProcessState)
	st, err = h.Wait()
	t.Log(st, err, st.ProcessState())
	t.Log(h.Signal(os.Kill), h.Alive(), h.Close(), h.Signal(os.Kill))
}
