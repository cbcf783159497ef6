package pexec

import (
	"errors"
	"os"
	"runtime"
	"sync"
	"syscall"
	"time"
	"weak"

	"golang.org/x/sys/unix"
)

// exitPoller watches the pidfds that pexec borrows from os.Process (see
// borrowedAwait): one epoll instance for the whole program, itself
// registered with Go's netpoller, so that any number of children are waited
// for with no OS thread and one descriptor per child, the os.Process's.
// (Registering each borrowed pidfd with the netpoller would need an
// *os.File of its own, hence a second descriptor per child.)
//
// There is no dispatcher goroutine: the waiters take turns reading the epoll
// instance (leader and followers), so that a lone waiter, as in a loop of
// Run calls, is woken by the netpoller directly, with no hand-off.
//
// Each child's entry is added once, at Start, inside os.Process.WithHandle,
// and is one-shot. The kernel removes it when the os.Process closes the
// pidfd (after its Wait); a waiter holds a reference to the pidfd through
// WithHandle for as long as it waits, so the entry, and the event it
// reports, cannot vanish under it. The reader never touches a pidfd.
type exitPoller struct {
	epfd int
	rc   syscall.RawConn // nil: the netpoller refused epfd, read it blocking
	kick int             // eventfd, key 0: interrupts the reader

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
	// os.NewFile registers a non-blocking descriptor with the netpoller; an
	// epoll descriptor is readable while it has events to report. The
	// *os.File is never closed: it lives as long as the program.
	if unix.SetNonblock(epfd, true) == nil {
		f := os.NewFile(uintptr(epfd), "pexec-exitpoll")
		if !errors.Is(f.SetReadDeadline(time.Time{}), os.ErrNoDeadline) {
			p.rc, _ = f.SyscallConn()
		}
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

// readerSpinMsec bounds how long the reader blocks in epoll_wait, holding a
// thread, before it parks on the netpoller: a child that exits within it is
// noticed as directly as by a thread in waitid (os/exec's way), one that
// runs longer costs no thread. One reader at a time means one thread at most.
const readerSpinMsec = 5

// read waits for events, then reports exits; only the holder of lead calls
// it.
func (p *exitPoller) read() {
	var n int
	var err error
	if p.rc == nil {
		n, err = epollWait(p.epfd, p.events, -1)
	} else if n, err = epollWait(p.epfd, p.events, readerSpinMsec); n == 0 && err == nil {
		// Parked on the netpoller, holding no thread.
		p.rc.Read(func(fd uintptr) bool {
			n, err = epollWait(int(fd), p.events, 0)
			return n > 0 || err != nil
		})
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
		b.fire()
		p.fired[i] = nil
	}
}

func epollWait(epfd int, events []unix.EpollEvent, msec int) (int, error) {
	for {
		n, err := unix.EpollWait(epfd, events, msec)
		if err != unix.EINTR {
			return n, err
		}
	}
}
