package pexec

import "strconv"

// headTail is an io.Writer that keeps the first and the last max bytes
// written to it, for [Cmd.Output]'s ExitError.Stderr. Its Bytes matches
// os/exec's: head, then "\n... omitting N bytes ...\n", then tail.
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
	for _, b := range p {
		if len(w.tail) < w.max {
			w.tail = append(w.tail, b)
			continue
		}
		w.tail[w.start] = b
		w.start = (w.start + 1) % w.max
		w.omitted++
	}
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
