package pexec

import (
	"os"
	"sync"
	"time"
	"unsafe"

	"golang.org/x/sys/windows"
)

// Every TreeJob job is associated with one completion port of pexec's,
// read by one goroutine while any tree lives: the port delivers a job's
// JOB_OBJECT_MSG_ACTIVE_PROCESS_ZERO when its last process exits, which
// closes the tree's TreeDone channel. Windows does not guarantee that
// such messages are delivered ("intended only as notifications"), so the
// reader also counts a job's active processes at each exit it hears of,
// and, when the port has been silent for portRecheckMsec, those of every
// tree: a lost message delays TreeDone by a second at most, never for
// ever.

// Job object definitions from winnt.h that golang.org/x/sys/windows does
// not have.
const (
	jobObjectMsgActiveProcessZero   = 4 // JOB_OBJECT_MSG_ACTIVE_PROCESS_ZERO
	jobObjectMsgExitProcess         = 7 // JOB_OBJECT_MSG_EXIT_PROCESS
	jobObjectMsgAbnormalExitProcess = 8 // JOB_OBJECT_MSG_ABNORMAL_EXIT_PROCESS
)

// jobObjectAssociateCompletionPort is JOBOBJECT_ASSOCIATE_COMPLETION_PORT.
type jobObjectAssociateCompletionPort struct {
	CompletionKey  uintptr
	CompletionPort windows.Handle
}

// jobObjectBasicAccountingInformation is
// JOBOBJECT_BASIC_ACCOUNTING_INFORMATION.
type jobObjectBasicAccountingInformation struct {
	TotalUserTime             int64
	TotalKernelTime           int64
	ThisPeriodTotalUserTime   int64
	ThisPeriodTotalKernelTime int64
	TotalPageFaultCount       uint32
	TotalProcesses            uint32
	ActiveProcesses           uint32
	TotalTerminatedProcesses  uint32
}

// portRecheckMsec is how long the port may be silent before the reader
// counts the processes of every tree.
const portRecheckMsec = 1000

// jobs holds the trees the port reports on, by completion key.
var jobs struct {
	mu      sync.Mutex
	port    windows.Handle
	next    uintptr
	trees   map[uintptr]*jobTree
	reading bool // the reader runs
}

// newJob creates a job object associated with the port, and its tree,
// which the port's reader watches from now on. With killOnClose, closing
// the job's HANDLE, which only this process holds (it is not inheritable),
// kills its processes: the system closes it when this process exits.
func newJob(killOnClose bool) (*jobTree, error) {
	jobs.mu.Lock()
	defer jobs.mu.Unlock()
	if jobs.port == 0 {
		port, err := windows.CreateIoCompletionPort(windows.InvalidHandle, 0, 0, 1)
		if err != nil {
			return nil, os.NewSyscallError("CreateIoCompletionPort", err)
		}
		jobs.port = port
		jobs.trees = map[uintptr]*jobTree{}
	}
	job, err := windows.CreateJobObject(nil, nil)
	if err != nil {
		return nil, os.NewSyscallError("CreateJobObject", err)
	}
	if killOnClose {
		var limit windows.JOBOBJECT_EXTENDED_LIMIT_INFORMATION
		limit.BasicLimitInformation.LimitFlags = windows.JOB_OBJECT_LIMIT_KILL_ON_JOB_CLOSE
		if _, err := windows.SetInformationJobObject(job, windows.JobObjectExtendedLimitInformation, uintptr(unsafe.Pointer(&limit)), uint32(unsafe.Sizeof(limit))); err != nil {
			windows.CloseHandle(job)
			return nil, os.NewSyscallError("SetInformationJobObject", err)
		}
	}
	jobs.next++
	info := jobObjectAssociateCompletionPort{CompletionKey: jobs.next, CompletionPort: jobs.port}
	if _, err := windows.SetInformationJobObject(job, windows.JobObjectAssociateCompletionPortInformation, uintptr(unsafe.Pointer(&info)), uint32(unsafe.Sizeof(info))); err != nil {
		windows.CloseHandle(job)
		return nil, os.NewSyscallError("SetInformationJobObject", err)
	}
	t := &jobTree{key: jobs.next, job: &ownedHandle{h: job}, empty: make(chan struct{})}
	jobs.trees[t.key] = t
	if !jobs.reading {
		jobs.reading = true
		go readPort(jobs.port)
	}
	return t, nil
}

// forget stops the port's reader from watching t.
func forget(t *jobTree) {
	jobs.mu.Lock()
	defer jobs.mu.Unlock()
	delete(jobs.trees, t.key)
}

// readPort reads the port until no tree is left to watch.
func readPort(port windows.Handle) {
	for {
		var msg uint32
		var key uintptr
		var ov *windows.Overlapped
		err := windows.GetQueuedCompletionStatus(port, &msg, &key, &ov, portRecheckMsec)
		if err != nil {
			switch {
			case ov != nil:
				continue // a failed I/O: none is ever started on this port
			case err != windows.WAIT_TIMEOUT:
				// The port cannot be read (it is never closed, so this
				// should not happen): count as if it had been silent,
				// without spinning.
				time.Sleep(portRecheckMsec * time.Millisecond)
			}
			// Silent for a while: count every tree's processes.
			jobs.mu.Lock()
			var trees []*jobTree
			for _, t := range jobs.trees {
				trees = append(trees, t)
			}
			if len(trees) == 0 {
				jobs.reading = false
				jobs.mu.Unlock()
				return
			}
			jobs.mu.Unlock()
			for _, t := range trees {
				t.check()
			}
			continue
		}
		jobs.mu.Lock()
		t := jobs.trees[key]
		jobs.mu.Unlock()
		if t == nil {
			continue
		}
		switch msg {
		case jobObjectMsgActiveProcessZero:
			t.settle()
		case jobObjectMsgExitProcess, jobObjectMsgAbnormalExitProcess:
			t.check()
		}
	}
}
