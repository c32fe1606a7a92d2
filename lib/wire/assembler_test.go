package wire

import (
	"bytes"
	"fmt"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// item is a frame or an event, in the order the assembler produced them.
type item struct {
	Frame *Frame
	Event *Event
}

func (it item) String() string {
	if it.Frame != nil {
		return fmt.Sprintf("frame %v %d bytes crc_ok=%v pad=%d", it.Frame.Type, len(it.Frame.Payload), it.Frame.CRCOK, it.Frame.Pad)
	}
	return "event " + it.Event.String()
}

// recorder is an Assembler whose frames and events are logged in order.
type recorder struct {
	a     *Assembler
	items []item
}

func newRecorder(cap uint32) *recorder { return newBorrowRecorder(cap, false) }

// newBorrowRecorder records a borrowing assembler's frames by copying
// their payloads inside the callback, where they are valid.
func newBorrowRecorder(cap uint32, borrow bool) *recorder {
	r := &recorder{}
	r.a = &Assembler{Cap: cap, Borrow: borrow, OnEvent: func(e Event) { r.items = append(r.items, item{Event: &e}) }}
	return r
}

func (r *recorder) feed(p []byte) *recorder {
	r.a.Feed(p, func(f Frame) {
		if r.a.Borrow && f.Payload != nil {
			f.Payload = bytes.Clone(f.Payload)
		}
		r.items = append(r.items, item{Frame: &f})
	})
	return r
}

func (r *recorder) frames() []Frame {
	var fs []Frame
	for _, it := range r.items {
		if it.Frame != nil {
			fs = append(fs, *it.Frame)
		}
	}
	return fs
}

func (r *recorder) events() []Event {
	var es []Event
	for _, it := range r.items {
		if it.Event != nil {
			es = append(es, *it.Event)
		}
	}
	return es
}

func frameWith(t Type, payload []byte, crc, pad uint32) []byte {
	b := AppendHeader(nil, Header{Type: t, Length: uint32(len(payload)), CRC: crc, Pad: pad})
	return append(b, payload...)
}

func wantFrames(t *testing.T, got []Frame, want ...Frame) {
	t.Helper()
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("frames mismatch (-want +got):\n%s", diff)
	}
}

func frame(t Type, payload string) Frame {
	var p []byte
	if payload != "" {
		p = []byte(payload)
	}
	return Frame{Type: t, Payload: p, CRCOK: true, CRC: Checksum(p)}
}

// ktstr: single_frame_one_feed.
func TestAssemblerSingleFrameOneFeed(t *testing.T) {
	r := newRecorder(0).feed(AppendFrame(nil, TypeExit, []byte{7, 0, 0, 0}))
	wantFrames(t, r.frames(), frame(TypeExit, "\x07\x00\x00\x00"))
	if r.a.Pending() != 0 || len(r.events()) != 0 {
		t.Errorf("Pending() = %d, events %v, want 0 and none", r.a.Pending(), r.events())
	}
}

// ktstr: multiple_frames_one_feed_preserve_order.
func TestAssemblerMultipleFramesPreserveOrder(t *testing.T) {
	var b []byte
	var want []Frame
	for i, ty := range []Type{TypeScenarioStart, TypeStdout, TypeStderr, TypeExit} {
		p := fmt.Sprint("payload ", i)
		b = AppendFrame(b, ty, []byte(p))
		want = append(want, frame(ty, p))
	}
	wantFrames(t, newRecorder(0).feed(b).frames(), want...)
}

// ktstr: frame_split_across_two_feeds, at every split point.
func TestAssemblerFrameSplitAcrossTwoFeeds(t *testing.T) {
	b := AppendFrame(nil, TypeSchedLog, []byte("split me anywhere"))
	for cut := 0; cut <= len(b); cut++ {
		r := newRecorder(0).feed(b[:cut])
		if cut < len(b) {
			if len(r.items) != 0 || r.a.Pending() != cut {
				t.Fatalf("cut %d: after first feed items %v, Pending() = %d, want none and %d", cut, r.items, r.a.Pending(), cut)
			}
		}
		r.feed(b[cut:])
		wantFrames(t, r.frames(), frame(TypeSchedLog, "split me anywhere"))
		if r.a.Pending() != 0 {
			t.Errorf("cut %d: Pending() = %d after the whole frame", cut, r.a.Pending())
		}
	}
}

// ktstr: partial_header_buffered.
func TestAssemblerPartialHeaderBuffered(t *testing.T) {
	b := AppendFrame(nil, TypeExit, []byte{0, 0, 0, 0})
	r := newRecorder(0).feed(b[:HeaderSize-1])
	if len(r.items) != 0 || r.a.Pending() != HeaderSize-1 {
		t.Errorf("items %v, Pending() = %d, want none and %d", r.items, r.a.Pending(), HeaderSize-1)
	}
}

// ktstr: empty_feed_noop.
func TestAssemblerEmptyFeedNoop(t *testing.T) {
	b := AppendFrame(nil, TypeExit, []byte{0, 0, 0, 0})
	r := newRecorder(0).feed(nil).feed([]byte{})
	if len(r.items) != 0 || r.a.Pending() != 0 || r.a.Stats() != (Stats{}) {
		t.Errorf("empty feeds: items %v, pending %d, stats %+v", r.items, r.a.Pending(), r.a.Stats())
	}
	r.feed(b[:5]).feed(nil)
	if len(r.items) != 0 || r.a.Pending() != 5 {
		t.Errorf("empty feed after a partial one: items %v, pending %d", r.items, r.a.Pending())
	}
}

// ktstr: crc_mismatch_marks_entry_continues_walk.
func TestAssemblerCRCMismatchContinues(t *testing.T) {
	bad := frameWith(TypeExit, []byte{1, 0, 0, 0}, 0x12345678, 0)
	b := append(bad, AppendFrame(nil, TypeStdout, []byte("next"))...)
	r := newRecorder(0).feed(b)
	wantFrames(t, r.frames(),
		Frame{Type: TypeExit, Payload: []byte{1, 0, 0, 0}, CRCOK: false, CRC: 0x12345678},
		frame(TypeStdout, "next"))
	want := []Event{{Kind: EventCRCMismatch, Offset: 0, Seq: 0, Type: TypeExit, Length: 4}}
	if diff := cmp.Diff(want, r.events()); diff != "" {
		t.Errorf("events (-want +got):\n%s", diff)
	}
	if r.a.Stats().CRCMismatch != 1 || r.a.Stats().Frames != 2 {
		t.Errorf("Stats() = %+v, want 1 mismatch, 2 frames", r.a.Stats())
	}
}

// ktstr: byte_by_byte_feed_reconstructs_frame.
func TestAssemblerByteByByte(t *testing.T) {
	b := AppendFrame(nil, TypeDmesg, []byte("one byte at a time"))
	b = AppendFrame(b, TypeScenarioEnd, AppendScenarioEnd(nil, ScenarioEnd{1, 2}))
	r := newRecorder(0)
	for i := range b {
		r.feed(b[i : i+1])
	}
	wantFrames(t, r.frames(), frame(TypeDmesg, "one byte at a time"),
		frame(TypeScenarioEnd, string(AppendScenarioEnd(nil, ScenarioEnd{1, 2}))))
}

// ktstr: zero_length_payload.
func TestAssemblerZeroLengthPayload(t *testing.T) {
	b := AppendFrame(nil, TypeSysRdy, nil)
	if len(b) != HeaderSize || Checksum(nil) != 0 {
		t.Fatalf("empty frame is %d bytes with CRC %#x, want 16 and 0", len(b), Checksum(nil))
	}
	wantFrames(t, newRecorder(0).feed(b).frames(), frame(TypeSysRdy, ""))
	// and split inside the header
	wantFrames(t, newRecorder(0).feed(b[:9]).feed(b[9:]).frames(), frame(TypeSysRdy, ""))
}

// ktstr: assembler_does_not_pre_allocate_for_enormous_frame_length.
func TestAssemblerDoesNotPreallocate(t *testing.T) {
	h := AppendHeader(nil, Header{Type: TypeStdout, Length: 0xFFFFFFFF})
	for _, split := range []bool{false, true} {
		var r *recorder
		n := allocated(func() {
			r = newRecorder(0)
			if split {
				r.feed(h[:7]).feed(h[7:]).feed([]byte("more bytes"))
			} else {
				r.feed(h)
			}
		})
		if len(r.items) != 0 {
			t.Errorf("split=%v: items %v, want none", split, r.items)
		}
		if want := HeaderSize + len("more bytes")*btoi(split); r.a.Pending() != want {
			t.Errorf("split=%v: Pending() = %d, want %d", split, r.a.Pending(), want)
		}
		if n > 64<<10 {
			t.Errorf("split=%v: a u32::MAX header made the assembler allocate %d bytes", split, n)
		}
	}
}

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}

// ktstr: assembler_drops_oversized_frame_once_complete: the oversized
// frame and what follows it in the same feed are dropped, nothing is
// delivered. (Here the rest of the stream is dropped too; see
// TestAssemblerBoundaryIndependent.)
func TestAssemblerDropsOversizedOnceComplete(t *testing.T) {
	const cap = 64
	good := AppendFrame(nil, TypeStdout, []byte("before"))
	over := AppendFrame(nil, TypeStdout, make([]byte, cap+1))
	after := AppendFrame(nil, TypeStderr, []byte("after, lost"))
	for _, tc := range []struct {
		name  string
		feeds [][]byte
	}{
		{"one feed", [][]byte{cat(good, over, after)}},
		{"header first", [][]byte{cat(good, over[:HeaderSize]), cat(over[HeaderSize:], after)}},
		{"partial header", [][]byte{cat(good, over[:5]), cat(over[5:], after)}},
		{"byte short", [][]byte{cat(good, over[:len(over)-1]), cat(over[len(over)-1:], after)}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := newRecorder(cap)
			for _, f := range tc.feeds {
				r.feed(f)
			}
			wantFrames(t, r.frames(), frame(TypeStdout, "before"))
			want := []Event{{Kind: EventOversized, Offset: int64(len(good)), Seq: 1, Type: TypeStdout,
				Length: cap + 1, Dropped: int64(len(over))}}
			if diff := cmp.Diff(want, r.events()); diff != "" {
				t.Errorf("events (-want +got):\n%s", diff)
			}
			if r.a.Pending() != 0 {
				t.Errorf("Pending() = %d, want 0 (buffer cleared)", r.a.Pending())
			}
			if r.a.Offset() != int64(len(good)+len(over)+len(after)) {
				t.Errorf("Offset() = %d, want the end of the stream", r.a.Offset())
			}
			// The rest of the stream is dropped too, whichever read it
			// comes in, so that a replay gives what the live run gave.
			exit := AppendFrame(nil, TypeExit, []byte{0, 0, 0, 0})
			r.feed(exit)
			if fs := r.frames(); len(fs) != 1 || len(r.events()) != 1 {
				t.Errorf("after the oversized frame: frames %v events %v, want nothing new", fs, r.events())
			}
			if st := r.a.Stats(); st.DroppedBytes != int64(len(over)+len(after)+len(exit)) {
				t.Errorf("DroppedBytes = %d, want %d", st.DroppedBytes, len(over)+len(after)+len(exit))
			}
		})
	}
}

func cat(bs ...[]byte) []byte { return bytes.Join(bs, nil) }

// ktstr: assembler_accepts_at_cap_rejects_above (small cap).
func TestAssemblerAcceptsAtCapRejectsAbove(t *testing.T) {
	for _, cap := range []uint32{1, 16, 100, 4096} {
		at := AppendFrame(nil, TypeProfraw, bytes.Repeat([]byte{0xa5}, int(cap)))
		r := newRecorder(cap).feed(at)
		if fs := r.frames(); len(fs) != 1 || len(fs[0].Payload) != int(cap) || !fs[0].CRCOK {
			t.Errorf("cap %d: payload of exactly cap: frames %v, want one", cap, r.items)
		}
		above := AppendFrame(nil, TypeProfraw, make([]byte, cap+1))
		r = newRecorder(cap)
		if half := len(above) / 2; half <= 2*int(cap) {
			r.feed(above[:half]).feed(above[half:])
		} else { // a partial frame above 2*cap would be a residual overflow
			r.feed(above)
		}
		// Above a cap of less than 17 bytes, a cap+1 frame is also
		// longer than 2 × cap in all: a residual overflow however it
		// comes (see Assembler).
		st, want := r.a.Stats(), "oversized"
		got := st.Oversized == 1 && st.ResidualOverflow == 0
		if cap < 17 {
			want, got = "residual_overflow", st.Oversized == 0 && st.ResidualOverflow == 1
		}
		if len(r.frames()) != 0 || !got || r.a.Pending() != 0 {
			t.Errorf("cap %d: cap+1: items %v, pending %d, want one %s event and an empty buffer", cap, r.items, r.a.Pending(), want)
		}
	}
}

// The same at the real cap, 16 MiB (about 100 MiB of memory in all).
func TestAssemblerAcceptsAtRealCap(t *testing.T) {
	if testing.Short() {
		t.Skip("allocates about 100 MiB; skipped with -short")
	}
	payload := make([]byte, MaxPayload+1)
	for i := range payload {
		payload[i] = byte(i * 7)
	}
	at := AppendFrame(nil, TypeWprofTrace, payload[:MaxPayload])
	var a Assembler
	var got []Frame
	for off := 0; off < len(at); off += 1 << 20 {
		a.Feed(at[off:min(off+1<<20, len(at))], func(f Frame) { got = append(got, f) })
	}
	if len(got) != 1 || !bytes.Equal(got[0].Payload, payload[:MaxPayload]) || !got[0].CRCOK {
		t.Fatalf("payload of exactly MaxPayload: got %d frames", len(got))
	}
	above := AppendFrame(nil, TypeWprofTrace, payload)
	got = nil
	a.Feed(above, func(f Frame) { got = append(got, f) })
	if len(got) != 0 || a.Stats().Oversized != 1 || a.Pending() != 0 {
		t.Errorf("MaxPayload+1: %d frames, stats %+v, pending %d, want none, one oversized, 0", len(got), a.Stats(), a.Pending())
	}
}

// ktstr: good_frame_then_oversized_incomplete_frame_returns_good.
func TestAssemblerGoodThenOversizedIncomplete(t *testing.T) {
	good := AppendFrame(nil, TypeStdout, []byte("good"))
	bogus := AppendHeader(nil, Header{Type: TypeStdout, Length: 0xFFFFFFFF})
	residue := bytes.Repeat([]byte{0xee}, 13)
	r := newRecorder(0).feed(cat(good, bogus, residue))
	wantFrames(t, r.frames(), frame(TypeStdout, "good"))
	if len(r.events()) != 0 || r.a.Pending() != HeaderSize+13 {
		t.Errorf("events %v, Pending() = %d, want none and %d", r.events(), r.a.Pending(), HeaderSize+13)
	}
	// Close reports what was held as a truncated tail.
	if n := r.a.Close(); n != HeaderSize+13 {
		t.Errorf("Close() = %d, want %d", n, HeaderSize+13)
	}
	want := []Event{{Kind: EventTruncatedTail, Offset: int64(len(good)), Seq: 1, Type: TypeStdout, Length: 0xFFFFFFFF, Dropped: HeaderSize + 13}}
	if diff := cmp.Diff(want, r.events()); diff != "" {
		t.Errorf("events after Close (-want +got):\n%s", diff)
	}
}

// ktstr: assembler_clears_buffer_when_residual_exceeds_cap and
// assembler_accepts_residual_at_2x_cap, with a small cap, for a residual
// built in one feed and in several, starting with and without a header.
func TestAssemblerResidualCap(t *testing.T) {
	const cap = 64
	hdr := AppendHeader(nil, Header{Type: TypeStdout, Length: 0xFFFFFFFF})
	for _, n := range []int{2 * cap, 2*cap + 1} {
		stream := append(append([]byte(nil), hdr...), bytes.Repeat([]byte{1}, n-HeaderSize)...)
		for _, chunk := range []int{1, 7, HeaderSize, n} {
			t.Run(fmt.Sprintf("residual=%d/chunk=%d", n, chunk), func(t *testing.T) {
				r := newRecorder(cap)
				for off := 0; off < len(stream); off += chunk {
					r.feed(stream[off:min(off+chunk, len(stream))])
				}
				if n == 2*cap {
					if r.a.Pending() != 2*cap || len(r.items) != 0 {
						t.Errorf("residual of exactly 2*cap: Pending() = %d, items %v, want kept", r.a.Pending(), r.items)
					}
					return
				}
				want := []Event{{Kind: EventResidualOverflow, Offset: 0, Seq: 0, Dropped: 2*cap + 1}}
				if diff := cmp.Diff(want, r.events()); diff != "" {
					t.Errorf("events (-want +got):\n%s", diff)
				}
				if r.a.Pending() != 0 {
					t.Errorf("Pending() = %d, want 0", r.a.Pending())
				}
			})
		}
	}
}

// A feed that would push the buffer far past 2*cap is dropped without
// being copied: pending memory never exceeds 2*cap.
func TestAssemblerResidualNotCopied(t *testing.T) {
	const cap = 1 << 10
	hdr := AppendHeader(nil, Header{Type: TypeStdout, Length: 0xFFFFFFFF})
	big := make([]byte, 1<<20)
	for _, pre := range [][]byte{nil, hdr[:3], hdr} {
		r := newRecorder(cap).feed(pre)
		var stream []byte
		if len(pre) < HeaderSize {
			stream = append(append([]byte(nil), hdr[len(pre):]...), big...)
		} else {
			stream = big
		}
		n := allocated(func() { r.feed(stream) })
		if r.a.Pending() != 0 || r.a.Stats().ResidualOverflow != 1 || r.a.Stats().DroppedBytes != int64(len(pre)+len(stream)) {
			t.Errorf("pre %d: pending %d, stats %+v", len(pre), r.a.Pending(), r.a.Stats())
		}
		if n > 64<<10 {
			t.Errorf("pre %d: dropping a %d-byte feed allocated %d bytes", len(pre), len(stream), n)
		}
	}
}

// ktstr: payload_is_arc_slice (an implementation detail there). Here: a
// delivered payload is owned by the callee and does not alias the input.
func TestAssemblerPayloadOwned(t *testing.T) {
	b := AppendFrame(nil, TypeStdout, []byte("mine"))
	b2 := AppendFrame(nil, TypeStdout, []byte("also mine"))
	in := cat(b, b2[:20])
	r := newRecorder(0).feed(in).feed(b2[20:])
	for i := range in {
		in[i] = 0
	}
	wantFrames(t, r.frames(), frame(TypeStdout, "mine"), frame(TypeStdout, "also mine"))
}

// A non-zero pad is reported once, when the frame is complete, however it
// was split, and the frame is delivered normally.
func TestAssemblerPadWarning(t *testing.T) {
	b := frameWith(TypeExit, []byte{2, 0, 0, 0}, Checksum([]byte{2, 0, 0, 0}), 0xdead)
	b = cat(AppendFrame(nil, TypeStdout, []byte("x")), b)
	for cut := 0; cut <= len(b); cut++ {
		r := newRecorder(0).feed(b[:cut]).feed(b[cut:])
		want := []item{
			{Frame: &Frame{Type: TypeStdout, Payload: []byte("x"), CRCOK: true, CRC: Checksum([]byte("x"))}},
			{Event: &Event{Kind: EventPadNonzero, Offset: 17, Seq: 1, Type: TypeExit, Length: 4, Pad: 0xdead}},
			{Frame: &Frame{Type: TypeExit, Payload: []byte{2, 0, 0, 0}, CRCOK: true, Pad: 0xdead, CRC: Checksum([]byte{2, 0, 0, 0})}},
		}
		if diff := cmp.Diff(want, r.items); diff != "" {
			t.Errorf("cut %d: items (-want +got):\n%s", cut, diff)
		}
	}
}

// The checks run in ktstr's order: pad, cap, CRC. An oversized frame with
// a non-zero pad and a bad CRC gives a pad event, then the resync, and no
// CRC event.
func TestAssemblerCheckOrder(t *testing.T) {
	b := frameWith(TypeStdout, make([]byte, 21), 1, 2)
	r := newRecorder(20).feed(b)
	var kinds []EventKind
	for _, e := range r.events() {
		kinds = append(kinds, e.Kind)
	}
	if diff := cmp.Diff([]EventKind{EventPadNonzero, EventOversized}, kinds); diff != "" {
		t.Errorf("event kinds (-want +got):\n%s", diff)
	}
}

func TestAssemblerCloseAndReset(t *testing.T) {
	var a Assembler
	if n := a.Close(); n != 0 {
		t.Errorf("Close() on an empty assembler = %d", n)
	}
	if a.Stats().TruncatedTail != 0 {
		t.Errorf("Close() on an empty assembler reported a truncated tail")
	}
	b := AppendFrame(nil, TypeStdout, []byte("abc"))
	a.Feed(b[:5], func(Frame) {})
	var got []Event
	a.OnEvent = func(e Event) { got = append(got, e) }
	a.Close()
	want := []Event{{Kind: EventTruncatedTail, Offset: 0, Dropped: 5}}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("Close of a partial header (-want +got):\n%s", diff)
	}
	a.Feed(b[:10], func(Frame) {})
	if rest := a.Reset(); !bytes.Equal(rest, b[:10]) || a.Pending() != 0 {
		t.Errorf("Reset() = %x, pending %d, want %x, 0", rest, a.Pending(), b[:10])
	}
	if a.Offset() != 15 {
		t.Errorf("Offset() = %d, want 15", a.Offset())
	}
	st := a.Stats()
	if st.Bytes != 15 || st.TruncatedTail != 1 || st.DroppedBytes != 5 || st.Frames != 0 {
		t.Errorf("Stats() = %+v", st)
	}
}

// ktstr host_comms.rs: parse_empty_buffer_yields_no_entries and
// drain_bulk_empty_device_yields_no_entries (here: an empty stream gives
// nothing to ParseStream, to a closed Assembler and to a Decoder).
func TestParseStreamEmpty(t *testing.T) {
	fs, es := ParseStream(nil, 0)
	if len(fs) != 0 || len(es) != 0 {
		t.Errorf("ParseStream(nil) = %v, %v", fs, es)
	}
	r := newRecorder(0).feed(nil)
	r.a.Close()
	if len(r.items) != 0 {
		t.Errorf("empty Assembler: %v", r.items)
	}
}

// ktstr: parse_single_frame_one_entry, parse_multiple_frames_preserve_order,
// parse_zero_length_payload, parse_crc_mismatch_marks_entry_continues_walk.
func TestParseStreamFrames(t *testing.T) {
	var b []byte
	b = AppendFrame(b, TypeScenarioStart, nil)
	b = append(b, frameWith(TypeExit, []byte{1, 0, 0, 0}, 0xbad, 0)...)
	b = AppendFrame(b, TypeStdout, []byte("third"))
	fs, es := ParseStream(b, 0)
	wantFrames(t, fs, frame(TypeScenarioStart, ""),
		Frame{Type: TypeExit, Payload: []byte{1, 0, 0, 0}, CRC: 0xbad},
		frame(TypeStdout, "third"))
	want := []Event{{Kind: EventCRCMismatch, Offset: 16, Seq: 1, Type: TypeExit, Length: 4}}
	if diff := cmp.Diff(want, es); diff != "" {
		t.Errorf("events (-want +got):\n%s", diff)
	}
	one, _ := ParseStream(AppendFrame(nil, TypeExit, []byte{0, 0, 0, 0}), 0)
	wantFrames(t, one, frame(TypeExit, "\x00\x00\x00\x00"))
	// payloads alias the input
	fs[2].Payload[0] = 'T'
	if !bytes.Contains(b, []byte("Third")) {
		t.Errorf("ParseStream payload does not alias its input")
	}
}

// ktstr: parse_drops_trailing_partial_frame (here it is also reported).
func TestParseStreamTrailingPartial(t *testing.T) {
	good := AppendFrame(nil, TypeStdout, []byte("kept"))
	next := AppendFrame(nil, TypeStdout, []byte("cut short"))
	for cut := 1; cut < len(next); cut++ {
		fs, es := ParseStream(cat(good, next[:cut]), 0)
		wantFrames(t, fs, frame(TypeStdout, "kept"))
		want := Event{Kind: EventTruncatedTail, Offset: int64(len(good)), Seq: 1, Dropped: int64(cut)}
		if cut >= HeaderSize {
			want.Type, want.Length = TypeStdout, 9
		}
		if diff := cmp.Diff([]Event{want}, es); diff != "" {
			t.Errorf("cut %d: events (-want +got):\n%s", cut, diff)
		}
	}
}

// ktstr: parse_rejects_oversized_announced_length, parse_accepts_at_cap_payload.
func TestParseStreamCap(t *testing.T) {
	const cap = 32
	for _, tc := range []struct {
		name   string
		in     []byte
		frames int
	}{
		{"u32 max header", AppendHeader(nil, Header{Type: TypeStdout, Length: 0xFFFFFFFF}), 0},
		{"cap+1 with its full payload", AppendFrame(nil, TypeStdout, make([]byte, cap+1)), 0},
		{"cap+1 header only", AppendHeader(nil, Header{Type: TypeStdout, Length: cap + 1}), 0},
		{"exactly cap", AppendFrame(nil, TypeStdout, make([]byte, cap)), 1},
	} {
		fs, es := ParseStream(tc.in, cap)
		if len(fs) != tc.frames {
			t.Errorf("%s: %d frames, want %d", tc.name, len(fs), tc.frames)
		}
		if over := len(es) == 1 && es[0].Kind == EventOversized && es[0].Dropped == int64(len(tc.in)); over != (tc.frames == 0) {
			t.Errorf("%s: events %v", tc.name, es)
		}
	}
	// the default cap is MaxPayload
	if _, es := ParseStream(AppendHeader(nil, Header{Length: MaxPayload + 1}), 0); len(es) != 1 || es[0].Kind != EventOversized {
		t.Errorf("ParseStream(MaxPayload+1, 0): events %v, want oversized", es)
	}
	if _, es := ParseStream(AppendHeader(nil, Header{Length: MaxPayload}), 0); len(es) != 1 || es[0].Kind != EventTruncatedTail {
		t.Errorf("ParseStream(MaxPayload header, 0): events %v, want truncated tail", es)
	}
}

// ktstr: parse_returns_valid_frame_then_stops_at_oversized and
// parse_stops_at_oversized_does_not_return_subsequent_valid.
func TestParseStreamStopsAtOversized(t *testing.T) {
	before := AppendFrame(nil, TypeStdout, []byte("before"))
	over := frameWith(TypeStdout, make([]byte, 65), 0, 3)
	after := AppendFrame(nil, TypeStdout, []byte("after"))
	fs, es := ParseStream(cat(before, over, after), 64)
	wantFrames(t, fs, frame(TypeStdout, "before"))
	want := []Event{
		{Kind: EventPadNonzero, Offset: int64(len(before)), Seq: 1, Type: TypeStdout, Length: 65, Pad: 3},
		{Kind: EventOversized, Offset: int64(len(before)), Seq: 1, Type: TypeStdout, Length: 65, Pad: 3, Dropped: int64(len(over) + len(after))},
	}
	if diff := cmp.Diff(want, es); diff != "" {
		t.Errorf("events (-want +got):\n%s", diff)
	}
}

// ktstr: parse_recognises_all_new_msg_type_variants.
func TestParseStreamNewTypes(t *testing.T) {
	types := []Type{TypeStdout, TypeStderr, TypeSchedLog, TypeLifecycle, TypeExecExit, TypeDmesg, TypeProbeOutput}
	var b []byte
	for i, ty := range types {
		b = AppendFrame(b, ty, []byte{byte(i)})
	}
	fs, es := ParseStream(b, 0)
	if len(fs) != len(types) || len(es) != 0 {
		t.Fatalf("ParseStream: %d frames, events %v", len(fs), es)
	}
	for i, f := range fs {
		info, ok := Lookup(f.Type)
		if f.Type != types[i] || !ok || info.Internal || !f.CRCOK || !bytes.Equal(f.Payload, []byte{byte(i)}) {
			t.Errorf("frame %d = %+v (%+v, %v), want %v", i, f, info, ok, types[i])
		}
	}
}

// Events and stats carry stream offsets across feeds and resyncs.
func TestAssemblerOffsets(t *testing.T) {
	f1 := AppendFrame(nil, TypeStdout, []byte("12345"))
	bad := frameWith(TypeStdout, []byte("x"), 0, 0)
	r := newRecorder(8).feed(f1[:3]).feed(cat(f1[3:], bad[:4])).feed(bad[4:])
	es := r.events()
	if len(es) != 1 || es[0].Offset != int64(len(f1)) || es[0].Seq != 1 {
		t.Errorf("events %v, want a CRC mismatch at offset %d, seq 1", es, len(f1))
	}
	if r.a.Stats().Bytes != int64(len(f1)+len(bad)) || r.a.Offset() != int64(len(f1)+len(bad)) {
		t.Errorf("stats %+v, offset %d", r.a.Stats(), r.a.Offset())
	}
}

// With Borrow, payloads alias the input (or the pending buffer for a frame
// that spanned feeds) and the results are those of the owning mode.
func TestAssemblerBorrow(t *testing.T) {
	var stream []byte
	for i := range 20 {
		stream = AppendFrame(stream, TypeStdout, bytes.Repeat([]byte{byte(i)}, i*5))
	}
	stream = append(stream, frameWith(TypeExit, []byte{1, 2, 3, 4}, 0, 1)...)
	for _, chunk := range []int{1, 3, 17, 64, len(stream)} {
		owned, borrowed := newRecorder(0), newBorrowRecorder(0, true)
		aliased := 0
		for off := 0; off < len(stream); off += chunk {
			p := stream[off:min(off+chunk, len(stream))]
			owned.feed(p)
			borrowed.a.Feed(p, func(f Frame) {
				for i := range p {
					if len(f.Payload) > 0 && &f.Payload[0] == &p[i] {
						aliased++
					}
				}
				if len(f.Payload) > 0 && cap(f.Payload) != len(f.Payload) {
					t.Errorf("chunk %d: borrowed payload has spare capacity %d > %d", chunk, cap(f.Payload), len(f.Payload))
				}
				f.Payload = bytes.Clone(f.Payload)
				borrowed.items = append(borrowed.items, item{Frame: &f})
			})
		}
		if diff := cmp.Diff(owned.items, borrowed.items); diff != "" {
			t.Errorf("chunk %d: Borrow changes the result (-owned +borrowed):\n%s", chunk, diff)
		}
		if chunk == len(stream) && aliased != 20 { // 19 non-empty stdout frames and EXIT
			t.Errorf("one feed: %d payloads alias the input, want 20", aliased)
		}
	}
}

// The residual cap at the real cap: exactly 2 × 16 MiB pending is kept,
// one byte more clears the buffer (about 100 MiB of memory in all).
func TestAssemblerResidualAtRealCap(t *testing.T) {
	if testing.Short() {
		t.Skip("allocates about 100 MiB; skipped with -short")
	}
	hdr := AppendHeader(nil, Header{Type: TypeWprofTrace, Length: 0xFFFFFFFF})
	chunk := make([]byte, 1<<20)
	var a Assembler
	var events []Event
	a.OnEvent = func(e Event) { events = append(events, e) }
	emit := func(Frame) { t.Fatal("no frame expected") }
	a.Feed(hdr, emit)
	for n := 2*MaxPayload - HeaderSize; n > 0; n -= len(chunk) {
		a.Feed(chunk[:min(n, len(chunk))], emit)
	}
	if a.Pending() != 2*MaxPayload || len(events) != 0 {
		t.Fatalf("2*MaxPayload pending: Pending() = %d, events %v, want kept", a.Pending(), events)
	}
	a.Feed(chunk[:1], emit)
	want := []Event{{Kind: EventResidualOverflow, Offset: 0, Dropped: 2*MaxPayload + 1}}
	if diff := cmp.Diff(want, events); diff != "" || a.Pending() != 0 {
		t.Errorf("one byte more: pending %d, events (-want +got):\n%s", a.Pending(), diff)
	}
}
