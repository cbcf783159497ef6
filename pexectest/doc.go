// Package pexectest is a toolkit for testing code that runs processes,
// built on [github.com/pexec-dev/pexec/pexec]:
//
//   - helper processes: the test binary re-executes itself as a named
//     helper, the pattern of the standard library's own os/exec tests
//     ([Register], [Command], [Main]);
//   - leak checks that fail a test, or the run, that leaves a child process
//     running or unreaped, or an orphan (the test process adopts them as a
//     child subreaper), name each one and the test that started it, and
//     clean up ([VerifyNone], [Main]);
//   - processes bound to a test, stopped with their whole process tree and
//     reaped by its clean-up, which reports what a process that ended left
//     running ([Start]);
//   - outcomes as comparable values, for tables of tests ([Outcome], [Run]);
//   - fault injection: pidfds denied by seccomp ([Jailed]), forced PID
//     reuse in a PID namespace of one's own ([InPIDNamespace],
//     [StartWithPID]), foreign reapers ([WithForeignReaper]).
//
// # Helper processes
//
// A helper is a function registered under a name. [Command] returns a
// [pexec.Cmd] that re-executes the test binary with the helper's name in
// its environment; [Main], called by TestMain, sees the name and runs the
// helper instead of the tests. Helpers need no tool installed on the test
// machine, run with the test binary's race detector and coverage, and can
// do anything a Go program can: ignore SIGTERM, print their PID, start
// grandchildren, exit with a given code. A name that is not registered
// (or registered only inside a test, too late for the re-executed binary)
// makes the Cmd's Start fail with an error naming it and the registered
// ones and saying where to register it ([ErrUnknownHelper]); Command never
// panics. Helpers die with the test binary (SysProcAttr.Pdeathsig, on
// Linux), so a test binary that crashes, is killed, or panics at
// -test.timeout leaves none running; [DieWithTestBinary] does the same for
// other commands that [Start] and [Run] start.
//
// # Leak checks
//
// Two entry points for two places, as in go.uber.org/goleak: [VerifyNone]
// at the end of a test, and [Main] after all tests. A leak is a child of
// the test process still running, stopped, or exited but not reaped (a
// zombie: it holds its PID until its parent waits for it). Children get
// [MaxWait] to go away by themselves first; [IgnorePID], [IgnoreCommand] and
// [IgnoreCurrent] exempt known long-lived processes; [ReportOnly] reports
// without failing. A report names each leak (PID, state, command line,
// helper, the test that started it when [Start] did, its descendants); the
// check then kills and reaps them, race-free where pidfds work. [Main]
// makes the test process a child subreaper, so that an orphan (what a
// helper or a program double-forked, whose parent exited) becomes its child
// instead of init's: the checks report a running orphan, naming the test
// that started its ancestor where it is known, and kill it; an orphan that
// has exited is reaped at once ([NoSubreaper] turns this off). An orphaned
// grandchild is also found through the tree of the process that [Start]
// started (see below).
//
// # Processes bound to a test
//
// [Start] starts a command and binds it to a testing.TB: the test's
// clean-up stops it with [pexec.Handle.Stop] (SIGTERM, then SIGKILL after
// [Grace]) and reaps it, and a process that failed on its own before then,
// unseen by the test, fails the test. It works with parallel tests and
// subtests.
//
// Start contains the process and its descendants in one tree
// ([pexec.TreeAuto]: a cgroup where the test may create one, a process
// group otherwise; the [Tree] option changes it or opts out), so the stop
// reaches the whole tree, and descendants that a process which ended left
// behind (a double-forked daemon, a shell's background job) fail the test
// as leaks, named one by one, and are killed with
// [pexec.Handle.KillTree]. Start logs which tree the process got: a
// process group where the test may not create a cgroup (it is not root),
// from which a descendant escapes with setsid; [RequireTree] skips a test
// that needs a cgroup there. Failures that Start and its clean-up report
// point at the test's line that called Start, and name the helper.
//
// # Outcomes for tables
//
// [Outcome] describes how a run ended (exit code or signal, core dump,
// captured output, a timeout, what was killed, an error) in a comparable
// struct whose zero value is a silent success, so that tables hold the
// outcome they want and compare it with == or cmp.Diff. [Run] produces it
// under a context deadline; like Start it gives the command a tree, and
// its timeout kills the whole tree (Killed is then "tree"); what a process
// that ended by itself left running in its tree is killed after [MaxWait],
// and reported the same way. Exit is -1 for a process a signal
// ended, as [os.ProcessState.ExitCode] is, and Signal is the signal's name
// ("SIGKILL"), not the description that os/exec prints ("signal:
// killed"). Code that builds its own *exec.Cmd is run through
// [pexec.Wrap]: Run(ctx, pexec.Wrap(exec.Command(...))).
//
// # Fault injection
//
// Code that manages processes has paths that ordinary test machines never
// take. [Jailed] runs a helper in a seccomp jail where the pidfd system
// calls fail as on an old kernel ([JailNoPidfd]), or only those that give
// a pidfd at spawn, as under QEMU's user-mode emulation
// ([JailNoPidfdSpawn]), so that a PID-mode fallback runs for real in CI.
// [InPIDNamespace] runs a helper as PID 1 of a PID namespace of its own,
// where [StartWithPID] gives a chosen PID to a new process: start a child,
// let it exit and be reaped, give its PID to a stranger, and prove that the
// code under test never signals the stranger. [WithForeignReaper] runs a
// helper beside a wait4(-1) loop, or with SIGCHLD ignored, where children
// are reaped behind the code's back. Each skips the test, saying why, where
// the system does not allow it.
//
// # A table-driven test
//
// A complete test file for a package whose code runs processes; the
// helpers stand in for the programs it runs:
//
//	package mypkg_test
//
//	import (
//		"context"
//		"fmt"
//		"os"
//		"testing"
//		"time"
//
//		"github.com/google/go-cmp/cmp"
//		"github.com/pexec-dev/pexec/pexec"
//		"github.com/pexec-dev/pexec/pexectest"
//	)
//
//	func init() {
//		pexectest.Register("greet", func(args []string) int {
//			fmt.Printf("hello, %s\n", args[0])
//			return 0
//		})
//		pexectest.Register("fail", func(args []string) int {
//			fmt.Fprintln(os.Stderr, "boom")
//			return 3
//		})
//		pexectest.Register("hang", func([]string) int {
//			time.Sleep(time.Hour)
//			return 0
//		})
//	}
//
//	// TestMain runs helpers in re-executions of the test binary, and fails
//	// the run if a test leaves a child process behind.
//	func TestMain(m *testing.M) { pexectest.Main(m) }
//
//	func TestRun(t *testing.T) {
//		tests := []struct {
//			name string
//			cmd  *pexec.Cmd
//			want pexectest.Outcome
//		}{
//			{"greets", pexectest.Command("greet", "gopher"), pexectest.Outcome{Stdout: "hello, gopher\n"}},
//			{"fails", pexectest.Command("fail"), pexectest.Outcome{Exit: 3, Stderr: "boom\n"}},
//			{"hangs", pexectest.Command("hang"), pexectest.Outcome{Exit: -1, Signal: "SIGKILL", TimedOut: true, Killed: "tree"}},
//		}
//		for _, tc := range tests {
//			t.Run(tc.name, func(t *testing.T) {
//				defer pexectest.VerifyNone(t)
//				ctx, cancel := context.WithTimeout(t.Context(), time.Second)
//				defer cancel()
//				if diff := cmp.Diff(tc.want, pexectest.Run(ctx, tc.cmd)); diff != "" {
//					t.Errorf("(-want +got):\n%s", diff)
//				}
//			})
//		}
//	}
//
// A row with a wrong want (here Exit: 4 for "fails") fails with the
// difference, field by field:
//
//	--- FAIL: TestRun (1.01s)
//	    --- FAIL: TestRun/fails (0.01s)
//	        x_test.go:50: (-want +got):
//	              pexectest.Outcome{
//	            - 	Exit:     4,
//	            + 	Exit:     3,
//	              	Signal:   "",
//	              	CoreDump: false,
//	              	... // 5 identical fields
//	              }
//
// # Systems
//
// Helpers, [Start], [Run] and [Outcome] work wherever pexec does; on
// Windows, Start and Run put the process in a job object ([pexec.TreeJob]),
// and a killed process's Outcome is Exit 1, there being no signals. The leak
// checks need Linux's /proc (elsewhere [VerifyNone] logs that it checked
// nothing and [Find] returns an error wrapping [errors.ErrUnsupported]);
// orphans are adopted and helpers die with the test binary only on Linux
// (adoption also needs pidfds, to tell orphans from the test's own
// children); the fault injections need Linux (elsewhere they skip the
// test, and [EnterJail], [SetNextPID] and [StartWithPID] return errors
// wrapping errors.ErrUnsupported).
package pexectest
