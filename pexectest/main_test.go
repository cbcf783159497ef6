package pexectest_test

import (
	"encoding/json"
	"fmt"
	"os"
	"os/signal"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/pexec-dev/pexec/internal/testhelper"
	"github.com/pexec-dev/pexec/pexectest"
)

// fixtureEnv names the fixture test (TestFixture*) that a re-execution of
// this binary by TestFixtures runs; the fixtures skip otherwise.
const fixtureEnv = "PEXECTEST_TEST_FIXTURE"

func TestMain(m *testing.M) {
	testhelper.DefaultChildSignals()
	var opts []pexectest.Option
	if os.Getenv(fixtureEnv) != "" {
		// A fixture that leaks wants its failure, not a second of retries.
		opts = append(opts, pexectest.MaxWait(50*time.Millisecond))
	}
	pexectest.Main(m, opts...)
}

// The helpers of this package's tests and examples.
func init() {
	// sleep [duration]: sleeps (an hour by default).
	pexectest.Register("sleep", func(args []string) int {
		d := time.Hour
		if len(args) > 0 {
			d, _ = time.ParseDuration(args[0])
		}
		time.Sleep(d)
		return 0
	})
	// exit code [stdout [stderr]]: writes and exits with code.
	pexectest.Register("exit", func(args []string) int {
		code, _ := strconv.Atoi(arg(args, 0))
		fmt.Print(arg(args, 1))
		fmt.Fprint(os.Stderr, arg(args, 2))
		return code
	})
	// greet name: says hello.
	pexectest.Register("greet", func(args []string) int {
		fmt.Printf("hello, %s\n", arg(args, 0))
		return 0
	})
	// ignore-term: ignores SIGTERM, says "ready" and sleeps.
	pexectest.Register("ignore-term", func([]string) int {
		signal.Ignore(syscall.SIGTERM)
		fmt.Println("ready")
		time.Sleep(time.Hour)
		return 0
	})
	// term-ok: says "ready", then exits with code 0 on SIGTERM.
	pexectest.Register("term-ok", func([]string) int {
		c := make(chan os.Signal, 1)
		signal.Notify(c, syscall.SIGTERM)
		fmt.Println("ready")
		<-c
		return 0
	})
	// kill-self sig: sends itself signal number sig.
	pexectest.Register("kill-self", func(args []string) int {
		n, _ := strconv.Atoi(arg(args, 0))
		if self, err := os.FindProcess(os.Getpid()); err == nil {
			self.Signal(syscall.Signal(n))
		}
		time.Sleep(time.Hour)
		return 0
	})
	// grandchild: starts a sleeping helper of its own, prints its PID and
	// sleeps.
	pexectest.Register("grandchild", func([]string) int {
		c := pexectest.Command("sleep")
		if err := c.Start(); err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		fmt.Println(c.Process.Pid)
		time.Sleep(time.Hour)
		return 0
	})
	// orphan: starts a sleeping helper of its own, prints its PID and
	// exits, leaving it orphaned (reparented away from the test process
	// and from the tree's leader).
	pexectest.Register("orphan", func([]string) int {
		c := pexectest.Command("sleep")
		if err := c.Start(); err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		fmt.Println(c.Process.Pid)
		return 0
	})
	// race: has a data race, which the race detector reports.
	pexectest.Register("race", func([]string) int {
		var x int
		var wg sync.WaitGroup
		for range 2 {
			wg.Go(func() { x++ })
		}
		wg.Wait()
		return 0
	})
	// report-env: reports its command line and what it inherited.
	pexectest.Register("report-env", func(args []string) int {
		json.NewEncoder(os.Stdout).Encode(envReport{
			Args:       args,
			Argv:       os.Args[1:],
			GORACE:     os.Getenv("GORACE"),
			GOCOVERDIR: os.Getenv("GOCOVERDIR"),
			Jail:       os.Getenv("PEXECTEST_JAIL"),
			Fixture:    os.Getenv(fixtureEnv),
		})
		return 0
	})
}

// envReport is what the report-env helper saw.
type envReport struct {
	Args       []string // the helper's arguments
	Argv       []string // its command line after the program
	GORACE     string
	GOCOVERDIR string
	Jail       string
	Fixture    string
}

func arg(args []string, i int) string {
	if i < len(args) {
		return args[i]
	}
	return ""
}
