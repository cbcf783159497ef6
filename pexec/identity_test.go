package pexec_test

import (
	"errors"
	"os"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/pexec-dev/pexec/pexec"
)

// TestIdentityText: UnmarshalText accepts exactly the texts String writes.
func TestIdentityText(t *testing.T) {
	tests := []struct {
		text string
		want *pexec.Identity // nil: os.ErrInvalid
	}{
		{"4242:8911", &pexec.Identity{Pid: 4242, ID: 8911}},
		{"1:1", &pexec.Identity{Pid: 1, ID: 1}},
		{"2147483647:18446744073709551615", &pexec.Identity{Pid: 2147483647, ID: 18446744073709551615}},
		{"", nil},
		{"1", nil},
		{"1:", nil},
		{":1", nil},
		{":", nil},
		{"x:1", nil},
		{"1:y", nil},
		{"1:2:3", nil},
		{"0:7", nil},                    // no process has PID 0
		{"1:0", nil},                    // nor ID 0
		{"-1:5", nil},                   // released os.Process, or kill(-1)
		{"+42:7", nil},                  // a sign String never writes
		{"42:+7", nil},                  // likewise
		{"042:7", nil},                  // leading zeros
		{"42:07", nil},                  // likewise
		{"00:7", nil},                   // likewise
		{"2147483648:1", nil},           // above what a pid_t holds
		{"99999999999:1", nil},          // far above (Open rejects it)
		{"1:18446744073709551616", nil}, // above uint64
		{" 42:7", nil},                  // spaces
		{"42 :7", nil},                  // likewise
		{"42:7\n", nil},                 // a newline
		{"0x2a:7", nil},                 // another base
		{"4_2:7", nil},                  // underscores (strconv base 0)
		{"٤٢:7", nil},                   // non-ASCII digits
		{"42:7\x00", nil},               // a NUL byte
		{"9223372036854775807:1", nil},  // an int64's largest
		{"18446744073709551615:1", nil}, // a uint64's largest
		{"2147483647:18446744073709551615x", nil}, // trailing garbage
	}
	for _, tt := range tests {
		t.Run(tt.text, func(t *testing.T) {
			var got pexec.Identity
			err := got.UnmarshalText([]byte(tt.text))
			if tt.want == nil {
				if !errors.Is(err, os.ErrInvalid) {
					t.Errorf("UnmarshalText(%q) = %v (%v); want an error wrapping os.ErrInvalid", tt.text, err, got)
				}
				if got != (pexec.Identity{}) {
					t.Errorf("UnmarshalText(%q) failed but changed the Identity to %v", tt.text, got)
				}
				return
			}
			if err != nil {
				t.Fatalf("UnmarshalText(%q) = %v", tt.text, err)
			}
			if diff := cmp.Diff(*tt.want, got); diff != "" {
				t.Errorf("UnmarshalText(%q) (-want +got):\n%s", tt.text, diff)
			}
			if s := got.String(); s != tt.text {
				t.Errorf("String() of the parsed Identity = %q; want %q back", s, tt.text)
			}
		})
	}
}

// FuzzIdentity: whatever text UnmarshalText accepts, String gives back
// byte for byte, and MarshalText too; whatever it rejects wraps
// os.ErrInvalid and leaves the Identity as it was.
func FuzzIdentity(f *testing.F) {
	for _, s := range []string{"4242:8911", "1:1", "2147483647:18446744073709551615", "+42:7", "042:7",
		"99999999999:1", "-1:5", "0:0", "1:0", "42:7\n", "٤٢:7", ""} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		before := pexec.Identity{Pid: 3, ID: 4}
		i := before
		if err := i.UnmarshalText(b); err != nil {
			if !errors.Is(err, os.ErrInvalid) {
				t.Fatalf("UnmarshalText(%q) = %v; want an error wrapping os.ErrInvalid", b, err)
			}
			if i != before {
				t.Fatalf("UnmarshalText(%q) failed but changed the Identity to %v", b, i)
			}
			return
		}
		if i.Pid <= 0 || i.ID == 0 {
			t.Fatalf("UnmarshalText(%q) = %+v: not a process's identity", b, i)
		}
		if s := i.String(); s != string(b) {
			t.Fatalf("UnmarshalText(%q) then String() = %q: no round trip", b, s)
		}
		if m, err := i.MarshalText(); err != nil || string(m) != string(b) {
			t.Fatalf("UnmarshalText(%q) then MarshalText() = %q, %v: no round trip", b, m, err)
		}
	})
}
