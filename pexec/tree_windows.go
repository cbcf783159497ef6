package pexec

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"sync"
	"sync/atomic"
	"syscall"
	"unsafe"

	"golang.org/x/sys/windows"
)

// Trees on Windows: a job object of the child's own (TreeJob). The child
// is created suspended (CREATE_SUSPENDED), assigned to the job, and only
// then resumed, so it runs no instruction outside the job, and every
// process it starts is in the job too (Windows 8+ nests jobs, so this works
// when the caller is itself in a job). It is resumed with ntdll's
// NtResumeProcess: os.StartProcess closes the thread HANDLE that
// CreateProcess returns. Go's syscall.SysProcAttr has no attribute list,
// so PROC_THREAD_ATTRIBUTE_JOB_LIST (Windows 10), which would create the
// child in the job at once, is out of reach (golang/go#79927 proposes
// SysProcAttr.JobObjects).

// treePlan is what Start needs of the tree before and after the spawn.
type treePlan struct {
	mode      TreeMode // as asked: TreeNone, TreeAuto or TreeJob
	group     bool     // the caller asked for CREATE_NEW_PROCESS_GROUP
	suspended bool     // the caller asked for CREATE_SUSPENDED: not resumed
	tree      *jobTree // the job, or nil for none
}

// TreeSupport reports whether mode can be used here: TreeNone, TreeAuto
// and TreeJob can (TreeAuto gives TreeJob, or TreeNone if the job cannot
// be made or joined); TreeGroup and TreeCgroup return an error wrapping
// [errors.ErrUnsupported].
func TreeSupport(mode TreeMode) error {
	switch mode {
	case TreeNone, TreeAuto, TreeJob:
		return nil
	case TreeGroup, TreeCgroup:
		return errNotLinux("Cmd.Tree " + mode.String())
	}
	return fmt.Errorf("pexec: TreeMode(%d): %w", int(mode), os.ErrInvalid)
}

// planTree makes the job of a child started with attr and returns the
// SysProcAttr to start it with: attr itself without a job, else a copy
// (the caller's is never modified) that creates the child suspended.
// dieWithParent (Cmd.DieWithParent) needs a job, which gets
// JOB_OBJECT_LIMIT_KILL_ON_JOB_CLOSE: the child is then in one whatever
// mode says.
func planTree(mode TreeMode, dieWithParent bool, attr *syscall.SysProcAttr) (*treePlan, *syscall.SysProcAttr, error) {
	if err := TreeSupport(mode); err != nil {
		return nil, nil, err
	}
	if dieWithParent {
		mode = TreeJob
	}
	p := &treePlan{mode: mode}
	if attr != nil {
		p.group = attr.CreationFlags&windows.CREATE_NEW_PROCESS_GROUP != 0
	}
	if mode == TreeNone {
		return p, attr, nil
	}
	t, err := newJob(dieWithParent)
	if err != nil {
		if mode == TreeJob {
			return nil, nil, fmt.Errorf("pexec: Cmd.Tree is TreeJob, or DieWithParent is set: %w", err)
		}
		return p, attr, nil // TreeAuto: no tree; Tree() says TreeNone
	}
	var cp syscall.SysProcAttr
	if attr != nil {
		cp = *attr
	}
	p.suspended = cp.CreationFlags&windows.CREATE_SUSPENDED != 0
	cp.CreationFlags |= windows.CREATE_SUSPENDED
	t.group = p.group
	p.tree = t
	return p, &cp, nil
}

// abort undoes the plan of a Start that failed.
func (p *treePlan) abort() {
	if p != nil && p.tree != nil {
		p.tree.discard()
		p.tree = nil
	}
}

// attach gives h, the child's Handle, its tree: it assigns the suspended
// child to the job and resumes it. If it cannot, and the child must not run
// without the tree, it kills the child and returns why: Start then reaps it
// and fails. With TreeAuto, a child the job cannot take runs without a
// tree.
func (p *treePlan) attach(h *Handle) error {
	err := p.attachJob(h)
	if err != nil {
		killUnattached(h)
	}
	return err
}

// killUnattached kills the child of h, which attach could not give its
// tree: through its HANDLE (TerminateProcess), or, if the Handle has none,
// through its os.Process, which holds one too (os.Process.Kill is
// TerminateProcess on it).
func killUnattached(h *Handle) {
	if h.sys.own == nil {
		if h.sys.proc != nil {
			h.sys.proc.Kill()
		}
		return
	}
	h.control(func(ph windows.Handle) { windows.TerminateProcess(ph, killExitCode) })
}

// attachJob is attach but for the kill.
func (p *treePlan) attachJob(h *Handle) error {
	if h.sys.own == nil {
		p.abort()
		return h.sys.err
	}
	if p == nil {
		return nil
	}
	h.sys.group = p.group
	t := p.tree
	if t == nil {
		return nil
	}
	var err error
	t.hold(h)
	if cerr := h.control(func(ph windows.Handle) {
		if aerr := assignProcess(t.job.h, ph); aerr != nil {
			err = os.NewSyscallError("AssignProcessToJobObject", aerr)
			return
		}
		t.attached.Store(true)
		h.tree = t
		if !p.suspended {
			err = resumeProcess(ph)
		}
	}); cerr != nil {
		err = cerr
	}
	switch {
	case err == nil:
		return nil
	case h.tree != nil:
		return err // the resume failed; killing the child empties the job
	}
	p.abort()
	if p.mode == TreeJob {
		return fmt.Errorf("pexec: Cmd.Tree is TreeJob, or DieWithParent is set: %w", err)
	}
	// TreeAuto: the job could not take the child (a job of the caller's
	// that forbids nesting, before Windows 8); it runs without a tree.
	if !p.suspended {
		if cerr := h.control(func(ph windows.Handle) { err = resumeProcess(ph) }); cerr != nil {
			return cerr
		}
		return err
	}
	return nil
}

// assignProcess is AssignProcessToJobObject (a variable for the tests of
// its failure).
var assignProcess = windows.AssignProcessToJobObject

// ntResumeProcess is ntdll's NtResumeProcess, which golang.org/x/sys/windows
// does not wrap: it resumes every thread of a process.
var ntResumeProcess = windows.NewLazySystemDLL("ntdll.dll").NewProc("NtResumeProcess")

// resumeProcess resumes the suspended process of ph.
func resumeProcess(ph windows.Handle) error {
	if err := ntResumeProcess.Find(); err != nil {
		return fmt.Errorf("pexec: NtResumeProcess: %v: %w", err, errors.ErrUnsupported)
	}
	if r, _, _ := ntResumeProcess.Call(uintptr(ph)); r != 0 {
		return os.NewSyscallError("NtResumeProcess", windows.NTStatus(r))
	}
	return nil
}

// startEngine starts in.
func startEngine(in *exec.Cmd) error { return in.Start() }

// jobTree is a TreeJob child's tree: its job object.
type jobTree struct {
	key      uintptr      // its completion key on the port
	job      *ownedHandle // closed once the job is empty
	group    bool         // the leader leads a console process group
	leader   *ownedHandle // the leader's HANDLE, referenced until the job is empty
	attached atomic.Bool  // the leader is in the job: an empty job is a done tree
	once     sync.Once
	empty    chan struct{} // closed once the job is empty
}

func (t *jobTree) mode() TreeMode               { return TreeJob }
func (t *jobTree) done(*Handle) <-chan struct{} { return t.empty }

// holds is true: a process cannot leave a job that does not allow
// breakaway, and pexec's do not.
func (t *jobTree) holds(*Handle) bool { return true }

// reaped lets the job go, if it is empty, before Cmd.Wait returns.
func (t *jobTree) reaped(*Handle) { t.check() }

// hold takes, before h's process joins the job, the reference the tree
// keeps to the leader's HANDLE until the job is empty: the leader's PID,
// which is its console process group's ID, then names no other process.
func (t *jobTree) hold(h *Handle) {
	if h.sys.own.acquire() {
		t.leader = h.sys.own
	}
}

// signal sends what Windows has of sig to every process of the job: os.Kill
// terminates them all (TerminateJobObject, exit code 1); os.Interrupt sends
// CTRL_BREAK_EVENT to the console process group that the leader leads, if
// it was started with CREATE_NEW_PROCESS_GROUP (the members that stayed in
// that group and share the caller's console get it); 0 checks that a
// process of the job is left.
func (t *jobTree) signal(h *Handle, sig syscall.Signal) error {
	switch sig {
	case 0, syscall.SIGKILL:
	case syscall.SIGINT:
		if !t.group {
			return errNoCtrlGroup(h.pid)
		}
	default:
		return errNoSignal(sig)
	}
	if !t.job.acquire() {
		return os.ErrProcessDone // empty, and closed
	}
	defer t.job.release()
	switch sig {
	case syscall.SIGKILL:
		return os.NewSyscallError("TerminateJobObject", windows.TerminateJobObject(t.job.h, killExitCode))
	case syscall.SIGINT:
		return ctrlBreak(h.pid)
	}
	if n, err := t.active(); err != nil || n > 0 {
		return err
	}
	return os.ErrProcessDone
}

// active returns the number of processes of the job that have not exited.
// The caller holds a reference to the job.
func (t *jobTree) active() (uint32, error) {
	var info jobObjectBasicAccountingInformation
	err := windows.QueryInformationJobObject(t.job.h, windows.JobObjectBasicAccountingInformation, uintptr(unsafe.Pointer(&info)), uint32(unsafe.Sizeof(info)), nil)
	if err != nil {
		return 0, os.NewSyscallError("QueryInformationJobObject", err)
	}
	return info.ActiveProcesses, nil
}

// check settles the tree if its job is empty.
func (t *jobTree) check() {
	if !t.attached.Load() || !t.job.acquire() {
		return
	}
	n, err := t.active()
	t.job.release()
	if err == nil && n == 0 {
		t.settle()
	}
}

// settle records that the job is empty: TreeDone's channel closes, the
// port's reader forgets it, and its HANDLEs go.
func (t *jobTree) settle() {
	t.once.Do(func() {
		forget(t)
		close(t.empty)
		t.job.close()
		if t.leader != nil {
			t.leader.release()
		}
	})
}

// discard drops the job of a child that will not be in it.
func (t *jobTree) discard() {
	forget(t)
	t.job.close()
	if t.leader != nil {
		t.leader.release()
		t.leader = nil
	}
}
