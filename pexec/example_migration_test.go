//go:build linux

package pexec_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sort"
	"syscall"
	"time"

	"github.com/pexec-dev/pexec/pexec"
)

// The "after" code of MIGRATION.md's patterns, runnable.

// Signal a child through its Handle, not through a PID kept from
// cmd.Process.Pid: once the child is gone, the Handle refuses instead of
// signalling whichever process has the number now.
func Example_migrateKillByPID() {
	cmd := pexec.Command("sleep", "60")
	if err := cmd.Start(); err != nil {
		fmt.Println(err)
		return
	}
	h := cmd.Handle() // keep this, not cmd.Process.Pid

	if err := h.Signal(syscall.SIGTERM); errors.Is(err, os.ErrProcessDone) {
		fmt.Println("already gone")
	}
	fmt.Println(cmd.Wait())
	if err := h.Signal(syscall.SIGTERM); errors.Is(err, os.ErrProcessDone) {
		fmt.Println("already gone")
	}
	// Output:
	// signal: terminated
	// already gone
}

// Ask the Handle whether the process is alive instead of os.FindProcess +
// Signal(0): it sends nothing, never blocks, and a zombie is not alive.
func Example_migrateLiveness() {
	cmd := pexec.Command("sh", "-c", "exit 0")
	if err := cmd.Start(); err != nil {
		fmt.Println(err)
		return
	}
	h := cmd.Handle()
	<-h.Done() // exited, not yet reaped: kill(pid, 0) would still succeed
	fmt.Println("alive:", h.Alive())
	cmd.Wait()
	// Output: alive: false
}

// Replace a wait4(-1) loop: watch each child's Done channel, collect each
// status with Handle.Wait, and bound waits with WaitContext. Nothing else's
// children are reaped behind its back.
func Example_migrateWaitLoop() {
	var cmds []*pexec.Cmd
	for _, code := range []string{"1", "2", "3"} {
		cmd := pexec.Command("sh", "-c", "exit "+code)
		if err := cmd.Start(); err != nil {
			fmt.Println(err)
			return
		}
		cmds = append(cmds, cmd)
	}
	exited := make(chan *pexec.Cmd)
	for _, cmd := range cmds {
		go func() {
			<-cmd.Handle().Done()
			exited <- cmd
		}()
	}
	var codes []int
	for range cmds {
		cmd := <-exited
		st, _ := cmd.Handle().Wait()
		codes = append(codes, st.ExitCode())
		cmd.Wait() // reaps it and releases its resources, as with os/exec
	}
	sort.Ints(codes)
	fmt.Println(codes)

	slow := pexec.Command("sleep", "60")
	if err := slow.Start(); err != nil {
		fmt.Println(err)
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Millisecond)
	defer cancel()
	if _, err := slow.Handle().WaitContext(ctx); errors.Is(err, context.DeadlineExceeded) {
		fmt.Println("still running; killing it")
		slow.Handle().Kill()
	}
	fmt.Println(slow.Wait())
	// Output:
	// [1 2 3]
	// still running; killing it
	// signal: killed
}
