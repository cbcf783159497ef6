package pexectest_test

import (
	"fmt"

	"github.com/pexec-dev/pexec/pexectest"
)

// A leak, as the checks see it; Find leaves it alone.
func ExampleFind() {
	cmd := pexectest.Command("sleep", "1h")
	if err := cmd.Start(); err != nil {
		fmt.Println(err)
		return
	}
	leaks, err := pexectest.Find(pexectest.MaxWait(0))
	for _, l := range leaks {
		fmt.Println(l.PID == cmd.Process.Pid, l.Helper, l.State)
	}
	fmt.Println(err)
	cmd.Handle().Kill()
	cmd.Wait()
	// Output:
	// true sleep running
	// <nil>
}
