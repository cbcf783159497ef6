//go:build !linux

package pexectest

import "github.com/pexec-dev/pexec/pexec"

// Orphans are adopted, helpers report to a log, and children get a
// parent-death signal only on Linux.

func adoptOrphans(*options) {}

func openHelperLog() {}

func helperLogAddr() string { return "" }

func reportHelper(string) {}

func setDeathSignal(*pexec.Cmd) {}
