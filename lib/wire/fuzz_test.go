package wire

import (
	"bytes"
	"errors"
	"io"
	"reflect"
	"testing"
	"testing/iotest"

	"github.com/google/go-cmp/cmp"
)

// Caps the fuzz targets pick from: tiny ones make the oversize and
// residual rules reachable with small inputs.
var fuzzCaps = []uint32{1, 7, 16, 40, 100, 1000, MaxPayload}

// fuzzSeeds is a stream with every feature: good frames, an empty one, a
// bad CRC, a non-zero pad, an oversized frame for caps up to 40 and a
// truncated tail.
func fuzzSeeds() [][]byte {
	var s [][]byte
	for _, g := range goldenFrames {
		s = append(s, AppendFrame(nil, g.t, g.payload))
	}
	mixed := AppendFrame(nil, TypeScenarioStart, nil)
	mixed = append(mixed, frameWith(TypeExit, []byte{1, 0, 0, 0}, 9, 0)...)
	mixed = append(mixed, frameWith(TypeStdout, []byte("pad"), Checksum([]byte("pad")), 1)...)
	mixed = AppendFrame(mixed, TypeSchedLog, bytes.Repeat([]byte("L"), 50))
	mixed = AppendFrame(mixed, TypeStdout, []byte("after"))
	mixed = append(mixed, AppendFrame(nil, TypeDmesg, []byte("cut"))[:20]...)
	s = append(s, mixed, AppendHeader(nil, Header{Type: TypeStdout, Length: 0xFFFFFFFF}))
	return s
}

// replay checks an assembler log against the stream it came from: every
// delivered frame re-encodes, with its CRC field and pad, to the bytes at
// its offset; every event is at the current offset; nothing follows an
// oversized frame or a residual overflow, which drop the rest of the
// stream; dropped bytes (the events' and, after such an event, the rest)
// and frames together cover the stream exactly once.
func replay(t *testing.T, data []byte, items []item) {
	t.Helper()
	off := int64(0)
	for i, it := range items {
		if i > 0 && isResync(items[i-1]) {
			t.Fatalf("item %d: %v after %v, which drops the rest of the stream", i, it, items[i-1])
		}
		if it.Event != nil {
			e := it.Event
			if e.Offset != off {
				t.Fatalf("item %d: %v at offset %d, want %d", i, e, e.Offset, off)
			}
			switch e.Kind {
			case EventOversized, EventResidualOverflow, EventTruncatedTail:
				off += e.Dropped
			}
			continue
		}
		f := it.Frame
		enc := append(AppendHeader(nil, f.Header()), f.Payload...)
		if off+int64(len(enc)) > int64(len(data)) || !bytes.Equal(enc, data[off:off+int64(len(enc))]) {
			t.Fatalf("item %d: frame %v re-encodes to %x, not to the bytes at offset %d", i, f.Type, enc, off)
		}
		if f.CRCOK != (Checksum(f.Payload) == f.CRC) {
			t.Fatalf("item %d: CRCOK = %v but Checksum = %#x and CRC = %#x", i, f.CRCOK, Checksum(f.Payload), f.CRC)
		}
		off += int64(len(enc))
	}
	if n := len(items); n > 0 && isResync(items[n-1]) && off <= int64(len(data)) {
		off = int64(len(data)) // the rest of the stream is dropped
	}
	if off != int64(len(data)) {
		t.Fatalf("frames and dropped bytes cover %d bytes of %d", off, len(data))
	}
}

func isResync(it item) bool {
	return it.Event != nil && (it.Event.Kind == EventOversized || it.Event.Kind == EventResidualOverflow)
}

// FuzzAssembler: never panics; any chunking of the same bytes gives the
// same frames, events and stats as one feed (for a cap below 16 bytes,
// only up to the first resync: a frame within such a cap can be longer
// than 2 × cap);
// every frame re-encodes to its bytes; pending memory stays within 2 ×
// cap. When the selector's top bit is set the chunked assembler borrows
// its payloads.
func FuzzAssembler(f *testing.F) {
	for i, s := range fuzzSeeds() {
		f.Add(s, []byte{1, 5, 16, 0, 3}, uint8(i))
		f.Add(s, []byte{byte(len(s) / 2)}, uint8(0x83))
	}
	f.Fuzz(func(t *testing.T, data, cuts []byte, capSel uint8) {
		capv := fuzzCaps[int(capSel)%len(fuzzCaps)]
		one := newRecorder(capv).feed(data)
		one.a.Close()
		replay(t, data, one.items)

		many := newBorrowRecorder(capv, capSel&0x80 != 0)
		chunks := 0
		for off, i := 0, 0; off < len(data); i++ {
			n := 1
			if len(cuts) > 0 {
				n = int(cuts[i%len(cuts)])
				if n == 0 && i >= len(cuts) && allZero(cuts) {
					n = 1
				}
			}
			n = min(n, len(data)-off)
			many.feed(data[off : off+n])
			chunks++
			off += n
			if p := many.a.Pending(); p > 2*int(capv) {
				t.Fatalf("Pending() = %d after a feed, more than 2*cap = %d", p, 2*capv)
			}
			if c := cap(many.a.buf); c > 4*int(capv)+64 {
				t.Fatalf("pending buffer capacity %d for cap %d", c, capv)
			}
		}
		many.a.Close()
		replay(t, data, many.items)

		if capv >= 16 {
			if diff := cmp.Diff(one.items, many.items); diff != "" {
				t.Fatalf("%d feeds differ from one feed (-one +many):\n%s", chunks, diff)
			}
			if a, b := one.a.Stats(), many.a.Stats(); a != b {
				t.Fatalf("%d feeds: stats %+v, one feed %+v", chunks, b, a)
			}
		}
		// Identical up to the first resync in either log.
		n := len(one.items)
		for i, it := range one.items {
			if isResync(it) {
				n = i
				break
			}
		}
		m := len(many.items)
		for i, it := range many.items {
			if isResync(it) {
				m = i
				break
			}
		}
		k := min(n, m)
		if reflect.DeepEqual(one.items[:k], many.items[:k]) {
		} else if diff := cmp.Diff(one.items[:k], many.items[:k]); diff != "" {
			t.Fatalf("%d feeds differ from one feed before any resync (-one +many):\n%s", chunks, diff)
		}
		if n == len(one.items) && m == len(many.items) && len(one.items) != len(many.items) {
			t.Fatalf("without resync: one feed gave %d items, %d feeds gave %d", len(one.items), chunks, len(many.items))
		}

		st := one.a.Stats()
		var dropped, framed int64
		for _, e := range one.events() {
			dropped += e.Dropped
		}
		for _, f := range one.frames() {
			framed += HeaderSize + int64(len(f.Payload))
		}
		if n := len(one.items); n > 0 && isResync(one.items[n-1]) {
			dropped = int64(len(data)) - framed // the event's bytes and the rest of the stream
		}
		if st.Bytes != int64(len(data)) || st.Frames != int64(len(one.frames())) || st.DroppedBytes != dropped {
			t.Fatalf("Stats() = %+v, want %d bytes, %d frames, %d dropped", st, len(data), len(one.frames()), dropped)
		}
	})
}

func allZero(b []byte) bool {
	for _, c := range b {
		if c != 0 {
			return false
		}
	}
	return true
}

// FuzzParseStream: the one-shot parser, the assembler fed everything at
// once, and the strict Decoder agree. They return the same frames; their
// events differ only where ktstr's rules differ, at the end of the walk:
// the one-shot parser judges the cap (and reports a pad) before
// completeness, and the assembler clears more than 2 × cap of trailing
// bytes as a residual overflow rather than a truncated tail.
func FuzzParseStream(f *testing.F) {
	for i, s := range fuzzSeeds() {
		f.Add(s, uint8(i))
	}
	f.Fuzz(func(t *testing.T, data []byte, capSel uint8) {
		capv := fuzzCaps[int(capSel)%len(fuzzCaps)]
		frames, events := ParseStream(data, capv)
		r := newRecorder(capv).feed(data)
		r.a.Close()
		if diff := cmp.Diff(frames, r.frames()); diff != "" {
			t.Fatalf("ParseStream and Assembler frames differ (-parse +assembler):\n%s", diff)
		}
		want := events
		if k := len(events) - 1; k >= 0 && (events[k].Kind == EventTruncatedTail || events[k].Kind == EventOversized) {
			last := events[k]
			complete := int64(len(data))-last.Offset >= HeaderSize+int64(last.Length)
			// A frame above the cap and longer than 2 × cap in all
			// overflows the assembler before it is complete.
			if last.Kind == EventTruncatedTail || !complete || overflows(last.Length, capv) {
				want = append([]Event(nil), events[:k]...)
				if n := len(want); n > 0 && want[n-1].Kind == EventPadNonzero && want[n-1].Offset == last.Offset {
					want = want[:n-1] // the assembler judges the pad of complete frames only
				}
				tail := Event{Kind: EventTruncatedTail, Offset: last.Offset, Seq: last.Seq, Dropped: last.Dropped}
				if last.Dropped > 2*int64(capv) {
					tail.Kind, tail.Dropped = EventResidualOverflow, 2*int64(capv)+1
				} else if last.Dropped >= HeaderSize {
					tail.Type, tail.Length, tail.Pad = last.Type, last.Length, last.Pad
				}
				want = append(want, tail)
			} else {
				// A complete oversized frame: the assembler counts its
				// own bytes and drops the rest with it.
				want = append([]Event(nil), events...)
				want[k].Dropped = HeaderSize + int64(last.Length)
			}
		}
		if diff := cmp.Diff(want, r.events()); diff != "" {
			t.Fatalf("events differ (-want from ParseStream +assembler):\n%s", diff)
		}

		if capv != MaxPayload {
			return
		}
		for _, rd := range []io.Reader{bytes.NewReader(data), iotest.OneByteReader(bytes.NewReader(data))} {
			d := NewDecoder(rd)
			var got []Frame
			var err error
			for {
				var fr Frame
				if fr, err = d.Decode(); err != nil {
					break
				}
				got = append(got, fr)
			}
			if diff := cmp.Diff(frames, got); diff != "" {
				t.Fatalf("ParseStream and Decoder frames differ (-parse +decoder):\n%s", diff)
			}
			wantErr := io.EOF
			if k := len(events) - 1; k >= 0 {
				switch events[k].Kind {
				case EventTruncatedTail:
					wantErr = io.ErrUnexpectedEOF
				case EventOversized:
					wantErr = ErrFrameTooLarge
				}
			}
			if !errors.Is(err, wantErr) {
				t.Fatalf("Decoder ended with %v, want %v", err, wantErr)
			}
		}
	})
}

// FuzzFixedPayloads: every fixed-layout decoder rejects with a typed
// error or accepts, and what it accepts encodes to bytes that decode to
// the same value; layouts without text re-encode to the very bytes.
func FuzzFixedPayloads(f *testing.F) {
	for i := range fixedNames {
		for _, n := range []int{0, 1, 4, 16, 24, 72, 520} {
			f.Add(uint8(i), bytes.Repeat([]byte{1, 0, 0, 0}, n/4+1)[:n])
		}
	}
	f.Add(uint8(6), []byte("\x04reason \xff\xfe"))
	f.Add(uint8(4), append([]byte{1, 0, 0, 0, 1, 0, 0, 0}, bytes.Repeat([]byte{0xe2, 0x82}, 32)...))
	f.Fuzz(func(t *testing.T, sel uint8, p []byte) {
		name := fixedNames[int(sel)%len(fixedNames)]
		c := fixedCodecs[name]
		v, err := c.decode(p)
		if err != nil {
			var pe *PayloadError
			if !errors.As(err, &pe) || pe.Type != c.t || pe.Length != len(p) {
				t.Fatalf("%s: decode(%x) error %#v, want a *PayloadError for %v", name, p, err, c.t)
			}
			if errors.Is(err, ErrPayloadSize) == c.sizes(len(p)) {
				t.Fatalf("%s: decode(%d bytes) error %v: size rule broken", name, len(p), err)
			}
			return
		}
		q := c.encode(v)
		v2, err := c.decode(q)
		if err != nil {
			t.Fatalf("%s: decode(encode(decode(%x))) = %v", name, p, err)
		}
		if q2 := c.encode(v2); !bytes.Equal(q, q2) {
			t.Fatalf("%s: encoding not stable: %x then %x", name, q, q2)
		}
		switch name {
		case "stimulus", "exit code", "kern addrs", "loss":
			if !bytes.Equal(p, q) {
				t.Fatalf("%s: %x re-encodes to %x", name, p, q)
			}
		case "scenario end":
			if !bytes.Equal(p[:ScenarioEndSize], q) {
				t.Fatalf("%s: %x re-encodes to %x", name, p, q)
			}
		case "vm end":
			if !bytes.Equal(p[:16], q[:16]) {
				t.Fatalf("%s: %x re-encodes to %x", name, p, q)
			}
		default:
			if diff := cmp.Diff(v, v2); diff != "" && name == "lifecycle" {
				t.Fatalf("%s: round trip changed the value (-first +second):\n%s", name, diff)
			}
		}
	})
}
