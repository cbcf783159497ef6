// Package pexec is a drop-in replacement for os/exec that makes process
// management race-free on Linux and Windows.
//
// A program keeps working when its only change is the import line:
//
//	import exec "github.com/pexec-dev/pexec/pexec"
//
// [Cmd] has every field and method of exec.Cmd with the same behaviour
// (pexec drives an exec.Cmd underneath), and [Error], [ExitError] and the
// sentinels are os/exec's own. What changes is underneath: on Linux 5.4+
// every child is spawned with a pidfd (SysProcAttr.PidFD, so clone3 or clone
// with CLONE_PIDFD), and [Cmd.Handle] returns a [Handle] on it. A Handle
// refers to one process for ever: its Signal can never reach a process that
// reused the PID, Alive never mistakes a newcomer or a zombie for the child,
// and Wait, WaitContext and Done park on Go's netpoller instead of holding an
// OS thread per child. Beyond children, [Open], [Parent], [PeerHandle] and
// [FromFile] make Handles for other processes.
//
// A child costs one descriptor, as with os/exec: since Go 1.23 the runtime
// spawns every child with CLONE_PIDFD where pidfds work and keeps that pidfd
// in the child's os.Process; the child's Handle uses it through
// os.Process.WithHandle, which holds a reference for each use. Every Handle,
// a child's or one from [Open], [FromProcess], [FromFile]..., waits through
// one epoll instance on the netpoller (pexec never hands a pidfd to the
// netpoller itself, so it never changes the file status flags of a
// description others share). A lone waiter first blocks its thread for up to
// 5 ms (in poll(2) for Cmd.Wait, in epoll_wait for the instance's reader), so
// that a child that exits at once is noticed as fast as by os/exec's waitid;
// among many waiters none does: they park at once. For a nil Stdin, Stdout
// or Stderr every child gets the same two descriptors of the null device,
// opened once. With these, a pexec Cmd is as fast as an os/exec one or
// faster (go run ./bench).
//
// # Lifetimes
//
// [Cmd.Tree] holds the child and its descendants together: in a cgroup v2
// leaf of their own ([TreeCgroup]: none can escape), in a process group
// ([TreeGroup]: signalled through the leader's pidfd), or on Windows in a
// job object ([TreeJob]). [Handle.SignalTree],
// [Handle.KillTree] and [Handle.TreeDone] act on the tree, a
// [CommandContext]'s cancellation kills it, and [Handle.Stop] stops a
// process (or tree) gracefully first and certainly last. A child that sets
// SysProcAttr.Pdeathsig is started from a thread that never exits, so the
// signal comes when the parent process dies, not when some thread does.
// [Cmd.DieWithParent] asks for that on both systems: on Linux for the
// child (SIGKILL as its parent-death signal), on Windows for its whole job.
//
// # Modes and guarantees
//
// A Handle is in [ModePidFD] when [Supported] reports true, and in [ModePID]
// otherwise: on other systems, on Linux before 5.4, where a seccomp filter
// blocks the pidfd syscalls, and where children cannot be spawned with one
// (QEMU user mode before 8.0 has no CLONE_PIDFD): pexec follows the verdict
// of Go's own runtime. The same API works in both; what holds:
//
//	guarantee                                          ModePidFD   ModePID (child)
//	Signal/Kill never reach a process that reused PID  yes         yes, unless another waiter in this process reaps the child
//	Signal/Kill after exit return os.ErrProcessDone     yes         yes (Linux: waitid WNOWAIT; elsewhere: after the reap)
//	Alive is false for a zombie, sends no signal        yes         Linux: yes; elsewhere: signal 0, true for a zombie
//	Wait/Done hold no OS thread while the child runs    yes         no: a thread blocks in waitid, as in os/exec
//	exit status after a foreign reaper (wait4(-1),      yes, 6.15+  no: *ReapedError with no status
//	  SIGCHLD ignored)
//	Open, OpenID, Parent, PeerHandle, FromFile,         yes         no: errors.ErrUnsupported
//	  FromProcess, ID, GetFD
//	Info                                                yes         child only, while unreaped
//	SignalGroup                                         yes (1)     child only, while unreaped
//	Cmd.Tree: TreeCgroup                                yes         where clone3 works (seccomp filters deny it too:
//	                                                                TreeAuto then gives TreeGroup)
//	Cmd.Tree: TreeGroup                                 yes (1)     signals only while the leader is unreaped
//
// (1) Linux 6.9+ (PIDFD_SIGNAL_PROCESS_GROUP); before, as in ModePID.
//
// # Kernel versions
//
// Each feature is probed once by calling it, never by parsing the kernel
// version; below its version a method returns an error wrapping
// [errors.ErrUnsupported] (or, for exit statuses, [ErrStatusUnavailable]):
//
//	5.1  pidfd_send_signal             5.10 PIDFD_NONBLOCK (not used)
//	5.2  CLONE_PIDFD; cgroup.freeze    5.14 cgroup.kill (else freeze and signal each)
//	5.3  pidfd_open, pollable pidfds   6.5  SO_PEERPIDFD: PeerHandle
//	5.4  waitid(P_PIDFD): ModePidFD    6.9  pidfs: ID, OpenID; SignalGroup, TreeGroup (1)
//	5.6  pidfd_getfd: GetFD            6.13 PIDFD_GET_INFO: Info (else /proc)
//	5.7  CLONE_INTO_CGROUP: TreeCgroup 6.15 PIDFD_INFO_EXIT: status after a foreign reap
//
// A probe that fails for want of a resource at the time (no descriptor or
// memory free, EAGAIN, EINTR) has learnt nothing: its error wraps that
// errno, not ErrUnsupported, and the next call probes again.
//
// # Windows
//
// On Windows every Handle is in [ModeHandle]: it owns a process HANDLE,
// duplicated from the child's os.Process (never reopened from a PID), and
// Windows does not reuse a PID while a HANDLE to its process is open.
// Alive, Kill (TerminateProcess, exit code 1 as with os/exec), Signal(0),
// Wait, WaitContext, Done, Close and Control work as on Linux; the status
// is the exit code, which Wait reads for any process, child or not.
// [Open] and [FromProcess] make Handles for other processes. Every wait
// goes through one exit waiter: batches of up to 63 HANDLEs, one goroutine
// blocked in WaitForMultipleObjects for each, so 100 waited children cost
// 2 OS threads, not 100. [TreeJob] (which [TreeAuto] gives) holds a child
// and its descendants in a job object: the child is created suspended,
// assigned, then resumed, and KillTree, TreeDone, Stop and a
// [CommandContext]'s cancellation act on the whole job. [Handle.Stop]'s
// graceful step is CTRL_BREAK_EVENT for a child started with
// CREATE_NEW_PROCESS_GROUP, none otherwise; its kill always comes.
// [Cmd.DieWithParent] kills the job when the calling process exits.
//
// # Reaping
//
// A child started by [Cmd] is reaped by [Cmd.Wait], which must be called as
// with os/exec. [Handle.Wait] observes the exit (waitid with WNOWAIT) without
// reaping, so both may be called, in any order and from any number of
// goroutines, and all see the same status; Handle.Wait returns as soon as the
// child has exited, not when Cmd.Wait has finished copying its output. A
// Handle from [FromProcess] never reaps either. A Handle from [Open] reaps in
// Wait if the process is the caller's child; for a non-child, Wait reports
// the status the kernel records when the process's parent reaps it (6.15+).
package pexec
