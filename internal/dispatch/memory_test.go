package dispatch

import (
	"fmt"
	"runtime"
	"testing"
	"time"

	"github.com/ktstr-go/ktstr/internal/heaptest"
	"github.com/ktstr-go/ktstr/internal/record"
	"github.com/ktstr-go/ktstr/lib/wire"
	"github.com/ktstr-go/ktstr/lib/wire/payload"
)

// A guest that floods requests, or any other frame, must not grow the
// dispatcher: the gates keep counts, not the requests (ktstr-dispatch(1)'s
// promise). The stream
// is fed in 64 KiB reads as ktstr-dispatch reads it; the live heap is
// measured with the Stream still alive.
func TestMemoryFlatUnderRequestFlood(t *testing.T) {
	korq := func(i int) []byte {
		p, err := payload.MarshalKernelOpRequest(&payload.KernelOpRequest{RequestID: uint32(i + 1), Mode: payload.ModeHot,
			Direction: payload.DirRead, Tag: fmt.Sprintf("flood-%08d-%s", i, "0123456789abcdef0123456789abcdef"),
			Entries: []payload.KernelOpEntry{{Target: payload.Target{Kind: payload.TargetSymbol, Symbol: "jiffies_64"},
				Value: payload.Value{Kind: payload.ValueU64}}}})
		if err != nil {
			t.Fatal(err)
		}
		return goodFrame(wire.TypeKernelOpRequest, p)
	}
	snrq := func(i int) []byte {
		return goodFrame(wire.TypeSnapshotRequest, snapReq(uint32(i+1), wire.SnapshotCapture, fmt.Sprintf("snap-%d", i)))
	}
	// Every other arm too: watchdog frames, steps, once-only and latched
	// signals, KASLR divergence diagnostics, unknown and internal types,
	// torn CRCs and non-zero pads.
	mixed := func(i int) []byte {
		var f []byte
		switch i % 12 {
		case 0:
			f = goodFrame(wire.TypeStimulus, stim(uint16(i)))
		case 1:
			f = goodFrame(wire.TypeScenarioStart, nil)
		case 2:
			f = goodFrame(wire.TypeScenarioPause, nil)
		case 3:
			f = goodFrame(wire.TypeScenarioResume, nil)
		case 4:
			f = goodFrame(wire.TypeScenarioEnd, wire.AppendScenarioEnd(nil, wire.ScenarioEnd{ElapsedMS: uint64(i)}))
		case 5:
			f = goodFrame(wire.Type(0x10000+i), []byte("unknown"))
		case 6:
			f = goodFrame(wire.TypeSysRdy, nil)
		case 7:
			f = goodFrame(wire.TypeSchedSwapNotify, nil)
		case 8:
			f = goodFrame(wire.TypeKernAddrs, kadr(uint64(i), true, fuzzLink+uint64(i%4096)<<12, true))
		case 9:
			f = goodFrame(wire.TypeSnapshotReply, make([]byte, 8))
		case 10:
			f = tornFrame(wire.TypeSchedExit, wire.AppendExitCode(nil, 1))
		case 11:
			f = goodFrame(wire.TypeStdout, []byte("padded"))
			f[12] = 1
		}
		return f
	}
	for _, tc := range []struct {
		name  string
		frame func(int) []byte
	}{{"KORQ", korq}, {"SNRQ", snrq}, {"mixed", mixed}} {
		t.Run(tc.name, func(t *testing.T) {
			var records int64
			s := NewStream(Config{Workload: time.Second, TextLink: fuzzLink}, func(*record.Record) { records++ })
			s.BorrowPayloads()
			// 150k frames: 15-25 MB of input. Keeping each request
			// costs well over 100 bytes apiece, so a list grows the heap
			// by tens of MB; the bound below is a generous 4 MiB.
			const frames = 150_000
			const bound = 4 << 20
			var buf []byte
			feed := func() {
				s.Feed(buf, time.Millisecond)
				buf = buf[:0]
			}
			// A first round warms up every buffer that is allowed to
			// exist (the assembler's, the decoder's caches).
			for i := range 1000 {
				buf = append(buf, tc.frame(i)...)
			}
			feed()
			before := heaptest.Live()
			for i := range frames {
				buf = append(buf, tc.frame(i)...)
				if len(buf) >= 64<<10 {
					feed()
				}
			}
			feed()
			after := heaptest.Live()
			runtime.KeepAlive(s)
			if records < frames {
				t.Fatalf("%d records, want at least %d", records, frames)
			}
			growth := int64(after) - int64(before)
			t.Logf("%d %s frames: live heap %d -> %d bytes (%+d)", frames, tc.name, before, after, growth)
			if growth > bound {
				t.Errorf("live heap grew by %d bytes over %d %s frames, want at most %d", growth, frames, tc.name, bound)
			}
		})
	}
}
