//go:build !windows

package pexectest_test

import (
	"context"
	"fmt"
	"time"

	"github.com/pexec-dev/pexec/pexec"
	"github.com/pexec-dev/pexec/pexectest"
)

// A table of commands and the outcomes they should have, each run under a
// deadline. (The helpers are registered in this package's main_test.go.)
func Example() {
	tests := []struct {
		name    string
		cmd     *pexec.Cmd
		timeout time.Duration
		want    pexectest.Outcome
	}{
		{"greets", pexectest.Command("greet", "gopher"), time.Minute, pexectest.Outcome{Stdout: "hello, gopher\n"}},
		{"fails", pexectest.Command("exit", "3", "", "boom"), time.Minute, pexectest.Outcome{Exit: 3, Stderr: "boom"}},
		{"hangs", pexectest.Command("sleep"), 100 * time.Millisecond, pexectest.Outcome{Exit: -1, Signal: "SIGKILL", TimedOut: true, Killed: pexectest.KilledTree}},
		{"wrong want", pexectest.Command("exit", "2"), time.Minute, pexectest.Outcome{Exit: 1}},
	}
	for _, tc := range tests {
		ctx, cancel := context.WithTimeout(context.Background(), tc.timeout)
		got := pexectest.Run(ctx, tc.cmd)
		cancel()
		if got != tc.want {
			fmt.Printf("%s: got %v, want %v\n", tc.name, got, tc.want)
			continue
		}
		fmt.Printf("%s: %v\n", tc.name, got)
	}
	// Output:
	// greets: exit 0; stdout "hello, gopher\n"
	// fails: exit 3; stderr "boom"
	// hangs: signal SIGKILL (timed out, tree killed)
	// wrong want: got exit 2, want exit 1
}

func ExampleCommand() {
	out, err := pexectest.Command("greet", "helper").Output()
	fmt.Printf("%q %v\n", out, err)

	err = pexectest.Command("no-such-helper").Run()
	fmt.Println(err != nil)
	// Output:
	// "hello, helper\n" <nil>
	// true
}

func ExampleRun() {
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	fmt.Println(pexectest.Run(ctx, pexectest.Command("sleep")))
	fmt.Println(pexectest.Run(context.Background(), pexec.Command("/nonexistent/program")))
	// Output:
	// signal SIGKILL (timed out, tree killed)
	// error: fork/exec /nonexistent/program: no such file or directory
}
