package verdict

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/ktstr-go/ktstr/lib/record"
	"github.com/ktstr-go/ktstr/lib/wire"
	"github.com/ktstr-go/ktstr/lib/wire/payload"
)

// Each part of the fold, alone: fed the entries it reads, asked for what
// it answers.

// collect returns an add func and the findings it collected.
func collect() (func(Finding), *[]Finding) {
	var fs []Finding
	return func(f Finding) { fs = append(fs, f) }, &fs
}

func findingLines(fs []Finding) string {
	var out []string
	for _, f := range fs {
		out = append(out, string(f.Status)+" "+f.Cause+" "+f.Message)
	}
	return strings.Join(out, "\n")
}

func stim(index uint16, ms uint32, iterations uint64) []byte {
	return wire.AppendStimulus(nil, wire.Stimulus{StepIndex: index, ElapsedMS: ms, TotalIterations: iterations})
}

func TestStepFold(t *testing.T) {
	var s stepFold
	s.entry(wire.TypeScenarioStart, nil)
	s.entry(wire.TypeStimulus, stim(0, 0, 0))
	s.entry(wire.TypeStimulus, stim(1, 1000, 500))
	s.entry(wire.TypeStepEnd, stim(1, 1500, 1500))
	s.entry(wire.TypeStimulus, stim(2, 2000, 2000))
	s.entry(wire.TypeScenarioEnd, wire.AppendScenarioEnd(nil, wire.ScenarioEnd{ElapsedMS: 4000, TotalIterations: 3000}))
	var got []string
	for _, st := range s.timeline() {
		got = append(got, st.EndFrom)
	}
	if d := cmp.Diff([]string{"next_step", "step_end", "scenario_end"}, got); d != "" {
		t.Errorf("steps end from (-want +got):\n%s", d)
	}
	if tl := s.timeline(); tl[1].Rate != 2000 || tl[2].Rate != 500 {
		t.Errorf("rates %v and %v, want 2000 and 500 iterations/s", tl[1].Rate, tl[2].Rate)
	}
	if s.scen.Starts != 1 {
		t.Errorf("starts = %d", s.scen.Starts)
	}

	// Past maxSteps: counted, the first left out closes the last kept,
	// and an STEN closes nothing.
	var m stepFold
	for i := range maxSteps + 3 {
		m.entry(wire.TypeStimulus, stim(uint16(i), uint32(i)*10, uint64(i)))
	}
	m.entry(wire.TypeStepEnd, stim(maxSteps-1, 99999, 0))
	tl := m.timeline()
	if len(tl) != maxSteps || m.out != 3 || tl[maxSteps-1].EndFrom != "next_step" || *tl[maxSteps-1].EndMS != uint64(maxSteps*10) {
		t.Errorf("%d steps, %d out, last ends %s", len(tl), m.out, tl[maxSteps-1].EndFrom)
	}
}

func TestEndFold(t *testing.T) {
	nonce := wire.Nonce{1, 2, 3}
	other := wire.Nonce{9}
	e := newEndFold()
	if !e.first(wire.TypeHello, wire.AppendHello(nil, nonce)) {
		t.Fatal("first HELO not taken")
	}
	e.anyEntry(wire.TypeStdout, true, nil)
	e.entry(wire.TypeLoss, wire.AppendLoss(nil, wire.Loss{Frames: 5, Bytes: 500, Nonce: other})) // forged
	e.entry(wire.TypeLoss, wire.AppendLoss(nil, wire.Loss{Frames: 2, Bytes: 200, Nonce: nonce}))
	e.entry(wire.TypeVMEnd, wire.AppendVMEnd(nil, wire.VMEnd{Reason: wire.EndTimeout, Nonce: nonce}))
	e.anyEntry(wire.TypeStdout, true, nil) // a frame after the VEND: that one was forged
	e.entry(wire.TypeVMEnd, wire.AppendVMEnd(nil, wire.VMEnd{Reason: wire.EndTimeout, Nonce: nonce}))
	e.diags[record.DiagTruncatedTail]++
	add, fs := collect()
	if !e.timedOut(false, nil, add) || !e.infra(0, true, add) {
		t.Fatal("no timeout or no infrastructure finding")
	}
	want := strings.Join([]string{
		"FAIL timeout no result arrived before the watchdog deadline",
		"ERROR infrastructure the guest dropped 2 frames (200 bytes): the ring was full",
		"ERROR infrastructure the frame stream ended inside a frame (truncated tail)",
		"ERROR infrastructure 1 host frame (HELO, LOSS, VEND) without the run's nonce, which the stream's HELO gave: forged by the guest and ignored",
		"ERROR infrastructure 1 VM end record not at the end of the stream, where ktstr-drain writes it: forged by the guest and ignored",
	}, "\n")
	if d := cmp.Diff(want, findingLines(*fs)); d != "" {
		t.Errorf("findings (-want +got):\n%s", d)
	}
	if clean := newEndFold(); clean.infra(0, false, add) {
		t.Errorf("a clean end gives an infrastructure finding")
	}
}

func TestSchedFold(t *testing.T) {
	for _, tc := range []struct {
		name string
		feed func(*schedFold)
		want string // "" no finding
	}{
		{"nothing", func(*schedFold) {}, ""},
		{"SCDX", func(s *schedFold) {
			s.exit(wire.TypeSchedExit, wire.AppendExitCode(nil, -22))
			s.exit(wire.TypeSchedExit, wire.AppendExitCode(nil, 1))
		}, "FAIL scheduler_died scheduler exited with code -22 (EINVAL) (2 SCDX frames)"},
		{"kill without a code", func(s *schedFold) { s.killEffect(&record.Record{Kind: record.KindEffect, Effect: record.EffectKill}) },
			"FAIL scheduler_died scheduler exited with no exit code (SCDX payload not 4 bytes)"},
		{"kernel disabled it", func(s *schedFold) {
			s.kernelLine("dmesg", `sched_ext: BPF scheduler "simple" disabled (runtime error)`)
			s.kernelLine("dmesg", `sched_ext: simple: stall on CPU 1`)
		}, `FAIL scheduler_died the kernel disabled scheduler "simple": runtime error: stall on CPU 1`},
		{"benign disable", func(s *schedFold) {
			s.kernelLine("dmesg", `sched_ext: BPF scheduler "simple" disabled (unregistered from user space)`)
		}, ""},
		{"EXIT line in its log", func(s *schedFold) {
			s.exit(wire.TypeSchedExit, wire.AppendExitCode(nil, 1))
			s.log.Write([]byte("[    1.000000] stderr: EXIT: scx_bpf_error (oops)\n"))
			s.finish()
		}, "FAIL scheduler_died scheduler exited with code 1: EXIT: scx_bpf_error (oops)"},
	} {
		s := newSchedFold()
		tc.feed(&s)
		add, fs := collect()
		died := s.died(map[wire.Phase]string{}, add)
		if got := findingLines(*fs); got != tc.want || died != (tc.want != "") {
			t.Errorf("%s: died %v, findings %q, want %q", tc.name, died, got, tc.want)
		}
	}
	s := newSchedFold()
	s.out.Write([]byte("the guest's output\n"))
	if s.schedLogOf() != s.out {
		t.Errorf("without SCLG the scheduler's log is not the guest's output")
	}
	s.log.Write([]byte("x\n"))
	if s.schedLogOf() != s.log {
		t.Errorf("with SCLG the scheduler's log is not SCLG")
	}
}

func TestSplatFold(t *testing.T) {
	s := newSplatFold()
	splats := DefaultSplats()
	for range 3 {
		s.kernelLine(splats, "dmesg", "BUG: KASAN: use-after-free in f")
	}
	for i := range maxSplatFindings + 2 {
		s.kernelLine(splats, "dmesg", "WARNING: CPU: 0 PID: 1 at x.c:"+string(rune('a'+i))+" f")
	}
	s.kernelLine(splats, "COM1", "Kernel panic - not syncing: oops")
	add, fs := collect()
	s.findings(StatusFail, add)
	if len(*fs) != maxSplatFindings+1 || s.count != int64(3+maxSplatFindings+2) || s.more != 3 {
		t.Errorf("%d findings, %d splats, %d more; want %d, %d, 3", len(*fs), s.count, s.more, maxSplatFindings+1, 3+maxSplatFindings+2)
	}
	if last := (*fs)[len(*fs)-1]; last.Kind != "more" || last.Message != "and 3 more splat lines not listed" {
		t.Errorf("last finding %+v", last)
	}
	s.panicLine("output", "PANIC: worker died")
	s.crashEntry([]byte("\n  first line\nsecond"))
	add, fs = collect()
	if !s.crash(&wire.VMEnd{Reason: wire.EndCrash}, add) {
		t.Fatal("no crash finding")
	}
	want := Finding{Status: StatusFail, Cause: CauseCrash, Message: "first line", Source: "CRSH",
		Lines: []string{"output: worker died", "COM1: Kernel panic - not syncing: oops", "VEND: the VM reset before the guest agent finished"}}
	if d := cmp.Diff([]Finding{want}, *fs); d != "" {
		t.Errorf("crash finding (-want +got):\n%s", d)
	}
}

func TestResultFold(t *testing.T) {
	r := newResultFold()
	add, fs := collect()
	if res := r.result(add); res != nil || len(*fs) != 0 || r.stage(false) != "init script never started (kernel or mount failure)" {
		t.Errorf("no TEST: %v, %v, %q", res, *fs, r.stage(false))
	}
	r.entry(wire.TypeLifecycle, wire.AppendLifecycle(nil, wire.Lifecycle{Phase: wire.PhasePayloadStarting}))
	r.entry(wire.TypeTestResult, []byte{0xc1})
	if res := r.result(add); res != nil || !strings.Contains(findingLines(*fs), "FAIL no_result the test result does not decode") {
		t.Errorf("bad TEST: %v, %s", res, findingLines(*fs))
	}
	if r.stage(false) != "payload started but produced no test result" {
		t.Errorf("stage %q", r.stage(false))
	}
	p, _ := payload.MarshalAssertResult(&payload.AssertResult{Scenario: "s\x1b[31m", Outcomes: []payload.Outcome{
		{Verdict: payload.Fail, Kind: payload.KindInfra, Message: "no machine"}, {Verdict: payload.Skip, Message: "later"}}})
	r.entry(wire.TypeTestResult, p) // the last one counts
	add, fs = collect()
	res := r.result(add)
	if res == nil || strings.ContainsRune(res.Scenario, 0x1b) {
		t.Fatalf("result %+v: not decoded or not sanitised", res)
	}
	if got := findingLines(*fs); got != "ERROR infrastructure no machine\nSKIP skip later" {
		t.Errorf("outcome findings %q", got)
	}
}
