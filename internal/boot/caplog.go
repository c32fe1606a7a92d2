package boot

import (
	"fmt"
	"io"
	"sync"
)

// The cap on each console log in the run directory: the guest writes its
// serial ports at will, so the file keeps the first ConsoleHead bytes and
// the last ConsoleTail bytes, and says how many were dropped between.
const (
	ConsoleHead = 8 << 20
	ConsoleTail = 1 << 20
)

// capLog is a console log with a size cap. The first head bytes go to the
// file as they come; past that only the last tail bytes are kept, in
// memory, and Close writes a line that says how many bytes were dropped,
// then that tail. Write never fails and never blocks on anything but the
// file: a write error ends the logging, not the guest's serial port.
// Writes after Close are dropped.
type capLog struct {
	mu      sync.Mutex
	w       io.WriteCloser
	limit   int   // the head's size
	head    int64 // bytes still allowed straight to the file
	tail    []byte
	ring    int   // next position in tail, once it is full
	full    bool  // tail has wrapped
	dropped int64 // bytes neither written nor in the tail
	err     error
	closed  bool
}

// newCapLog caps w at head bytes plus the last tail bytes.
func newCapLog(w io.WriteCloser, head, tail int) *capLog {
	return &capLog{w: w, limit: head, head: int64(head), tail: make([]byte, 0, tail)}
}

func (l *capLog) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := len(p)
	if l.closed || l.err != nil {
		return n, nil
	}
	if l.head > 0 {
		k := int(min(int64(len(p)), l.head))
		if _, err := l.w.Write(p[:k]); err != nil {
			l.err = err
			return n, nil
		}
		l.head -= int64(k)
		p = p[k:]
	}
	l.keep(p)
	return n, nil
}

// keep puts p in the tail ring, counting what falls out of it.
func (l *capLog) keep(p []byte) {
	c := cap(l.tail)
	if c == 0 {
		l.dropped += int64(len(p))
		return
	}
	if len(p) >= c {
		l.dropped += int64(len(p)-c) + int64(len(l.tail))
		l.tail, l.ring, l.full = append(l.tail[:0], p[len(p)-c:]...), 0, true
		return
	}
	for len(p) > 0 {
		if !l.full {
			k := min(len(p), c-len(l.tail))
			l.tail = append(l.tail, p[:k]...)
			p = p[k:]
			l.full = len(l.tail) == c
			continue
		}
		k := copy(l.tail[l.ring:], p)
		l.dropped += int64(k)
		l.ring = (l.ring + k) % c
		p = p[k:]
	}
}

// Close writes the note and the tail if the cap was reached, then closes
// the file.
func (l *capLog) Close() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return nil
	}
	l.closed = true
	if l.err == nil && len(l.tail) > 0 {
		if l.dropped > 0 {
			_, l.err = fmt.Fprintf(l.w, "\n[ktstr-boot: console log capped at its first %d and last %d bytes; %d bytes dropped here]\n",
				l.limit, cap(l.tail), l.dropped)
		}
		if l.err == nil {
			_, l.err = l.w.Write(l.tail[l.ring:])
		}
		if l.err == nil {
			_, l.err = l.w.Write(l.tail[:l.ring])
		}
	}
	if err := l.w.Close(); l.err == nil {
		l.err = err
	}
	return l.err
}
