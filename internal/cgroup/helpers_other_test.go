//go:build !linux

package cgroup_test

import "github.com/pexec-dev/pexec/internal/testhelper"

// helpers are this package's helper processes: none outside Linux.
var helpers = map[string]testhelper.Func{}
