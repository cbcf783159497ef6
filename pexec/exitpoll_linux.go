package pexec

import (
	"errors"
	"os"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"
)

// exitPoller is the one place where pexec waits for processes: one epoll
// instance for the whole program, in which every Handle's pidfd (a Cmd
// child's, borrowed from its os.Process, or one a Handle owns) is watched,
// so that any number of processes are waited for with no descriptor beyond
// their pidfds and no OS thread while they run. Registering each pidfd with
// Go's netpoller instead would need an *os.File of its own, hence a second
// descriptor per child, and O_NONBLOCK set on a file description that
// others may share (an os/exec Process.Wait blocked on it in the same or
// another process would fail with EAGAIN).
//
// A pidfd is readable (EPOLLIN) once its process has exited and reports
// EPOLLHUP once the process has been reaped. Each entry is one-shot: armed
// for the exit when a Handle first waits, and re-armed for the reap only by
// a Handle that needs the kernel's exit record of a process someone else
// reaps.
//
// There is no dispatcher goroutine: the waiters take turns reading the
// epoll instance (leader and followers), so that a lone waiter, as in a loop
// of Run calls, is woken directly, with no hand-off. The reader first blocks
// in epoll_wait for up to readerSpinMsec, then parks on the netpoller (see
// park): at most one thread, for a few milliseconds, whatever the number of
// processes.
//
// A waiter holds a reference to its pidfd for as long as it waits, so the
// descriptor, its entry and the event it reports cannot vanish under it.
// The reader never touches a pidfd.
type exitPoller struct {
	epfd int
	kick int // eventfd, key 0: interrupts the reader

	lead    chan struct{} // holding its one slot makes a waiter the reader
	waiters atomic.Int32  // goroutines in wait
	events  []unix.EpollEvent
	fire    []chan struct{}
	parked  *os.File // the epoll instance on the netpoller (see park); the reader's

	mu   sync.Mutex
	next uint64 // keys: 0 is the eventfd's
	regs map[uint64]*pollReg
	// unparked is closed when the epoll instance leaves the netpoller;
	// nil while it is not on it.
	unparked chan struct{}
	// nestLimit, when not 0, keeps the epoll instance off the netpoller
	// while it holds nestLimit entries or more: nested there, it had no
	// room for more (see add), or the netpoller refused it (see park).
	nestLimit int
}

// pollReg is one pidfd's entry in the exit poller. Its channels are closed
// by the reader, under the poller's lock, once each.
type pollReg struct {
	key       uint64
	exit      chan struct{} // closed once the process has exited
	gone      chan struct{} // closed once it has been reaped; made when armed for it
	exitSeen  bool
	goneArmed bool
	// retired: the pidfd was taken out of the epoll instance by Cmd.Wait
	// before its reap (see retire); reaped reports the reap.
	retired bool
	// notice marks an entry made by watch, for a descriptor that is not a
	// pidfd (a cgroup's cgroup.events): every event of it closes exit, and
	// EPOLLERR, which kernfs files report with EPOLLPRI, means nothing more.
	notice bool
}

var (
	pollerMu  sync.Mutex
	pollerPtr atomic.Pointer[exitPoller]
	// noExitPoller is a test hook: the exit poller cannot be set up, as
	// when no descriptor is left for epoll_create1.
	noExitPoller atomic.Bool
)

// sharedExitPoller returns the program's exit poller, creating it on first
// use. A failure (no descriptor left for the epoll instance or its eventfd)
// is not remembered: the next call tries again, so a transient shortage
// costs thread-free waiting only while it lasts.
func sharedExitPoller() (*exitPoller, error) {
	if noExitPoller.Load() {
		return nil, errors.ErrUnsupported
	}
	if p := pollerPtr.Load(); p != nil {
		return p, nil
	}
	pollerMu.Lock()
	defer pollerMu.Unlock()
	if p := pollerPtr.Load(); p != nil {
		return p, nil
	}
	p, err := newExitPoller()
	if err == nil {
		pollerPtr.Store(p)
	}
	return p, err
}

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
	return &exitPoller{
		epfd:   epfd,
		kick:   kick,
		lead:   make(chan struct{}, 1),
		events: make([]unix.EpollEvent, 128),
		regs:   make(map[uint64]*pollReg),
	}, nil
}

// arm returns the channel closed once the process of pidfd fd has exited
// (gone false) or has been reaped (gone true), registering fd on first use
// and recording the entry in *slot. The caller holds a reference to fd.
// owner is the Handle the entry belongs to: the entry is forgotten if owner
// is garbage collected with it still in place.
func (p *exitPoller) arm(fd int, slot *atomic.Pointer[pollReg], owner *Handle, gone bool) (<-chan struct{}, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	r := slot.Load()
	for r == nil {
		p.next++
		r = &pollReg{key: p.next, exit: make(chan struct{})}
		if err := p.add(fd, r.key); err == errNested {
			r = slot.Load() // p.mu was let go: look again
			continue
		} else if err != nil {
			return nil, err
		}
		p.regs[r.key] = r
		slot.Store(r)
		runtime.AddCleanup(owner, p.forget, r.key)
	}
	if !gone {
		return r.exit, nil
	}
	if r.retired && !r.goneArmed {
		// No entry to arm: the reap under way is another waiter's, and
		// ends at once (see errRetired).
		return nil, errRetired
	}
	if r.gone == nil {
		r.gone = make(chan struct{})
	}
	if !r.goneArmed && p.regs[r.key] != nil {
		// Only EPOLLHUP, which epoll always reports, is wanted now:
		// EPOLLIN would fire at once, the process having exited.
		if err := p.ctl(unix.EPOLL_CTL_MOD, fd, r.key, unix.EPOLLONESHOT); err != nil {
			return nil, err
		}
		r.goneArmed = true
	}
	return r.gone, nil
}

// watch arms fd, which is not a pidfd, for one notice of events and returns
// a channel closed when it comes. The entry is recorded in *slot on first
// use and re-armed on each call; the caller drops it (drop) before closing
// fd. The caller must keep fd open while it waits.
func (p *exitPoller) watch(fd int, slot *atomic.Pointer[pollReg], events uint32) (<-chan struct{}, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	r := slot.Load()
	op := unix.EPOLL_CTL_MOD
	if r == nil {
		p.next++
		r = &pollReg{key: p.next, notice: true}
		op = unix.EPOLL_CTL_ADD
	}
	if err := p.ctl(op, fd, r.key, events|unix.EPOLLONESHOT); err != nil {
		return nil, err
	}
	r.exit, r.exitSeen = make(chan struct{}), false
	p.regs[r.key] = r
	slot.Store(r)
	return r.exit, nil
}

// add registers the pidfd fd for its exit under key; the caller holds
// p.mu. While the epoll instance is nested in the netpoller's, the kernel
// allows at most 500 wake-up paths to one file (reverse_path_check):
// beyond, as when many Handles' pidfds are duplicates of one description
// (FromProcess, File), EPOLL_CTL_ADD fails with EINVAL. add then takes the
// instance off the netpoller, keeps it off while it holds this many
// entries (the reader blocks one thread in epoll_wait, for all processes),
// and returns errNested, having let go of p.mu meanwhile: the caller tries
// again. Other errors are returned: ENOMEM and ENOSPC (the user's epoll
// watches used up) wrap errShortage, for which the caller waits in poll(2)
// for a while and tries again; anything else is no shortage, and the
// caller's to report.
func (p *exitPoller) add(fd int, key uint64) error {
	err := p.ctl(unix.EPOLL_CTL_ADD, fd, key, unix.EPOLLIN|unix.EPOLLONESHOT)
	switch {
	case err == nil:
		return nil
	case errors.Is(err, unix.ENOMEM), errors.Is(err, unix.ENOSPC):
		return errors.Join(errShortage, err)
	case !errors.Is(err, unix.EINVAL) || p.unparked == nil:
		return err
	}
	p.nestLimit = max(len(p.regs), 1)
	unparked := p.unparked
	p.mu.Unlock()
	defer p.mu.Lock()
	p.interrupt() // the reader, parked, unparks once it has looked
	select {
	case <-unparked:
	case p.lead <- struct{}{}: // no reader: unpark it here
		p.unpark()
		<-p.lead
	}
	return errNested
}

// errRetired is arm's answer to a wait for the reap of a Cmd child whose
// pidfd Cmd.Wait has taken out of the epoll instance: the reap being
// waited for is another waiter's, under way (waitid found the child gone,
// the pidfd not yet reaped), which takes microseconds; the caller polls.
var errRetired = errors.New("pexec: exit poller: entry retired")

// errNested is add's request to try again, the epoll instance having been
// taken off the netpoller.
var errNested = errors.New("pexec: exit poller: taken off the netpoller")

// errShortage marks a registration that failed for want of memory or
// epoll watches.
var errShortage = errors.New("pexec: exit poller: no room for another entry")

// mayPark reports whether the epoll instance may be nested in the
// netpoller's (see add).
func (p *exitPoller) mayPark() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.nestLimit != 0 && len(p.regs) >= p.nestLimit {
		return false
	}
	p.nestLimit = 0
	return true
}

func (p *exitPoller) ctl(op, fd int, key uint64, events uint32) error {
	ev := unix.EpollEvent{Events: events, Fd: int32(uint32(key)), Pad: int32(uint32(key >> 32))}
	if err := unix.EpollCtl(p.epfd, op, fd, &ev); err != nil {
		return os.NewSyscallError("epoll_ctl", err)
	}
	return nil
}

// drop forgets the entry of fd and removes it from the epoll instance,
// before the caller closes fd, a descriptor of its own: the kernel keeps an
// entry as long as any duplicate of the file description is open. Nobody
// waits on the entry then: every waiter holds a reference to fd.
func (p *exitPoller) drop(fd int, r *pollReg) {
	p.mu.Lock()
	defer p.mu.Unlock()
	unix.EpollCtl(p.epfd, unix.EPOLL_CTL_DEL, fd, nil)
	delete(p.regs, r.key)
}

// retire takes the pidfd fd of a Cmd child that has exited out of the epoll
// instance, before Cmd.Wait reaps the child and its os.Process closes fd
// (the caller holds a reference to it). The entry stays known until
// reaped: waiters still on it are told of the exit now and of the reap
// then.
func (p *exitPoller) retire(fd int, r *pollReg) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if _, ok := p.regs[r.key]; !ok {
		return // reported reaped already
	}
	unix.EpollCtl(p.epfd, unix.EPOLL_CTL_DEL, fd, nil)
	r.retired = true
	if !r.exitSeen {
		// The event will not come now: tell the waiters, and make the
		// reader, which may be one of them, look.
		r.exitSeen = true
		close(r.exit)
		p.interrupt()
	}
}

// reaped forgets the entry of a child that Cmd.Wait has reaped, reporting
// its exit and reap to the waiters still on it: the event may never come,
// because the os.Process closes the pidfd once the last of them lets go.
func (p *exitPoller) reaped(r *pollReg) {
	p.mu.Lock()
	defer p.mu.Unlock()
	told := false
	if !r.exitSeen {
		r.exitSeen = true
		close(r.exit)
		told = true
	}
	if r.gone == nil {
		r.gone = closedChan
	} else if _, ok := p.regs[r.key]; ok {
		close(r.gone)
		told = true
	}
	delete(p.regs, r.key)
	if told {
		// No event may come for it (retired): make the reader, which
		// may be one of its waiters, look.
		p.interrupt()
	}
}

// forget drops the map entry of a Handle that was garbage collected.
func (p *exitPoller) forget(key uint64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	delete(p.regs, key)
}

// wait returns true once ch is closed, false once stop or closed is. While
// no other waiter is reading the epoll instance, it reads it itself. A Close
// interrupts the reader (see interrupt); so does stop, through a goroutine
// started only while this waiter reads.
func (p *exitPoller) wait(ch, stop, closed <-chan struct{}) bool {
	var watching chan struct{}
	p.waiters.Add(1)
	defer func() {
		if p.waiters.Add(-1) == 0 {
			p.idle()
		}
		if watching != nil {
			close(watching)
		}
	}()
	for {
		select {
		case <-ch:
			return true
		case <-stop:
			return false
		case <-closed:
			return false
		case p.lead <- struct{}{}:
		}
		select {
		case <-ch:
			<-p.lead
			return true
		case <-stop:
			<-p.lead
			return false
		case <-closed:
			<-p.lead
			return false
		default:
		}
		if stop != nil && watching == nil {
			watching = make(chan struct{})
			go func(w chan struct{}) {
				select {
				case <-stop:
					p.interrupt()
				case <-w:
				}
			}(watching)
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

// readerSpinMsec bounds how long a lone reader blocks in epoll_wait,
// holding a thread, before it parks on the netpoller: a child that exits
// within it is noticed as directly as by a thread in waitid (os/exec's
// way), one that runs longer costs no thread. Only a reader with no other
// waiter spins: among many waiters, a thread blocked in a system call keeps
// its P until the runtime's monitor takes it back (up to 10 ms when the
// program was idle), which would hold up the others; they park at once.
const readerSpinMsec = 5

// read waits for events, then reports exits; only the holder of lead calls
// it.
func (p *exitPoller) read() {
	n, err := epollWait(p.epfd, p.events, 0)
	if n == 0 && err == nil && p.waiters.Load() <= 1 {
		p.unpark()
		n, err = epollWait(p.epfd, p.events, readerSpinMsec)
	}
	if n == 0 && err == nil {
		n, err = p.park()
	}
	if p.waiters.Load() <= 1 || !p.mayPark() {
		p.unpark()
	}
	if err != nil {
		return
	}
	p.fire = p.fire[:0]
	p.mu.Lock()
	for _, ev := range p.events[:n] {
		key := uint64(uint32(ev.Fd)) | uint64(uint32(ev.Pad))<<32
		if key == 0 {
			var b [8]byte
			unix.Read(p.kick, b[:])
			continue
		}
		r := p.regs[key]
		if r == nil {
			continue
		}
		if !r.exitSeen {
			r.exitSeen = true
			p.fire = append(p.fire, r.exit)
		}
		if !r.notice && ev.Events&(unix.EPOLLHUP|unix.EPOLLERR) != 0 {
			// Reaped: nothing more will come.
			if r.gone == nil {
				r.gone = closedChan
			} else {
				p.fire = append(p.fire, r.gone)
			}
			delete(p.regs, key)
		}
	}
	p.mu.Unlock()
	for i, c := range p.fire {
		close(c)
		p.fire[i] = nil
	}
}

// park waits for events parked on the netpoller, holding no thread. The
// epoll instance is registered with the netpoller (through a duplicate
// descriptor) while waiters park, and unregistered (unpark) before a lone
// reader spins and once no waiter is left: while it is registered, every
// exit also wakes the thread that sits in the netpoller, which a reader
// blocked in epoll_wait does not need.
func (p *exitPoller) park() (n int, err error) {
	if !p.mayPark() {
		p.unpark()
	} else if p.parked == nil {
		p.parked = p.parkFile()
		p.mu.Lock()
		if p.parked != nil {
			p.unparked = make(chan struct{})
		} else {
			// Refused (or no descriptor to spare): not again until
			// entries have gone.
			p.nestLimit = max(len(p.regs), 1)
		}
		p.mu.Unlock()
	}
	if f := p.parked; f != nil {
		if rc, err := f.SyscallConn(); err == nil {
			rerr := rc.Read(func(fd uintptr) bool {
				n, err = epollWait(int(fd), p.events, 0)
				return n > 0 || err != nil
			})
			if rerr == nil {
				return n, err
			}
		}
		p.unpark()
	}
	// Not on the netpoller (it refused the descriptor, or no descriptor
	// was left to duplicate): block this thread, one for all processes.
	return epollWait(p.epfd, p.events, -1)
}

// idle is called by the last waiter to leave: the last read may have
// found other waiters, and kept the epoll instance on the netpoller for
// them. Whoever reads next decides again; if nobody else holds lead, the
// last waiter takes the instance off the netpoller itself.
func (p *exitPoller) idle() {
	select {
	case p.lead <- struct{}{}:
		if p.waiters.Load() == 0 {
			p.unpark()
		}
		<-p.lead
	default:
	}
}

// unpark takes the epoll instance off the netpoller.
func (p *exitPoller) unpark() {
	if p.parked != nil {
		p.parked.Close()
		p.parked = nil
		p.mu.Lock()
		close(p.unparked)
		p.unparked = nil
		p.mu.Unlock()
	}
}

// parkFile returns a duplicate of the epoll descriptor registered with the
// netpoller, or nil. The duplicate shares the epoll instance's file
// description, which is pexec's alone, so making it non-blocking affects
// nothing else.
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
