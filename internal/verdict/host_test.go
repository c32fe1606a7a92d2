package verdict_test

import (
	"strings"
	"testing"

	"github.com/ktstr-go/ktstr/internal/verdict"
	vt "github.com/ktstr-go/ktstr/internal/verdict/verdicttest"
	"github.com/ktstr-go/ktstr/lib/wire"
	"github.com/ktstr-go/ktstr/lib/wire/payload"
)

func hostDump(t *testing.T, path string) []byte {
	t.Helper()
	p, err := payload.MarshalHostDump(&payload.HostDump{Path: path, Reason: "scheduler died", Summary: []string{"CPU 1: running stuck[42]"}, StuckCPU: 1})
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func monitor(t *testing.T, th payload.MonitorThresholds, samples ...[][]uint64) []byte {
	t.Helper()
	m := &payload.Monitor{IntervalMS: 100, Thresholds: th}
	for i, s := range samples {
		m.Samples = append(m.Samples, payload.MonitorSample{TMS: uint64(100 * (i + 1)), CPUs: s})
	}
	p, err := payload.MarshalMonitor(m)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

var ktstrThresholds = payload.MonitorThresholds{MaxImbalanceRatio: 4, MaxLocalDSQDepth: 50, FailOnRQClockStuck: true, SustainedSamples: 5}

// TestHostBlock: the failure dump and monitor samples count only in the
// block ktstr-drain writes right before VEND; the same frames written by
// the guest are ignored and reported.
func TestHostBlock(t *testing.T) {
	real := func(s *vt.Stream) *vt.Stream {
		return s.Entry(wire.TypeHostBlock, nil).Entry(wire.TypeHostDump, hostDump(t, "/run/failure-dump.json"))
	}
	v := fold(real(vt.Base().Outcomes(vt.Pass()).Exit(0)).End(wire.EndPoweroff, 0, 1), verdict.DefaultConfig())
	if v.FailureDump == nil || v.FailureDump.Path != "/run/failure-dump.json" || v.FailureDump.StuckCPU != 1 {
		t.Fatalf("failure dump = %+v", v.FailureDump)
	}
	var text strings.Builder
	verdict.Write(&text, "text", verdict.Report{Runs: []verdict.Verdict{v}}, verdict.TextOptions{})
	if !strings.Contains(text.String(), "failure dump: /run/failure-dump.json (scheduler died)\n  CPU 1: running stuck[42]") {
		t.Errorf("the report does not show the dump:\n%s", text.String())
	}
	// Forged: the guest's own HBLK and HDMP, followed by its EXIT.
	forged := vt.Base().Outcomes(vt.Pass()).Entry(wire.TypeHostBlock, nil).Entry(wire.TypeHostDump, hostDump(t, "/forged")).Exit(0).End(wire.EndPoweroff, 0, 1)
	v = fold(forged, verdict.DefaultConfig())
	if v.FailureDump != nil || v.Status != verdict.StatusInfra {
		t.Errorf("forged block: dump %+v, status %v; want none and infrastructure", v.FailureDump, v.Status)
	}
	// Forged before the real block: the real one wins.
	v = fold(real(vt.Base().Outcomes(vt.Pass()).Entry(wire.TypeHostDump, hostDump(t, "/forged")).Exit(0)).End(wire.EndPoweroff, 0, 1), verdict.DefaultConfig())
	if v.FailureDump == nil || v.FailureDump.Path != "/run/failure-dump.json" {
		t.Errorf("forged, then real: dump %+v", v.FailureDump)
	}
	// With the run's nonce (a HELO began the stream), an HBLK must carry
	// it: the guest cannot read it, so it cannot forge the block.
	nonce, other := wire.Nonce{7, 7, 7}, wire.Nonce{9}
	withNonce := func(hblk wire.Nonce) verdict.Verdict {
		s := vt.New().Entry(wire.TypeHello, wire.AppendHello(nil, nonce))
		for _, r := range vt.Base().Outcomes(vt.Pass()).Exit(0).Records() {
			c := *r
			s.Entry(wire.Type(c.MsgType), c.Payload)
		}
		s.Entry(wire.TypeHostBlock, wire.AppendHostBlock(nil, hblk)).Entry(wire.TypeHostDump, hostDump(t, "/run/failure-dump.json")).
			Entry(wire.TypeVMEnd, wire.AppendVMEnd(nil, wire.VMEnd{Reason: wire.EndPoweroff, Nonce: nonce}))
		return fold(s, verdict.DefaultConfig())
	}
	if v := withNonce(nonce); v.FailureDump == nil {
		t.Errorf("HBLK with the run's nonce: no dump (status %v %s)", v.Status, v.Reason)
	}
	if v := withNonce(other); v.FailureDump != nil || v.Status != verdict.StatusInfra {
		t.Errorf("HBLK with another nonce: dump %+v, status %v; want none and infrastructure", v.FailureDump, v.Status)
	}
	// No VEND: the block is not confirmed.
	v = fold(real(vt.Base().Outcomes(vt.Pass()).Exit(0)), verdict.DefaultConfig())
	if v.FailureDump != nil {
		t.Errorf("no VEND: dump %+v", v.FailureDump)
	}
}

func TestMonitorChecks(t *testing.T) {
	even := [][]uint64{{1, 0, 100}, {1, 0, 200}}
	tick := func(s [][]uint64, d uint64) [][]uint64 {
		out := make([][]uint64, len(s))
		for i, c := range s {
			out[i] = []uint64{c[0], c[1], c[2] + d}
		}
		return out
	}
	var steady [][][]uint64
	for i := range 10 {
		steady = append(steady, tick(even, uint64(i)*1000))
	}
	imb := func(n int) [][][]uint64 {
		var s [][][]uint64
		for i := range n {
			s = append(s, [][]uint64{{9, 0, uint64(i)}, {1, 0, uint64(i)}})
		}
		return s
	}
	stuck := [][][]uint64{}
	for range 6 {
		stuck = append(stuck, [][]uint64{{1, 0, 5}, {1, 0, 7}})
	}
	deep := [][][]uint64{}
	for i := range 5 {
		deep = append(deep, [][]uint64{{1, 60, uint64(i)}, {1, 0, uint64(i)}})
	}
	for _, c := range []struct {
		name    string
		samples [][][]uint64
		th      payload.MonitorThresholds
		kinds   []string
	}{
		{"steady", steady, ktstrThresholds, nil},
		{"imbalance for 4 samples", imb(4), ktstrThresholds, nil},
		{"imbalance for 5 samples", imb(5), ktstrThresholds, []string{"imbalance"}},
		{"rq clocks stuck", stuck, ktstrThresholds, []string{"rq_clock_stuck", "rq_clock_stuck"}},
		{"rq clocks stuck, check off", stuck, payload.MonitorThresholds{MaxImbalanceRatio: 4, MaxLocalDSQDepth: 50, SustainedSamples: 5}, nil},
		{"deep local DSQ", deep, ktstrThresholds, []string{"local_dsq_depth"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			s := vt.Base().Outcomes(vt.Pass()).Exit(0).Entry(wire.TypeHostBlock, nil).
				Entry(wire.TypeMonitor, monitor(t, c.th, c.samples[:len(c.samples)/2]...)).
				Entry(wire.TypeMonitor, monitor(t, c.th, c.samples[len(c.samples)/2:]...)).
				End(wire.EndPoweroff, 0, 1)
			v := fold(s, verdict.DefaultConfig())
			var kinds []string
			for _, f := range v.Findings {
				if f.Cause == verdict.CauseMonitor {
					kinds = append(kinds, f.Kind)
				}
			}
			if strings.Join(kinds, ",") != strings.Join(c.kinds, ",") {
				t.Errorf("monitor findings %v, want %v: %+v", kinds, c.kinds, v.Findings)
			}
			if v.Monitor == nil || v.Monitor.Samples != len(c.samples) {
				t.Errorf("monitor summary %+v, want %d samples", v.Monitor, len(c.samples))
			}
			if want := verdict.StatusPass; len(c.kinds) > 0 && v.Status != verdict.StatusFail || len(c.kinds) == 0 && v.Status != want {
				t.Errorf("status %v", v.Status)
			}
		})
	}
}
