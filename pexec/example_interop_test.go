//go:build linux

package pexec_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	osexec "os/exec"
	"syscall"

	"github.com/pexec-dev/pexec/pexec"
)

// A library that takes an *exec.Cmd starts the child (here a plain
// c.Start stands for pty.Start or gexec.Start); FromProcess gives a
// race-free Handle for it, and the library's own Wait still reaps it.
func ExampleFromProcess() {
	c := osexec.Command("sleep", "60")
	if err := c.Start(); err != nil { // the library's start
		fmt.Println(err)
		return
	}
	h, err := pexec.FromProcess(c.Process)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer h.Close()
	h.Signal(syscall.SIGTERM)
	st, _ := h.Wait() // observes, holds no thread
	fmt.Println("Handle:", st)
	fmt.Println("library's Wait:", c.Wait())
	fmt.Println("Signal after the reap:", h.Signal(syscall.SIGTERM))
	// Output:
	// Handle: signal: terminated
	// library's Wait: signal: terminated
	// Signal after the reap: os: process already finished
}

// Wrap drives an *exec.Cmd that another constructor built, keeping its
// fields (and, for exec.CommandContext, its context).
func ExampleWrap() {
	built := osexec.Command("sh", "-c", "echo $GREETING; exit 2")
	built.Env = []string{"GREETING=hello"}
	c := pexec.Wrap(built) // built must not be used from now on
	out, err := c.Output()
	fmt.Printf("%q %v %v\n", out, err, c.Handle().Mode())
	// Output: "hello\n" exit status 2 pidfd
}

// A supervisor stores its workers' identities; after a restart it gets
// Handles back only for the processes that are still the same ones. This
// needs pidfs (Linux 6.9+): before, Identity and OpenID return errors
// wrapping errors.ErrUnsupported, and a restarted supervisor cannot adopt
// its workers. The example has no output to check, as its output depends
// on the kernel; TestOpenID and TestProofPIDReuse ("adopt") check both
// kinds of kernel.
func ExampleOpenID() {
	w := pexec.Command("sleep", "60")
	if err := w.Start(); err != nil {
		fmt.Println(err)
		return
	}
	defer w.Wait()
	defer w.Process.Kill()
	id, err := w.Handle().Identity()
	if err != nil {
		fmt.Println(err) // before Linux 6.9: errors.ErrUnsupported
		return
	}
	state, _ := json.Marshal(id) // the state file: "PID:ID"

	// After the restart.
	var back pexec.Identity
	json.Unmarshal(state, &back)
	h, err := pexec.OpenID(back.Pid, back.ID)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer h.Close()
	fmt.Println("same worker:", h.Pid() == w.Process.Pid, h.Alive())
	_, err = pexec.OpenID(back.Pid, back.ID+1) // a PID that names another process
	fmt.Println(errors.Is(err, os.ErrProcessDone))
	// With pidfs, it prints:
	//	same worker: true true
	//	true
}
