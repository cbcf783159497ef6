package pexectest

import "github.com/pexec-dev/pexec/pexec"

// HelperEnvFor exposes helperEnv, the environment of a helper, to
// TestHelperEnv.
func HelperEnvFor(name string, env []string, gocoverdir string) []string {
	return helperEnv(name, env, gocoverdir)
}

// SetScanHook makes the leak checks call f after each scan that found
// leaks, until restore is called.
func SetScanHook(f func(scan int)) (restore func()) {
	old := testHookScan
	testHookScan = f
	return func() { testHookScan = old }
}

// SetMainCalled makes Command behave as if TestMain did (or did not) call
// Main, until restore is called.
func SetMainCalled(called bool) (restore func()) {
	old := mainCalled.Swap(called)
	return func() { mainCalled.Store(old) }
}

// KeepTree hands the tree of cmd, started with one, to the leak checks as
// if Start's clean-up could not empty it, naming test as its test.
func KeepTree(cmd *pexec.Cmd, test string) {
	keepTree(newTree(cmd, test))
}
