//go:build linux

// Command supervisor is a small supervisor–worker system built on pexec
// Handles, playing a scripted scenario:
//
//	go run ./examples/supervisor              # workers contained with TreeAuto
//	go run ./examples/supervisor -tree=group  # or cgroup, or none (os/exec's behaviour)
//
// The supervisor keeps three worker processes, each started with
// [pexec.Cmd.Tree] set (TreeAuto: in a cgroup of its own where the
// supervisor may create one, in a process group of its own otherwise), so
// that a worker and every process it starts form one tree. It notices that a
// worker ended by selecting on the worker's [pexec.Handle.Done] channel (no
// PID is ever polled), restarts crashed workers (killing whatever a crashed
// worker left in its tree), and stops a worker with [pexec.Handle.Stop]:
// SIGTERM to the whole tree, then SIGKILL to the whole tree if it has not
// emptied within a grace period. Each worker watches its supervisor through
// [pexec.Parent] and leaves when the supervisor is gone.
//
// The program plays four roles, re-executing itself for the others: the
// director (the process you run) starts the supervisor, scripts the
// scenario and checks the outcome; the supervisor; the workers; a child
// that a worker starts. Everyone but that child reports events as JSON
// lines on a shared pipe (descriptor 3), which the director prints. The
// scenario: a worker crashes (the supervisor restarts it); a worker starts
// a child of its own and hangs, both ignoring SIGTERM (the supervisor
// restarts the worker with Stop, whose SIGKILL to the tree takes the child
// too: the director sees through the child's pidfd that it died; with
// -tree=none the child survives, orphaned, and the director kills it); the
// supervisor is killed with SIGKILL (its orphaned workers notice through
// Parent and leave). The director is a child subreaper, so the orphans
// become its children: it reaps them and checks that no process of the
// tree survives. It contains the supervisor as the supervisor contains its
// workers, and waits at the end for that tree to be empty too.
package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/pexec-dev/pexec/pexec"
)

// Environment variables through which the program re-executes itself.
const (
	roleEnv   = "PEXEC_SUPERVISOR_ROLE" // "supervisor", "worker" or "grandchild"; unset: director
	nameEnv   = "PEXEC_WORKER_NAME"     // the worker's name, w1...
	parentEnv = "PEXEC_SUPERVISOR_PID"  // the PID of the worker's supervisor
	treeEnv   = "PEXEC_SUPERVISOR_TREE" // the supervisor's Cmd.Tree for its workers: "auto", ...
)

const (
	workers         = 3                      // the number of workers the supervisor keeps
	termTimeout     = 500 * time.Millisecond // how long a restarted worker's tree has to exit after SIGTERM
	shutdownTimeout = 5 * time.Second        // the same when the supervisor shuts down
	killTimeout     = 5 * time.Second        // how long a tree has to vanish after SIGKILL
	maxLife         = time.Minute            // nothing in the scenario lives longer than this
	reportFD        = 3                      // the descriptor of the report pipe in every process
)

func main() {
	switch role := os.Getenv(roleEnv); role {
	case "supervisor":
		os.Exit(supervisorMain())
	case "worker":
		os.Exit(workerMain())
	case "grandchild":
		os.Exit(grandchildMain())
	case "":
	default:
		fmt.Fprintf(os.Stderr, "supervisor: unknown role %q\n", role)
		os.Exit(2)
	}
	treeFlag := flag.String("tree", "auto", "the Cmd.Tree of the workers: auto, cgroup, group, or none")
	flag.Parse()
	mode, err := parseTree(*treeFlag)
	if err != nil {
		fmt.Fprintln(os.Stderr, "supervisor example:", err)
		os.Exit(2)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := scenario(ctx, os.Stdout, mode); err != nil {
		fmt.Fprintln(os.Stderr, "supervisor example:", err)
		os.Exit(1)
	}
}

// parseTree returns the TreeMode called s ("auto", "cgroup", "group" or
// "none").
func parseTree(s string) (pexec.TreeMode, error) {
	for _, m := range []pexec.TreeMode{pexec.TreeNone, pexec.TreeAuto, pexec.TreeGroup, pexec.TreeCgroup} {
		if s == m.String() {
			return m, nil
		}
	}
	return 0, fmt.Errorf("unknown tree mode %q: want auto, cgroup, group or none", s)
}

// An Event is one thing that happened, as reported on the report pipe.
type Event struct {
	Who    string // "supervisor", "director" or the worker's name
	What   string // see Event.String
	Worker string `json:",omitempty"` // the worker concerned
	Pid    int    `json:",omitempty"` // the PID of the process concerned
	Tree   string `json:",omitempty"` // the containment concerned (Handle.Tree)
	Detail string `json:",omitempty"`
}

// String describes the event for people.
func (e Event) String() string {
	switch e.What {
	case "up":
		return fmt.Sprintf("supervisor pid %d up, starting w1..w%d with Cmd.Tree = %s", e.Pid, workers, e.Tree)
	case "ready":
		return fmt.Sprintf("%s pid %d ready, watching supervisor pid %s through pexec.Parent()", e.Worker, e.Pid, e.Detail)
	case "crashed":
		return fmt.Sprintf("supervisor: %s pid %d crashed (%s), seen on its Handle's Done channel; restarting", e.Worker, e.Pid, e.Detail)
	case "grandchild":
		return fmt.Sprintf("%s pid %s started a child of its own, pid %d, which ignores SIGTERM", e.Worker, e.Detail, e.Pid)
	case "hanging":
		return fmt.Sprintf("%s pid %d hangs and ignores SIGTERM", e.Worker, e.Pid)
	case "stop":
		if e.Tree == pexec.TreeNone.String() {
			return fmt.Sprintf("supervisor: stopping %s pid %d with Handle.Stop, no tree: SIGTERM to it alone, SIGKILL after %s", e.Worker, e.Pid, e.Detail)
		}
		return fmt.Sprintf("supervisor: stopping %s pid %d with Handle.Stop: SIGTERM to its tree (%s), SIGKILL to the tree after %s", e.Worker, e.Pid, e.Tree, e.Detail)
	case "stopped":
		if e.Tree == pexec.TreeNone.String() {
			return fmt.Sprintf("supervisor: %s pid %d stopped (%s)", e.Worker, e.Pid, e.Detail)
		}
		return fmt.Sprintf("supervisor: %s pid %d stopped (%s), its tree empty", e.Worker, e.Pid, e.Detail)
	case "gone":
		return fmt.Sprintf("director: %s's child pid %d died with it (%s), as its pidfd shows; reaped", e.Worker, e.Pid, e.Detail)
	case "survived":
		return fmt.Sprintf("director: %s's child pid %d survived it, orphaned (its pidfd says alive): killed it (%s) and reaped it", e.Worker, e.Pid, e.Detail)
	case "leaving":
		return fmt.Sprintf("%s pid %d: %s", e.Worker, e.Pid, e.Detail)
	case "orphaned":
		return fmt.Sprintf("%s pid %d: Parent().Done() closed, supervisor is gone: leaving", e.Worker, e.Pid)
	case "died":
		return fmt.Sprintf("supervisor pid %d: %s", e.Pid, e.Detail)
	}
	return fmt.Sprintf("%s: %s %s pid %d %s", e.Who, e.What, e.Worker, e.Pid, e.Detail)
}

// reporter writes events to the report pipe. Each event is one write of
// less than PIPE_BUF bytes, so lines from several processes never mix.
type reporter struct {
	mu  sync.Mutex
	who string
	f   *os.File
}

func newReporter(who string) *reporter {
	syscall.CloseOnExec(reportFD) // children get it only through ExtraFiles
	return &reporter{who: who, f: os.NewFile(reportFD, "report")}
}

func (r *reporter) report(e Event) {
	e.Who = r.who
	b, _ := json.Marshal(e)
	r.mu.Lock()
	defer r.mu.Unlock()
	r.f.Write(append(b, '\n'))
}

// lines sends the lines read from f on the returned channel, which is
// closed at end of file.
func lines(f io.Reader) <-chan string {
	ch := make(chan string)
	go func() {
		defer close(ch)
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			ch <- sc.Text()
		}
	}()
	return ch
}

// ---- The supervisor ----

// worker is one generation of a supervised worker process.
type worker struct {
	name     string
	cmd      *pexec.Cmd
	h        *pexec.Handle
	stdin    io.WriteCloser // commands for the scenario: crash, hang
	stopping bool           // the supervisor is stopping it: not a crash
}

type supervisor struct {
	r       *reporter
	exe     string
	tree    pexec.TreeMode // the workers' Cmd.Tree
	workers map[string]*worker
	exited  chan *worker // a worker's process has exited
}

// supervisorMain keeps the workers running until it is told to stop (SIGTERM,
// SIGINT or the end of its standard input), or killed.
func supervisorMain() int {
	exe, err := os.Executable()
	if err != nil {
		fmt.Fprintln(os.Stderr, "supervisor:", err)
		return 1
	}
	tree, err := parseTree(os.Getenv(treeEnv))
	if err != nil {
		fmt.Fprintln(os.Stderr, "supervisor:", err)
		return 1
	}
	s := &supervisor{r: newReporter("supervisor"), exe: exe, tree: tree, workers: map[string]*worker{}, exited: make(chan *worker)}
	stop := make(chan os.Signal, 1)
	signal.Notify(stop, syscall.SIGTERM, syscall.SIGINT)
	commands := lines(os.Stdin)
	s.r.report(Event{What: "up", Pid: os.Getpid(), Tree: tree.String()})
	for i := 1; i <= workers; i++ {
		if err := s.start("w" + strconv.Itoa(i)); err != nil {
			fmt.Fprintln(os.Stderr, "supervisor:", err)
			return 1
		}
	}
	for {
		select {
		case w := <-s.exited:
			if w.stopping {
				continue // stop has dealt with it
			}
			w.cmd.Wait() // reap it; the Handle already knows the status
			st, _ := w.h.Wait()
			s.r.report(Event{What: "crashed", Worker: w.name, Pid: w.h.Pid(), Detail: st.String()})
			s.clear(w)
			w.h.Close()
			// A real supervisor would back off when a worker keeps crashing.
			if err := s.start(w.name); err != nil {
				fmt.Fprintln(os.Stderr, "supervisor:", err)
			}
		case line, ok := <-commands:
			if !ok {
				s.shutdown()
				return 0
			}
			s.command(line)
		case <-stop:
			s.shutdown()
			return 0
		}
	}
}

// start starts the worker called name, in a tree of its own, and watches
// its Handle.
func (s *supervisor) start(name string) error {
	cmd := pexec.Command(s.exe)
	cmd.Env = append(os.Environ(), roleEnv+"=worker", nameEnv+"="+name, parentEnv+"="+strconv.Itoa(os.Getpid()))
	cmd.ExtraFiles = []*os.File{s.r.f}
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	cmd.Tree = s.tree // the worker and whatever it starts, held together
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return err
	}
	if err := cmd.Start(); err != nil {
		return err
	}
	w := &worker{name: name, cmd: cmd, h: cmd.Handle(), stdin: stdin}
	s.workers[name] = w
	go func() {
		<-w.h.Done() // no thread per worker: pexec's exit poller wakes it
		s.exited <- w
	}()
	return nil
}

// clear kills what a worker that has exited left running in its tree (a
// child it started, say), and waits until the tree is empty.
func (s *supervisor) clear(w *worker) {
	if w.h.Tree() == pexec.TreeNone {
		return // nothing to reach its descendants with
	}
	if err := w.h.KillTree(); err != nil && !errors.Is(err, os.ErrProcessDone) {
		fmt.Fprintf(os.Stderr, "supervisor: %s: %v\n", w.name, err)
		return
	}
	select {
	case <-w.h.TreeDone():
	case <-time.After(killTimeout):
		fmt.Fprintf(os.Stderr, "supervisor: %s: its tree is not empty %v after SIGKILL\n", w.name, killTimeout)
	}
}

// command runs one line of the scenario's script: "crash w1", "hang w2"
// (passed on to the worker) or "restart w2".
func (s *supervisor) command(line string) {
	verb, name, _ := strings.Cut(line, " ")
	w := s.workers[name]
	if w == nil {
		fmt.Fprintf(os.Stderr, "supervisor: no worker %q\n", name)
		return
	}
	switch verb {
	case "crash", "hang":
		fmt.Fprintln(w.stdin, verb)
	case "restart":
		s.stop(w, termTimeout)
		if err := s.start(name); err != nil {
			fmt.Fprintln(os.Stderr, "supervisor:", err)
		}
	}
}

// stop stops a worker and its tree with Handle.Stop: SIGTERM to the tree,
// then SIGKILL to the tree if it has not emptied within grace.
func (s *supervisor) stop(w *worker, grace time.Duration) {
	w.stopping = true
	pid, tree := w.h.Pid(), w.h.Tree().String()
	s.r.report(Event{What: "stop", Worker: w.name, Pid: pid, Tree: tree, Detail: grace.String()})
	ctx, cancel := context.WithTimeout(context.Background(), grace+killTimeout)
	st, err := w.h.Stop(ctx, grace)
	cancel()
	w.cmd.Wait() // reap it: Stop does not
	detail := st.String()
	if err != nil {
		detail = err.Error()
	}
	s.r.report(Event{What: "stopped", Worker: w.name, Pid: pid, Tree: tree, Detail: detail})
	w.h.Close()
}

// shutdown stops every worker, in parallel.
func (s *supervisor) shutdown() {
	var wg sync.WaitGroup
	for _, w := range s.workers {
		wg.Go(func() { s.stop(w, shutdownTimeout) })
	}
	wg.Wait()
}

// ---- The workers ----

// workerMain does the work (here: waiting for the scenario's commands)
// until its supervisor is gone, it is told to stop, or it crashes.
func workerMain() int {
	name := os.Getenv(nameEnv)
	r := newReporter(name)
	ev := func(what, detail string) { r.report(Event{What: what, Worker: name, Pid: os.Getpid(), Detail: detail}) }
	sup, err := pexec.Parent()
	if err != nil {
		ev("leaving", "no handle to the supervisor: "+err.Error())
		return 1
	}
	if want := os.Getenv(parentEnv); strconv.Itoa(sup.Pid()) != want {
		// The supervisor died before Parent ran: our parent is now whoever
		// adopted us.
		ev("leaving", "supervisor "+want+" already gone")
		return 0
	}
	term := make(chan os.Signal, 1)
	signal.Notify(term, syscall.SIGTERM)
	commands := lines(os.Stdin)
	lifetime := time.NewTimer(maxLife)
	ev("ready", strconv.Itoa(sup.Pid()))
	for {
		select {
		case <-sup.Done():
			ev("orphaned", "")
			return 0
		case <-term:
			ev("leaving", "SIGTERM: finishing up and leaving")
			return 0
		case cmd, ok := <-commands:
			switch {
			case !ok:
				commands = nil // the supervisor closed our stdin (or died)
			case cmd == "crash":
				return 3
			case cmd == "hang":
				signal.Ignore(syscall.SIGTERM)
				child, err := startGrandchild()
				if err != nil {
					ev("leaving", "cannot start a child: "+err.Error())
					return 1
				}
				// Never waited for: it is left to whatever stops us.
				r.report(Event{What: "grandchild", Worker: name, Pid: child.Process.Pid, Detail: strconv.Itoa(os.Getpid())})
				ev("hanging", "")
				time.Sleep(maxLife)
				return 0
			}
		case <-lifetime.C:
			return 0
		}
	}
}

// startGrandchild starts a child of the worker, the supervisor's
// grandchild, and waits until it ignores SIGTERM.
func startGrandchild() (*pexec.Cmd, error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, err
	}
	cmd := pexec.Command(exe)
	cmd.Env = append(os.Environ(), roleEnv+"=grandchild")
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	if line, err := bufio.NewReader(out).ReadString('\n'); line != "ready\n" {
		cmd.Process.Kill()
		cmd.Wait()
		return nil, fmt.Errorf("the child said %q: %v", line, err)
	}
	return cmd, nil
}

// grandchildMain is a worker's child: it ignores SIGTERM, says so, and
// sleeps until it is killed, or for maxLife at most.
func grandchildMain() int {
	signal.Ignore(syscall.SIGTERM)
	fmt.Println("ready")
	time.Sleep(maxLife)
	return 0
}

// ---- The director ----

// Outcome is what the director observed.
type Outcome struct {
	Events   []Event // every event, in the order received
	Leftover []int   // processes of the tree still alive at the end (none)
}

// director runs the supervisor and follows the events on the report pipe.
type director struct {
	w      io.Writer
	events <-chan Event
	out    *Outcome
	sup    *pexec.Cmd
}

// next returns the next event, printing it.
func (d *director) next(ctx context.Context) (Event, error) {
	select {
	case e, ok := <-d.events:
		if !ok {
			return Event{}, io.EOF
		}
		d.out.Events = append(d.out.Events, e)
		fmt.Fprintln(d.w, "  "+e.String())
		return e, nil
	case <-ctx.Done():
		return Event{}, ctx.Err()
	}
}

// expect waits until each of wants (What, and Worker if set) has happened,
// in any order, and returns the matching events.
func (d *director) expect(ctx context.Context, wants ...Event) ([]Event, error) {
	got := make([]Event, len(wants))
	missing := len(wants)
	for missing > 0 {
		e, err := d.next(ctx)
		if err != nil {
			return nil, fmt.Errorf("waiting for %v: %w", wants, err)
		}
		for i, w := range wants {
			if got[i].What == "" && e.What == w.What && (w.Worker == "" || e.Worker == w.Worker) {
				got[i] = e
				missing--
				break
			}
		}
	}
	return got, nil
}

func (d *director) step(format string, args ...any) {
	fmt.Fprintf(d.w, "== "+format+"\n", args...)
}

// record records and prints an event of the director's own.
func (d *director) record(e Event) {
	e.Who = "director"
	d.out.Events = append(d.out.Events, e)
	fmt.Fprintln(d.w, "  "+e.String())
}

// launch makes the calling process a child subreaper and starts the
// supervisor, whose workers get Cmd.Tree = tree, returning a director that
// follows the events and the supervisor's Cmd, whose standard input takes
// the scenario's commands. The supervisor is contained too (in the same
// way, unless tree is TreeNone), so that the director knows when every
// process it led to has exited, and that the cgroups the supervisor makes,
// nested in its own, go with its own if it dies. Once launch returns, the
// caller must call sup.Wait.
func launch(ctx context.Context, w io.Writer, tree pexec.TreeMode) (d *director, sup *pexec.Cmd, script io.Writer, err error) {
	// As a child subreaper, we adopt the supervisor's orphans when it dies
	// (rather than init), so that we can check what becomes of them.
	if err := unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0); err != nil {
		return nil, nil, nil, os.NewSyscallError("prctl(PR_SET_CHILD_SUBREAPER)", err)
	}
	exe, err := os.Executable()
	if err != nil {
		return nil, nil, nil, err
	}
	r, pw, err := os.Pipe()
	if err != nil {
		return nil, nil, nil, err
	}
	sup = pexec.CommandContext(ctx, exe)
	sup.Env = append(os.Environ(), roleEnv+"=supervisor", treeEnv+"="+tree.String())
	sup.Tree = tree // CommandContext kills the whole tree if ctx ends first
	sup.ExtraFiles = []*os.File{pw}
	sup.Stdout, sup.Stderr = os.Stderr, os.Stderr
	stdin, err := sup.StdinPipe()
	if err == nil {
		err = sup.Start()
	}
	pw.Close()
	if err != nil {
		r.Close()
		return nil, nil, nil, err
	}
	events := make(chan Event)
	go func() {
		defer r.Close()
		defer close(events)
		for line := range lines(r) {
			var e Event
			if json.Unmarshal([]byte(line), &e) == nil {
				events <- e
			}
		}
	}()
	return &director{w: w, events: events, out: &Outcome{}, sup: sup}, sup, stdin, nil
}

// stopped ends the supervisor's tree after an early return.
func stopped(sup *pexec.Cmd) {
	if sup.ProcessState == nil {
		if sup.Handle().Tree() != pexec.TreeNone {
			sup.Handle().KillTree()
		}
		sup.Handle().Kill()
		sup.Wait()
	}
}

// scenario plays the scripted scenario with the workers started with
// Cmd.Tree = tree, printing what happens to w.
func scenario(ctx context.Context, w io.Writer, tree pexec.TreeMode) (*Outcome, error) {
	d, sup, script, err := launch(ctx, w, tree)
	if err != nil {
		return nil, err
	}
	defer stopped(sup) // after an early return
	send := func(cmd string) { fmt.Fprintln(script, cmd) }
	ready := func(name string) Event { return Event{What: "ready", Worker: name} }

	d.step("A supervisor keeps %d workers; each worker watches it through pexec.Parent()", workers)
	if _, err := d.expect(ctx, Event{What: "up"}, ready("w1"), ready("w2"), ready("w3")); err != nil {
		return d.out, err
	}

	d.step("Step 1: w1 crashes")
	send("crash w1")
	if _, err := d.expect(ctx, Event{What: "crashed", Worker: "w1"}, ready("w1")); err != nil {
		return d.out, err
	}

	d.step("Step 2: w2 starts a child and hangs, both ignoring SIGTERM; the supervisor restarts w2 with Handle.Stop (SIGTERM, then SIGKILL after %s)", termTimeout)
	send("hang w2")
	got, err := d.expect(ctx, Event{What: "grandchild", Worker: "w2"}, Event{What: "hanging", Worker: "w2"})
	if err != nil {
		return d.out, err
	}
	// The child ignores SIGTERM and w2, which hangs, never reaps it: it is
	// alive and its PID is its own until the restart, so the pidfd opened
	// now refers to it.
	child, err := pexec.Open(got[0].Pid)
	if err != nil {
		return d.out, err
	}
	defer child.Close()
	send("restart w2")
	stop, err := d.expect(ctx, Event{What: "stopped", Worker: "w2"})
	if err != nil {
		return d.out, err
	}
	if err := d.checkChild(ctx, "w2", child, stop[0].Tree != pexec.TreeNone.String()); err != nil {
		return d.out, err
	}
	if _, err := d.expect(ctx, ready("w2")); err != nil {
		return d.out, err
	}

	d.step("Step 3: the supervisor is killed with SIGKILL; its workers are orphans now")
	if err := sup.Handle().Kill(); err != nil {
		return d.out, err
	}
	if err := d.supervisorEnded(sup); err != nil {
		return d.out, err
	}
	if _, err := d.expect(ctx, Event{What: "orphaned", Worker: "w1"}, Event{What: "orphaned", Worker: "w2"}, Event{What: "orphaned", Worker: "w3"}); err != nil {
		return d.out, err
	}
	if err := d.finish(ctx); err != nil {
		return d.out, err
	}
	d.step("Done: the orphans noticed and left by themselves; no process of the tree survives")
	return d.out, nil
}

// checkChild finds out, through its pidfd, what became of a worker's child
// once the worker has been stopped: with a tree, the SIGKILL that ended the
// worker ended the child too; without one it survives, orphaned, and the
// director kills it. The director, a child subreaper, is its parent by
// now (the worker has exited), so it reaps it.
func (d *director) checkChild(ctx context.Context, worker string, child *pexec.Handle, contained bool) error {
	what := "gone"
	if !contained {
		if !child.Alive() {
			return fmt.Errorf("%s's child pid %d is dead, though nothing contains it", worker, child.Pid())
		}
		what = "survived"
		if err := child.Kill(); err != nil {
			return err
		}
	}
	wctx, cancel := context.WithTimeout(ctx, killTimeout)
	defer cancel()
	st, err := child.WaitContext(wctx) // reaps it
	if err != nil {
		child.Kill() // leave nothing behind
		child.WaitContext(ctx)
		return fmt.Errorf("%s's child pid %d is still alive after %s was stopped: %w", worker, child.Pid(), worker, err)
	}
	d.record(Event{What: what, Worker: worker, Pid: child.Pid(), Detail: st.String()})
	return nil
}

// supervisorEnded reaps the supervisor and records how it ended.
func (d *director) supervisorEnded(sup *pexec.Cmd) error {
	err := sup.Wait()
	if sup.ProcessState == nil {
		return fmt.Errorf("supervisor: %w", err)
	}
	d.record(Event{What: "died", Pid: sup.Process.Pid, Detail: sup.ProcessState.String()})
	return nil
}

// finish reaps whatever the supervisor left behind and checks that nothing
// is left: no child, and no process holding the report pipe.
func (d *director) finish(ctx context.Context) error {
	if err := d.reapOrphans(ctx); err != nil {
		return err
	}
	if n := len(d.out.Leftover); n > 0 {
		return fmt.Errorf("%d processes survived: %v", n, d.out.Leftover)
	}
	// Every process that held the report pipe has exited, so after the
	// events still in it comes the end of file.
	for {
		_, err := d.next(ctx)
		if err == io.EOF {
			break
		}
		if err != nil {
			return fmt.Errorf("report pipe still open: %w", err)
		}
	}
	// And the supervisor's tree is empty: with a cgroup, that covers every
	// process it or its workers started, wherever it was reparented.
	if d.sup.Handle().Tree() == pexec.TreeNone {
		return nil
	}
	select {
	case <-d.sup.Handle().TreeDone():
		return nil
	case <-ctx.Done():
		return fmt.Errorf("the supervisor's tree (%v) is not empty: %w", d.sup.Handle().Tree(), ctx.Err())
	}
}

// reapOrphans reaps the orphaned workers, which are now the director's
// children, and records any process left.
func (d *director) reapOrphans(ctx context.Context) error {
	pids, err := children()
	if err != nil {
		return err
	}
	var statuses []string
	for _, pid := range pids {
		// An unreaped child's PID cannot be reused, so opening it by PID
		// is race-free here.
		h, err := pexec.Open(pid)
		if err != nil {
			return err
		}
		st, err := h.WaitContext(ctx) // reaps it: it is our child
		h.Close()
		if err != nil {
			d.out.Leftover = append(d.out.Leftover, pid)
			continue
		}
		d.out.Events = append(d.out.Events, Event{Who: "director", What: "reaped", Pid: pid, Detail: st.String()})
		statuses = append(statuses, st.String())
	}
	if len(statuses) > 0 {
		slices.Sort(statuses) // the order of /proc's list is no one's
		fmt.Fprintf(d.w, "  director: reaped %d orphans (%s)\n", len(statuses), strings.Join(statuses, ", "))
	}
	// Nothing else may be left: no child at all, exited or not.
	var info unix.Siginfo
	if err := unix.Waitid(unix.P_ALL, 0, &info, unix.WEXITED|unix.WNOHANG|unix.WNOWAIT, nil); err != unix.ECHILD {
		return fmt.Errorf("a process is left: waitid(P_ALL) = %v", err)
	}
	return nil
}

// children returns the PIDs of the calling process's children.
func children() ([]int, error) {
	tasks, err := os.ReadDir("/proc/self/task")
	if err != nil {
		return nil, err
	}
	var pids []int
	for _, t := range tasks {
		b, err := os.ReadFile("/proc/self/task/" + t.Name() + "/children")
		if errors.Is(err, os.ErrNotExist) && t.Name() != strconv.Itoa(os.Getpid()) {
			continue // a thread that has just exited
		}
		if err != nil {
			return nil, fmt.Errorf("listing children (needs CONFIG_PROC_CHILDREN): %w", err)
		}
		for _, f := range strings.Fields(string(b)) {
			pid, err := strconv.Atoi(f)
			if err != nil {
				return nil, err
			}
			pids = append(pids, pid)
		}
	}
	return pids, nil
}
