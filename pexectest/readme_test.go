package pexectest_test

import (
	"context"
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/pexec-dev/pexec/pexectest"
)

// The README's quick start for pexectest, as it is written there (the
// README's TestMain is this package's, in main_test.go).

func init() {
	pexectest.Register("fail", func(args []string) int { fmt.Fprintln(os.Stderr, "boom"); return 3 })
}

func TestReadmeQuickStart(t *testing.T) {
	defer pexectest.VerifyNone(t) // no child left running or unreaped
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	got := pexectest.Run(ctx, pexectest.Command("fail"))
	if diff := cmp.Diff(pexectest.Outcome{Exit: 3, Stderr: "boom\n"}, got); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
}
