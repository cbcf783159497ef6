//go:build linux

package procfs

import (
	"os"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestParseStat(t *testing.T) {
	// A name with spaces and parentheses, as a program may choose.
	line := "4242 (a (b) c) S 1 4242 4242 0 -1 4194560 98 0 0 0 0 0 0 0 20 0 1 0 123456 2367488 141 18446744073709551615 1 1 0 0 0 0 0 4097 0 0 0 0 17 1 0 0 0 0 0 0 0 0 0 0 0 0 256"
	got, err := ParseStat([]byte(line))
	if err != nil {
		t.Fatal(err)
	}
	want := Stat{Comm: "a (b) c", State: 'S', PPid: 1, Pgrp: 4242, Session: 4242, Flags: 4194560, Start: 123456, SigIgnore: 4097, ExitCode: 256}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
	if got.ForkedNoExec() {
		t.Errorf("flags %#x: ForkedNoExec() = true, want false", got.Flags)
	}
	got.Flags |= 0x40
	if !got.ForkedNoExec() {
		t.Errorf("flags %#x: ForkedNoExec() = false, want true", got.Flags)
	}
	for _, bad := range []string{"", "1 (x", "1 (x) S 1 2"} {
		if _, err := ParseStat([]byte(bad)); err == nil {
			t.Errorf("ParseStat(%q) = nil error", bad)
		}
	}
}

func TestReadStatSelf(t *testing.T) {
	s, err := ReadStat(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	if s.PPid != os.Getppid() || s.Exited() || s.Start == 0 || s.ForkedNoExec() {
		t.Errorf("ReadStat(self) = %+v; want parent %d, alive, a start time, a program of its own", s, os.Getppid())
	}
}

func TestParseCgroup(t *testing.T) {
	tests := []struct {
		in   string
		want string
		ok   bool
	}{
		{"12:pids:/\n0::/a/b\n", "/a/b", true},
		{"0::/\n", "/", true},
		{"1:cpu:/x\n", "", false},
	}
	for _, tt := range tests {
		got, ok := ParseCgroup([]byte(tt.in))
		if got != tt.want || ok != tt.ok {
			t.Errorf("ParseCgroup(%q) = %q, %v; want %q, %v", tt.in, got, ok, tt.want, tt.ok)
		}
	}
}
