package pexec

import "strconv"

// headTail is an io.Writer that keeps the first and the last max bytes
// written to it, for [Cmd.Output]'s ExitError.Stderr. Its Bytes matches
// os/exec's: head, then "\n... omitting N bytes ...\n", then tail. Writes
// copy in chunks: the tail is a ring buffer filled with at most two copies
// per Write, whatever its size.
type headTail struct {
	max     int
	head    []byte
	tail    []byte // ring buffer of up to max bytes, oldest at start
	start   int
	omitted int64
}

func (w *headTail) Write(p []byte) (int, error) {
	n := len(p)
	if room := w.max - len(w.head); room > 0 {
		k := min(room, len(p))
		w.head = append(w.head, p[:k]...)
		p = p[k:]
	}
	if room := w.max - len(w.tail); room > 0 {
		k := min(room, len(p))
		w.tail = append(w.tail, p[:k]...)
		p = p[k:]
	}
	if len(p) == 0 {
		return n, nil
	}
	// The ring is full: p's bytes replace the oldest ones, and only p's
	// last max bytes can survive.
	w.omitted += int64(len(p))
	if len(p) > w.max {
		p = p[len(p)-w.max:]
	}
	k := copy(w.tail[w.start:], p)
	copy(w.tail, p[k:])
	w.start = (w.start + len(p)) % w.max
	return n, nil
}

// Bytes returns what was kept.
func (w *headTail) Bytes() []byte {
	out := append([]byte(nil), w.head...)
	if w.omitted > 0 {
		out = append(out, "\n... omitting "+strconv.FormatInt(w.omitted, 10)+" bytes ...\n"...)
	}
	out = append(out, w.tail[w.start:]...)
	return append(out, w.tail[:w.start]...)
}
