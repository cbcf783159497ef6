// Command interop is the pattern MIGRATION.md gives for libraries whose API
// takes an *exec.Cmd (creack/pty, gomega/gexec, go-plugin, bubbletea): the
// command handed to the library stays an os/exec one, and pexec adopts the
// child once the library has started it. A constructor that returns an
// *exec.Cmd is driven by pexec through Wrap. TestInteropPattern builds and
// runs it.
package main

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"syscall"

	"github.com/pexec-dev/pexec/pexec"
)

// ptyStart has the shape of creack/pty's Start: it takes an *exec.Cmd,
// wires its output to a descriptor of its own and starts it.
func ptyStart(c *exec.Cmd) (*os.File, error) {
	r, w, err := os.Pipe()
	if err != nil {
		return nil, err
	}
	c.Stdout = w
	err = c.Start()
	w.Close()
	if err != nil {
		r.Close()
		return nil, err
	}
	return r, nil
}

// helperCommand stands for a constructor that returns an *exec.Cmd
// (reexec.Command, testenv.CleanCmdEnv...).
func helperCommand() *exec.Cmd {
	c := exec.Command("sh", "-c", "echo from-constructor; exit 3")
	c.Env = []string{"PATH=/usr/bin:/bin"}
	return c
}

func main() {
	// Start-then-adopt.
	c := exec.Command("sh", "-c", "echo ready; exec sleep 3600")
	out, err := ptyStart(c)
	if err != nil {
		fmt.Println("start:", err)
		os.Exit(1)
	}
	h, err := pexec.FromProcess(c.Process)
	if err != nil {
		fmt.Println("FromProcess:", err)
		os.Exit(1)
	}
	defer h.Close()
	line, _ := bufio.NewReader(out).ReadString('\n')
	fmt.Print("child says: ", line)
	h.Signal(syscall.SIGTERM) // race-free, whatever happens to the PID
	st, err := h.Wait()       // holds no thread; does not reap
	fmt.Println("Handle.Wait:", st, err)
	fmt.Println("library's Wait:", c.Wait()) // the owner reaps, as before
	fmt.Println("Signal after the reap:", h.Signal(syscall.SIGTERM))

	// Wrap.
	w := pexec.Wrap(helperCommand())
	b, err := w.Output()
	fmt.Printf("Wrap: %q %v, Handle mode %v\n", b, err, w.Handle().Mode())
}
