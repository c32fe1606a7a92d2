package dispatch

import (
	"errors"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/ktstr-go/ktstr/internal/record"
	"github.com/ktstr-go/ktstr/lib/wire"
)

// Stream is the dispatcher of one run: ktstr's HostAssembler feeding
// dispatch_bulk_message, with every assembler anomaly turned into a
// diagnostic record in stream order. ktstr-dispatch runs exactly this.
type Stream struct {
	State *State
	asm   wire.Assembler
	out   func(*record.Record)
	seq   int64
	at    int64
}

// NewStream returns a Stream that passes every record to out.
func NewStream(cfg Config, out func(*record.Record)) *Stream {
	s := &Stream{State: New(cfg), out: out}
	s.asm.OnEvent = s.event
	return s
}

// BorrowPayloads makes the records passed to out alias the bytes given to
// Feed (or the assembler's own buffer) instead of fresh copies: a
// record's Payload and Request are then valid only until out returns.
// It saves one allocation and one copy per frame; Run uses it, since it
// writes every record before it reads on.
func (s *Stream) BorrowPayloads() { s.asm.Borrow = true }

// Feed appends bytes read at now (time since the run started) and
// dispatches every frame they complete. p is not retained.
func (s *Stream) Feed(p []byte, now time.Duration) {
	s.at = int64(now)
	s.asm.Feed(p, s.frame)
}

// Close ends the input at now: a partial frame still buffered is reported
// as a truncated_tail diagnostic.
func (s *Stream) Close(now time.Duration) {
	s.at = int64(now)
	s.asm.Close()
}

// Stats returns the assembler's counters.
func (s *Stream) Stats() wire.Stats { return s.asm.Stats() }

func (s *Stream) frame(f wire.Frame) {
	s.State.Dispatch(f, s.seq, time.Duration(s.at), s.out)
	s.seq++
}

var eventMessages = [...]string{
	wire.EventCRCMismatch:      "payload does not match its CRC; the frame goes on with crc_ok=false",
	wire.EventPadNonzero:       "non-zero reserved field in a frame header; possible hostile guest covert channel",
	wire.EventOversized:        "frame longer than the cap; dropping it and the rest of the stream",
	wire.EventResidualOverflow: "more than twice the frame cap pending without a complete frame; dropping it and the rest of the stream",
	wire.EventTruncatedTail:    "input ended inside a frame; the partial frame is dropped",
}

func (s *Stream) event(e wire.Event) {
	r := &record.Record{V: record.Version, Kind: record.KindDiag, Seq: e.Seq, AtNS: s.at, Diag: e.Kind.String(),
		Offset: e.Offset, Length: e.Length, Pad: e.Pad, Dropped: e.Dropped}
	if int(e.Kind) < len(eventMessages) {
		r.Message = eventMessages[e.Kind]
	}
	// Tag and type only where a header was read.
	if e.Kind != wire.EventResidualOverflow && (e.Kind != wire.EventTruncatedTail || e.Dropped >= wire.HeaderSize) {
		r.Tag, r.MsgType = e.Type.String(), uint32(e.Type)
	}
	s.out(r)
}

// Options for Run.
type Options struct {
	Config
	// Effects, when set, receives every effect record as soon as it is
	// produced, before it is written (ktstr-dispatch's --control). The
	// record is valid only during the call.
	Effects func(*record.Record) error
	// Now returns the time since the run started; nil means a wall clock
	// started when Run is called.
	Now func() time.Duration
	// ReadSize is the read buffer size (default 256 KiB).
	ReadSize int
	// FlushEachRead flushes the records after every read of the input, so
	// a reader downstream of a pipe sees them at once.
	FlushEachRead bool
}

// Summary is what a run saw.
type Summary struct {
	Assembler wire.Stats
	Records   int64
	Entries   int64
	Effects   int64
	Diags     int64
	Dropped   map[string]int64 // frames the gates refused, by cause
}

// String is the one-line summary ktstr-dispatch prints on stderr:
// counters as key=value, drops by cause as drop.CAUSE=N in name order.
func (s Summary) String() string {
	var b strings.Builder
	a := s.Assembler
	fmt.Fprintf(&b, "frames=%d bytes=%d entries=%d effects=%d diags=%d", a.Frames, a.Bytes, s.Entries, s.Effects, s.Diags)
	fmt.Fprintf(&b, " crc_mismatch=%d pad_nonzero=%d oversized=%d residual_overflow=%d truncated_tail=%d dropped_bytes=%d",
		a.CRCMismatch, a.PadNonzero, a.Oversized, a.ResidualOverflow, a.TruncatedTail, a.DroppedBytes)
	for _, k := range slices.Sorted(maps.Keys(s.Dropped)) {
		fmt.Fprintf(&b, " drop.%s=%d", k, s.Dropped[k])
	}
	return b.String()
}

// ErrOutputClosed is returned when the reader of the records went away.
var ErrOutputClosed = errors.New("dispatch: output closed")

// Run reads raw frames from in until EOF, applies the gates and writes
// records to w. A write error on w stops the run (ErrOutputClosed for a
// closed pipe); an error from opts.Effects is returned after the input is
// consumed, so a lost control socket never loses records.
func Run(in io.Reader, w *record.Writer, opts Options) (Summary, error) {
	now := opts.Now
	if now == nil {
		start := time.Now()
		now = func() time.Duration { return time.Since(start) }
	}
	size := opts.ReadSize
	if size <= 0 {
		size = 256 << 10
	}
	sum := Summary{}
	var werr, eerr error
	st := NewStream(opts.Config, func(r *record.Record) {
		if werr != nil {
			return
		}
		sum.Records++
		switch r.Kind {
		case record.KindEntry:
			sum.Entries++
		case record.KindEffect:
			sum.Effects++
			if opts.Effects != nil && eerr == nil {
				eerr = opts.Effects(r)
			}
		case record.KindDiag:
			sum.Diags++
		}
		werr = w.Write(r)
	})
	st.BorrowPayloads() // every record is written before the next read
	buf := make([]byte, size)
	var rerr error
	for werr == nil {
		n, err := in.Read(buf)
		if n > 0 {
			st.Feed(buf[:n], now())
			if opts.FlushEachRead && werr == nil {
				werr = w.Flush()
			}
		}
		if err != nil {
			if err != io.EOF {
				rerr = err
			}
			break
		}
	}
	if werr == nil {
		st.Close(now())
	}
	if werr == nil {
		werr = w.Close()
	}
	sum.Assembler = st.Stats()
	sum.Dropped = st.State.Dropped
	switch {
	case werr != nil:
		if errors.Is(werr, syscall.EPIPE) {
			return sum, ErrOutputClosed
		}
		return sum, fmt.Errorf("dispatch: write: %w", werr)
	case rerr != nil:
		return sum, fmt.Errorf("dispatch: read: %w", rerr)
	case eerr != nil:
		return sum, fmt.Errorf("dispatch: control: %w", eerr)
	}
	return sum, nil
}
