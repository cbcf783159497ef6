package cgroup_test

import (
	"testing"

	"github.com/pexec-dev/pexec/internal/testhelper"
)

func TestMain(m *testing.M) { testhelper.Main(m, helpers) }
