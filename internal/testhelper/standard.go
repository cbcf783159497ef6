package testhelper

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strconv"
	"syscall"
	"time"

	"github.com/pexec-dev/pexec/pexectest"
)

// Standard holds the helpers every test package gets.
var Standard = map[string]Func{
	// sleep [duration]: sleeps for the duration (default: an hour).
	"sleep": func(args []string) int {
		d := time.Hour
		if len(args) > 0 {
			if v, err := time.ParseDuration(args[0]); err == nil {
				d = v
			}
		}
		time.Sleep(d)
		return 0
	},
	// exit code: exits with the code.
	"exit": func(args []string) int {
		code, _ := strconv.Atoi(argOr(args, 0, "0"))
		return code
	},
	// ignore-term: ignores SIGTERM, prints "ready" and sleeps.
	"ignore-term": func(args []string) int {
		signal.Ignore(syscall.SIGTERM)
		fmt.Println("ready")
		time.Sleep(time.Hour)
		return 0
	},
	// pid: prints its PID and its parent's, then sleeps.
	"pid": func(args []string) int {
		fmt.Println(os.Getpid(), os.Getppid())
		time.Sleep(time.Hour)
		return 0
	},
	// grandchild: starts a sleeping child of its own, prints that child's
	// PID and sleeps.
	"grandchild": func(args []string) int {
		cmd := pexectest.Command("sleep")
		if err := cmd.Start(); err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		fmt.Println(cmd.Process.Pid)
		time.Sleep(time.Hour)
		return 0
	},
	// echo: copies stdin to stdout, then exits with code args[0] (default 0).
	"echo": func(args []string) int {
		io.Copy(os.Stdout, os.Stdin)
		code, _ := strconv.Atoi(argOr(args, 0, "0"))
		return code
	},
	// stderr text code: writes text to stderr and stdout "out", then exits
	// with code.
	"stderr": func(args []string) int {
		fmt.Print("out")
		fmt.Fprint(os.Stderr, argOr(args, 0, ""))
		code, _ := strconv.Atoi(argOr(args, 1, "1"))
		return code
	},
	// fds: prints, one a line, "N target" for each of its open descriptors.
	"fds": func(args []string) int {
		ents, err := os.ReadDir("/proc/self/fd")
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		w := bufio.NewWriter(os.Stdout)
		for _, e := range ents {
			target, _ := os.Readlink("/proc/self/fd/" + e.Name())
			fmt.Fprintln(w, e.Name(), target)
		}
		w.Flush()
		return 0
	},
	// kill-self sig: sends itself the signal number sig and waits for it.
	"kill-self": func(args []string) int {
		n, _ := strconv.Atoi(argOr(args, 0, "9"))
		if self, err := os.FindProcess(os.Getpid()); err == nil {
			self.Signal(syscall.Signal(n))
		}
		time.Sleep(time.Hour)
		return 0
	},
	// byte-then-exit code: writes one byte to stdout, then exits with code.
	"byte-then-exit": func(args []string) int {
		os.Stdout.Write([]byte{'x'})
		code, _ := strconv.Atoi(argOr(args, 0, "0"))
		return code
	},
}

func argOr(args []string, i int, def string) string {
	if i < len(args) {
		return args[i]
	}
	return def
}
