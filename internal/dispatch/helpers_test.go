package dispatch

import (
	"encoding/binary"
	"slices"
	"testing"
	"time"

	"github.com/ktstr-go/ktstr/lib/record"
	"github.com/ktstr-go/ktstr/lib/wire"
)

// goodFrame is ktstr's frame_with_crc: a frame whose CRC matches.
func goodFrame(t wire.Type, p []byte) []byte { return wire.AppendFrame(nil, t, p) }

// tornFrame is ktstr's frame_with_torn_crc: the real CRC with every bit
// flipped.
func tornFrame(t wire.Type, p []byte) []byte {
	b := wire.AppendFrame(nil, t, p)
	binary.LittleEndian.PutUint32(b[8:], wire.Checksum(p)^0xFFFFFFFF)
	return b
}

func cat(bs ...[]byte) []byte { return slices.Concat(bs...) }

func snapReq(id, kind uint32, tag string) []byte {
	return wire.AppendSnapshotRequest(nil, wire.SnapshotRequest{RequestID: id, Kind: kind, Tag: tag})
}

func stim(step uint16) []byte {
	return wire.AppendStimulus(nil, wire.Stimulus{ElapsedMS: 10, StepIndex: step, OpCount: 1, TotalIterations: 99})
}

func kadr(phys uint64, hasPhys bool, text uint64, hasText bool) []byte {
	return wire.AppendKernAddrs(nil, wire.KernAddrs{PhysBase: phys, HasPhysBase: hasPhys, Text: text, HasText: hasText})
}

// outcome is what a run through the production Stream left behind: the
// sinks (ktstr's SinkState) and the records, split by kind (the bucket is
// the entries).
type outcome struct {
	st      *State
	recs    []*record.Record
	entries []*record.Record
	effects []*record.Record
	diags   []*record.Record
}

func (o *outcome) add(r *record.Record) {
	o.recs = append(o.recs, r)
	switch r.Kind {
	case record.KindEntry:
		o.entries = append(o.entries, r)
	case record.KindEffect:
		o.effects = append(o.effects, r)
	case record.KindDiag:
		o.diags = append(o.diags, r)
	}
}

// effectNames returns the effect names in order.
func (o *outcome) effectNames() []string {
	var n []string
	for _, r := range o.effects {
		n = append(n, r.Effect)
	}
	return n
}

// entryTypes returns the bucketed message types in order.
func (o *outcome) entryTypes() []wire.Type {
	var ts []wire.Type
	for _, r := range o.entries {
		ts = append(ts, wire.Type(r.MsgType))
	}
	return ts
}

// feedTimed runs the feeds through one Stream, feed i read at times[i].
func feedTimed(t *testing.T, cfg Config, times []time.Duration, feeds ...[]byte) *outcome {
	t.Helper()
	o := &outcome{}
	s := NewStream(cfg, o.add)
	for i, p := range feeds {
		s.Feed(p, times[i])
	}
	s.Close(times[len(times)-1])
	o.st = s.State
	return o
}

// feed runs the feeds through one Stream, feed i read at i+1 ms.
func feed(t *testing.T, cfg Config, feeds ...[]byte) *outcome {
	t.Helper()
	times := make([]time.Duration, len(feeds))
	for i := range times {
		times[i] = time.Duration(i+1) * time.Millisecond
	}
	if len(times) == 0 {
		times = []time.Duration{0}
	}
	return feedTimed(t, cfg, times, feeds...)
}
