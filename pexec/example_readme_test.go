//go:build linux

package pexec_test

import (
	"fmt"
	"log"
	"syscall"

	exec "github.com/pexec-dev/pexec/pexec"
)

// Example_quickStart is the README's quick start.
func Example_quickStart() {
	cmd := exec.Command("sleep", "60")
	if err := cmd.Start(); err != nil {
		log.Fatal(err)
	}
	h := cmd.Handle()                // refers to this child for ever, whatever happens to its PID
	fmt.Println(h.Mode(), h.Alive()) // pidfd true
	h.Signal(syscall.SIGTERM)        // never reaches another process; os.ErrProcessDone once it has exited
	err := cmd.Wait()                // parks on the netpoller, holds no OS thread; reaps as os/exec does
	fmt.Println(err)                 // signal: terminated
	fmt.Println(h.Signal(syscall.SIGTERM))
	// Output:
	// pidfd true
	// signal: terminated
	// os: process already finished
}
