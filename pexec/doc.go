// Package pexec is a drop-in replacement for os/exec whose children can
// never be confused with another process: on Linux each one has a pidfd,
// on Windows a process HANDLE, and [Cmd.Handle] gives you a [Handle] on it.
//
// # Use
//
// Swap the import; the program compiles and behaves as before:
//
//	import exec "github.com/pexec-dev/pexec/pexec" // was: import "os/exec"
//
// [Cmd] has every field and method of exec.Cmd with the same behaviour
// (pexec drives an exec.Cmd underneath), and [Error], [ExitError] and the
// sentinels are os/exec's own.
//
// Keep the child's [Handle] rather than its PID. [Handle.Signal] and
// [Handle.Kill] never reach a process that reused the PID: once the child
// has exited they return an error matching [os.ErrProcessDone].
// [Handle.Alive] sends no signal and is false for a zombie.
// [Handle.Wait], [Handle.WaitContext] and [Handle.Done] observe the exit
// without reaping; [Cmd.Wait] reaps, as with os/exec, and must still be
// called. [Open], [OpenID], [FromProcess], [FromFile], [Parent] and
// [PeerHandle] make Handles for processes the program did not start.
//
// Set [Cmd.Tree] to hold the child and everything it starts together:
// [TreeAuto] takes a cgroup v2 leaf of its own where the caller may create
// one ([TreeCgroup]: no descendant escapes), a process group otherwise
// ([TreeGroup]: one that calls setsid escapes), and on Windows a job object
// ([TreeJob]); none where nothing can hold the child (see TreeAuto).
// [Handle.Tree] says which one the child got, and [TreeSupport] why a mode
// is not available. Every kill issued on the
// command's behalf then reaches the whole tree: a [CommandContext]'s
// cancellation, WaitDelay's final kill, [Handle.KillTree] and
// [Handle.SignalTree]. [Handle.TreeDone] is closed once every process of
// the tree has exited.
//
// Set [Cmd.Grace] to make a context's cancellation graceful: SIGTERM to
// the tree, up to Grace for it to exit, then SIGKILL to what is left.
// [Handle.Stop] runs the same ladder on demand and returns the final
// status; a process has one ladder, however many callers ask.
//
// A child that sets SysProcAttr.Pdeathsig gets its signal when the parent
// process dies, not when the thread that started it exits (pexec starts it
// from a thread that never exits, unless the calling thread holds state of
// its own for the child to inherit). [Cmd.DieWithParent] asks for that on
// Linux and Windows alike: on Linux the child dies with the process, on
// Windows its whole job does.
//
// # Modes and guarantees
//
// A Handle is in one of three modes ([Handle.Mode]):
//
//   - [ModePidFD], on Linux where Go's runtime spawns children with pidfds
//     (5.4 or later, no seccomp filter in the way; [Supported] reports
//     true): the Handle refers to one process for ever; waiting holds no OS
//     thread; the features below are there from their kernel versions.
//   - [ModePID], where pidfds are not available (older kernels, seccomp
//     filters, QEMU user mode before 8.0, darwin, freebsd): the same API on
//     the PID. A Handle refuses to signal once pexec knows its child was
//     reaped, but another waiter in the program that reaps the child behind
//     pexec's back reopens the race; a wait blocks a thread, as in os/exec;
//     what needs a pidfd returns an error wrapping [errors.ErrUnsupported].
//   - [ModeHandle], on Windows: the Handle owns a process HANDLE duplicated
//     from the child's os.Process (never reopened from a PID), and Windows
//     does not reuse a PID while a HANDLE to the process is open; waits
//     share one thread per 63 processes; what Windows lacks ([Parent],
//     [FromFile], [PeerHandle], [OpenID], [Handle.ID], [Handle.Info],
//     [Handle.File], [Handle.SignalGroup], [Handle.GetFD]) returns an error
//     wrapping [errors.ErrUnsupported].
//
// The repository's PROOFS.md has the guarantees mode by mode, each with
// the test that checks it.
//
// # Kernel versions
//
// Each feature is probed once by calling it, never by parsing the kernel
// version; below its version a method returns an error wrapping
// [errors.ErrUnsupported] (for exit statuses, [ErrStatusUnavailable]), or
// pexec uses the fallback named here:
//
//	5.4  ModePidFD (pidfd_open, waitid(P_PIDFD), CLONE_PIDFD); Open, Parent, FromFile, FromProcess
//	5.6  pidfd_getfd: GetFD
//	5.7  CLONE_INTO_CGROUP: TreeCgroup (else TreeAuto gives TreeGroup)
//	5.14 cgroup.kill (else freeze, SIGKILL each member, thaw)
//	6.5  SO_PEERPIDFD: PeerHandle
//	6.9  pidfs: ID, Identity, OpenID, SameProcess (else it answers from
//	     liveness where it can); PIDFD_SIGNAL_PROCESS_GROUP: SignalGroup, and
//	     TreeGroup after the leader's reap (else kill(-pgid) while the leader
//	     is unreaped)
//	6.13 PIDFD_GET_INFO: Info (else /proc)
//	6.15 PIDFD_INFO_EXIT: the status of a non-child, and after a foreign reap
//
// A probe that fails for want of a resource at the time (no descriptor or
// memory free, EAGAIN, EINTR) has learnt nothing: its error wraps that
// errno, not ErrUnsupported, and the next call probes again.
//
// # Reaping
//
// A child started by [Cmd] is reaped by [Cmd.Wait]. [Handle.Wait] observes
// the exit (waitid with WNOWAIT on Linux) without reaping, so both may be
// called, in any order and from any number of goroutines, and all see the
// same status; Handle.Wait returns as soon as the child has exited, not
// when Cmd.Wait has finished copying its output. A Handle from
// [FromProcess] never reaps either. A Handle from [Open] reaps in Wait if
// the process is the caller's child; for a non-child, Wait reports the
// status the kernel records when the process's parent reaps it (Linux
// 6.15+; on Windows, the exit code of any process). When something else
// reaps a Cmd's child first, Cmd.Wait returns a [ReapedError].
//
// # How it works
//
// On Linux, Go's runtime spawns every child with CLONE_PIDFD where pidfds
// work and keeps that pidfd in the child's os.Process; the child's Handle
// uses it through os.Process.WithHandle, so a child costs one descriptor,
// as with os/exec. A live tree costs one more ([TreeGroup]: a duplicate of
// the leader's pidfd) or two ([TreeCgroup]: the leaf's directory and its
// cgroup.events), closed once the child is reaped and the tree is empty;
// an empty leaf is removed at once. Every Handle waits through one epoll
// instance parked on the netpoller; a lone waiter first blocks its thread
// for up to 5 ms, so that a child that exits at once is noticed as fast
// as by os/exec's waitid. pexec never hands a pidfd to the netpoller
// itself, so it never changes the file status flags of a description
// others share. Every child with a nil Stdin, Stdout or Stderr shares the
// same two descriptors of the null device. Every signal pexec sends by PID
// goes through one function that proves its target.
//
// On Windows, every wait goes through one exit waiter: batches of up to 63
// HANDLEs, one goroutine blocked in WaitForMultipleObjects for each. A
// [TreeJob] child is created suspended, assigned to its job, then resumed,
// so it runs no instruction outside the job. [Handle.Stop]'s graceful step
// is CTRL_BREAK_EVENT for a child started with CREATE_NEW_PROCESS_GROUP,
// and none otherwise: the kill then comes at once. [Cmd.DieWithParent]
// gives the job JOB_OBJECT_LIMIT_KILL_ON_JOB_CLOSE.
package pexec
