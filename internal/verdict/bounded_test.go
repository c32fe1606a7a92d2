package verdict_test

import (
	"fmt"
	"runtime"
	"strings"
	"testing"

	"github.com/ktstr-go/ktstr/internal/heaptest"
	"github.com/ktstr-go/ktstr/internal/record"
	"github.com/ktstr-go/ktstr/internal/verdict"
	vt "github.com/ktstr-go/ktstr/internal/verdict/verdicttest"
	"github.com/ktstr-go/ktstr/lib/wire"
	"github.com/ktstr-go/ktstr/lib/wire/payload"
)

// floods are guest inputs that used to cost the folder memory per frame
// or per line: entry i of n.
var floods = []struct {
	name  string
	n     int
	entry func(i int) (wire.Type, []byte)
}{
	{"STIM", 200_000, func(i int) (wire.Type, []byte) {
		return wire.TypeStimulus, wire.AppendStimulus(nil, wire.Stimulus{ElapsedMS: uint32(i), StepIndex: uint16(i)})
	}},
	{"STEN", 200_000, func(i int) (wire.Type, []byte) {
		t := wire.TypeStimulus
		if i%2 == 1 {
			t = wire.TypeStepEnd
		}
		return t, wire.AppendStimulus(nil, wire.Stimulus{ElapsedMS: uint32(i), StepIndex: uint16(i / 2)})
	}},
	{"SCDX", 1_000_000, func(i int) (wire.Type, []byte) {
		return wire.TypeSchedExit, wire.AppendExitCode(nil, int32(i))
	}},
	{"splat lines", 100_000, func(i int) (wire.Type, []byte) {
		return wire.TypeDmesg, fmt.Appendf(nil, "WARNING: CPU: 0 PID: %d at kernel/sched/ext.c:%d scx_flood\n", i, i)
	}},
	{"sched_ext disabled lines", 20_000, func(i int) (wire.Type, []byte) {
		return wire.TypeDmesg, fmt.Appendf(nil, "sched_ext: BPF scheduler \"s%d\" disabled (runtime error)\nsched_ext: s%d: message %d\n", i, i, i)
	}},
}

// TestFoldMemoryFlat: whatever the guest floods, the folder keeps the
// first few of each kind and counts the rest; its live heap stays
// within a generous 2 MiB of where it started.
func TestFoldMemoryFlat(t *testing.T) {
	const bound = 2 << 20
	for _, fl := range floods {
		t.Run(fl.name, func(t *testing.T) {
			f := verdict.NewFolder("flood", verdict.DefaultConfig())
			add := func(i int) {
				typ, p := fl.entry(i)
				f.Add(&record.Record{V: record.Version, Kind: record.KindEntry, Seq: int64(i), Tag: typ.String(),
					MsgType: uint32(typ), CRCOK: true, Payload: p})
			}
			for i := range 1000 {
				add(i)
			}
			before := heaptest.Live()
			for i := 1000; i < fl.n; i++ {
				add(i)
			}
			after := heaptest.Live()
			v := f.Verdict()
			runtime.KeepAlive(f)
			growth := int64(after) - int64(before)
			t.Logf("%d %s: live heap %d -> %d (%+d); %d findings, %d steps", fl.n, fl.name, before, after, growth, len(v.Findings), len(v.Steps))
			if growth > bound {
				t.Errorf("%d %s: the folder's live heap grew by %d bytes, want at most %d", fl.n, fl.name, growth, bound)
			}
		})
	}
}

// TestReportBounded: a guest that sends thousands of everything still
// gets a report of bounded size that says how much it left out.
func TestReportBounded(t *testing.T) {
	const n = 5000
	s := vt.New().Boot()
	var kmsg strings.Builder
	for i := range n {
		s.Step(false, uint16(i), uint32(i), 1, uint64(i))
		s.Entry(wire.TypeSchedExit, wire.AppendExitCode(nil, int32(i)))
		fmt.Fprintf(&kmsg, "WARNING: CPU: 0 PID: %d at kernel/sched/ext.c:%d scx_flood\n", i, i)
		fmt.Fprintf(&kmsg, "sched_ext: BPF scheduler \"s%d\" disabled (runtime error)\n", i)
	}
	s.Dmesg(kmsg.String())
	huge := strings.Repeat("x", 1<<20)
	res := &payload.AssertResult{Scenario: "flood", Stats: vt.Stats(), Measurements: payload.Measurements{}}
	for i := range n {
		res.Outcomes = append(res.Outcomes, vt.Fail(payload.KindStarved, fmt.Sprintf("worker %d starved", i)))
		res.Passes = append(res.Passes, payload.PassDetail{Check: fmt.Sprintf("check%d", i)})
		res.InfoNotes = append(res.InfoNotes, fmt.Sprintf("note %d", i))
		res.Measurements[fmt.Sprintf("m%05d", i)] = float64(i)
		res.Stats.Cgroups = append(res.Stats.Cgroups, payload.CgroupStats{Name: fmt.Sprintf("cg%d", i)})
	}
	res.Outcomes = append(res.Outcomes, vt.Fail(payload.KindOther, huge))
	s.Result(res).Life(wire.PhaseSchedulerNotAttached, huge).Crash(huge).Finish()
	v := fold(s, verdict.DefaultConfig())
	if v.Status != verdict.StatusFail {
		t.Errorf("status %s, want FAIL", v.Status)
	}
	for _, format := range verdict.Formats {
		t.Run(format, func(t *testing.T) {
			var b strings.Builder
			if err := verdict.Write(&b, format, verdict.Aggregate("flood", []verdict.Verdict{v}), verdict.TextOptions{}); err != nil {
				t.Fatal(err)
			}
			out := b.String()
			if format == "json" {
				// The JSON report carries the decoded result as data
				// (bounded by the 16 MiB frame cap); the findings and
				// the timeline are bounded like the other reports.
				out = out[:strings.Index(out, `"result"`)] + out[strings.Index(out, `"guest_exit_code"`):]
			}
			lines := strings.Count(out, "\n")
			t.Logf("%s: %d lines, %d bytes", format, lines, len(out))
			if lines > 5000 || len(out) > 512<<10 {
				t.Errorf("%s report of %d lines and %d bytes for a flood of %d, want at most 5000 lines and 512 KiB", format, lines, len(out), n)
			}
			if format != "json" && !strings.Contains(out, "more") {
				t.Errorf("%s report does not say what it left out", format)
			}
		})
	}
	if len(v.Steps) >= n || v.StepsNotListed == 0 || len(v.Steps)+v.StepsNotListed != n {
		t.Errorf("%d steps listed, %d not listed, want fewer than %d listed and the rest counted", len(v.Steps), v.StepsNotListed, n)
	}
}
