package pexec

import (
	"bytes"
	"math/rand/v2"
	"strconv"
	"testing"
)

// TestHeadTail checks headTail against a model, the whole stream kept and
// cut, for random write sizes around the limit (review item 7: the chunked
// copy must keep exactly what the byte-by-byte one kept).
func TestHeadTail(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for trial := range 500 {
		max := 1 + rng.IntN(64)
		w := &headTail{max: max}
		var all []byte
		for range rng.IntN(20) {
			p := make([]byte, rng.IntN(3*max))
			for i := range p {
				p[i] = byte(rng.IntN(256))
			}
			if n, err := w.Write(p); n != len(p) || err != nil {
				t.Fatalf("Write = %d, %v", n, err)
			}
			all = append(all, p...)
		}
		want := all
		if len(all) > 2*max {
			omitted := len(all) - 2*max
			want = append(append(append([]byte(nil), all[:max]...), "\n... omitting "+strconv.Itoa(omitted)+" bytes ...\n"...), all[len(all)-max:]...)
		}
		if got := w.Bytes(); !bytes.Equal(got, want) {
			t.Fatalf("trial %d (max %d, %d bytes written): got %q, want %q", trial, max, len(all), got, want)
		}
	}
}
