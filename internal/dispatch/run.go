package dispatch

import (
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"
	"syscall"
	"time"

	"github.com/ktstr-go/ktstr/internal/record"
	"github.com/ktstr-go/ktstr/lib/wire"
)

// Options for Run.
type Options struct {
	Config
	// Effects, when set, receives every effect record as soon as it is
	// produced (ktstr-dispatch's --control forwarding).
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
	Dropped   map[string]int64
}

// String is the one-line summary ktstr-dispatch prints on stderr.
func (s Summary) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "frames=%d bytes=%d entries=%d effects=%d diags=%d", s.Assembler.Frames, s.Assembler.Bytes, s.Entries, s.Effects, s.Diags)
	a := s.Assembler
	fmt.Fprintf(&b, " crc_mismatch=%d pad_nonzero=%d oversized=%d residual_overflow=%d truncated_tail=%d dropped_bytes=%d",
		a.CRCMismatch, a.PadNonzero, a.Oversized, a.ResidualOverflow, a.TruncatedTail, a.DroppedBytes)
	keys := make([]string, 0, len(s.Dropped))
	for k := range s.Dropped {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		fmt.Fprintf(&b, " drop.%s=%d", k, s.Dropped[k])
	}
	return b.String()
}

// ErrOutputClosed is returned when the record writer's reader went away.
var ErrOutputClosed = errors.New("dispatch: output closed")

// Run reads raw frames from in until EOF, applies the gates and writes
// records to w. A write error on w stops the run (ErrOutputClosed for a
// closed pipe); an error from opts.Effects is returned after the input
// is consumed, so a lost control socket never loses records.
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
	st := New(opts.Config)
	sum := Summary{}
	var werr, eerr error
	at := time.Duration(0)
	emit := func(r *record.Record) {
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
		if err := w.Write(r); err != nil {
			werr = err
		}
	}
	asm := &wire.Assembler{OnEvent: func(e wire.Event) {
		r := &record.Record{Kind: record.KindDiag, Seq: e.Seq, AtNS: int64(at), Diag: e.Kind.String(),
			Offset: e.Offset, Length: e.Length, Pad: e.Pad, Dropped: e.Dropped, MsgType: uint32(e.Type)}
		if e.Kind == wire.EventCRCMismatch || e.Kind == wire.EventPadNonzero || e.Kind == wire.EventOversized ||
			(e.Kind == wire.EventTruncatedTail && e.Dropped >= wire.HeaderSize) {
			r.Tag = e.Type.String()
		}
		emit(r)
	}}
	seq := int64(0)
	onFrame := func(f wire.Frame) {
		st.Dispatch(f, seq, at, emit)
		seq++
	}
	buf := make([]byte, size)
	var rerr error
	for werr == nil {
		n, err := in.Read(buf)
		if n > 0 {
			at = now()
			asm.Feed(buf[:n], onFrame)
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
		at = now()
		asm.Close()
	}
	if werr == nil {
		werr = w.Close()
	}
	sum.Assembler = asm.Stats()
	sum.Dropped = st.Dropped
	switch {
	case werr != nil:
		if errors.Is(werr, syscall.EPIPE) {
			return sum, ErrOutputClosed
		}
		return sum, werr
	case rerr != nil:
		return sum, fmt.Errorf("dispatch: read: %w", rerr)
	case eerr != nil:
		return sum, fmt.Errorf("dispatch: control: %w", eerr)
	}
	return sum, nil
}
