package verdict_test

import (
	"bytes"
	"encoding/binary"
	"errors"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ktstr-go/ktstr/internal/dispatch"
	"github.com/ktstr-go/ktstr/internal/drain"
	"github.com/ktstr-go/ktstr/internal/verdict"
	"github.com/ktstr-go/ktstr/lib/record"
	"github.com/ktstr-go/ktstr/lib/shm"
	"github.com/ktstr-go/ktstr/lib/wire"
	"github.com/ktstr-go/ktstr/lib/wire/payload"
)

// pipeline runs a region through the real drain, dispatch and verdict, as
// ktstr-run does (ktstr-verdict --require-end). The guest writes frames
// into the region's TX ring; closed says whether ktstr-boot closed the
// region (then ktstr-drain appends the real trailer).
func pipeline(t *testing.T, guest [][]byte, closed *shm.End, drops bool) verdict.Verdict {
	t.Helper()
	r, p := newRegion(t)
	for _, f := range guest {
		if err := p.Write(f); err != nil {
			t.Fatal(err)
		}
	}
	if drops {
		p.Write(make([]byte, 1<<20)) // larger than the ring: a counted drop
	}
	if closed != nil {
		r.MarkClosed(*closed)
	}
	var frames bytes.Buffer
	if _, err := drain.Run(r, &frames, drain.Options{Beat: -1}); err != nil {
		t.Fatal(err)
	}
	return judge(t, &frames)
}

// newRegion creates a 128 KiB region, closed with the test, and returns
// it with a producer for the guest's TX ring.
func newRegion(t *testing.T) (*shm.Region, *shm.Producer) {
	t.Helper()
	l, _ := shm.DefaultLayout(128 << 10)
	r, err := shm.Create(filepath.Join(t.TempDir(), "region"), l)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	g, err := shm.OpenGuest(r.Mem())
	if err != nil {
		t.Fatal(err)
	}
	return r, g.TX().NewProducer(0)
}

// judge runs frames through dispatch and verdict, as ktstr-run does
// (ktstr-verdict --require-end).
func judge(t *testing.T, frames *bytes.Buffer) verdict.Verdict {
	t.Helper()
	var recs bytes.Buffer
	if _, err := dispatch.Run(frames, record.NewWriter(&recs, false), dispatch.Options{}); err != nil {
		t.Fatal(err)
	}
	cfg := verdict.DefaultConfig()
	cfg.RequireEnd = true
	return verdict.Fold("forged", cfg, &recs).Verdict()
}

// TestForgedTrailerRefused: the guest cannot write the host's trailer. A
// VEND (or LOSS) the guest wrote as its last frame, when ktstr-boot never
// closed the region, must not satisfy --require-end or set how the VM
// ended; with the real trailer, the real one counts.
func TestForgedTrailerRefused(t *testing.T) {
	pass, err := payload.MarshalAssertResult(&payload.AssertResult{Outcomes: []payload.Outcome{{Verdict: payload.Pass}}})
	if err != nil {
		t.Fatal(err)
	}
	guest := [][]byte{
		wire.AppendFrame(nil, wire.TypeLifecycle, []byte{1}),
		wire.AppendFrame(nil, wire.TypeTestResult, pass),
		wire.AppendFrame(nil, wire.TypeLoss, wire.AppendLoss(nil, wire.Loss{Frames: 1 << 40})),
		wire.AppendFrame(nil, wire.TypeVMEnd, wire.AppendVMEnd(nil, wire.VMEnd{Reason: wire.EndPoweroff})),
	}
	t.Run("no real trailer", func(t *testing.T) {
		v := pipeline(t, guest, nil, false)
		if v.VMEnd != nil || v.Status != verdict.StatusInfra || !hasFinding(v, "no VM end record") || !hasFinding(v, "forged") {
			t.Errorf("%s, vm_end %+v, findings:%s\nwant ERROR: no VM end record, and the guest's VEND named as forged", v.Status, v.VMEnd, findingsString(v.Findings))
		}
		if v.Counts.LostFrames != 0 {
			t.Errorf("lost frames %d from the guest's LOSS, want 0", v.Counts.LostFrames)
		}
	})
	t.Run("real trailer", func(t *testing.T) {
		v := pipeline(t, guest, &shm.End{Reason: uint32(wire.EndTimeout), ExitCode: 1, Elapsed: time.Second}, true)
		if v.VMEnd == nil || v.VMEnd.Reason != "timeout" || v.Counts.LostFrames != 1 {
			t.Errorf("vm_end %+v, lost frames %d, want the host's: timeout and 1", v.VMEnd, v.Counts.LostFrames)
		}
		if hasFinding(v, "no VM end record") {
			t.Errorf("findings:%s\nwant the real VEND to count", findingsString(v.Findings))
		}
	})
}

func hasFinding(v verdict.Verdict, substr string) bool {
	for _, f := range v.Findings {
		if strings.Contains(f.Message, substr) {
			return true
		}
	}
	return false
}

// TestUndecodableHostFramesAreForged: a HELO, LOSS or VEND that does not
// decode (an all-zero nonce, a wrong size) cannot come from ktstr-drain,
// which writes only valid ones: it is counted with the forgeries. Such
// frames used to be ignored without a trace.
func TestUndecodableHostFramesAreForged(t *testing.T) {
	pass, _ := payload.MarshalAssertResult(&payload.AssertResult{Outcomes: []payload.Outcome{{Verdict: payload.Pass}}})
	end := wire.AppendVMEnd(nil, wire.VMEnd{Reason: wire.EndPoweroff})
	guest := [][]byte{
		wire.AppendFrame(nil, wire.TypeTestResult, pass),
		wire.AppendFrame(nil, wire.TypeHello, make([]byte, wire.NonceSize)),     // all-zero nonce
		wire.AppendFrame(nil, wire.TypeLoss, make([]byte, 7)),                   // no LOSS size
		wire.AppendFrame(nil, wire.TypeVMEnd, append(end, make([]byte, 16)...)), // 40 bytes, zero nonce
	}
	v := pipeline(t, guest, &shm.End{Reason: uint32(wire.EndPoweroff)}, false)
	if v.Status != verdict.StatusInfra || !hasFinding(v, "3 host frames (HELO, LOSS, VEND) without the run's nonce") {
		t.Errorf("%s, findings:%s\nwant ERROR naming 3 forged host frames", v.Status, findingsString(v.Findings))
	}
}

// TestEffectsCounted: the verdict counts effects by name, and the text
// report says how many SCST frames came, so that a guest's request or
// start flood is named with its size. The text said "scenario start"
// and the total of all effects only.
func TestEffectsCounted(t *testing.T) {
	var guest [][]byte
	for i := range 5 {
		guest = append(guest,
			wire.AppendFrame(nil, wire.TypeSnapshotRequest, wire.AppendSnapshotRequest(nil, wire.SnapshotRequest{RequestID: uint32(i + 1), Kind: wire.SnapshotCapture})),
			wire.AppendFrame(nil, wire.TypeScenarioStart, nil))
	}
	v := pipeline(t, guest, &shm.End{Reason: uint32(wire.EndPoweroff)}, false)
	if v.Effects["snapshot_request"] != 5 || v.Effects["scenario_start"] != 1 || v.Scenario.Starts != 5 {
		t.Errorf("effects %v, scenario starts %d; want snapshot_request 5, scenario_start 1, 5 starts", v.Effects, v.Scenario.Starts)
	}
	var b strings.Builder
	verdict.WriteText(&b, verdict.Report{Runs: []verdict.Verdict{v}}, verdict.TextOptions{})
	for _, want := range []string{"\neffect snapshot_request=5\n", "\nscenario start (5 SCST frames)\n"} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("text report lacks %q:\n%s", want, b.String())
		}
	}
}

// TestRingCorruptNamed: a guest that corrupts its ring's write position
// after its result: ktstr-drain ends the stream with the real VEND
// flagged ring_corrupt, and the verdict names that instead of "no VM end
// record".
func TestRingCorruptNamed(t *testing.T) {
	r, p := newRegion(t)
	pass, _ := payload.MarshalAssertResult(&payload.AssertResult{Outcomes: []payload.Outcome{{Verdict: payload.Pass}}})
	p.Write(wire.AppendFrame(nil, wire.TypeTestResult, pass))
	var frames bytes.Buffer
	if _, err := drain.Run(r, &frames, drain.Options{Beat: -1}); err != nil { // the result
		t.Fatal(err)
	}
	binary.LittleEndian.PutUint64(r.Mem()[0x80:], 1<<40) // tx_write, ktstr-shm(5)
	r.MarkClosed(shm.End{Reason: uint32(wire.EndPoweroff)})
	if _, err := drain.Run(r, &frames, drain.Options{Follow: true, Beat: -1}); !errors.Is(err, shm.ErrCorrupt) {
		t.Fatalf("drain = %v, want ErrCorrupt", err)
	}
	v := judge(t, &frames)
	if v.Status != verdict.StatusInfra || !hasFinding(v, "ring positions no producer reaches") || hasFinding(v, "no VM end record") ||
		v.VMEnd == nil || !v.VMEnd.RingCorrupt {
		t.Errorf("%s, vm_end %+v, findings:%s\nwant ERROR naming the corrupt ring, with the VM end", v.Status, v.VMEnd, findingsString(v.Findings))
	}
}
