package wire

import (
	"encoding/binary"
	"fmt"
)

// EventKind names an anomaly the assembler or the one-shot parser met.
type EventKind uint8

const (
	// EventCRCMismatch: a complete frame whose payload does not match its
	// CRC. The frame is still delivered, with CRCOK false.
	EventCRCMismatch EventKind = iota + 1
	// EventPadNonzero: a complete frame whose reserved field is not 0
	// ("possible hostile guest covert channel"). The frame is delivered.
	EventPadNonzero
	// EventOversized: a frame announcing more than the cap. The assembler
	// drops it and the rest of the stream; the one-shot parser stops.
	EventOversized
	// EventResidualOverflow: more than twice the cap was pending without a
	// complete frame; the assembler drops it and the rest of the stream.
	EventResidualOverflow
	// EventTruncatedTail: the stream ended inside a frame.
	EventTruncatedTail
)

var eventNames = [...]string{
	EventCRCMismatch:      "crc_mismatch",
	EventPadNonzero:       "pad_nonzero",
	EventOversized:        "oversized",
	EventResidualOverflow: "residual_overflow",
	EventTruncatedTail:    "truncated_tail",
}

// String returns the snake_case name used in records and man pages.
func (k EventKind) String() string {
	if int(k) < len(eventNames) && eventNames[k] != "" {
		return eventNames[k]
	}
	return fmt.Sprintf("EventKind(%d)", uint8(k))
}

// Event is an anomaly with its context.
type Event struct {
	Kind EventKind
	// Offset is the stream offset of the frame header the event is about
	// (for a residual overflow, of the first byte cleared).
	Offset int64
	// Seq is the number of frames delivered before this event: the index
	// of the frame it is about for CRC and pad events, the index the next
	// frame will get for the others.
	Seq int64
	// Type, Length and Pad are the header's fields, when a header was read.
	Type   Type
	Length uint32
	Pad    uint32
	// Dropped is how many bytes the event discarded: the truncated tail;
	// the oversized frame (header included); the first 2 × cap + 1 bytes
	// of the frame that overflowed. The assembler's Stats also count the
	// bytes dropped after an oversized frame or an overflow.
	Dropped int64
}

func (e Event) String() string {
	return fmt.Sprintf("%v at offset %d (type %v, length %d, pad %d, dropped %d)",
		e.Kind, e.Offset, e.Type, e.Length, e.Pad, e.Dropped)
}

// Stats counts what an assembler has seen.
type Stats struct {
	Bytes            int64 // bytes fed
	Frames           int64 // frames delivered
	CRCMismatch      int64
	PadNonzero       int64
	Oversized        int64
	ResidualOverflow int64
	TruncatedTail    int64
	DroppedBytes     int64 // bytes discarded by resyncs and the truncated tail
}

// Assembler turns a byte stream cut into arbitrary pieces back into
// frames, with the semantics of ktstr's HostAssembler (V-A):
//
//   - a frame is delivered once all its bytes have arrived, in stream order;
//   - the checks on a complete frame run in ktstr's order: pad warning, then
//     the per-frame cap (a payload of exactly Cap bytes is accepted), then
//     the CRC;
//   - the cap is checked only once a frame is complete, so a large
//     legitimate frame may arrive header first;
//   - a complete frame above the cap is dropped with everything after it
//     (its length cannot be trusted to find the next header); frames
//     completed before it are still delivered;
//   - more than 2 × Cap bytes pending without a complete frame are dropped
//     with everything after them; exactly 2 × Cap is kept. A frame above
//     the cap and longer than 2 × Cap in all (header included) is such an
//     overflow once 2 × Cap + 1 of its bytes have arrived, even when all
//     of it came in one Feed, since in pieces it could never be held
//     whole (ktstr's host reads at most 256 KiB at a time, so there it
//     always is one);
//   - a CRC mismatch or a non-zero pad is reported and the frame delivered.
//
// After an oversized frame or a residual overflow the assembler drops the
// rest of the stream: every later Feed is counted in Stats.DroppedBytes
// and delivers nothing. ktstr's HostAssembler drops the rest of the read
// it is in and resumes with the next one, so what survives there depends
// on where the reads were cut; here frames and events depend only on the
// bytes, so a replay of a recording gives exactly what the live run gave
// (for any Cap of at least 16 bytes, the real one 16 MiB; below that a
// frame within the cap can be longer than 2 × Cap). For every input that ktstr's own tests pin (one feed
// holding the oversized frame and what follows it) the two agree, and the
// one-shot parser, which stops at an oversized header, returns no frame
// after it either.
//
// Memory grows only with bytes actually fed: a header announcing 4 GiB
// allocates nothing until the bytes arrive, and the pending buffer never
// holds more than 2 × Cap bytes (bytes that would push it past that are
// counted and dropped without being copied). Every anomaly is reported to
// OnEvent and counted in Stats.
//
// The zero value is ready to use. An Assembler is not safe for concurrent
// use, and the callbacks must not call back into it.
type Assembler struct {
	// Cap is the per-frame payload cap; 0 means MaxPayload.
	Cap uint32
	// OnEvent, when set, receives every anomaly in stream order,
	// interleaved correctly with the frames passed to Feed's callback.
	OnEvent func(Event)
	// Borrow makes Feed pass payloads that alias its input p, or the
	// assembler's own buffer for a frame that arrived over several feeds,
	// instead of fresh copies. A borrowed payload is valid only until the
	// emit callback returns: the callee copies what it keeps. Borrowing
	// saves the one allocation and copy per frame (see the benchmarks).
	Borrow bool

	buf   []byte // pending bytes of one incomplete frame; buf[0] is at stream offset off
	off   int64
	stats Stats
	// dropAll: an oversized frame or a residual overflow was met, and
	// the rest of the stream is dropped.
	dropAll bool
}

func (a *Assembler) cap() uint32 {
	if a.Cap == 0 {
		return MaxPayload
	}
	return a.Cap
}

// Stats returns the counters so far.
func (a *Assembler) Stats() Stats { return a.stats }

// Pending returns the number of bytes held for an incomplete frame.
func (a *Assembler) Pending() int { return len(a.buf) }

// Offset returns the stream offset of the first byte not yet delivered
// or dropped: the start of the pending bytes.
func (a *Assembler) Offset() int64 { return a.off }

func (a *Assembler) event(e Event) {
	switch e.Kind {
	case EventCRCMismatch:
		a.stats.CRCMismatch++
	case EventPadNonzero:
		a.stats.PadNonzero++
	case EventOversized:
		a.stats.Oversized++
	case EventResidualOverflow:
		a.stats.ResidualOverflow++
	case EventTruncatedTail:
		a.stats.TruncatedTail++
	}
	a.stats.DroppedBytes += e.Dropped
	if a.OnEvent != nil {
		a.OnEvent(e)
	}
}

// Feed appends p to the stream and calls emit, in order, for every frame
// it completes. Unless Borrow is set, each non-empty payload is a fresh
// allocation owned by the callee (one allocation per frame); an empty
// payload is nil. p is not retained. An empty p changes nothing.
//
// Complete frames are parsed in place in p; only the bytes of a frame cut
// by the end of p are copied into the pending buffer.
func (a *Assembler) Feed(p []byte, emit func(Frame)) {
	a.stats.Bytes += int64(len(p))
	if a.dropAll {
		a.drop(int64(len(p)))
		return
	}
	if len(a.buf) > 0 {
		var done bool
		if p, done = a.feedPending(p, emit); done {
			return
		}
	}
	used, resync := a.walk(p, emit)
	a.off += int64(used)
	if resync {
		a.oversized(p[used:], int64(len(p)-used))
		return
	}
	rest := p[used:]
	if int64(len(rest)) > 2*int64(a.cap()) {
		a.residual(int64(len(rest)))
		return
	}
	a.buf = append(a.buf, rest...)
}

// drop discards n bytes of the stream after an oversized frame or a
// residual overflow, counting them.
func (a *Assembler) drop(n int64) {
	a.stats.DroppedBytes += n
	a.off += n
}

// feedPending completes the pending frame with the bytes of p it needs.
// It returns the rest of p, and done when nothing is left to parse.
// It behaves exactly as if p had been appended to the buffer and the
// buffer walked, without copying bytes it would then throw away.
func (a *Assembler) feedPending(p []byte, emit func(Frame)) (rest []byte, done bool) {
	if need := HeaderSize - len(a.buf); need > 0 {
		if len(p) < need {
			a.buf = append(a.buf, p...)
			a.checkResidual()
			return nil, true
		}
		a.buf = append(a.buf, p[:need]...)
		p = p[need:]
	}
	h, _ := DecodeHeader(a.buf)
	have := uint64(len(a.buf)) // header plus the payload bytes held
	total := HeaderSize + uint64(h.Length)
	// Still incomplete, or above the cap and longer than 2 × cap in all,
	// which overflows before it can complete: keep all of p, up to the
	// overflow.
	if have+uint64(len(p)) < total || overflows(h.Length, a.cap()) {
		if n := have + uint64(len(p)); n > 2*uint64(a.cap()) {
			a.residual(int64(n))
			return nil, true
		}
		a.buf = append(a.buf, p...)
		return nil, true
	}
	if h.Pad != 0 {
		a.event(Event{Kind: EventPadNonzero, Offset: a.off, Seq: a.stats.Frames, Type: h.Type, Length: h.Length, Pad: h.Pad})
	}
	if h.Length > a.cap() {
		a.oversizedHeader(h, int64(have)+int64(len(p)))
		return nil, true
	}
	take := total - have
	var payload []byte
	switch {
	case h.Length == 0:
	case a.Borrow:
		a.buf = append(a.buf, p[:take]...)
		payload = a.buf[HeaderSize:total:total]
	default:
		payload = make([]byte, h.Length)
		n := copy(payload, a.buf[HeaderSize:])
		copy(payload[n:], p[:take])
	}
	a.deliver(h, payload, a.off, emit)
	a.off += int64(total)
	a.buf = a.buf[:0]
	if cap(a.buf) > 64<<10 {
		a.buf = nil // release the memory of a large frame
	}
	return p[take:], false
}

// deliver checks the CRC of a complete, accepted frame and emits it.
func (a *Assembler) deliver(h Header, payload []byte, off int64, emit func(Frame)) {
	ok := Checksum(payload) == h.CRC
	if !ok {
		a.event(Event{Kind: EventCRCMismatch, Offset: off, Seq: a.stats.Frames, Type: h.Type, Length: h.Length, Pad: h.Pad})
	}
	a.stats.Frames++
	emit(Frame{Type: h.Type, Payload: payload, CRCOK: ok, Pad: h.Pad, CRC: h.CRC})
}

// oversized reports the oversized frame at the start of data, whose header
// is at the current offset, and drops n bytes (the frame and the rest of
// the feed) and the rest of the stream.
func (a *Assembler) oversized(data []byte, n int64) {
	h, _ := DecodeHeader(data)
	a.oversizedHeader(h, n)
}

func (a *Assembler) oversizedHeader(h Header, n int64) {
	frame := int64(HeaderSize) + int64(h.Length)
	a.event(Event{Kind: EventOversized, Offset: a.off, Seq: a.stats.Frames,
		Type: h.Type, Length: h.Length, Pad: h.Pad, Dropped: frame})
	a.buf, a.dropAll = nil, true
	a.off += frame
	a.drop(n - frame)
}

// checkResidual clears the buffer when more than 2 × cap is pending.
func (a *Assembler) checkResidual() {
	if n := int64(len(a.buf)); n > 2*int64(a.cap()) {
		a.residual(n)
	}
}

// residual reports the incomplete frame at the current offset that has
// more than 2 × cap bytes pending, and drops n bytes (those in the buffer
// and the rest of the feed) and the rest of the stream. The event counts
// the first 2 × cap + 1 bytes, where the overflow is, wherever the feed
// ended.
func (a *Assembler) residual(n int64) {
	over := 2*int64(a.cap()) + 1
	a.event(Event{Kind: EventResidualOverflow, Offset: a.off, Seq: a.stats.Frames, Dropped: over})
	a.buf, a.dropAll = nil, true
	a.off += over
	a.drop(n - over)
}

// overflows reports whether a frame announcing length bytes, above the cap
// and longer than 2 × cap in all, is a residual overflow rather than an
// oversized frame: in pieces it could never be held whole, so it is one
// however it comes.
func overflows(length, limit uint32) bool {
	return length > limit && HeaderSize+uint64(length) > 2*uint64(limit)
}

// walk delivers the complete frames at the start of data and returns how
// many bytes they used, and whether it stopped at a complete oversized
// frame (which then starts at data[used:]).
func (a *Assembler) walk(data []byte, emit func(Frame)) (int, bool) {
	limit := a.cap()
	pos := 0
	for len(data)-pos >= HeaderSize {
		b := data[pos:]
		length := binary.LittleEndian.Uint32(b[4:])
		if uint64(len(b)-HeaderSize) < uint64(length) || overflows(length, limit) {
			// Incomplete: wait, and do not judge the length yet. A
			// frame that overflows is never complete: Feed drops it once
			// more than 2 × cap of it are pending, in whatever pieces it
			// came.
			break
		}
		h := Header{
			Type:   Type(binary.LittleEndian.Uint32(b[0:])),
			Length: length,
			CRC:    binary.LittleEndian.Uint32(b[8:]),
			Pad:    binary.LittleEndian.Uint32(b[12:]),
		}
		if h.Pad != 0 {
			a.event(Event{Kind: EventPadNonzero, Offset: a.off + int64(pos), Seq: a.stats.Frames, Type: h.Type, Length: length, Pad: h.Pad})
		}
		if length > limit {
			return pos, true
		}
		end := HeaderSize + int(length)
		var payload []byte
		switch {
		case length == 0:
		case a.Borrow:
			payload = b[HeaderSize:end:end]
		default:
			// append to nil copies without zeroing the new memory first.
			payload = append([]byte(nil), b[HeaderSize:end]...)
		}
		a.deliver(h, payload, a.off+int64(pos), emit)
		pos += end
	}
	return pos, false
}

// Close ends the stream. A partial frame still buffered is reported as an
// EventTruncatedTail (never dropped silently) and discarded. It returns
// the number of bytes discarded.
func (a *Assembler) Close() int {
	n := len(a.buf)
	if n == 0 {
		return 0
	}
	e := Event{Kind: EventTruncatedTail, Offset: a.off, Seq: a.stats.Frames, Dropped: int64(n)}
	if n >= HeaderSize {
		h, _ := DecodeHeader(a.buf)
		e.Type, e.Length, e.Pad = h.Type, h.Length, h.Pad
	}
	a.event(e)
	a.off += int64(n)
	a.buf = nil
	return n
}

// Reset discards any pending bytes without reporting them (ktstr's
// take_residual) and returns them.
func (a *Assembler) Reset() []byte {
	b := a.buf
	a.off += int64(len(b))
	a.buf = nil
	return b
}

// ParseStream is ktstr's one-shot parse_tlv_stream: it walks b from the
// start and returns the frames in stream order. For each header it reports
// a non-zero pad first, then checks the cap (limit; 0 means MaxPayload),
// then completeness. Unlike the assembler it checks the cap before
// completeness and stops the whole walk at an oversized header, complete
// or not (EventOversized; no resync, later frames are not returned). A
// trailing partial frame ends the walk and is reported as
// EventTruncatedTail. A CRC mismatch is reported and the frame returned.
// Payloads alias b; an empty payload is nil.
func ParseStream(b []byte, limit uint32) (frames []Frame, events []Event) {
	if limit == 0 {
		limit = MaxPayload
	}
	pos := 0
	for len(b)-pos >= HeaderSize {
		h, _ := DecodeHeader(b[pos:])
		ev := Event{Offset: int64(pos), Seq: int64(len(frames)), Type: h.Type, Length: h.Length, Pad: h.Pad}
		if h.Pad != 0 {
			ev.Kind = EventPadNonzero
			events = append(events, ev)
		}
		if h.Length > limit {
			ev.Kind, ev.Dropped = EventOversized, int64(len(b)-pos)
			return frames, append(events, ev)
		}
		if uint64(len(b)-pos-HeaderSize) < uint64(h.Length) {
			break
		}
		end := pos + HeaderSize + int(h.Length)
		var p []byte
		if h.Length > 0 {
			p = b[pos+HeaderSize : end : end]
		}
		ok := Checksum(p) == h.CRC
		if !ok {
			ev.Kind = EventCRCMismatch
			events = append(events, ev)
		}
		frames = append(frames, Frame{Type: h.Type, Payload: p, CRCOK: ok, Pad: h.Pad, CRC: h.CRC})
		pos = end
	}
	if pos < len(b) {
		e := Event{Kind: EventTruncatedTail, Offset: int64(pos), Seq: int64(len(frames)), Dropped: int64(len(b) - pos)}
		if len(b)-pos >= HeaderSize {
			h, _ := DecodeHeader(b[pos:])
			e.Type, e.Length, e.Pad = h.Type, h.Length, h.Pad
		}
		events = append(events, e)
	}
	return frames, events
}
