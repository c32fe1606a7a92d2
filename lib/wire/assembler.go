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
	// clears its whole buffer (the frame and everything after it); the
	// one-shot parser stops.
	EventOversized
	// EventResidualOverflow: more than twice the cap was pending without a
	// complete frame; the buffer was cleared.
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
	// Dropped is how many buffered bytes the event discarded.
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
//   - the per-frame cap is checked only once a frame is complete, so a large
//     legitimate frame may arrive header first;
//   - a complete frame above the cap clears the whole buffer, the frame and
//     everything after it (its length cannot be trusted to find the next
//     header); frames completed earlier in the same Feed are still delivered;
//   - more than 2 × cap pending after a Feed clears the buffer;
//   - a CRC mismatch or a non-zero pad is reported and the frame delivered.
//
// Memory grows only with bytes actually fed: a header announcing 4 GiB
// allocates nothing until the bytes arrive, and never more than about
// 2 × cap plus one Feed. Every anomaly is reported to OnEvent and counted.
type Assembler struct {
	// Cap is the per-frame payload cap; 0 means MaxPayload.
	Cap uint32
	// OnEvent, when set, receives every anomaly in stream order,
	// interleaved correctly with the frames passed to Feed's callback.
	OnEvent func(Event)

	buf   []byte // pending bytes, buf[0] is at stream offset off
	off   int64
	stats Stats
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
// it completes. Each frame's payload is a fresh allocation owned by the
// callee (one allocation per non-empty frame). p is not retained. An empty
// p re-runs assembly and changes nothing.
func (a *Assembler) Feed(p []byte, emit func(Frame)) {
	a.stats.Bytes += int64(len(p))
	if len(a.buf) > 0 {
		// Complete the pending frame with as few bytes of p as possible,
		// then parse the rest of p in place.
		if need := HeaderSize - len(a.buf); need > 0 {
			take := min(need, len(p))
			a.buf = append(a.buf, p[:take]...)
			p = p[take:]
		}
		if len(a.buf) >= HeaderSize {
			total := HeaderSize + uint64(binary.LittleEndian.Uint32(a.buf[4:]))
			take := min(total-uint64(len(a.buf)), uint64(len(p)))
			a.buf = append(a.buf, p[:take]...)
			p = p[take:]
		}
		used, resync := a.walk(a.buf, emit)
		if resync {
			a.oversized(a.buf, 0, int64(len(a.buf)+len(p)))
			return
		}
		if used == 0 { // still incomplete, so p is used up
			a.checkResidual()
			return
		}
		a.off += int64(used)
		a.buf = a.buf[:0]
		if cap(a.buf) > 1<<20 {
			a.buf = nil // release the memory of a large frame
		}
	}
	used, resync := a.walk(p, emit)
	if resync {
		a.oversized(p, used, int64(len(p)-used))
		return
	}
	a.off += int64(used)
	a.buf = append(a.buf, p[used:]...)
	a.checkResidual()
}

// oversized reports the oversized frame at data[at:] and clears the buffer
// and the dropped bytes of the current feed.
func (a *Assembler) oversized(data []byte, at int, dropped int64) {
	h, _ := DecodeHeader(data[at:])
	a.event(Event{Kind: EventOversized, Offset: a.off + int64(at), Seq: a.stats.Frames,
		Type: h.Type, Length: h.Length, Pad: h.Pad, Dropped: dropped})
	a.off += int64(at) + dropped
	a.buf = nil
}

// checkResidual clears the buffer when more than 2 × cap is pending.
func (a *Assembler) checkResidual() {
	if n := int64(len(a.buf)); n > 2*int64(a.cap()) {
		a.event(Event{Kind: EventResidualOverflow, Offset: a.off, Seq: a.stats.Frames, Dropped: n})
		a.off += n
		a.buf = nil
	}
}

// walk delivers complete frames from data and returns how many bytes they
// used, and whether it stopped at an oversized complete frame.
func (a *Assembler) walk(data []byte, emit func(Frame)) (int, bool) {
	limit := a.cap()
	pos := 0
	for len(data)-pos >= HeaderSize {
		h := data[pos:]
		length := binary.LittleEndian.Uint32(h[4:])
		end := HeaderSize + uint64(length) // cannot overflow
		if end > uint64(len(h)) {
			break // incomplete: wait, and do not judge the length yet
		}
		typ := Type(binary.LittleEndian.Uint32(h[0:]))
		pad := binary.LittleEndian.Uint32(h[12:])
		if pad != 0 {
			a.event(Event{Kind: EventPadNonzero, Offset: a.off + int64(pos), Seq: a.stats.Frames, Type: typ, Length: length, Pad: pad})
		}
		if length > limit {
			return pos, true
		}
		var payload []byte
		if length > 0 {
			payload = make([]byte, length)
			copy(payload, h[HeaderSize:end])
		}
		ok := Checksum(payload) == binary.LittleEndian.Uint32(h[8:])
		if !ok {
			a.event(Event{Kind: EventCRCMismatch, Offset: a.off + int64(pos), Seq: a.stats.Frames, Type: typ, Length: length, Pad: pad})
		}
		a.stats.Frames++
		emit(Frame{Type: typ, Payload: payload, CRCOK: ok, Pad: pad})
		pos += int(end)
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
// start and returns the frames in stream order. Unlike the assembler it
// checks the cap before completeness and stops the whole walk at an
// oversized header (no resync; later frames are not returned). A trailing
// partial frame ends the walk and is reported as EventTruncatedTail.
// Payloads alias b.
func ParseStream(b []byte, limit uint32) (frames []Frame, events []Event) {
	if limit == 0 {
		limit = MaxPayload
	}
	pos := 0
	for len(b)-pos >= HeaderSize {
		h, _ := DecodeHeader(b[pos:])
		if h.Pad != 0 {
			events = append(events, Event{Kind: EventPadNonzero, Offset: int64(pos), Seq: int64(len(frames)), Type: h.Type, Length: h.Length, Pad: h.Pad})
		}
		if h.Length > limit {
			events = append(events, Event{Kind: EventOversized, Offset: int64(pos), Seq: int64(len(frames)), Type: h.Type, Length: h.Length, Pad: h.Pad, Dropped: int64(len(b) - pos)})
			return frames, events
		}
		end := pos + HeaderSize + int(h.Length)
		if end > len(b) {
			break
		}
		p := b[pos+HeaderSize : end : end]
		ok := Checksum(p) == h.CRC
		if !ok {
			events = append(events, Event{Kind: EventCRCMismatch, Offset: int64(pos), Seq: int64(len(frames)), Type: h.Type, Length: h.Length, Pad: h.Pad})
		}
		frames = append(frames, Frame{Type: h.Type, Payload: p, CRCOK: ok, Pad: h.Pad})
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
