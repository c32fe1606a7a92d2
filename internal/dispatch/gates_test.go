package dispatch

import (
	"bytes"
	"math"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/ktstr-go/ktstr/internal/record"
	"github.com/ktstr-go/ktstr/lib/wire"
	"github.com/ktstr-go/ktstr/lib/wire/payload"
)

// wantArms is the deliberate decision for every type lib/wire knows. A
// type added to wire.Types fails TestEveryKnownTypeHasAnArm until it is
// given an arm in ArmOf and a line here.
var wantArms = map[wire.Type]Arm{
	wire.TypeStimulus:         ArmStimulus,
	wire.TypeStepEnd:          ArmBucket,
	wire.TypeScenarioStart:    ArmScenarioStart,
	wire.TypeScenarioEnd:      ArmScenarioEnd,
	wire.TypeScenarioPause:    ArmScenarioPause,
	wire.TypeScenarioResume:   ArmScenarioResume,
	wire.TypeExit:             ArmBucket,
	wire.TypeTestResult:       ArmBucket,
	wire.TypeSchedExit:        ArmSchedExit,
	wire.TypeCrash:            ArmBucket,
	wire.TypePayloadMetrics:   ArmBucket,
	wire.TypeRawPayloadOutput: ArmBucket,
	wire.TypeProfraw:          ArmBucket,
	wire.TypeWprofTrace:       ArmBucket,
	wire.TypeSnapshotRequest:  ArmSnapshotRequest,
	wire.TypeSnapshotReply:    ArmInternal,
	wire.TypeKernelOpRequest:  ArmKernelOpRequest,
	wire.TypeKernelOpReply:    ArmInternal,
	wire.TypeSysRdy:           ArmSysRdy,
	wire.TypeSchedSwapNotify:  ArmSchedSwap,
	wire.TypeStdout:           ArmBucket,
	wire.TypeStderr:           ArmBucket,
	wire.TypeSchedLog:         ArmBucket,
	wire.TypeLifecycle:        ArmBucket,
	wire.TypeExecExit:         ArmBucket,
	wire.TypeDmesg:            ArmBucket,
	wire.TypeProbeOutput:      ArmBucket,
	wire.TypeHello:            ArmBucket,
	wire.TypeLoss:             ArmBucket,
	wire.TypeVMEnd:            ArmBucket,
	wire.TypeHostBlock:        ArmBucket,
	wire.TypeHostDump:         ArmBucket,
	wire.TypeMonitor:          ArmBucket,
}

func TestEveryKnownTypeHasAnArm(t *testing.T) {
	for _, info := range wire.Types {
		t.Run(info.Type.String(), func(t *testing.T) {
			got := ArmOf(info.Type)
			if got == ArmUnknown {
				t.Fatalf("ArmOf(%v) = unknown: a type lib/wire knows has no arm in ArmOf", info.Type)
			}
			want, ok := wantArms[info.Type]
			if !ok {
				t.Fatalf("%v (%s) has no line in wantArms: decide its arm", info.Type, info.Name)
			}
			if got != want {
				t.Errorf("ArmOf(%v) = %v, want %v", info.Type, got, want)
			}
			// ktstr's catch-all: a known type with no arm of its own is
			// bucketed exactly when it is not coordinator-internal.
			if info.Internal && got == ArmBucket {
				t.Errorf("internal type %v is bucketed", info.Type)
			}
			if !info.Internal && got == ArmInternal {
				t.Errorf("verdict type %v is dropped as internal", info.Type)
			}
		})
	}
	if len(wantArms) != len(wire.Types) {
		t.Errorf("wantArms has %d lines, wire.Types %d entries: remove the stale lines", len(wantArms), len(wire.Types))
	}
	// KADR is matched by value: unknown to lib/wire, known to the dispatcher.
	if wire.Known(wire.TypeKernAddrs) || ArmOf(wire.TypeKernAddrs) != ArmKernAddrs {
		t.Errorf("KADR: Known = %v, ArmOf = %v; want false, kern_addrs", wire.Known(wire.TypeKernAddrs), ArmOf(wire.TypeKernAddrs))
	}
	for _, v := range []wire.Type{0, 0xDEADBEEF, 0xFFFFFFFF, wire.TypeKernAddrs + 1} {
		if got := ArmOf(v); got != ArmUnknown {
			t.Errorf("ArmOf(%#x) = %v, want unknown", uint32(v), got)
		}
	}
}

// TestCRCMatrix is ktstr's CRC matrix (reference §3.3) over every type:
// a frame with an arbitrary payload, CRC good and CRC bad, and whether it
// is bucketed and whether it has an effect.
func TestCRCMatrix(t *testing.T) {
	types := []wire.Type{wire.TypeKernAddrs, 0xDEADBEEF}
	for _, info := range wire.Types {
		types = append(types, info.Type)
	}
	for _, typ := range types {
		arm := ArmOf(typ)
		for _, ok := range []bool{true, false} {
			name := typ.String() + map[bool]string{true: "/good", false: "/torn"}[ok]
			t.Run(name, func(t *testing.T) {
				p := []byte("arbitrary payload")
				in := goodFrame(typ, p)
				if !ok {
					in = tornFrame(typ, p)
				}
				o := feed(t, Config{Workload: time.Second, TextLink: 0xffffffff81000000}, in)
				var wantBucket bool
				switch arm {
				case ArmSchedExit:
					wantBucket = ok
				case ArmScenarioStart, ArmScenarioPause, ArmScenarioResume, ArmScenarioEnd, ArmStimulus, ArmBucket:
					wantBucket = true
				}
				if got := len(o.entries) == 1; got != wantBucket || len(o.entries) > 1 {
					t.Errorf("bucketed = %v (%d entries), want %v", got, len(o.entries), wantBucket)
				}
				if wantBucket && (o.entries[0].CRCOK != ok || !bytes.Equal(o.entries[0].Payload, p)) {
					t.Errorf("entry crc_ok %v payload %q, want %v %q", o.entries[0].CRCOK, o.entries[0].Payload, ok, p)
				}
				if !ok && len(o.effects) != 0 {
					t.Errorf("torn frame had effects %v", o.effectNames())
				}
				// A payload of the wrong shape has no effect where the
				// arm checks the shape.
				switch arm {
				case ArmSysRdy, ArmSchedSwap, ArmKernAddrs, ArmSnapshotRequest, ArmKernelOpRequest, ArmStimulus, ArmBucket, ArmInternal, ArmUnknown:
					if len(o.effects) != 0 {
						t.Errorf("ill-shaped frame had effects %v", o.effectNames())
					}
				}
				if wantDiag := arm == ArmUnknown; wantDiag != slices.ContainsFunc(o.diags, func(r *record.Record) bool { return r.Diag == record.DiagUnknownType }) {
					t.Errorf("unknown_type diag = %v, want %v", !wantDiag, wantDiag)
				}
			})
		}
	}
}

func TestKernAddrs(t *testing.T) {
	const link = 0xffffffff81000000
	tests := []struct {
		name    string
		cfg     Config
		frames  [][]byte
		effects []string
		values  []uint64
		phys    uint64 // State.PhysBase
		kaslr   uint64 // State.VirtKASLR
		diags   int
		drop    string
	}{
		{name: "phys and kaslr", cfg: Config{TextLink: link},
			frames:  [][]byte{goodFrame(wire.TypeKernAddrs, kadr(0x3c00000, true, link+0x1e000000, true))},
			effects: []string{"kern_phys_base", "kern_virt_kaslr"}, values: []uint64{0x3c00000, 0x1e000000},
			phys: 0x3c00001, kaslr: 0x1e000001},
		{name: "phys base 0 is present", cfg: Config{},
			frames:  [][]byte{goodFrame(wire.TypeKernAddrs, kadr(0, true, 0, false))},
			effects: []string{"kern_phys_base"}, values: []uint64{0}, phys: 1},
		{name: "absent fields publish nothing", cfg: Config{TextLink: link},
			frames: [][]byte{goodFrame(wire.TypeKernAddrs, kadr(0, false, 0, false))}},
		{name: "torn", cfg: Config{TextLink: link},
			frames: [][]byte{tornFrame(wire.TypeKernAddrs, kadr(0x1000, true, link, true))}, drop: "kern_addrs_bad_crc"},
		{name: "23 bytes", cfg: Config{TextLink: link},
			frames: [][]byte{goodFrame(wire.TypeKernAddrs, kadr(0x1000, true, link, true)[:23])}, drop: "kern_addrs_undecodable"},
		{name: "25 bytes", cfg: Config{TextLink: link},
			frames: [][]byte{goodFrame(wire.TypeKernAddrs, append(kadr(0x1000, true, link, true), 0))}, drop: "kern_addrs_undecodable"},
		{name: "offset 0", cfg: Config{TextLink: link},
			frames:  [][]byte{goodFrame(wire.TypeKernAddrs, kadr(0, false, link, true))},
			effects: []string{"kern_virt_kaslr"}, values: []uint64{0}, kaslr: 1},
		{name: "offset exactly 1 GiB", cfg: Config{TextLink: link},
			frames:  [][]byte{goodFrame(wire.TypeKernAddrs, kadr(0, false, link+1<<30, true))},
			effects: []string{"kern_virt_kaslr"}, values: []uint64{1 << 30}, kaslr: 1<<30 + 1},
		{name: "offset 1 GiB + 1", cfg: Config{TextLink: link},
			frames: [][]byte{goodFrame(wire.TypeKernAddrs, kadr(0, false, link+1<<30+1, true))}, drop: "kern_addrs_out_of_range"},
		{name: "runtime below link", cfg: Config{TextLink: link},
			frames: [][]byte{goodFrame(wire.TypeKernAddrs, kadr(0, false, link-0x1000, true))}, drop: "kern_addrs_out_of_range"},
		{name: "runtime below the kernel half", cfg: Config{TextLink: KernelHalf},
			frames: [][]byte{goodFrame(wire.TypeKernAddrs, kadr(0, false, KernelHalf-1, true))}, drop: "kern_addrs_out_of_range"},
		{name: "runtime at the kernel half", cfg: Config{TextLink: KernelHalf},
			frames:  [][]byte{goodFrame(wire.TypeKernAddrs, kadr(0, false, KernelHalf, true))},
			effects: []string{"kern_virt_kaslr"}, values: []uint64{0}, kaslr: 1},
		{name: "link unknown: phys only", cfg: Config{},
			frames:  [][]byte{goodFrame(wire.TypeKernAddrs, kadr(0x2000, true, link, true))},
			effects: []string{"kern_phys_base"}, values: []uint64{0x2000}, phys: 0x2001},
		{name: "link below the kernel half", cfg: Config{TextLink: 0x1000},
			frames: [][]byte{goodFrame(wire.TypeKernAddrs, kadr(0, false, 0x1000+0x2000, true))}},
		{name: "aarch64 range", cfg: Config{TextLink: KernelHalf, MaxKASLR: 1 << 48},
			frames:  [][]byte{goodFrame(wire.TypeKernAddrs, kadr(0, false, KernelHalf+1<<40, true))},
			effects: []string{"kern_virt_kaslr"}, values: []uint64{1 << 40}, kaslr: 1<<40 + 1},
		{name: "first value wins", cfg: Config{TextLink: link},
			frames: [][]byte{goodFrame(wire.TypeKernAddrs, kadr(0, false, link+0x200000, true)),
				goodFrame(wire.TypeKernAddrs, kadr(0, false, link+0x400000, true))},
			effects: []string{"kern_virt_kaslr"}, values: []uint64{0x200000}, kaslr: 0x200001, diags: 1, drop: "kaslr_divergence"},
		{name: "same value twice", cfg: Config{TextLink: link},
			frames: [][]byte{goodFrame(wire.TypeKernAddrs, kadr(0, false, link+0x200000, true)),
				goodFrame(wire.TypeKernAddrs, kadr(0, false, link+0x200000, true))},
			effects: []string{"kern_virt_kaslr"}, values: []uint64{0x200000}, kaslr: 0x200001},
		{name: "phys base every time", cfg: Config{},
			frames: [][]byte{goodFrame(wire.TypeKernAddrs, kadr(0x1000, true, 0, false)),
				goodFrame(wire.TypeKernAddrs, kadr(0x2000, true, 0, false))},
			effects: []string{"kern_phys_base", "kern_phys_base"}, values: []uint64{0x1000, 0x2000}, phys: 0x2001},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o := feed(t, tt.cfg, tt.frames...)
			var vals []uint64
			for _, r := range o.effects {
				vals = append(vals, r.Value)
				if r.Tag != "KADR" || wire.Type(r.MsgType) != wire.TypeKernAddrs {
					t.Errorf("effect %s tag %q msg_type %#x, want KADR", r.Effect, r.Tag, r.MsgType)
				}
			}
			if d := cmp.Diff(tt.effects, o.effectNames()); d != "" {
				t.Errorf("effects (-want +got):\n%s", d)
			}
			if d := cmp.Diff(tt.values, vals); d != "" {
				t.Errorf("values (-want +got):\n%s", d)
			}
			if o.st.PhysBase != tt.phys || o.st.VirtKASLR != tt.kaslr {
				t.Errorf("PhysBase %#x VirtKASLR %#x, want %#x %#x", o.st.PhysBase, o.st.VirtKASLR, tt.phys, tt.kaslr)
			}
			if len(o.entries) != 0 {
				t.Errorf("KADR bucketed: %d entries", len(o.entries))
			}
			var div []*record.Record
			for _, d := range o.diags {
				if d.Diag == record.DiagKASLRDivergence {
					div = append(div, d)
				}
			}
			if len(div) != tt.diags {
				t.Errorf("kaslr_divergence diags = %d, want %d", len(div), tt.diags)
			}
			for _, d := range div {
				if d.Value != 0x400000 || d.Seq != 1 || !strings.Contains(d.Message, "VirtKaslrDivergence") {
					t.Errorf("divergence diag = %+v, want value 0x400000 seq 1", d)
				}
			}
			if tt.drop != "" && o.st.Dropped[tt.drop] == 0 {
				t.Errorf("Dropped = %v, want %s", o.st.Dropped, tt.drop)
			}
		})
	}
}

func TestSchedSwapNotifyIsNotOnceOnly(t *testing.T) {
	// The run loop clears the latch; later valid frames set it again.
	o := &outcome{}
	s := NewStream(Config{}, o.add)
	s.Feed(goodFrame(wire.TypeSchedSwapNotify, nil), 0)
	s.State.SchedSwap = false // the consumer's swap(false)
	s.Feed(goodFrame(wire.TypeSchedSwapNotify, nil), 0)
	if !s.State.SchedSwap || countEffect(o, record.EffectSchedSwap) != 2 {
		t.Errorf("SchedSwap %v effects %v, want true and two sched_swap", s.State.SchedSwap, o.effectNames())
	}
	if s.State.Dropped["sched_swap_nonempty"] != 0 {
		t.Errorf("Dropped = %v", s.State.Dropped)
	}
}

// step is one frame read at a time, for the watchdog tests.
type step struct {
	at    time.Duration
	frame []byte
}

func runSteps(t *testing.T, cfg Config, steps []step) *outcome {
	t.Helper()
	var times []time.Duration
	var feeds [][]byte
	for _, s := range steps {
		times = append(times, s.at)
		feeds = append(feeds, s.frame)
	}
	return feedTimed(t, cfg, times, feeds...)
}

// fx is an effect with its time-valued fields, for comparison.
type fx struct {
	Effect                                string
	StartNS, DeadlineNS, PauseNS, TotalNS uint64
}

func effectsOf(o *outcome) []fx {
	var out []fx
	for _, r := range o.effects {
		out = append(out, fx{r.Effect, r.StartNS, r.DeadlineNS, r.PauseNS, r.PauseTotalNS})
	}
	return out
}

func TestWatchdogArithmetic(t *testing.T) {
	const ms = time.Millisecond
	const B = 10 * time.Second
	scst := goodFrame(wire.TypeScenarioStart, nil)
	scpp := goodFrame(wire.TypeScenarioPause, nil)
	scrr := goodFrame(wire.TypeScenarioResume, nil)
	scen := goodFrame(wire.TypeScenarioEnd, wire.AppendScenarioEnd(nil, wire.ScenarioEnd{ElapsedMS: 5, TotalIterations: 7}))
	u := func(d time.Duration) uint64 { return uint64(d) }
	const maxD = time.Duration(math.MaxInt64)
	tests := []struct {
		name     string
		cfg      Config
		steps    []step
		want     []fx
		start    uint64 // State.ScenarioStartNS
		deadline uint64
		pause    uint64 // State.WatchdogPauseNS
		total    uint64
	}{
		{name: "start without budget stamps the start only", steps: []step{{5 * ms, scst}},
			want: []fx{{Effect: "scenario_start", StartNS: u(5 * ms)}}, start: u(5 * ms)},
		{name: "start at time 0 is clamped to 1; deadline is 0 + budget", cfg: Config{Workload: B}, steps: []step{{0, scst}},
			want:  []fx{{Effect: "scenario_start", StartNS: 1}, {Effect: "watchdog_deadline", DeadlineNS: u(B)}},
			start: 1, deadline: u(B)},
		{name: "only the first start counts; every start re-arms", cfg: Config{Workload: B},
			steps: []step{{2 * ms, scst}, {7 * ms, scst}},
			want: []fx{{Effect: "scenario_start", StartNS: u(2 * ms)}, {Effect: "watchdog_deadline", DeadlineNS: u(2*ms + B)},
				{Effect: "watchdog_deadline", DeadlineNS: u(7*ms + B)}},
			start: u(2 * ms), deadline: u(7*ms + B)},
		{name: "torn start does nothing", cfg: Config{Workload: B}, steps: []step{{2 * ms, tornFrame(wire.TypeScenarioStart, nil)}}},
		{name: "pause without budget stores 1", steps: []step{{9 * ms, scpp}},
			want: []fx{{Effect: "watchdog_pause", PauseNS: 1}}, pause: 1},
		{name: "resume without budget does nothing", steps: []step{{9 * ms, scpp}, {12 * ms, scrr}},
			want: []fx{{Effect: "watchdog_pause", PauseNS: 1}}, pause: 1},
		{name: "pause with budget stamps the time", cfg: Config{Workload: B}, steps: []step{{9 * ms, scpp}},
			want: []fx{{Effect: "watchdog_pause", PauseNS: u(9 * ms)}}, pause: u(9 * ms)},
		{name: "pause at time 0 with budget is clamped to 1", cfg: Config{Workload: B}, steps: []step{{0, scpp}},
			want: []fx{{Effect: "watchdog_pause", PauseNS: 1}}, pause: 1},
		{name: "pause and resume extend the deadline", cfg: Config{Workload: B},
			steps: []step{{1 * ms, scst}, {3 * ms, scpp}, {8 * ms, scrr}},
			want: []fx{{Effect: "scenario_start", StartNS: u(ms)}, {Effect: "watchdog_deadline", DeadlineNS: u(ms + B)},
				{Effect: "watchdog_pause", PauseNS: u(3 * ms)},
				{Effect: "watchdog_resume", PauseNS: u(5 * ms), TotalNS: u(5 * ms)},
				{Effect: "watchdog_deadline", DeadlineNS: u(6*ms + B)}},
			start: u(ms), deadline: u(6*ms + B), total: u(5 * ms)},
		{name: "pauses accumulate", cfg: Config{Workload: B},
			steps: []step{{1 * ms, scpp}, {2 * ms, scrr}, {10 * ms, scpp}, {13 * ms, scrr}},
			want: []fx{{Effect: "watchdog_pause", PauseNS: u(ms)},
				{Effect: "watchdog_resume", PauseNS: u(ms), TotalNS: u(ms)}, {Effect: "watchdog_deadline", DeadlineNS: u(ms)},
				{Effect: "watchdog_pause", PauseNS: u(10 * ms)},
				{Effect: "watchdog_resume", PauseNS: u(3 * ms), TotalNS: u(4 * ms)}, {Effect: "watchdog_deadline", DeadlineNS: u(4 * ms)}},
			deadline: u(4 * ms), total: u(4 * ms)},
		{name: "resume without a pause does nothing", cfg: Config{Workload: B}, steps: []step{{4 * ms, scrr}}},
		{name: "resume before the pause stamp: length 0, deadline clamped to 1", cfg: Config{Workload: B},
			steps: []step{{10 * ms, scpp}, {5 * ms, scrr}},
			want: []fx{{Effect: "watchdog_pause", PauseNS: u(10 * ms)}, {Effect: "watchdog_resume"},
				{Effect: "watchdog_deadline", DeadlineNS: 1}},
			deadline: 1},
		{name: "resume saturates the deadline", cfg: Config{Workload: maxD},
			steps: []step{{maxD, scst}, {1, scpp}, {1000, scrr}},
			want: []fx{{Effect: "scenario_start", StartNS: u(maxD)}, {Effect: "watchdog_deadline", DeadlineNS: 2 * u(maxD)},
				{Effect: "watchdog_pause", PauseNS: 1},
				{Effect: "watchdog_resume", PauseNS: 999, TotalNS: 999},
				{Effect: "watchdog_deadline", DeadlineNS: math.MaxUint64}},
			start: u(maxD), deadline: math.MaxUint64, total: 999},
		{name: "pause total saturates", cfg: Config{Workload: B},
			steps: []step{{1, scpp}, {maxD, scrr}, {1, scpp}, {maxD, scrr}, {1, scpp}, {maxD, scrr}},
			want: []fx{{Effect: "watchdog_pause", PauseNS: 1},
				{Effect: "watchdog_resume", PauseNS: u(maxD) - 1, TotalNS: u(maxD) - 1}, {Effect: "watchdog_deadline", DeadlineNS: u(maxD) - 1},
				{Effect: "watchdog_pause", PauseNS: 1},
				{Effect: "watchdog_resume", PauseNS: u(maxD) - 1, TotalNS: 2 * (u(maxD) - 1)}, {Effect: "watchdog_deadline", DeadlineNS: 2 * (u(maxD) - 1)},
				{Effect: "watchdog_pause", PauseNS: 1},
				{Effect: "watchdog_resume", PauseNS: u(maxD) - 1, TotalNS: math.MaxUint64}, {Effect: "watchdog_deadline", DeadlineNS: math.MaxUint64}},
			deadline: math.MaxUint64, total: math.MaxUint64},
		{name: "end re-arms to now + budget", cfg: Config{Workload: B},
			steps: []step{{1 * ms, scst}, {20 * ms, scen}},
			want: []fx{{Effect: "scenario_start", StartNS: u(ms)}, {Effect: "watchdog_deadline", DeadlineNS: u(ms + B)},
				{Effect: "watchdog_deadline", DeadlineNS: u(20*ms + B)}},
			start: u(ms), deadline: u(20*ms + B)},
		{name: "end without budget does nothing", steps: []step{{20 * ms, scen}}},
		{name: "torn end does nothing", cfg: Config{Workload: B}, steps: []step{{20 * ms, tornFrame(wire.TypeScenarioEnd, nil)}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o := runSteps(t, tt.cfg, tt.steps)
			if d := cmp.Diff(tt.want, effectsOf(o)); d != "" {
				t.Errorf("effects (-want +got):\n%s", d)
			}
			st := o.st
			if st.ScenarioStartNS != tt.start || st.DeadlineNS != tt.deadline || st.WatchdogPauseNS != tt.pause || st.PauseCumulativeNS != tt.total {
				t.Errorf("start %d deadline %d pause %d total %d, want %d %d %d %d", st.ScenarioStartNS, st.DeadlineNS,
					st.WatchdogPauseNS, st.PauseCumulativeNS, tt.start, tt.deadline, tt.pause, tt.total)
			}
			// SCST, SCPP, SCRR and SCEN are always bucketed, crc_ok as read.
			if len(o.entries) != len(tt.steps) {
				t.Errorf("entries = %d, want %d (always bucketed)", len(o.entries), len(tt.steps))
			}
			for i, e := range o.entries {
				if want := bytes.Equal(tt.steps[i].frame[8:12], goodFrame(wire.Type(e.MsgType), e.Payload)[8:12]); e.CRCOK != want {
					t.Errorf("entry %d crc_ok = %v, want %v", i, e.CRCOK, want)
				}
			}
		})
	}
}

func TestStimulusCurrentStep(t *testing.T) {
	tests := []struct {
		name  string
		frame []byte
		step  uint16 // State.CurrentStep afterwards, from 7
		fx    bool
		crcOK bool
	}{
		{"24 bytes", goodFrame(wire.TypeStimulus, stim(3)), 3, true, true},
		{"baseline step 0", goodFrame(wire.TypeStimulus, stim(0)), 0, true, true},
		{"23 bytes", goodFrame(wire.TypeStimulus, stim(3)[:23]), 7, false, true},
		{"25 bytes", goodFrame(wire.TypeStimulus, append(stim(3), 0)), 7, false, true},
		{"torn", tornFrame(wire.TypeStimulus, stim(3)), 7, false, false},
		{"step end does not move the step", goodFrame(wire.TypeStepEnd, stim(3)), 7, false, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o := feed(t, Config{}, goodFrame(wire.TypeStimulus, stim(7)), tt.frame)
			if o.st.CurrentStep != tt.step {
				t.Errorf("CurrentStep = %d, want %d", o.st.CurrentStep, tt.step)
			}
			var steps []uint16
			for _, r := range o.effects {
				steps = append(steps, r.Step)
			}
			want := []uint16{7}
			if tt.fx {
				want = append(want, tt.step)
			}
			if !slices.Equal(steps, want) {
				t.Errorf("current_step effects = %v, want %v", steps, want)
			}
			if len(o.entries) != 2 || o.entries[1].CRCOK != tt.crcOK {
				t.Errorf("entries = %d (crc_ok of the second %v), want 2 (%v)", len(o.entries), o.entries[1].CRCOK, tt.crcOK)
			}
		})
	}
}

func TestKernelOpRequest(t *testing.T) {
	long := strings.Repeat("a", 255) + "é" + "tail" // é straddles byte 256
	req := func(tag string) []byte {
		p, err := payload.MarshalKernelOpRequest(&payload.KernelOpRequest{RequestID: 9, Mode: payload.ModeHot,
			Direction: payload.DirRead, Tag: tag, Entries: []payload.KernelOpEntry{{
				Target: payload.Target{Kind: payload.TargetSymbol, Symbol: "jiffies"}, Value: payload.Value{Kind: payload.ValueU64}}}})
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
	tests := []struct {
		name  string
		frame []byte
		tag   string
		ok    bool
		drop  string
	}{
		{"valid", goodFrame(wire.TypeKernelOpRequest, req("probe")), "probe", true, ""},
		{"tag cut on a UTF-8 boundary", goodFrame(wire.TypeKernelOpRequest, req(long)), strings.Repeat("a", 255), true, ""},
		{"torn", tornFrame(wire.TypeKernelOpRequest, req("probe")), "", false, "kernel_op_request_bad_crc"},
		{"undecodable", goodFrame(wire.TypeKernelOpRequest, []byte("not msgpack")), "", false, "kernel_op_request_undecodable"},
		// ktstr's postcard refuses a String that is not UTF-8: no
		// request, no reply.
		{"tag not UTF-8", goodFrame(wire.TypeKernelOpRequest, req("probe\xff\x1b[2J")), "", false, "kernel_op_request_undecodable"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o := feed(t, Config{}, tt.frame)
			if len(o.entries) != 0 {
				t.Errorf("KORQ bucketed")
			}
			if !tt.ok {
				if len(o.effects) != 0 || o.st.KernelOpRequests != 0 || o.st.Dropped[tt.drop] != 1 {
					t.Errorf("effects %v pending %d dropped %v, want none and %s", o.effectNames(), o.st.KernelOpRequests, o.st.Dropped, tt.drop)
				}
				return
			}
			if len(o.effects) != 1 || o.st.KernelOpRequests != 1 {
				t.Fatalf("effects %v pending %d, want one", o.effectNames(), o.st.KernelOpRequests)
			}
			e := o.effects[0]
			if e.Effect != record.EffectKernelOpRequest || e.RequestID != 9 || e.ReqTag != tt.tag || !bytes.Equal(e.Request, tt.frame[wire.HeaderSize:]) {
				t.Errorf("effect = %+v, want request_id 9 tag %q and the payload as received", e, tt.tag)
			}
		})
	}
}

func TestSnapshotRequestDecodeGate(t *testing.T) {
	tests := []struct {
		name string
		p    []byte
	}{
		{"request_id 0", snapReq(0, wire.SnapshotCapture, "x")},
		{"kind 0", snapReq(5, wire.SnapshotNone, "x")},
		{"71 bytes", snapReq(5, wire.SnapshotCapture, "x")[:71]},
		{"73 bytes", append(snapReq(5, wire.SnapshotCapture, "x"), 0)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o := feed(t, Config{}, goodFrame(wire.TypeSnapshotRequest, tt.p))
			if len(o.recs) != 0 || o.st.SnapshotRequests != 0 || o.st.Dropped["snapshot_request_undecodable"] != 1 {
				t.Errorf("records %d pending %d dropped %v, want 0 0 snapshot_request_undecodable", len(o.recs), o.st.SnapshotRequests, o.st.Dropped)
			}
		})
	}
	o := feed(t, Config{}, goodFrame(wire.TypeSnapshotRequest, snapReq(5, wire.SnapshotWatch, "jiffies")))
	if len(o.effects) != 1 || o.effects[0].ReqKind != wire.SnapshotWatch || o.effects[0].ReqTag != "jiffies" {
		t.Errorf("watch request effects = %+v", o.effects)
	}
}

// TestAssemblerDiagnostics checks that the assembler's anomalies become
// diagnostic records in stream order, numbered like the frames.
func TestAssemblerDiagnostics(t *testing.T) {
	padded := goodFrame(wire.TypeStdout, []byte("x"))
	padded[12] = 7
	over := wire.AppendHeader(nil, wire.Header{Type: wire.TypeStdout, Length: wire.MaxPayload + 1})
	over = append(over, make([]byte, wire.MaxPayload+1)...)
	tests := []struct {
		name  string
		feeds [][]byte
		want  []string // kind/diag/effect, seq
	}{
		{"crc mismatch before its entry", [][]byte{tornFrame(wire.TypeStdout, []byte("x"))},
			[]string{"diag crc_mismatch 0 SOUT off=0", "entry SOUT 0"}},
		{"pad warning, frame still delivered", [][]byte{goodFrame(wire.TypeExit, []byte("abcd")), padded},
			[]string{"entry EXIT 0", "diag pad_nonzero 1 SOUT off=20", "entry SOUT 1"}},
		{"truncated tail with a header", [][]byte{goodFrame(wire.TypeExit, []byte("abcd")), goodFrame(wire.TypeStdout, []byte("hello"))[:18]},
			[]string{"entry EXIT 0", "diag truncated_tail 1 SOUT off=20"}},
		{"truncated tail without a header", [][]byte{goodFrame(wire.TypeExit, []byte("abcd"))[:7]},
			[]string{"diag truncated_tail 0  off=0"}},
		{"oversized drops the feed's rest", [][]byte{cat(goodFrame(wire.TypeExit, []byte("abcd")), over, goodFrame(wire.TypeStdout, nil))},
			[]string{"entry EXIT 0", "diag oversized 1 SOUT off=20"}},
		{"residual overflow", [][]byte{wire.AppendHeader(nil, wire.Header{Type: wire.TypeStdout, Length: 0xFFFFFFFF}),
			make([]byte, 2*wire.MaxPayload)},
			[]string{"diag residual_overflow 0  off=0"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o := feed(t, Config{}, tt.feeds...)
			var got []string
			for _, r := range o.recs {
				switch r.Kind {
				case record.KindEntry:
					got = append(got, strings.Join([]string{"entry", r.Tag, itoa(r.Seq)}, " "))
				case record.KindDiag:
					got = append(got, strings.Join([]string{"diag", r.Diag, itoa(r.Seq), r.Tag, "off=" + itoa(r.Offset)}, " "))
				}
				if r.Kind == record.KindDiag && r.Message == "" {
					t.Errorf("diag %s has no message", r.Diag)
				}
			}
			if d := cmp.Diff(tt.want, got); d != "" {
				t.Errorf("records (-want +got):\n%s", d)
			}
		})
	}
}

func itoa(v int64) string { return strconv.FormatInt(v, 10) }
