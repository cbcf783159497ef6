package main

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"strings"
	"syscall"
	"time"
)

// demoEnv names the environment variable through which the demo runs the
// program as one of its jobs: its value is the job's role.
const demoEnv = "JOBRUNNER_DEMO"

// maxLife bounds the life of a demo job that waits to be stopped.
const maxLife = time.Minute

// The demo's settings, unless flags say otherwise.
const (
	demoParallel = 3
	demoTimeout  = 2 * time.Second
	demoGrace    = 500 * time.Millisecond
)

// demoJobs are the demo's jobs: the role the program plays in each, what it
// does, and how the demo expects it to end, in the words of Result.String.
var demoJobs = []struct{ role, about, want string }{
	{"count", "prints three lines and one on stderr, and exits 0", "exit status 0"},
	{"fail", "prints an error and exits 3", "exit status 3"},
	{"graceful", "outlives its timeout; exits cleanly on SIGTERM", "timed out; exit status 0"},
	{"stubborn", "outlives its timeout and ignores SIGTERM: SIGKILL after the grace", "timed out; " + killedStatus},
	{"daemon", "exits at once, leaving a grandchild that holds its stdout: stopped by the runner", "exit status 0; stopped what it left running"},
}

// demoSettings gives r the demo's settings, but those set by a flag (set
// holds the flags given), and reports whether the demo is to check its
// jobs' outcomes: its expectations hold for its own timeout and grace.
func demoSettings(r *Runner, set map[string]bool) (check bool) {
	if !set["j"] {
		r.Parallel = demoParallel
	}
	if !set["timeout"] {
		r.Timeout = demoTimeout
	}
	if !set["grace"] {
		r.Grace = demoGrace
	}
	return !set["timeout"] && !set["grace"]
}

// demo runs the demo jobs with r, printing to r.Out, and, if check is
// set, checks that each ended as the demo expects.
func demo(ctx context.Context, r *Runner, check bool) error {
	exe, err := os.Executable()
	if err != nil {
		return err
	}
	fmt.Fprintf(r.Out, "jobrunner demo: %d jobs, %d at a time, each with a %v timeout and a %v grace (see -h):\n",
		len(demoJobs), max(r.Parallel, 1), r.Timeout, r.Grace)
	jobs := make([]Job, len(demoJobs))
	for i, d := range demoJobs {
		fmt.Fprintf(r.Out, "  %-9s %s\n", d.role, d.about)
		jobs[i] = Job{Name: d.role, Args: []string{exe}, Env: append(os.Environ(), demoEnv+"="+d.role)}
	}
	fmt.Fprintln(r.Out)
	results := r.Run(ctx, jobs)
	fmt.Fprintln(r.Out)
	summary(r.Out, results)
	if !check {
		return nil
	}
	var wrong []string
	for i, d := range demoJobs {
		if got := results[i].String(); got != d.want {
			wrong = append(wrong, fmt.Sprintf("%s: %s; the demo expects %s", d.role, got, d.want))
		}
	}
	if len(wrong) > 0 {
		return fmt.Errorf("the demo did not go as expected:\n  %s", strings.Join(wrong, "\n  "))
	}
	fmt.Fprintln(r.Out, "Each job ended as the demo expects.")
	return nil
}

// demoJob plays the demo job role, and returns its exit code.
func demoJob(role string) int {
	switch role {
	case "count":
		for i := 1; i <= 3; i++ {
			fmt.Println("line", i)
			time.Sleep(100 * time.Millisecond) // so that the lines come as they are written
		}
		fmt.Fprintln(os.Stderr, "a line on stderr")
		return 0
	case "fail":
		fmt.Fprintln(os.Stderr, "something went wrong")
		return 3
	case "graceful":
		stop := notifyStop()
		fmt.Println("working until stopped")
		select {
		case sig := <-stop:
			fmt.Printf("got %s: cleaning up and exiting\n", sigName(sig))
		case <-time.After(maxLife):
		}
		return 0
	case "stubborn":
		stop := notifyStop()
		fmt.Println("working until killed")
		deadline := time.After(maxLife)
		for {
			select {
			case sig := <-stop:
				fmt.Printf("got %s: ignoring it\n", sigName(sig))
			case <-deadline:
				return 0
			}
		}
	case "daemon":
		return startDaemon()
	case "daemon-child":
		stop := notifyStop()
		fmt.Printf("grandchild pid %d: holding the job's stdout\n", os.Getpid())
		fmt.Fprintln(os.Stderr, "ready")
		select {
		case sig := <-stop:
			fmt.Printf("grandchild: got %s: leaving\n", sigName(sig))
		case <-time.After(maxLife):
		}
		return 0
	}
	fmt.Fprintf(os.Stderr, "jobrunner: unknown demo job %q\n", role)
	return 2
}

// startDaemon is the demo job "daemon": it starts a child that inherits its
// standard output, waits until the child is ready, and exits without
// waiting for it, as a daemon's launcher or a shell's background job does.
func startDaemon() int {
	exe, err := os.Executable()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	c := exec.Command(exe)
	c.Env = append(os.Environ(), demoEnv+"=daemon-child")
	c.Stdout = os.Stdout // the job's stdout: the runner's pipe
	ready, err := c.StderrPipe()
	if err == nil {
		err = c.Start()
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	if line, err := bufio.NewReader(ready).ReadString('\n'); line != "ready\n" {
		c.Process.Kill()
		c.Wait()
		fmt.Fprintf(os.Stderr, "the grandchild said %q: %v\n", line, err)
		return 1
	}
	fmt.Printf("started pid %d, which holds my stdout; exiting without waiting for it\n", c.Process.Pid)
	return 0
}

// notifyStop returns the channel on which the graceful step of a stop
// arrives: SIGTERM, or os.Interrupt (on Windows, CTRL_BREAK_EVENT).
func notifyStop() <-chan os.Signal {
	c := make(chan os.Signal, 1)
	signal.Notify(c, syscall.SIGTERM, os.Interrupt)
	return c
}

// sigName names the signals notifyStop delivers.
func sigName(sig os.Signal) string {
	if sig == syscall.SIGTERM {
		return "SIGTERM"
	}
	return "an interrupt"
}
