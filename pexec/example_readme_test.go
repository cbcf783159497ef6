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

// ExampleCmd_Wait waits without holding an OS thread and reports the exit
// as os/exec does.
func ExampleCmd_Wait() {
	cmd := exec.Command("sh", "-c", "exit 3")
	if err := cmd.Start(); err != nil {
		log.Fatal(err)
	}
	err := cmd.Wait()
	fmt.Println(err, cmd.ProcessState.ExitCode())
	// Output: exit status 3 3
}

// ExampleHandle_File hands out a duplicate of the pidfd, for example to send
// over a Unix socket; the copy is a Handle of its own.
func ExampleHandle_File() {
	cmd := exec.Command("sleep", "60")
	if err := cmd.Start(); err != nil {
		log.Fatal(err)
	}
	f, err := cmd.Handle().File()
	if err != nil {
		log.Fatal(err)
	}
	defer f.Close()
	h, err := exec.FromFile(f)
	if err != nil {
		log.Fatal(err)
	}
	defer h.Close()
	fmt.Println(h.Pid() == cmd.Process.Pid, h.Kill())
	fmt.Println(cmd.Wait())
	// Output:
	// true <nil>
	// signal: killed
}
