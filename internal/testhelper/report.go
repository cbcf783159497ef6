package testhelper

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"syscall"
	"testing"

	"github.com/pexec-dev/pexec/pexec"
	"github.com/pexec-dev/pexec/pexectest"
)

// Test bodies that must run in a process of their own (inside a seccomp
// jail, as PID 1 of a new PID namespace, with SIGCHLD ignored) run as
// helpers: the helper writes what it observed with [Report], and the test
// that started it with [RunReport] decodes the report and asserts on it.

// reportPrefix starts the one line of stdout that holds the report, so
// that other output of the helper cannot be mistaken for it.
const reportPrefix = "testhelper-report: "

// Report writes v as the helper's JSON report on stdout and returns the
// helper's exit code: 0, or 3 if v cannot be encoded.
func Report(v any) int {
	b, err := json.Marshal(v)
	if err != nil {
		fmt.Fprintln(os.Stderr, "testhelper: report:", err)
		return 3
	}
	fmt.Printf("\n%s%s\n", reportPrefix, b)
	return 0
}

// RunReport runs helper name with args in a new process (with attr as its
// SysProcAttr, if not nil) and decodes its [Report] into v. The helper is
// killed if ctx is done first. RunReport fails t, showing the helper's
// stderr, if the helper does not exit with code 0 (the race detector, for
// one, makes it exit with 66) or writes no report; it returns the helper's
// stderr for logging. It marks the helper used ([Uses]), as a helper that
// drops its privileges cannot leave its mark. It panics on an unregistered
// name, which is a bug in the test.
func RunReport(ctx context.Context, t testing.TB, attr *syscall.SysProcAttr, v any, name string, args ...string) (stderr []byte) {
	t.Helper()
	cmd := pexectest.CommandContext(ctx, name, args...)
	if cmd.Err != nil {
		panic("testhelper: " + cmd.Err.Error())
	}
	Uses(name)
	cmd.SysProcAttr = attr
	return RunReportCmd(ctx, t, cmd, v)
}

// RunReportCmd is [RunReport] for a helper command made by
// [pexectest.CommandContext], for example one that a fault injection
// (pexectest.Jailed, InPIDNamespace, WithForeignReaper) has set up: it runs
// cmd, which must not have Stdout or Stderr set, and decodes its [Report]
// into v, failing t as RunReport does.
func RunReportCmd(ctx context.Context, t testing.TB, cmd *pexec.Cmd, v any) (stderr []byte) {
	t.Helper()
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	decodeReport(ctx, t, cmd.String(), err, out.Bytes(), errb.Bytes(), v)
	return errb.Bytes()
}

// decodeReport fails t unless the helper described by what ended with err
// nil before ctx was done and wrote a report on out, which it decodes into v.
func decodeReport(ctx context.Context, t testing.TB, what string, err error, out, errb []byte, v any) {
	t.Helper()
	if ctx.Err() != nil {
		t.Fatalf("helper %s: %v (killed: %v); stderr:\n%s", what, err, ctx.Err(), errb)
	}
	if err != nil {
		t.Fatalf("helper %s: %v; stderr:\n%s", what, err, errb)
	}
	i := bytes.LastIndex(out, []byte("\n"+reportPrefix))
	if i < 0 {
		t.Fatalf("helper %s wrote no report; stdout:\n%s\nstderr:\n%s", what, out, errb)
	}
	line, _, _ := bytes.Cut(out[i+1+len(reportPrefix):], []byte("\n"))
	if err := json.Unmarshal(line, v); err != nil {
		t.Fatalf("helper %s: bad report %q: %v", what, line, err)
	}
}
