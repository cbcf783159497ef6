package pexec

import (
	"fmt"
	"math"
	"os"
	"strconv"
	"strings"
)

// Identity names one process for the life of the system, in a form that can
// be stored: its PID and its kernel-unique ID ([Handle.ID], the pidfs inode,
// Linux 6.9+). A PID alone may be reused once the process is gone; the pair
// cannot. A supervisor that restarts writes the Identities of its workers
// to a state file and, after the restart, gets Handles back with
// [Identity.Open] only for the processes that are still the same ones.
//
// Its text form, used by MarshalText, UnmarshalText and so by encoding/json
// (as a string), is "PID:ID", for example "4242:8911".
type Identity struct {
	Pid int
	ID  uint64
}

// Identity returns the identity of the Handle's process. It needs
// [Handle.ID] (Linux 6.9+, a pidfd); otherwise it returns the error ID
// returns.
func (h *Handle) Identity() (Identity, error) {
	id, err := h.ID()
	if err != nil {
		return Identity{}, err
	}
	return Identity{Pid: h.pid, ID: id}, nil
}

// Open returns a Handle to the process named by i if it is still that
// process, as [OpenID] does.
func (i Identity) Open() (*Handle, error) { return OpenID(i.Pid, i.ID) }

// String returns the text form, "PID:ID".
func (i Identity) String() string {
	return strconv.Itoa(i.Pid) + ":" + strconv.FormatUint(i.ID, 10)
}

// MarshalText returns the text form, "PID:ID".
func (i Identity) MarshalText() ([]byte, error) { return []byte(i.String()), nil }

// UnmarshalText parses the text form, "PID:ID", exactly as String writes
// it: both numbers in decimal without a sign or leading zeros, the PID
// between 1 and the largest a pid_t holds (2147483647), the ID above 0. Any
// other text returns an error wrapping [os.ErrInvalid], so whatever parses
// gives the same text back.
func (i *Identity) UnmarshalText(b []byte) error {
	pid, id, ok := strings.Cut(string(b), ":")
	p, pok := parseDecimal(pid, math.MaxInt32)
	n, nok := parseDecimal(id, math.MaxUint64)
	if !ok || !pok || !nok || p == 0 || n == 0 {
		return fmt.Errorf("pexec: Identity %q: want PID:ID as Identity.String writes it (decimal, no sign or leading zeros; PID 1 to 2147483647, ID above 0): %w", b, os.ErrInvalid)
	}
	*i = Identity{Pid: int(p), ID: n}
	return nil
}

// parseDecimal parses s as strconv writes a number up to max: decimal
// digits only, without a sign or leading zeros.
func parseDecimal(s string, max uint64) (uint64, bool) {
	if s == "" || (len(s) > 1 && s[0] == '0') {
		return 0, false
	}
	for _, c := range []byte(s) {
		if c < '0' || c > '9' {
			return 0, false
		}
	}
	n, err := strconv.ParseUint(s, 10, 64)
	return n, err == nil && n <= max
}
