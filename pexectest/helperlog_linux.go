package pexectest

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"os"
	"strings"
	"sync"
	"syscall"

	"golang.org/x/sys/unix"

	"github.com/pexec-dev/pexec/internal/procfs"
)

// The helper log. Once a process has exited, /proc no longer has its
// command line or environment, so a leaked zombie would be named only by
// the kernel's 15-byte name of its program: "[x.test]" for every helper.
// So each helper, as it starts, tells the test process who it is, in a
// datagram to a Unix socket (in the abstract namespace, so there is no file
// to remove) that Main opens in the test process; the kernel adds the
// sender's PID, as the test process sees it. The reports then name a
// zombie helper as they name a running one. Helpers that a helper starts
// report too: an orphan may be one.

// helperRecord is what a helper reports about itself.
type helperRecord struct {
	Helper  string
	Command string // its command line
	Test    string
}

// maxHelperRecords bounds the records kept; beyond it, those of processes
// that are gone are dropped.
const maxHelperRecords = 4096

var helperLog struct {
	addr string // set by Main before the tests run, then read-only
	conn syscall.RawConn
	mu   sync.Mutex // held while a datagram is received and kept
	buf  []byte     // a datagram, read under mu
	oob  []byte     // its control message
	m    map[procKey]helperRecord
}

// openHelperLog opens the socket that helpers report to, and reads it
// from a goroutine, parked in the netpoller, for the life of the test
// process.
func openHelperLog() {
	fd, err := unix.Socket(unix.AF_UNIX, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC|unix.SOCK_NONBLOCK, 0)
	if err != nil {
		return
	}
	name := make([]byte, 8)
	rand.Read(name)
	addr := "@pexectest-" + hex.EncodeToString(name)
	if unix.Bind(fd, &unix.SockaddrUnix{Name: addr}) != nil || unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_PASSCRED, 1) != nil {
		unix.Close(fd)
		return
	}
	conn, err := os.NewFile(uintptr(fd), "pexectest-helper-log").SyscallConn()
	if err != nil {
		unix.Close(fd)
		return
	}
	helperLog.m = map[procKey]helperRecord{}
	helperLog.buf = make([]byte, 16<<10)
	helperLog.oob = make([]byte, unix.CmsgSpace(unix.SizeofUcred))
	helperLog.conn = conn
	helperLog.addr = addr
	go func() {
		for conn.Read(func(fd uintptr) bool { return drainHelperLog(int(fd)) }) == nil {
		}
	}()
}

// drainHelperLog keeps the records waiting in the socket fd, and reports
// whether it found it empty (false: an error other than EAGAIN stopped
// it; the netpoller's reader then gives up).
func drainHelperLog(fd int) bool {
	helperLog.mu.Lock()
	defer helperLog.mu.Unlock()
	buf, oob := helperLog.buf, helperLog.oob
	for {
		n, oobn, _, _, err := unix.Recvmsg(fd, buf, oob, unix.MSG_DONTWAIT)
		switch err {
		case nil:
			logRecord(buf[:n], oob[:oobn])
		case unix.EINTR:
		case unix.EAGAIN:
			return false // wait for more
		default:
			return true
		}
	}
}

// logRecord keeps the record in b, from the sender whose credentials are
// in the control message oob. helperLog.mu is held.
func logRecord(b, oob []byte) {
	msgs, err := unix.ParseSocketControlMessage(oob)
	if err != nil || len(msgs) == 0 {
		return
	}
	cred, err := unix.ParseUnixCredentials(&msgs[0])
	if err != nil || cred.Pid <= 0 {
		return
	}
	var r helperRecord
	if json.Unmarshal(b, &r) != nil {
		return
	}
	// The helper is still there, a zombie at worst: it reported just
	// before running its function, and this is read as soon as it
	// arrives. (Its own /proc/self/stat would do, but qemu-user fakes it.)
	st, err := procfs.ReadStat(int(cred.Pid))
	if err != nil {
		return
	}
	if len(helperLog.m) >= maxHelperRecords {
		for k := range helperLog.m {
			if st, err := procfs.ReadStat(k.pid); err != nil || st.Start != k.start {
				delete(helperLog.m, k)
			}
		}
	}
	helperLog.m[procKey{int(cred.Pid), st.Start}] = r
}

// helperLogAddr returns the address of the helper log, "" if there is none.
func helperLogAddr() string { return helperLog.addr }

// helperRecordOf returns what helper k reported as it started. A helper
// reports before it runs its function, so one that has exited has sent its
// record: it is read here if the goroutine has not yet.
func helperRecordOf(k procKey) (helperRecord, bool) {
	if helperLog.conn == nil {
		return helperRecord{}, false
	}
	// Control, not Read: the goroutine's Read holds the read lock while
	// it waits.
	helperLog.conn.Control(func(fd uintptr) { drainHelperLog(int(fd)) })
	helperLog.mu.Lock()
	defer helperLog.mu.Unlock()
	r, ok := helperLog.m[k]
	return r, ok
}

// reportHelper, in a helper, sends its record to the test process's helper
// log, if there is one. It is best effort: nothing is retried.
func reportHelper(name string) {
	addr := os.Getenv(helperLogEnv)
	if addr == "" {
		return
	}
	line := strings.Join(os.Args, " ")
	if len(line) > 8<<10 { // a datagram the log reads whole
		line = line[:8<<10] + "..."
	}
	b, err := json.Marshal(helperRecord{Helper: name, Command: line, Test: os.Getenv(testEnv)})
	if err != nil {
		return
	}
	fd, err := unix.Socket(unix.AF_UNIX, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return
	}
	defer unix.Close(fd)
	// Bounded, should the test process not read (stopped in a debugger).
	unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_SNDTIMEO, &unix.Timeval{Sec: 1})
	// The kernel adds the credentials, since the receiver asks for them.
	unix.Sendto(fd, b, 0, &unix.SockaddrUnix{Name: addr})
}
