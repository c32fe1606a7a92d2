// Package verdicttest builds record streams by hand for the tests of
// ktstr-verdict and of the example filters: a Stream is a list of
// records as ktstr-dispatch would write them, and Scenarios are named
// streams for every verdict cause.
package verdicttest

import (
	"bytes"
	"sort"

	"github.com/ktstr-go/ktstr/lib/record"
	"github.com/ktstr-go/ktstr/lib/wire"
	"github.com/ktstr-go/ktstr/lib/wire/payload"
)

// Stream is a hand-built record stream. Methods append one record and
// return the stream, so calls chain.
type Stream struct {
	recs []*record.Record
	seq  int64
}

// New returns an empty stream.
func New() *Stream { return &Stream{} }

func (s *Stream) add(r *record.Record) *Stream {
	r.Seq = s.seq
	r.AtNS = 1000 * (s.seq + 1)
	s.seq++
	s.recs = append(s.recs, r)
	return s
}

// Entry appends a CRC-valid entry of type t.
func (s *Stream) Entry(t wire.Type, p []byte) *Stream {
	return s.add(&record.Record{Kind: record.KindEntry, Tag: t.String(), MsgType: uint32(t), CRCOK: true, Payload: p})
}

// BadEntry appends an entry whose CRC failed.
func (s *Stream) BadEntry(t wire.Type, p []byte) *Stream {
	return s.add(&record.Record{Kind: record.KindEntry, Tag: t.String(), MsgType: uint32(t), CRCOK: false, Payload: p})
}

// Result appends a TEST entry with r.
func (s *Stream) Result(r *payload.AssertResult) *Stream {
	p, err := payload.MarshalAssertResult(r)
	if err != nil {
		panic(err)
	}
	return s.Entry(wire.TypeTestResult, p)
}

// Outcomes appends a TEST entry with these outcomes and small stats.
func (s *Stream) Outcomes(os ...payload.Outcome) *Stream {
	return s.Result(&payload.AssertResult{Scenario: "steady", Outcomes: os, Stats: Stats()})
}

// Stats are plausible scenario stats for two cgroups.
func Stats() payload.ScenarioStats {
	return payload.ScenarioStats{
		Workers: 4, CPUs: 2, Migrations: 3, WorstSpreadPct: 2.5, WorstGapMS: 51.5, TotalIterations: 100000,
		Cgroups: []payload.CgroupStats{
			{Name: "cg0", Workers: 2, CPUs: 2, Iterations: 50000, Migrations: 1, RunNS: 900_000_000, WaitNS: 100_000_000, SpreadPct: 2.5, MaxGapMS: 51.5},
			{Name: "cg1", Workers: 2, CPUs: 2, Iterations: 50000, Migrations: 2, RunNS: 880_000_000, WaitNS: 120_000_000, SpreadPct: 1.5, MaxGapMS: 20.25},
		},
	}
}

// Outcome constructors.
func Pass() payload.Outcome { return payload.Outcome{Verdict: payload.Pass} }
func Fail(kind, msg string) payload.Outcome {
	return payload.Outcome{Verdict: payload.Fail, Kind: kind, Message: msg}
}
func Inconclusive(kind, msg string) payload.Outcome {
	return payload.Outcome{Verdict: payload.Inconclusive, Kind: kind, Message: msg}
}
func Skip(msg string) payload.Outcome {
	return payload.Outcome{Verdict: payload.Skip, Kind: payload.KindSkip, Message: msg}
}

// Exit appends an EXIT entry.
func (s *Stream) Exit(code int32) *Stream {
	return s.Entry(wire.TypeExit, wire.AppendExitCode(nil, code))
}

// SchedExit appends an SCDX entry and its kill effect, as dispatch does.
func (s *Stream) SchedExit(code int32) *Stream {
	s.add(&record.Record{Kind: record.KindEffect, Effect: record.EffectKill, Tag: wire.TypeSchedExit.String(),
		MsgType: uint32(wire.TypeSchedExit), Count: 1, ExitCode: code, HasExitCode: true})
	return s.Entry(wire.TypeSchedExit, wire.AppendExitCode(nil, code))
}

// Crash appends a CRSH entry.
func (s *Stream) Crash(text string) *Stream { return s.Entry(wire.TypeCrash, []byte(text)) }

// Life appends a LIFE entry.
func (s *Stream) Life(p wire.Phase, reason string) *Stream {
	return s.Entry(wire.TypeLifecycle, wire.AppendLifecycle(nil, wire.Lifecycle{Phase: p, Reason: reason}))
}

// Boot appends the LIFE phases of a guest that reached its payload, and
// a scenario start.
func (s *Stream) Boot() *Stream {
	return s.Life(wire.PhaseInitStarted, "").Life(wire.PhasePayloadStarting, "").Entry(wire.TypeScenarioStart, nil)
}

// Step appends a STIM (end false) or STEN (end true) entry.
func (s *Stream) Step(end bool, index uint16, ms uint32, workers uint16, iterations uint64) *Stream {
	t := wire.TypeStimulus
	if end {
		t = wire.TypeStepEnd
	}
	return s.Entry(t, wire.AppendStimulus(nil, wire.Stimulus{ElapsedMS: ms, StepIndex: index, OpCount: 1, OpKinds: 1,
		CgroupCount: 2, WorkerCount: workers, TotalIterations: iterations}))
}

// ScenarioEnd appends an SCEN entry.
func (s *Stream) ScenarioEnd(ms, iterations uint64) *Stream {
	return s.Entry(wire.TypeScenarioEnd, wire.AppendScenarioEnd(nil, wire.ScenarioEnd{ElapsedMS: ms, TotalIterations: iterations}))
}

// SchedLog appends an SCLG entry.
func (s *Stream) SchedLog(text string) *Stream { return s.Entry(wire.TypeSchedLog, []byte(text)) }

// Dmesg appends a DMSG entry.
func (s *Stream) Dmesg(text string) *Stream { return s.Entry(wire.TypeDmesg, []byte(text)) }

// Stdout appends a SOUT entry.
func (s *Stream) Stdout(text string) *Stream { return s.Entry(wire.TypeStdout, []byte(text)) }

// Loss appends a LOSS entry.
func (s *Stream) Loss(frames, bytes uint64) *Stream {
	return s.Entry(wire.TypeLoss, wire.AppendLoss(nil, wire.Loss{Frames: frames, Bytes: bytes}))
}

// End appends a VEND entry.
func (s *Stream) End(reason wire.EndReason, bootExit int32, elapsedNS uint64) *Stream {
	return s.Entry(wire.TypeVMEnd, wire.AppendVMEnd(nil, wire.VMEnd{Reason: reason, ExitCode: bootExit, ElapsedNS: elapsedNS}))
}

// Diag appends a diagnostic record.
func (s *Stream) Diag(name string) *Stream {
	return s.add(&record.Record{Kind: record.KindDiag, Diag: name})
}

// Finish appends what a clean run ends with: EXIT 0 and VEND poweroff.
func (s *Stream) Finish() *Stream {
	return s.Exit(0).End(wire.EndPoweroff, 0, 1_234_000_000)
}

// Records returns the records.
func (s *Stream) Records() []*record.Record { return s.recs }

// Bytes encodes the stream, as JSON lines or msgpack.
func (s *Stream) Bytes(jsonLines bool) []byte {
	var b bytes.Buffer
	w := record.NewWriter(&b, jsonLines)
	for _, r := range s.recs {
		c := *r
		if err := w.Write(&c); err != nil {
			panic(err)
		}
	}
	if err := w.Close(); err != nil {
		panic(err)
	}
	return b.Bytes()
}

// Scenario is a named stream with the console files that go with it.
type Scenario struct {
	Stream   *Stream
	Consoles map[string]string // file name -> content
}

// Base is a passing run's records before its result: boot, two steps
// with a baseline, the scheduler log and a quiet kernel log.
func Base() *Stream {
	return New().Boot().
		SchedLog("scx_demo: starting\n"+"===SCHED_OUTPUT_START===\n"+"scx_demo: attached\n").
		Dmesg("[    0.512000] sched_ext: BPF scheduler \"demo\" enabled").
		Step(false, 0, 0, 4, 0).Step(true, 0, 500, 4, 20000).
		Step(false, 1, 500, 4, 20000).Step(true, 1, 1500, 4, 60000).
		Step(false, 2, 1500, 4, 60000).
		ScenarioEnd(2000, 100000)
}

// Scenarios returns the named streams: one for every cause and a few
// combinations. The golden files are named after them.
func Scenarios() map[string]Scenario {
	const panicConsole = "[    1.100000] ktstr: agent running\n" +
		"PANIC: runtime error: index out of range [3] with length 3\n" +
		"  goroutine 1 [running]:\n"
	return map[string]Scenario{
		"pass": {Stream: Base().Outcomes(Pass()).Finish()},
		"skip": {Stream: Base().Outcomes(Skip("needs 4 NUMA nodes")).Finish()},
		"assertion": {Stream: Base().Outcomes(Pass(), Fail(payload.KindStarved, "cg1 worker 3 starved for 2400ms"),
			Fail(payload.KindUnfair, "spread 41% > 25%")).Finish()},
		"inconclusive": {Stream: Base().Outcomes(Pass(), Inconclusive(payload.KindBenchmark, "too few samples (3 < 10)")).Finish()},
		// unfair is the timing failure host contention can cause alone.
		"unfair": {Stream: Base().Outcomes(Pass(), Fail(payload.KindUnfair, "cgroup steady: on-CPU spread 36.6% exceeds 35%")).Finish()},
		"crash": {Stream: Base().Crash("runtime error: index out of range [3] with length 3\ngoroutine 1 [running]:").
			End(wire.EndCrash, 1, 900_000_000),
			Consoles: map[string]string{"com2.log": panicConsole}},
		"console_panic": {Stream: New().Boot().End(wire.EndCrash, 1, 900_000_000),
			Consoles: map[string]string{"com2.log": panicConsole}},
		"timeout": {Stream: New().Boot().Step(false, 1, 0, 4, 0).End(wire.EndTimeout, 1, 30_000_000_000)},
		"sched_died": {Stream: Base().
			SchedLog("scx_demo: dispatch failed\nEXIT: runtime error (scx_bpf_error)\n").
			Dmesg("[    1.700000] sched_ext: BPF scheduler \"demo\" disabled (scx_bpf_error)\n"+
				"[    1.700001] sched_ext: demo: dispatch: invalid DSQ 0x1234\n").
			SchedExit(-22).End(wire.EndKilled, 1, 1_800_000_000)},
		"no_result": {Stream: New().Life(wire.PhaseInitStarted, "").Exit(1).End(wire.EndPoweroff, 0, 700_000_000)},
		"splat": {Stream: Base().
			Dmesg("[    1.200000] ------------[ cut here ]------------\n" +
				"[    1.200001] WARNING: CPU: 1 PID: 0 at kernel/sched/ext.c:1234 scx_dispatch+0x42/0x80\n" +
				"[    1.300000] rcu: INFO: rcu_preempt detected stalls on CPUs/tasks:").
			Outcomes(Pass()).Finish()},
		"infra":       {Stream: Base().Outcomes(Pass()).Loss(3, 1536).Diag(record.DiagTruncatedTail).Finish()},
		"lost_result": {Stream: New().Boot().Loss(1, 4096).End(wire.EndPoweroff, 0, 800_000_000)},
	}
}

// Names returns the scenario names, sorted.
func Names() []string {
	var n []string
	for k := range Scenarios() {
		n = append(n, k)
	}
	sort.Strings(n)
	return n
}
