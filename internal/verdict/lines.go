package verdict

import (
	"bytes"

	"github.com/ktstr-go/ktstr/internal/sanitize"
	"github.com/ktstr-go/ktstr/lib/wire"
)

// Bounds on what the folder keeps of a text stream. Memory stays bounded
// whatever the guest writes: lines are cut at maxLine bytes and only the
// last keepLines lines of each stream are kept.
const (
	maxLine   = 4096
	keepLines = 400
	// TailLines is how many lines of each log the Verdict carries.
	TailLines = 200
	// HeadLines is how many of its first lines a scheduler log keeps
	// besides its tail: how it started matters as much as how it ended.
	HeadLines = 50
)

// lineLog splits a byte stream into lines, hands each complete line to
// onLine and keeps the last keepLines of them. Lines are text as the
// guest wrote it (ill-formed UTF-8 replaced, as ktstr-wire(5) says), for
// matching; log sanitises the lines it returns.
type lineLog struct {
	name    string
	ring    []string
	next    int
	total   int64
	partial []byte
	cut     bool // partial line exceeded maxLine
	onLine  func(string)
	done    bool
	incompl bool
	headMax int      // first lines to keep besides the tail; 0: none
	head    []string // the first headMax lines
}

func newLineLog(name string, onLine func(string)) *lineLog {
	return &lineLog{name: name, onLine: onLine}
}

// Write appends p to the stream.
func (l *lineLog) Write(p []byte) {
	for len(p) > 0 {
		i := bytes.IndexByte(p, '\n')
		chunk := p
		if i >= 0 {
			chunk = p[:i]
		}
		if room := maxLine - len(l.partial); len(chunk) > room {
			l.partial = append(l.partial, chunk[:max(room, 0)]...)
			l.cut = true
		} else {
			l.partial = append(l.partial, chunk...)
		}
		if i < 0 {
			return
		}
		l.emit()
		p = p[i+1:]
	}
}

// Finish ends the stream; a last line without a newline still counts.
func (l *lineLog) Finish() {
	if l.done {
		return
	}
	l.done = true
	if len(l.partial) > 0 || l.cut {
		l.incompl = true
		l.emit()
	}
}

func (l *lineLog) emit() {
	b := bytes.TrimSuffix(l.partial, []byte{'\r'})
	s := wire.Lossy(b)
	if l.cut {
		s += " [line cut]"
	}
	l.partial, l.cut = l.partial[:0], false
	l.push(s)
	if l.onLine != nil {
		l.onLine(s)
	}
}

func (l *lineLog) push(s string) {
	if len(l.head) < l.headMax {
		l.head = append(l.head, s)
	}
	l.total++
	if len(l.ring) < keepLines {
		l.ring = append(l.ring, s)
		return
	}
	l.ring[l.next] = s
	l.next = (l.next + 1) % keepLines
}

// reset forgets every line (a new SCHED_OUTPUT block starts).
func (l *lineLog) reset() {
	l.ring, l.next, l.total, l.head = l.ring[:0], 0, 0, l.head[:0]
}

// tail returns the last n lines in order.
func (l *lineLog) tail(n int) []string {
	all := make([]string, 0, len(l.ring))
	all = append(all, l.ring[l.next:]...)
	all = append(all, l.ring[:l.next]...)
	if len(all) > n {
		all = all[len(all)-n:]
	}
	return all
}

// log returns the Log the Verdict carries, sanitised: at most n tail
// lines and, when the stream had more, its first lines and the count of
// those in between.
func (l *lineLog) log(n int) *Log {
	lg := &Log{Name: sanitize.String(l.name), Lines: l.total, Incomplete: l.incompl, Tail: sanitizeAll(l.tail(n))}
	if rest := l.total - int64(len(lg.Tail)); rest > 0 && len(l.head) > 0 {
		lg.Head = sanitizeAll(append([]string(nil), l.head[:min(int64(len(l.head)), rest)]...))
		lg.Omitted = rest - int64(len(lg.Head))
	}
	return lg
}

// sanitizeAll sanitises every line of lines in place and returns it.
func sanitizeAll(lines []string) []string {
	for i, s := range lines {
		lines[i] = sanitize.String(s)
	}
	return lines
}
