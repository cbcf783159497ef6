//go:build !linux

package pexectest

import (
	"errors"
	"fmt"
	"runtime"
)

// errNoLeakCheck is what the leak checks report on systems without
// Linux's /proc.
var errNoLeakCheck = fmt.Errorf("pexectest: the leak checks need Linux's /proc, not on %s: %w", runtime.GOOS, errors.ErrUnsupported)

func scanChildren(*options) ([]leaked, error) { return nil, errNoLeakCheck }

func describeDescendants([]leaked) {}

func killLeak(leaked) error { return errNoLeakCheck }

func currentChildren() []procKey { return nil }

func procStart(int) uint64 { return 0 }
