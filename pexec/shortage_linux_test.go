package pexec_test

import (
	"errors"
	"os"
	"sort"
	"strings"
	"testing"

	"github.com/pexec-dev/pexec/internal/testhelper"
	"github.com/pexec-dev/pexec/pexec"
	"golang.org/x/sys/unix"
)

// A shortage of descriptors at the first use of a feature must not turn the
// feature off for the rest of the process's life (issue 18, item 7).

func init() {
	testhelper.Register("probe-shortage", probeShortageHelper)
}

// probeAnswer is what a probe returned, as a helper reports it.
type probeAnswer struct {
	Err      string // "" for nil
	EMFILE   bool   // the error wraps EMFILE
	Sentinel string // the sentinel (ErrPermission, ErrUnsupported, ErrInvalid) it wraps, if any
}

func probeAnswerOf(err error) probeAnswer {
	a := probeAnswer{EMFILE: errors.Is(err, unix.EMFILE)}
	if err != nil {
		a.Err = err.Error()
	}
	for _, s := range []error{os.ErrPermission, errors.ErrUnsupported, os.ErrInvalid} {
		if errors.Is(err, s) {
			a.Sentinel = s.Error()
		}
	}
	return a
}

// featureProbes asks pexec's probes and TreeSupport(TreeCgroup), by name.
func featureProbes() map[string]probeAnswer {
	m := map[string]probeAnswer{"TreeSupport(TreeCgroup)": probeAnswerOf(pexec.TreeSupport(pexec.TreeCgroup))}
	for name, err := range pexec.Probes() {
		m[name] = probeAnswerOf(err)
	}
	return m
}

// probeShortageReport is what the probe-shortage helper observed.
type probeShortageReport struct {
	Opened        int
	During, After map[string]probeAnswer
	AutoTree      string // Tree() of a TreeAuto child started after the shortage
	AutoErr       string
	Setup         string
}

// probeShortageHelper asks the probes for the first time while no
// descriptor is free, then again once the descriptors are closed, and
// starts a TreeAuto child.
func probeShortageHelper([]string) int {
	var rep probeShortageReport
	r, w, err := os.Pipe() // set up the netpoller while descriptors are free
	if err != nil {
		rep.Setup = err.Error()
		return testhelper.Report(rep)
	}
	r.Close()
	w.Close()
	// Go's own pidfd probe runs at the first FindProcess or spawn, keeps its
	// verdict whatever it was, and is not pexec's to fix: let it run now.
	if p, err := os.FindProcess(os.Getpid()); err == nil {
		p.Release()
	}
	opened, release, err := testhelper.ExhaustFDs(256)
	if err != nil {
		rep.Setup = err.Error()
		return testhelper.Report(rep)
	}
	rep.During = featureProbes()
	release()
	rep.Opened = opened
	rep.After = featureProbes()
	auto := pexec.Command("true")
	auto.Tree = pexec.TreeAuto
	if err := auto.Run(); err != nil {
		rep.AutoErr = err.Error()
	} else {
		rep.AutoTree = auto.Handle().Tree().String()
	}
	return testhelper.Report(rep)
}

// TestProbeShortageNotKept: in a helper process, pexec's feature probes
// and TreeSupport(TreeCgroup) run for the first time with the descriptor
// table full (as `ulimit -n` exhausted by a busy server): each that
// succeeds here must fail there with an error wrapping EMFILE, and
// TreeSupport's must say it is transient and wrap none of the sentinels its
// doc lists for definite answers. Once the descriptors are free, each must
// answer as here, and a TreeAuto child must get the tree TreeSupport says.
// Before the fix every probe kept its EMFILE, and TreeAuto gave a process
// group for the rest of the process's life.
func TestProbeShortageNotKept(t *testing.T) {
	t.Parallel()
	want := featureProbes()
	var rep probeShortageReport
	testhelper.RunReport(waitTestContext(t), t, nil, &rep, "probe-shortage")
	if rep.Setup != "" {
		t.Fatalf("helper: %s", rep.Setup)
	}
	t.Logf("the helper filled its table with %d descriptors", rep.Opened)
	var names []string
	for name := range want {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		here, during, after := want[name], rep.During[name], rep.After[name]
		t.Logf("%s: here %q; during the shortage %q; after %q", name, here.Err, during.Err, after.Err)
		if here.Err == "" && !during.EMFILE {
			t.Errorf("%s during the shortage = %q; want an error wrapping EMFILE (was it probed before?)", name, during.Err)
		}
		if during.EMFILE && during.Sentinel != "" {
			t.Errorf("%s during the shortage = %q: wraps %q, which says the feature is missing; want a transient error", name, during.Err, during.Sentinel)
		}
		if (after.Err == "") != (here.Err == "") || after.Sentinel != here.Sentinel {
			t.Errorf("%s once descriptors were free = %q; want %q, as in a process without a shortage (the shortage's answer was kept)", name, after.Err, here.Err)
		}
	}
	if d := rep.During["TreeSupport(TreeCgroup)"]; d.EMFILE && !strings.Contains(d.Err, "transient") {
		t.Errorf("TreeSupport(TreeCgroup) during the shortage = %q; want it to say that the failure is transient", d.Err)
	}
	wantTree := pexec.TreeGroup.String()
	if want["TreeSupport(TreeCgroup)"].Err == "" {
		wantTree = pexec.TreeCgroup.String()
	}
	if rep.AutoErr != "" || rep.AutoTree != wantTree {
		t.Errorf("TreeAuto after the shortage: Tree() = %s, Run error %q; want %s, nil", rep.AutoTree, rep.AutoErr, wantTree)
	}
}
