// Command jobrunner runs jobs a few at a time, each with a timeout,
// streaming their output line by line, and prints a summary: the program
// one writes first with os/exec, written with pexec.
//
//	go run ./examples/jobrunner     # the demo jobs, in about three seconds
//	go run ./examples/jobrunner -j 2 -timeout 30s -grace 5s \
//		'build=make all' 'vet=go vet ./...' 'test=go test ./...'
//
// Each job given on the command line is name=command line, and the command
// line runs in the shell: sh -c on Unix, cmd /C on Windows (where Go quotes
// the line as one argument, which cmd.exe reads its own way: keep double
// quotes out of it). With no job, the
// program runs its demo jobs, which are the program itself in other roles,
// so that it needs nothing installed: a job that prints lines, one that
// fails, one that outlives its timeout and exits cleanly on SIGTERM, one
// that ignores SIGTERM, and one that exits leaving a grandchild running
// that holds its standard output. The demo checks that each ended as
// expected and exits 1 if one did not; with jobs given, the exit code is
// 1 if a job failed (did not start, exited non-zero, was killed, timed
// out). Ctrl-C (SIGINT) or SIGTERM to the runner stops the running jobs as
// a timeout does, starts no more, and still prints the summary.
//
// Each job is a [pexec.CommandContext] with a context that ends at the
// job's timeout, read through [pexec.Cmd.StdoutPipe] and
// [pexec.Cmd.StderrPipe] with a [bufio.Scanner] each. What pexec changes,
// compared with the same program on os/exec:
//
//   - A job is a tree: [pexec.Cmd.Tree] = [pexec.TreeAuto] holds its
//     process and every process it starts together (a cgroup where the
//     runner may create one, as root; a process group otherwise; a job
//     object on Windows). The summary says which one each job got
//     ([pexec.Handle.Tree]).
//   - A timeout is graceful and takes the whole tree: with [pexec.Cmd.Grace]
//     the context's end sends SIGTERM to the tree, then SIGKILL to what is
//     left of it after the grace period. os/exec's CommandContext sends
//     SIGKILL to the job's process alone, and the grandchildren it leaves
//     keep the output pipes, and the runner's Scanners, open until they
//     exit (golang/go#23019).
//   - A job whose process exits while processes of its tree still run (a
//     daemon it started, a shell's background job) has them stopped the
//     same way, once they have had a moment to exit by themselves: they
//     would hold its output open, and the runner waiting for its end of
//     file, for as long as they run.
//   - If the runner dies (SIGKILL), its jobs do not run on:
//     [pexec.Cmd.DieWithParent] kills each job's process (on Windows its
//     whole tree).
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"
)

func main() {
	if role := os.Getenv(demoEnv); role != "" {
		os.Exit(demoJob(role)) // a demo job: the program re-executed by the demo
	}
	r := &Runner{Out: os.Stdout}
	flag.IntVar(&r.Parallel, "j", 4, "how many jobs run at once")
	flag.DurationVar(&r.Timeout, "timeout", time.Minute, "each job's timeout")
	flag.DurationVar(&r.Grace, "grace", 5*time.Second, "how long a job that timed out has to exit after SIGTERM, before SIGKILL")
	flag.Usage = func() {
		fmt.Fprintf(flag.CommandLine.Output(), "usage: jobrunner [flags] [name=command line ...]\n\n"+
			"Runs the jobs (with none, the demo jobs), streaming their output, and prints a summary.\n\n")
		flag.PrintDefaults()
	}
	flag.Parse()
	// Ctrl-C or SIGTERM stops the jobs (gracefully, as a timeout does) and
	// lets the runner print its summary.
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	if flag.NArg() == 0 {
		set := map[string]bool{}
		flag.Visit(func(f *flag.Flag) { set[f.Name] = true })
		if err := demo(ctx, r, demoSettings(r, set)); err != nil {
			fmt.Fprintln(os.Stderr, "jobrunner:", err)
			os.Exit(1)
		}
		return
	}
	jobs, err := parseJobs(flag.Args())
	if err != nil {
		fmt.Fprintln(os.Stderr, "jobrunner:", err)
		os.Exit(2)
	}
	results := r.Run(ctx, jobs)
	fmt.Println()
	if failed := summary(os.Stdout, results); failed > 0 {
		os.Exit(1)
	}
}

// parseJobs makes the jobs of arguments of the form name=command line,
// each run by the shell.
func parseJobs(args []string) ([]Job, error) {
	var jobs []Job
	seen := map[string]bool{}
	for _, arg := range args {
		name, line, ok := strings.Cut(arg, "=")
		name, line = strings.TrimSpace(name), strings.TrimSpace(line)
		switch {
		case !ok || name == "" || line == "":
			return nil, fmt.Errorf("job %q: want name=command line", arg)
		case strings.ContainsAny(name, " \t[]"):
			return nil, fmt.Errorf("job %q: a name is one word, without brackets", arg)
		case seen[name]:
			return nil, fmt.Errorf("job %q: two jobs are called %s", arg, name)
		}
		seen[name] = true
		jobs = append(jobs, Job{Name: name, Args: shell(line)})
	}
	if len(jobs) == 0 {
		return nil, errors.New("no job")
	}
	return jobs, nil
}
