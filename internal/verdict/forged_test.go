package verdict_test

import (
	"bytes"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ktstr-go/ktstr/internal/dispatch"
	"github.com/ktstr-go/ktstr/internal/drain"
	"github.com/ktstr-go/ktstr/internal/record"
	"github.com/ktstr-go/ktstr/internal/verdict"
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
	l, _ := shm.DefaultLayout(128 << 10)
	r, err := shm.Create(filepath.Join(t.TempDir(), "region"), l)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	g, err := shm.OpenGuest(r.Mem())
	if err != nil {
		t.Fatal(err)
	}
	p := g.TX().NewProducer(0)
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
	var frames, recs bytes.Buffer
	if _, err := drain.Run(r, &frames, drain.Options{Beat: -1}); err != nil {
		t.Fatal(err)
	}
	if _, err := dispatch.Run(&frames, record.NewWriter(&recs, false), dispatch.Options{}); err != nil {
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
