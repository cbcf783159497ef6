package testhelper

import (
	"os"
	"testing"

	"github.com/pexec-dev/pexec/pexec"
)

// NoPidfdExpectedEnv names the environment variable that declares a run
// where pexec is known to have no pidfds (pexec.Supported() false), so
// that the tests which need the pidfd mode to really run skip there
// instead of failing: set it to 1. .ci/qemu sets it: under QEMU's user-mode
// emulation clone has no CLONE_PIDFD, so Go's runtime, and pexec with it,
// run in PID mode. Everywhere else, a CI machine included, it is unset, and
// a machine where pidfds are unexpectedly unavailable (an old kernel, a
// seccomp policy) fails those tests rather than passing by skipping them.
const NoPidfdExpectedEnv = "PEXEC_TEST_NO_PIDFD_EXPECTED"

// NoPidfdExpected reports whether $PEXEC_TEST_NO_PIDFD_EXPECTED is 1.
func NoPidfdExpected() bool { return os.Getenv(NoPidfdExpectedEnv) == "1" }

// RequirePidfd asserts that pidfds are here: it returns if pexec.Supported()
// is true. Otherwise it skips t if the run declares that pidfds are
// unavailable ([NoPidfdExpectedEnv]), and fails it if not. It also fails t
// if the run declares pidfds unavailable and pexec.Supported() is true: the
// run is then not the PID-mode run it claims to be. Use it in the tests
// whose point is that the pidfd mode really runs in CI; tests of a
// pidfd-only capability that may simply be missing on an older kernel skip
// on their own.
func RequirePidfd(t testing.TB) {
	t.Helper()
	switch supported, expected := pexec.Supported(), NoPidfdExpected(); {
	case supported && expected:
		t.Fatalf("%s=1 declares that pidfds are unavailable here, but pexec.Supported() is true: this is not the PID-mode run it claims to be (does the emulator give clone(CLONE_PIDFD) now? then drop the variable)", NoPidfdExpectedEnv)
	case supported:
	case expected:
		t.Skipf("needs pidfds: pexec.Supported() is false here, as %s=1 declares (PID mode)", NoPidfdExpectedEnv)
	default:
		t.Fatalf("pexec.Supported() is false: pidfds are unexpectedly unavailable (Linux before 5.4, or a seccomp policy that denies pidfd_open, clone3 or clone(CLONE_PIDFD)), so the pidfd mode cannot be tested; where that is known and intended (QEMU user mode, see .ci/qemu), set %s=1", NoPidfdExpectedEnv)
	}
}
