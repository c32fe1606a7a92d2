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
// onLine (as text) or onRaw (as bytes) and keeps the last keepLines of
// them. Lines are text as the guest wrote it (ill-formed UTF-8 replaced,
// as ktstr-wire(5) says), for matching; log sanitises the lines it
// returns.
//
// The lines kept are kept as the guest's bytes, in buffers reused from
// line to line, and become text only when log asks for them: a stream of
// millions of lines costs a copy of each, not a string each (the verdict
// reads a scheduler's output at pipe speed).
type lineLog struct {
	name    string
	ring    []rawLine // the last keepLines lines
	next    int
	total   int64
	partial []byte
	cut     bool // partial line exceeded maxLine
	// onLine takes each line as text; onRaw, if set, takes each line as
	// the guest's bytes instead (valid only during the call), whether it
	// was cut and whether scan found a word in it, and turns the few
	// lines it cares about into text.
	onLine func(string)
	onRaw  func(b []byte, cut, hot bool)
	// scan, with onRaw, returns where in p the words onRaw looks for may
	// start or lie, in increasing order, appended to dst: a line with
	// none of them is passed with hot false. Every such word is found
	// where it lies whole in p; a line onRaw gets with hot false holds
	// none.
	scan    func(p []byte, dst []int) []int
	hot     []int // scan's positions in the current Write
	hotLine []int // scan's positions in a line gathered in partial
	done    bool
	incompl bool
	headMax int      // first lines to keep besides the tail; 0: none
	head    []string // the first headMax lines
}

// rawLine is a line kept as the guest's bytes, cut at maxLine bytes.
type rawLine struct {
	b   []byte
	cut bool
}

// lineText is the text of a line: ill-formed UTF-8 replaced, and a line
// cut at maxLine bytes marked.
func lineText(b []byte, cut bool) string {
	s := wire.Lossy(b)
	if cut {
		s += " [line cut]"
	}
	return s
}

func newLineLog(name string, onLine func(string)) *lineLog {
	return &lineLog{name: name, onLine: onLine}
}

// Write appends p to the stream.
func (l *lineLog) Write(p []byte) {
	var hot []int
	if l.scan != nil {
		l.hot = l.scan(p, l.hot[:0])
		hot = l.hot
	}
	for off := 0; len(p) > 0; {
		i := bytes.IndexByte(p, '\n')
		if i >= 0 && len(l.partial) == 0 && !l.cut {
			// A whole line inside p: no copy into partial, and scan's
			// positions in p say whether it holds a word.
			for len(hot) > 0 && hot[0] < off {
				hot = hot[1:]
			}
			line, cut := p[:i], false
			if len(line) > maxLine {
				line, cut = line[:maxLine], true
			}
			l.emit(line, cut, len(hot) > 0 && hot[0] < off+i)
			p, off = p[i+1:], off+i+1
			continue
		}
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
		l.emitPartial()
		p, off = p[i+1:], off+i+1
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
		l.emitPartial()
	}
}

// emitPartial emits the line gathered in partial, which may span several
// Writes: scan looks at it whole.
func (l *lineLog) emitPartial() {
	b, cut := l.partial, l.cut
	l.partial, l.cut = l.partial[:0], false
	hot := false
	if l.scan != nil {
		l.hotLine = l.scan(b, l.hotLine[:0]) // not hot: Write is still reading it
		hot = len(l.hotLine) > 0
	}
	l.emit(b, cut, hot)
}

// emit takes one line, its newline gone: b is valid only during the call.
func (l *lineLog) emit(b []byte, cut, hot bool) {
	if n := len(b); n > 0 && b[n-1] == '\r' {
		b = b[:n-1] // bytes.TrimSuffix, without a call to compare one byte
	}
	l.push(b, cut)
	switch {
	case l.onRaw != nil:
		l.onRaw(b, cut, hot)
	case l.onLine != nil:
		l.onLine(lineText(b, cut))
	}
}

// push keeps a copy of line b.
func (l *lineLog) push(b []byte, cut bool) {
	if len(l.head) < l.headMax {
		l.head = append(l.head, lineText(b, cut))
	}
	l.total++
	var slot *rawLine
	switch {
	case len(l.ring) < cap(l.ring) && len(l.ring) < keepLines:
		l.ring = l.ring[:len(l.ring)+1] // a buffer left by reset
		slot = &l.ring[len(l.ring)-1]
	case len(l.ring) < keepLines:
		l.ring = append(l.ring, rawLine{})
		slot = &l.ring[len(l.ring)-1]
	default:
		slot = &l.ring[l.next]
		l.next = (l.next + 1) % keepLines
	}
	slot.b, slot.cut = append(slot.b[:0], b...), cut
}

// reset forgets every line (a new SCHED_OUTPUT block starts).
func (l *lineLog) reset() {
	l.ring, l.next, l.total, l.head = l.ring[:0], 0, 0, l.head[:0]
}

// tail returns the last n lines in order.
func (l *lineLog) tail(n int) []string {
	k := min(n, len(l.ring))
	all := make([]string, 0, k)
	for j := len(l.ring) - k; j < len(l.ring); j++ {
		r := &l.ring[(l.next+j)%len(l.ring)]
		all = append(all, lineText(r.b, r.cut))
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
