package pexec

import (
	"errors"
	"os"
	"runtime"
	"sync"
	"sync/atomic"
	"time"
	"weak"

	"golang.org/x/sys/unix"
)

// exitPoller watches the pidfds that pexec borrows from os.Process (see
// borrowedAwait): one epoll instance for the whole program, so that any
// number of children are waited for with one descriptor per child, the
// os.Process's. (Registering each borrowed pidfd with Go's netpoller would
// need an *os.File of its own, hence a second descriptor per child.)
//
// There is no dispatcher goroutine: the waiters take turns reading the epoll
// instance (leader and followers), so that a lone waiter, as in a loop of
// Run calls, is woken directly, with no hand-off. The reader first blocks in
// epoll_wait for up to readerSpinMsec, then parks on the netpoller (see
// park): at most one thread, for a few milliseconds, whatever the number of
// children.
//
// Each child's entry is added once, at Start, inside os.Process.WithHandle,
// and is one-shot. The kernel removes it when the os.Process closes the
// pidfd (after its Wait); a waiter holds a reference to the pidfd through
// WithHandle for as long as it waits, so the entry, and the event it
// reports, cannot vanish under it. The reader never touches a pidfd.
type exitPoller struct {
	epfd int
	kick int // eventfd, key 0: interrupts the reader

	lead   chan struct{} // holding its one slot makes a waiter the reader
	events []unix.EpollEvent
	fired  []*borrowed

	mu   sync.Mutex
	next uint64 // keys: 0 is the eventfd's
	regs map[uint64]weak.Pointer[borrowed]
}

var (
	// sharedExitPoller is created on first use; an error means that epoll
	// could not be set up (waits then block a thread in poll(2)).
	sharedExitPoller = sync.OnceValues(newExitPoller)
)

func newExitPoller() (*exitPoller, error) {
	epfd, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
	if err != nil {
		return nil, os.NewSyscallError("epoll_create1", err)
	}
	kick, err := unix.Eventfd(0, unix.EFD_CLOEXEC|unix.EFD_NONBLOCK)
	if err != nil {
		unix.Close(epfd)
		return nil, os.NewSyscallError("eventfd", err)
	}
	ev := unix.EpollEvent{Events: unix.EPOLLIN}
	if err := unix.EpollCtl(epfd, unix.EPOLL_CTL_ADD, kick, &ev); err != nil {
		unix.Close(epfd)
		unix.Close(kick)
		return nil, os.NewSyscallError("epoll_ctl", err)
	}
	p := &exitPoller{
		epfd:   epfd,
		kick:   kick,
		lead:   make(chan struct{}, 1),
		events: make([]unix.EpollEvent, 128),
		regs:   make(map[uint64]weak.Pointer[borrowed]),
	}
	return p, nil
}

// add registers the pidfd fd of b for one exit notification. The entry
// needs no removal: the kernel drops it when the os.Process closes the
// pidfd, and the map entry goes when it fires or b is garbage collected.
func (p *exitPoller) add(fd int, b *borrowed) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.next++
	key := p.next
	ev := unix.EpollEvent{Events: unix.EPOLLIN | unix.EPOLLONESHOT, Fd: int32(uint32(key)), Pad: int32(uint32(key >> 32))}
	if err := unix.EpollCtl(p.epfd, unix.EPOLL_CTL_ADD, fd, &ev); err != nil {
		return os.NewSyscallError("epoll_ctl", err)
	}
	p.regs[key] = weak.Make(b)
	runtime.AddCleanup(b, p.forget, key)
	return nil
}

// forget drops the map entry of a registration that never fired.
func (p *exitPoller) forget(key uint64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	delete(p.regs, key)
}

// wait returns true once fired is closed, false once stop is. Whenever no
// other waiter is reading the epoll instance, it reads it itself, and
// closes the fired channels of the processes that exited.
func (p *exitPoller) wait(fired, stop <-chan struct{}) bool {
	for {
		select {
		case <-fired:
			return true
		case <-stop:
			return false
		case p.lead <- struct{}{}:
		}
		select {
		case <-fired:
			<-p.lead
			return true
		case <-stop:
			<-p.lead
			return false
		default:
		}
		p.read()
		// A waiter blocked sending to lead takes over.
		<-p.lead
	}
}

// interrupt makes the current reader return from read, so that it notices
// its stop channel.
func (p *exitPoller) interrupt() {
	one := [8]byte{1}
	unix.Write(p.kick, one[:])
}

// noPark is a test hook: the reader never parks on the netpoller.
var noPark atomic.Bool

// readerSpinMsec bounds how long the reader blocks in epoll_wait, holding a
// thread, before it parks on the netpoller: a child that exits within it is
// noticed as directly as by a thread in waitid (os/exec's way), one that
// runs longer costs no thread. One reader at a time means one thread at most.
const readerSpinMsec = 5

// read waits for events, then reports exits; only the holder of lead calls
// it.
func (p *exitPoller) read() {
	n, err := epollWait(p.epfd, p.events, readerSpinMsec)
	if n == 0 && err == nil {
		n, err = p.park()
	}
	if err != nil {
		return
	}
	p.fired = p.fired[:0]
	p.mu.Lock()
	for _, ev := range p.events[:n] {
		key := uint64(uint32(ev.Fd)) | uint64(uint32(ev.Pad))<<32
		if key == 0 {
			var b [8]byte
			unix.Read(p.kick, b[:])
			continue
		}
		if b := p.regs[key].Value(); b != nil {
			p.fired = append(p.fired, b)
		}
		delete(p.regs, key)
	}
	p.mu.Unlock()
	// A pidfd reports events only from its process's exit on.
	for i, b := range p.fired {
		close(b.fired)
		p.fired[i] = nil
	}
}

// park waits for events parked on the netpoller, holding no thread. It
// registers a duplicate of the epoll descriptor for the time of the wait
// only: while it is registered, every exit also wakes the thread that sits
// in the netpoller, which a reader blocked in epoll_wait does not need.
func (p *exitPoller) park() (n int, err error) {
	if f := p.parkFile(); f != nil {
		defer f.Close()
		if rc, err := f.SyscallConn(); err == nil {
			rerr := rc.Read(func(fd uintptr) bool {
				n, err = epollWait(int(fd), p.events, 0)
				return n > 0 || err != nil
			})
			if rerr == nil {
				return n, err
			}
		}
	}
	// Not on the netpoller (it refused the descriptor, or no descriptor
	// was left to duplicate): block this thread, one for all children.
	return epollWait(p.epfd, p.events, -1)
}

// parkFile returns a duplicate of the epoll descriptor registered with the
// netpoller, or nil.
func (p *exitPoller) parkFile() *os.File {
	if noPark.Load() {
		return nil
	}
	fd, err := unix.FcntlInt(uintptr(p.epfd), unix.F_DUPFD_CLOEXEC, 0)
	if err != nil {
		return nil
	}
	// os.NewFile registers a non-blocking descriptor with the netpoller; an
	// epoll descriptor is readable while it has events to report (its own
	// waits are governed by their timeouts, never by O_NONBLOCK).
	if unix.SetNonblock(fd, true) != nil {
		unix.Close(fd)
		return nil
	}
	f := os.NewFile(uintptr(fd), "pexec-exitpoll")
	if errors.Is(f.SetReadDeadline(time.Time{}), os.ErrNoDeadline) {
		f.Close()
		return nil
	}
	return f
}

func epollWait(epfd int, events []unix.EpollEvent, msec int) (int, error) {
	for {
		n, err := unix.EpollWait(epfd, events, msec)
		if err != unix.EINTR {
			return n, err
		}
	}
}
