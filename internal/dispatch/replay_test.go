package dispatch

import (
	"bytes"
	"errors"
	"io"
	"math/rand/v2"
	"slices"
	"strings"
	"syscall"
	"testing"
	"testing/iotest"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/ktstr-go/ktstr/internal/record"
	"github.com/ktstr-go/ktstr/lib/wire"
	"github.com/ktstr-go/ktstr/lib/wire/payload"
)

// recording is a run as ktstr-drain would copy it: every arm, good and
// torn frames, an unknown type, a non-zero pad, host-origin frames, and a
// partial frame at the end.
func recording() []byte {
	padded := goodFrame(wire.TypeDmesg, []byte("kmsg"))
	padded[12] = 1
	korq, err := payload.MarshalKernelOpRequest(&payload.KernelOpRequest{RequestID: 3, Mode: payload.ModeCold,
		Direction: payload.DirWrite, Tag: "w", Entries: []payload.KernelOpEntry{{
			Target: payload.Target{Kind: payload.TargetKVA, Addr: 0xffffffff82000000}, Value: payload.Value{Kind: payload.ValueU32, U: 1}}}})
	if err != nil {
		panic(err)
	}
	return cat(
		goodFrame(wire.TypeLifecycle, []byte{1}),
		goodFrame(wire.TypeSysRdy, nil),
		goodFrame(wire.TypeKernAddrs, kadr(0x3c00000, true, fuzzLink+0x1e000000, true)),
		goodFrame(wire.TypeLifecycle, []byte{2}),
		goodFrame(wire.TypeScenarioStart, nil),
		goodFrame(wire.TypeStimulus, stim(1)),
		goodFrame(wire.TypeStdout, bytes.Repeat([]byte("out "), 3000)),
		tornFrame(wire.TypeStdout, []byte("torn")),
		goodFrame(wire.TypeSchedSwapNotify, nil),
		goodFrame(wire.TypeScenarioPause, nil),
		goodFrame(wire.TypeSnapshotRequest, snapReq(1, wire.SnapshotCapture, "mid")),
		goodFrame(wire.TypeKernelOpRequest, korq),
		goodFrame(wire.TypeScenarioResume, nil),
		goodFrame(0x12345678, []byte("future")),
		padded,
		goodFrame(wire.TypeStepEnd, stim(1)),
		goodFrame(wire.TypeStimulus, stim(2)),
		goodFrame(wire.TypeSysRdy, nil),
		goodFrame(wire.TypeKernAddrs, kadr(0x3c00000, true, fuzzLink+0x2e000000, true)),
		goodFrame(wire.TypeTestResult, []byte("result")),
		goodFrame(wire.TypeScenarioEnd, wire.AppendScenarioEnd(nil, wire.ScenarioEnd{ElapsedMS: 900, TotalIterations: 5})),
		goodFrame(wire.TypeExit, wire.AppendExitCode(nil, 0)),
		goodFrame(wire.TypeSchedExit, wire.AppendExitCode(nil, 1)),
		goodFrame(wire.TypeLoss, wire.AppendLoss(nil, wire.Loss{})),
		goodFrame(wire.TypeVMEnd, wire.AppendVMEnd(nil, wire.VMEnd{})),
		goodFrame(wire.TypeStdout, []byte("cut off"))[:20],
	)
}

// chunkReader returns the bytes in pieces of random sizes.
type chunkReader struct {
	b   []byte
	rng *rand.Rand
	max int
}

func (c *chunkReader) Read(p []byte) (int, error) {
	if len(c.b) == 0 {
		return 0, io.EOF
	}
	n := min(len(p), len(c.b), 1+c.rng.IntN(c.max))
	copy(p, c.b[:n])
	c.b = c.b[n:]
	return n, nil
}

// clock returns a fake clock advancing step per call.
func clock(step time.Duration) func() time.Duration {
	var t time.Duration
	return func() time.Duration { t += step; return t }
}

// replay runs the production Run over in and reads back its msgpack
// output.
func replay(t *testing.T, in io.Reader, json bool, now func() time.Duration) ([]*record.Record, Summary) {
	t.Helper()
	var out bytes.Buffer
	sum, err := Run(in, record.NewWriter(&out, json), Options{Config: Config{Workload: 30 * time.Second, TextLink: fuzzLink}, Now: now})
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	var recs []*record.Record
	rd := record.NewReader(&out)
	for {
		r, err := rd.Read()
		if err == io.EOF {
			return recs, sum
		}
		if err != nil {
			t.Fatalf("reading Run's output: %v", err)
		}
		recs = append(recs, r)
	}
}

// TestReplayGivesTheSameRecords is the recording contract: the same bytes,
// chunked differently and read at different times, give the same entries,
// effects and diagnostics in the same order; only times differ.
func TestReplayGivesTheSameRecords(t *testing.T) {
	rec := recording()
	base, baseSum := replay(t, bytes.NewReader(rec), false, clock(time.Millisecond))
	rng := rand.New(rand.NewPCG(1, 2))
	runs := []struct {
		name string
		in   io.Reader
		json bool
		now  func() time.Duration
	}{
		{"one byte at a time", iotest.OneByteReader(bytes.NewReader(rec)), false, clock(3 * time.Microsecond)},
		{"half reads", iotest.HalfReader(bytes.NewReader(rec)), true, clock(time.Second)},
		{"data with EOF", iotest.DataErrReader(bytes.NewReader(rec)), false, clock(7 * time.Millisecond)},
		{"random chunks", &chunkReader{rec, rng, 100}, true, clock(time.Nanosecond)},
		{"random large chunks", &chunkReader{rec, rng, 20000}, false, clock(time.Hour)},
	}
	for _, r := range runs {
		t.Run(r.name, func(t *testing.T) {
			got, sum := replay(t, r.in, r.json, r.now)
			if len(got) != len(base) {
				t.Fatalf("%d records, want %d", len(got), len(base))
			}
			timesDiffer := false
			for i := range got {
				if !record.Equal(got[i], base[i]) {
					t.Errorf("record %d:\n got %+v\nwant %+v", i, got[i], base[i])
				}
				timesDiffer = timesDiffer || got[i].AtNS != base[i].AtNS
			}
			if !timesDiffer {
				t.Errorf("no at_ns differs between clocks: the test does not vary times")
			}
			sum.Assembler.Bytes, baseSum.Assembler.Bytes = 0, 0
			if d := cmp.Diff(baseSum, sum); d != "" {
				t.Errorf("summary (-first +replay):\n%s", d)
			}
		})
	}
	// With one clock value, chunking changes nothing at all.
	fixed := func() time.Duration { return 5 * time.Second }
	a, _ := replay(t, iotest.OneByteReader(bytes.NewReader(rec)), false, fixed)
	b, _ := replay(t, bytes.NewReader(rec), true, fixed)
	if d := cmp.Diff(a, b); d != "" {
		t.Errorf("same clock, different chunking and form (-bytewise +whole):\n%s", d)
	}
	// And every record is justified by its frame.
	var frames []wire.Frame
	var asm wire.Assembler
	asm.Feed(rec, func(f wire.Frame) { frames = append(frames, f) })
	checkJustified(t, Config{Workload: 30 * time.Second, TextLink: fuzzLink}, frames, base)
}

// TestRecordingRecords pins what the recording gives, kind by kind.
func TestRecordingRecords(t *testing.T) {
	recs, sum := replay(t, bytes.NewReader(recording()), false, clock(time.Millisecond))
	var got []string
	for _, r := range recs {
		switch r.Kind {
		case record.KindEntry:
			got = append(got, "entry "+r.Tag)
		case record.KindEffect:
			got = append(got, "effect "+r.Effect)
		case record.KindDiag:
			got = append(got, "diag "+r.Diag)
		}
	}
	want := strings.Split("entry LIFE|effect sys_rdy|effect kern_phys_base|effect kern_virt_kaslr|entry LIFE|"+
		"effect scenario_start|effect watchdog_deadline|entry SCST|effect current_step|entry STIM|entry SOUT|"+
		"diag crc_mismatch|entry SOUT|effect sched_swap|effect watchdog_pause|entry SCPP|effect snapshot_request|"+
		"effect kernel_op_request|effect watchdog_resume|effect watchdog_deadline|entry SCRR|diag unknown_type|"+
		"diag pad_nonzero|entry DMSG|entry STEN|effect current_step|entry STIM|effect kern_phys_base|"+
		"diag kaslr_divergence|entry TEST|effect watchdog_deadline|entry SCEN|entry EXIT|effect kill|entry SCDX|"+
		"entry LOSS|entry VEND|diag truncated_tail", "|")
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("records (-want +got):\n%s", d)
	}
	if sum.Assembler.Frames != 25 || sum.Entries != 17 || sum.Effects != 16 || sum.Diags != 5 || sum.Assembler.TruncatedTail != 1 {
		t.Errorf("summary = %v", sum)
	}
	for _, k := range []string{"sys_rdy_again", "unknown_type", "kaslr_divergence"} {
		if sum.Dropped[k] != 1 {
			t.Errorf("summary drop.%s = %d, want 1", k, sum.Dropped[k])
		}
	}
	if s := sum.String(); !strings.HasPrefix(s, "frames=25 bytes=") || !strings.Contains(s, " entries=17 effects=16 diags=5 crc_mismatch=1 pad_nonzero=1 oversized=0 residual_overflow=0 truncated_tail=1 dropped_bytes=20 drop.kaslr_divergence=1 drop.sys_rdy_again=1 drop.unknown_type=1") {
		t.Errorf("summary line = %q", s)
	}
}

type failWriter struct{ err error }

func (f failWriter) Write([]byte) (int, error) { return 0, f.err }

func TestRunErrors(t *testing.T) {
	rec := recording()
	t.Run("closed output", func(t *testing.T) {
		_, err := Run(bytes.NewReader(rec), record.NewWriter(failWriter{syscall.EPIPE}, false), Options{})
		if !errors.Is(err, ErrOutputClosed) {
			t.Errorf("Run to a closed pipe = %v, want ErrOutputClosed", err)
		}
	})
	t.Run("write error", func(t *testing.T) {
		_, err := Run(bytes.NewReader(rec), record.NewWriter(failWriter{syscall.ENOSPC}, false), Options{})
		if !errors.Is(err, syscall.ENOSPC) || errors.Is(err, ErrOutputClosed) {
			t.Errorf("Run to a full disk = %v, want ENOSPC", err)
		}
	})
	t.Run("read error", func(t *testing.T) {
		var out bytes.Buffer
		in := io.MultiReader(bytes.NewReader(goodFrame(wire.TypeExit, []byte{0, 0, 0, 0})), iotest.ErrReader(syscall.EIO))
		sum, err := Run(in, record.NewWriter(&out, true), Options{})
		if !errors.Is(err, syscall.EIO) || !strings.Contains(err.Error(), "read") {
			t.Errorf("Run = %v, want a read error wrapping EIO", err)
		}
		if sum.Entries != 1 || !strings.Contains(out.String(), `"tag":"EXIT"`) {
			t.Errorf("records before the read error were not written: %d entries, output %q", sum.Entries, out.String())
		}
	})
	t.Run("control error after the input", func(t *testing.T) {
		var out bytes.Buffer
		calls := 0
		sum, err := Run(bytes.NewReader(rec), record.NewWriter(&out, false), Options{Effects: func(*record.Record) error {
			calls++
			return syscall.ECONNREFUSED
		}})
		if !errors.Is(err, syscall.ECONNREFUSED) || !strings.Contains(err.Error(), "control") {
			t.Errorf("Run = %v, want a control error", err)
		}
		if calls != 1 || sum.Effects != 11 || sum.Entries != 17 {
			t.Errorf("calls %d effects %d entries %d, want 1 11 17: records go on after a control error", calls, sum.Effects, sum.Entries)
		}
	})
	t.Run("effects are forwarded in order", func(t *testing.T) {
		var out bytes.Buffer
		w := record.NewWriter(&out, false)
		var fwd []string
		_, err := Run(bytes.NewReader(rec), w, Options{Effects: func(r *record.Record) error {
			fwd = append(fwd, r.Effect)
			return nil
		}})
		if err != nil {
			t.Fatal(err)
		}
		if len(fwd) != 11 || fwd[0] != record.EffectSysRdy || fwd[10] != record.EffectKill {
			t.Errorf("forwarded %v", fwd)
		}
	})
}

// flushProbe is an input that checks, before handing out its second
// piece, that the records of the first have reached the output.
type flushProbe struct {
	pieces [][]byte
	out    *bytes.Buffer
	seen   []int
}

func (p *flushProbe) Read(b []byte) (int, error) {
	if len(p.pieces) == 0 {
		return 0, io.EOF
	}
	p.seen = append(p.seen, p.out.Len())
	n := copy(b, p.pieces[0])
	p.pieces = p.pieces[1:]
	return n, nil
}

func TestFlushEachRead(t *testing.T) {
	for _, flush := range []bool{true, false} {
		var out bytes.Buffer
		p := &flushProbe{pieces: [][]byte{goodFrame(wire.TypeExit, []byte{0, 0, 0, 0}), goodFrame(wire.TypeExit, []byte{0, 0, 0, 0})}, out: &out}
		if _, err := Run(p, record.NewWriter(&out, true), Options{FlushEachRead: flush}); err != nil {
			t.Fatal(err)
		}
		if got := p.seen[1] > 0; got != flush {
			t.Errorf("FlushEachRead=%v: output before the second read = %d bytes", flush, p.seen[1])
		}
	}
}

// TestBorrowedPayloadsAreWrittenIntact: Run lets records alias its read
// buffer; what it writes must equal the records of a Stream that copies
// every payload.
func TestBorrowedPayloadsAreWrittenIntact(t *testing.T) {
	rec := recording()
	cfg := Config{Workload: 30 * time.Second, TextLink: fuzzLink}
	var want []*record.Record
	s := NewStream(cfg, func(r *record.Record) { want = append(want, r) })
	s.Feed(rec, 0)
	s.Close(0)
	for _, in := range []io.Reader{bytes.NewReader(rec), iotest.OneByteReader(bytes.NewReader(rec)), &chunkReader{rec, rand.New(rand.NewPCG(5, 6)), 5000}} {
		got, _ := replay(t, in, false, clock(time.Millisecond))
		if len(got) != len(want) {
			t.Fatalf("%d records, want %d", len(got), len(want))
		}
		for i := range got {
			if !record.Equal(got[i], want[i]) {
				t.Errorf("record %d:\n got %+v\nwant %+v", i, got[i], want[i])
			}
		}
	}
}

// TestReplayAfterOversized: a recording with a frame above the 16 MiB cap
// replays to the same records however it is read. The oversized frame and
// everything after it are dropped, so a live run (reads cut wherever the
// ring was) and any replay agree.
func TestReplayAfterOversized(t *testing.T) {
	if testing.Short() {
		t.Skip("a 16 MiB frame; skipped with -short")
	}
	over := wire.AppendFrame(nil, wire.TypeStdout, make([]byte, wire.MaxPayload+1))
	rec := cat(goodFrame(wire.TypeLifecycle, []byte{1}), goodFrame(wire.TypeStdout, []byte("before")), over,
		goodFrame(wire.TypeTestResult, []byte("after")), goodFrame(wire.TypeExit, wire.AppendExitCode(nil, 0)),
		goodFrame(wire.TypeVMEnd, wire.AppendVMEnd(nil, wire.VMEnd{Reason: wire.EndPoweroff})))
	base, baseSum := replay(t, bytes.NewReader(rec), false, clock(time.Millisecond))
	end := bytes.Index(rec, over) + len(over)
	for i, in := range []io.Reader{
		// A read that ends exactly with the oversized frame: ktstr's
		// assembler would resume with the next read.
		io.MultiReader(bytes.NewReader(rec[:end]), bytes.NewReader(rec[end:])),
		&chunkReader{rec, rand.New(rand.NewPCG(3, 4)), 1 << 20},
		&chunkReader{rec, rand.New(rand.NewPCG(5, 6)), 100 << 10},
		iotest.HalfReader(bytes.NewReader(rec)),
	} {
		got, sum := replay(t, in, false, clock(time.Second))
		if len(got) != len(base) {
			t.Fatalf("reader %d: %d records, want %d", i, len(got), len(base))
		}
		for j := range got {
			if !record.Equal(got[j], base[j]) {
				t.Errorf("reader %d: record %d:\n got %+v\nwant %+v", i, j, got[j], base[j])
			}
		}
		if d := cmp.Diff(baseSum, sum); d != "" {
			t.Errorf("reader %d: summary (-whole +chunked):\n%s", i, d)
		}
	}
	var tags []string
	for _, r := range base {
		tags = append(tags, r.Tag+"/"+r.Diag)
	}
	if want := []string{"LIFE/", "SOUT/", "SOUT/oversized"}; !slices.Equal(tags, want) {
		t.Errorf("records %v, want %v: nothing after the oversized frame", tags, want)
	}
}
