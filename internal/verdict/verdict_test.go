package verdict_test

import (
	"bytes"
	"errors"
	"fmt"
	"math"
	"strings"
	"testing"

	"github.com/ktstr-go/ktstr/internal/dispatch"
	"github.com/ktstr-go/ktstr/internal/verdict"
	vt "github.com/ktstr-go/ktstr/internal/verdict/verdicttest"
	"github.com/ktstr-go/ktstr/lib/record"
	"github.com/ktstr-go/ktstr/lib/wire"
	"github.com/ktstr-go/ktstr/lib/wire/payload"
)

// fold folds s's records directly, with cfg and optional consoles
// ("name", "content" pairs).
func fold(s *vt.Stream, cfg verdict.Config, consoles ...string) verdict.Verdict {
	f := verdict.NewFolder("t", cfg)
	for _, r := range s.Records() {
		f.Add(r)
	}
	for i := 0; i+1 < len(consoles); i += 2 {
		f.AddConsole(consoles[i], strings.NewReader(consoles[i+1]))
	}
	return f.Verdict()
}

// want describes one expected finding; empty fields match anything.
type want struct {
	status  verdict.Status
	cause   string
	kind    string
	source  string
	message string // substring
}

func (w want) matches(f verdict.Finding) bool {
	return (w.status == "" || f.Status == w.status) && f.Cause == w.cause &&
		(w.kind == "" || f.Kind == w.kind) && (w.source == "" || f.Source == w.source) &&
		strings.Contains(f.Message, w.message)
}

func findingsString(fs []verdict.Finding) string {
	var b strings.Builder
	for _, f := range fs {
		fmt.Fprintf(&b, "\n  %s %s/%s (%s): %s %q", f.Status, f.Cause, f.Kind, f.Source, f.Message, f.Lines)
	}
	return b.String()
}

func TestCauses(t *testing.T) {
	def := verdict.DefaultConfig()
	tests := []struct {
		name     string
		stream   *vt.Stream
		consoles []string
		cfg      *verdict.Config
		status   verdict.Status
		cause    string // the headline cause, "" for a pass
		findings []want // every one must be present
		absent   []string
	}{
		{name: "pass", stream: vt.Base().Outcomes(vt.Pass()).Finish(), status: verdict.StatusPass, absent: []string{verdict.CauseNoResult}},
		{name: "empty outcomes pass", stream: vt.New().Outcomes().Finish(), status: verdict.StatusPass},
		{name: "skip", stream: vt.Base().Outcomes(vt.Skip("no NUMA")).Finish(), status: verdict.StatusSkip, cause: verdict.CauseSkip,
			findings: []want{{verdict.StatusSkip, verdict.CauseSkip, payload.KindSkip, "TEST", "no NUMA"}}},
		{name: "skip and pass is pass", stream: vt.Base().Outcomes(vt.Skip("one check n/a"), vt.Pass()).Finish(), status: verdict.StatusPass},
		{name: "assertion", stream: vt.Base().Outcomes(vt.Fail(payload.KindStarved, "worker starved 2s")).Finish(),
			status: verdict.StatusFail, cause: verdict.CauseAssertion,
			findings: []want{{verdict.StatusFail, verdict.CauseAssertion, payload.KindStarved, "TEST", "worker starved 2s"}}},
		{name: "inconclusive", stream: vt.Base().Outcomes(vt.Inconclusive(payload.KindBenchmark, "3 samples")).Finish(),
			status: verdict.StatusInconclusive, cause: verdict.CauseInconclusive,
			findings: []want{{verdict.StatusInconclusive, verdict.CauseInconclusive, payload.KindBenchmark, "TEST", "3 samples"}}},
		{name: "test last wins: fail then pass", stream: vt.New().Outcomes(vt.Fail("x", "first")).Outcomes(vt.Pass()).Finish(),
			status: verdict.StatusPass},
		{name: "test last wins: pass then fail", stream: vt.New().Outcomes(vt.Pass()).Outcomes(vt.Fail("x", "second")).Finish(),
			status: verdict.StatusFail, cause: verdict.CauseAssertion, findings: []want{{message: "second", cause: verdict.CauseAssertion}}},
		{name: "test with bad CRC does not count", stream: func() *vt.Stream {
			p, _ := payload.MarshalAssertResult(&payload.AssertResult{Outcomes: []payload.Outcome{vt.Pass()}})
			return vt.New().Outcomes(vt.Fail("x", "kept")).BadEntry(wire.TypeTestResult, p).Finish()
		}(), status: verdict.StatusFail, cause: verdict.CauseAssertion,
			findings: []want{{cause: verdict.CauseAssertion, message: "kept"}, {cause: verdict.CauseInfra, message: "1 frame failed the CRC check"}}},
		{name: "test that does not decode", stream: vt.New().Entry(wire.TypeTestResult, []byte{0xc1}).Finish(),
			status: verdict.StatusFail, cause: verdict.CauseNoResult,
			findings: []want{{verdict.StatusFail, verdict.CauseNoResult, "", "TEST", "does not decode"}}},
		{name: "crash from CRSH", stream: vt.New().Boot().Crash("kernel BUG at mm/slub.c:42\nmore").End(wire.EndCrash, 1, 1),
			status: verdict.StatusFail, cause: verdict.CauseCrash,
			findings: []want{{verdict.StatusFail, verdict.CauseCrash, "", "CRSH", "kernel BUG at mm/slub.c:42"}},
			absent:   []string{verdict.CauseNoResult}},
		{name: "crash with bad CRC does not count", stream: vt.New().Boot().BadEntry(wire.TypeCrash, []byte("torn")).Outcomes(vt.Pass()).Finish(),
			status: verdict.StatusInfra, cause: verdict.CauseInfra, absent: []string{verdict.CauseCrash}},
		{name: "crash from PANIC: on COM2", stream: vt.New().Boot().End(wire.EndCrash, 1, 1),
			consoles: []string{"com2.log", "noise\n  PANIC:   index out of range\n  backtrace\n"},
			status:   verdict.StatusFail, cause: verdict.CauseCrash,
			findings: []want{{verdict.StatusFail, verdict.CauseCrash, "", "com2.log", "index out of range"}}},
		{name: "crash from PANIC: in guest output", stream: vt.New().Boot().Stdout("PANIC: agent died\n").Outcomes(vt.Pass()).Finish(),
			status: verdict.StatusFail, cause: verdict.CauseCrash, findings: []want{{cause: verdict.CauseCrash, source: "output", message: "agent died"}}},
		{name: "crash from kernel panic on console", stream: vt.New().Boot().End(wire.EndCrash, 1, 1),
			consoles: []string{"console.log", "[    2.000000] Kernel panic - not syncing: Attempted to kill init! exitcode=0x00000009\n"},
			status:   verdict.StatusFail, cause: verdict.CauseCrash,
			findings: []want{{cause: verdict.CauseCrash, source: "console.log", message: "Kernel panic - not syncing: Attempted to kill init!"}}},
		{name: "crash from VEND only", stream: vt.New().Boot().End(wire.EndCrash, 1, 1), status: verdict.StatusFail, cause: verdict.CauseCrash,
			findings: []want{{cause: verdict.CauseCrash, source: "VEND", message: "reset before"}}},
		{name: "timeout without result", stream: vt.New().Boot().End(wire.EndTimeout, 1, 1),
			status: verdict.StatusFail, cause: verdict.CauseTimeout,
			findings: []want{{verdict.StatusFail, verdict.CauseTimeout, "", "VEND", "no result arrived"}}, absent: []string{verdict.CauseNoResult}},
		{name: "timeout after a passing result", stream: vt.New().Boot().Outcomes(vt.Pass()).End(wire.EndTimeout, 1, 1),
			status: verdict.StatusFail, cause: verdict.CauseTimeout, findings: []want{{cause: verdict.CauseTimeout, message: "did not power off"}}},
		{name: "timeout names the scheduler the kernel threw out", stream: vt.New().Boot().
			Dmesg("sched_ext: BPF scheduler \"lavd\" disabled (runnable task stall)").End(wire.EndTimeout, 1, 1),
			status: verdict.StatusFail, cause: verdict.CauseSchedulerDied,
			findings: []want{{cause: verdict.CauseTimeout, message: "scheduler lavd exited: runnable task stall"}}},
		{name: "scheduler died: SCDX with errno", stream: vt.New().Boot().SchedExit(-22).End(wire.EndKilled, 1, 1),
			status: verdict.StatusFail, cause: verdict.CauseSchedulerDied,
			findings: []want{{verdict.StatusFail, verdict.CauseSchedulerDied, "", "SCDX", "code -22 (EINVAL)"}}, absent: []string{verdict.CauseNoResult}},
		{name: "scheduler died after a passing result still fails", stream: vt.Base().Outcomes(vt.Pass()).SchedExit(1).Finish(),
			status: verdict.StatusFail, cause: verdict.CauseSchedulerDied, findings: []want{{cause: verdict.CauseSchedulerDied, message: "code 1"}}},
		{name: "scheduler died: log EXIT line and kernel message attached", stream: vt.New().Boot().
			SchedLog("===SCHED_OUTPUT_START===\nscx: bye\nEXIT: runtime error (scx_bpf_error)\n===SCHED_OUTPUT_END===\n").
			Dmesg("[ 1.0] sched_ext: BPF scheduler \"demo\" disabled (scx_bpf_error)\n[ 1.0] sched_ext: demo: bad dsq 7").
			SchedExit(256).End(wire.EndKilled, 1, 1),
			status: verdict.StatusFail, cause: verdict.CauseSchedulerDied,
			findings: []want{{cause: verdict.CauseSchedulerDied, message: "code 256: scx_bpf_error: bad dsq 7"}}},
		{name: "scheduler died: torn SCDX ignored", stream: vt.Base().BadEntry(wire.TypeSchedExit, wire.AppendExitCode(nil, 1)).Outcomes(vt.Pass()).Finish(),
			status: verdict.StatusInfra, cause: verdict.CauseInfra, absent: []string{verdict.CauseSchedulerDied}},
		{name: "scheduler died: SCDX of the wrong size", stream: vt.New().Boot().Entry(wire.TypeSchedExit, []byte{1, 2}).End(wire.EndKilled, 1, 1),
			status: verdict.StatusFail, cause: verdict.CauseSchedulerDied, findings: []want{{cause: verdict.CauseSchedulerDied, message: "no exit code"}}},
		{name: "scheduler died: kernel error exit without SCDX", stream: vt.Base().
			Dmesg("<3>[    3.1] sched_ext: BPF scheduler \"demo\" disabled (runtime error)").Outcomes(vt.Pass()).Finish(),
			status: verdict.StatusFail, cause: verdict.CauseSchedulerDied,
			findings: []want{{cause: verdict.CauseSchedulerDied, source: "dmesg", message: `kernel disabled scheduler "demo": runtime error`}}},
		{name: "normal sched_ext unregister is not a death", stream: vt.Base().
			Dmesg("sched_ext: BPF scheduler \"demo\" disabled (unregistered from user space)").Outcomes(vt.Pass()).Finish(),
			status: verdict.StatusPass},
		{name: "scheduler never attached (LIFE)", stream: vt.New().Life(wire.PhaseInitStarted, "").Life(wire.PhaseSchedulerNotAttached, "no scx_root after 5s").Finish(),
			status: verdict.StatusFail, cause: verdict.CauseNotAttached,
			findings: []want{{cause: verdict.CauseNotAttached, source: "LIFE", message: "no scx_root after 5s"}}},
		// The harness's SIGINT at the attach timeout makes the scheduler
		// say "EXIT: unregistered from user space": not its failure.
		{name: "slow attach: still initialising, not died", stream: vt.New().Life(wire.PhaseInitStarted, "").
			SchedLog("===SCHED_OUTPUT_START===\n[    1.000000] stdout: loading\n").
			Life(wire.PhaseSchedulerNotAttached, `scheduler scx_pair: not attached within 30s, still initialising (its last output: "loading"; sched_ext state disabled); raise --attach-timeout`).
			SchedLog("[   31.000000] ktstr: sending SIGINT to scx_pair: not attached within 30s\n[   31.500000] stderr: EXIT: unregistered from user space\n===SCHED_OUTPUT_END===\n").
			Dmesg("sched_ext: BPF scheduler \"pair\" enabled\nsched_ext: BPF scheduler \"pair\" disabled (unregistered from user space)\n").
			Outcomes(vt.Fail(payload.KindNotAttached, "scheduler scx_pair: not attached within 30s")).Finish(),
			status: verdict.StatusFail, cause: verdict.CauseNotAttached,
			findings: []want{{cause: verdict.CauseNotAttached, source: "LIFE", message: "not attached within 30s, still initialising (its last output: \"loading\"; sched_ext state disabled); raise --attach-timeout"},
				{cause: verdict.CauseAssertion, source: "TEST"}},
			absent: []string{verdict.CauseSchedulerDied}},
		// A scheduler that cannot load: libbpf's error line is the reason.
		{name: "load failure: libbpf's error line", stream: vt.New().Life(wire.PhaseInitStarted, "").
			SchedLog("===SCHED_OUTPUT_START===\n[    1.000000] stderr: libbpf: failed to open system Kconfig\n"+
				"[    1.000001] stderr: libbpf: failed to load object 'scx_sdt'\n[    1.000002] stderr: [SCX_BUG] scx_sdt.c:621 (Failed to load skel)\n===SCHED_OUTPUT_END===\n").
			Life(wire.PhaseSchedulerDied, "exit code 1").SchedExit(1).
			Outcomes(vt.Fail(payload.KindSchedulerDied, "scheduler scx_sdt exited with code 1 before attaching")).Exit(1).Finish(),
			status: verdict.StatusFail, cause: verdict.CauseSchedulerDied,
			findings: []want{{cause: verdict.CauseSchedulerDied, source: "SCDX", message: "scheduler exited with code 1: libbpf: failed to open system Kconfig"}}},
		{name: "scheduler died during startup (LIFE)", stream: vt.New().Life(wire.PhaseInitStarted, "").Life(wire.PhaseSchedulerDied, "").Finish(),
			status: verdict.StatusFail, cause: verdict.CauseSchedulerDied, findings: []want{{cause: verdict.CauseSchedulerDied, source: "LIFE"}}},
		{name: "no result: init never started", stream: vt.New().End(wire.EndPoweroff, 0, 1),
			status: verdict.StatusFail, cause: verdict.CauseNoResult, findings: []want{{cause: verdict.CauseNoResult, message: "init script never started"}}},
		{name: "no result: empty stream", stream: vt.New(), status: verdict.StatusFail, cause: verdict.CauseNoResult,
			findings: []want{{cause: verdict.CauseNoResult, message: "init script never started (kernel or mount failure)"}}},
		{name: "no result: init started", stream: vt.New().Life(wire.PhaseInitStarted, "").Finish(),
			status: verdict.StatusFail, cause: verdict.CauseNoResult, findings: []want{{cause: verdict.CauseNoResult, message: "init started but payload never ran"}}},
		{name: "no result: payload started", stream: vt.New().Boot().Finish(),
			status: verdict.StatusFail, cause: verdict.CauseNoResult, findings: []want{{cause: verdict.CauseNoResult, message: "payload started but produced no test result"}}},
		{name: "no result: bad-CRC LIFE does not count", stream: vt.New().BadEntry(wire.TypeLifecycle, []byte{2}).Finish(),
			status: verdict.StatusInfra, cause: verdict.CauseInfra, findings: []want{{verdict.StatusInfra, verdict.CauseNoResult, "", "", "init script never started"}}},
		{name: "no result: VM stopped on request", stream: vt.New().Boot().End(wire.EndKilled, 1, 1),
			status: verdict.StatusFail, cause: verdict.CauseNoResult, findings: []want{{cause: verdict.CauseNoResult, message: "stopped on request"}}},
		{name: "no result with lost frames is an infrastructure error", stream: vt.New().Boot().Loss(1, 100).End(wire.EndPoweroff, 0, 1),
			status: verdict.StatusInfra, cause: verdict.CauseInfra,
			findings: []want{{verdict.StatusInfra, verdict.CauseNoResult, "", "", "may be among what was lost"}, {verdict.StatusInfra, verdict.CauseInfra, "", "LOSS", "1 frame (100 bytes)"}}},
		{name: "the wrong machine shape is an infrastructure error, not a failure",
			stream: vt.Base().Outcomes(payload.Outcome{Verdict: payload.Fail, Kind: payload.KindInfra, Message: "wrong machine shape: asked for 1,2,2,2"}).Finish(),
			status: verdict.StatusInfra, cause: verdict.CauseInfra,
			findings: []want{{verdict.StatusInfra, verdict.CauseInfra, payload.KindInfra, "TEST", "wrong machine shape"}}},
		{name: "splat: WARN in dmesg fails", stream: vt.Base().Dmesg("[ 5.1] WARNING: CPU: 0 PID: 1 at kernel/sched/ext.c:99 f+0x1/0x2").Outcomes(vt.Pass()).Finish(),
			status: verdict.StatusFail, cause: verdict.CauseSplat,
			findings: []want{{verdict.StatusFail, verdict.CauseSplat, "warn", "dmesg", "WARNING: CPU: 0 PID: 1 at kernel/sched/ext.c:99"}}},
		{name: "splat: inconclusive when configured", stream: vt.Base().Dmesg("BUG: KASAN: use-after-free in foo").Outcomes(vt.Pass()).Finish(),
			cfg:    &verdict.Config{Splats: verdict.DefaultSplats(), SplatStatus: verdict.StatusInconclusive},
			status: verdict.StatusInconclusive, cause: verdict.CauseSplat, findings: []want{{verdict.StatusInconclusive, verdict.CauseSplat, "kasan", "", "use-after-free"}}},
		{name: "splat: off when no patterns", stream: vt.Base().Dmesg("BUG: KASAN: use-after-free in foo").Outcomes(vt.Pass()).Finish(),
			cfg: &verdict.Config{}, status: verdict.StatusPass},
		{name: "splat: on the console, deduplicated with dmesg", stream: vt.Base().Dmesg("[ 9.0] INFO: task kworker/0:1:12 blocked for more than 120 seconds.").Outcomes(vt.Pass()).Finish(),
			consoles: []string{"console.log", "[    9.000000] INFO: task kworker/0:1:12 blocked for more than 120 seconds.\n[ 9.5] watchdog: BUG: soft lockup - CPU#1 stuck for 22s! [a:1]\n"},
			status:   verdict.StatusFail, cause: verdict.CauseSplat,
			findings: []want{{cause: verdict.CauseSplat, kind: "hung_task", source: "dmesg"}, {cause: verdict.CauseSplat, kind: "soft_lockup", source: "console.log"}}},
		{name: "splat after a failed assertion: assertion is the headline", stream: vt.Base().Dmesg("BUG: unable to handle page fault").Outcomes(vt.Fail("x", "bad")).Finish(),
			status: verdict.StatusFail, cause: verdict.CauseAssertion, findings: []want{{cause: verdict.CauseSplat, kind: "bug"}}},
		{name: "infra: ring drops make a pass an error", stream: vt.Base().Outcomes(vt.Pass()).Loss(2, 64).Finish(),
			status: verdict.StatusInfra, cause: verdict.CauseInfra, findings: []want{{verdict.StatusInfra, verdict.CauseInfra, "", "LOSS", "2 frames (64 bytes)"}}},
		{name: "infra: LOSS counters are totals, the largest counts", stream: vt.Base().Outcomes(vt.Pass()).Loss(2, 64).Loss(5, 90).Loss(4, 80).Finish(),
			status: verdict.StatusInfra, cause: verdict.CauseInfra, findings: []want{{cause: verdict.CauseInfra, message: "5 frames (90 bytes)"}}},
		{name: "infra: zero LOSS is fine", stream: vt.Base().Outcomes(vt.Pass()).Loss(0, 0).Finish(), status: verdict.StatusPass},
		{name: "infra: truncated tail", stream: vt.Base().Outcomes(vt.Pass()).Diag(record.DiagTruncatedTail).Finish(),
			status: verdict.StatusInfra, cause: verdict.CauseInfra, findings: []want{{cause: verdict.CauseInfra, source: "diag", message: "truncated tail"}}},
		{name: "infra: oversized", stream: vt.Base().Outcomes(vt.Pass()).Diag(record.DiagOversized).Diag(record.DiagOversized).Finish(),
			status: verdict.StatusInfra, cause: verdict.CauseInfra, findings: []want{{cause: verdict.CauseInfra, message: "2 frames oversized"}}},
		{name: "infra: residual overflow", stream: vt.Base().Outcomes(vt.Pass()).Diag(record.DiagResidualOverflow).Finish(),
			status: verdict.StatusInfra, cause: verdict.CauseInfra, findings: []want{{cause: verdict.CauseInfra, message: "pending buffer overflowed"}}},
		{name: "infra: crc mismatch diag", stream: vt.Base().Outcomes(vt.Pass()).Diag(record.DiagCRCMismatch).Finish(),
			status: verdict.StatusInfra, cause: verdict.CauseInfra, findings: []want{{cause: verdict.CauseInfra, message: "1 frame failed the CRC check"}}},
		{name: "not infra: pad and unknown type diagnostics", stream: vt.Base().Outcomes(vt.Pass()).Diag(record.DiagPadNonzero).Diag(record.DiagUnknownType).Finish(),
			status: verdict.StatusPass},
		{name: "infra: VMM error without result", stream: vt.New().Boot().End(wire.EndVMMError, 4, 1),
			status: verdict.StatusInfra, cause: verdict.CauseInfra, findings: []want{{cause: verdict.CauseInfra, source: "VEND", message: "ktstr-boot exit 4"}}},
		{name: "infra: no VEND with RequireEnd", stream: vt.Base().Outcomes(vt.Pass()).Exit(0),
			cfg:    &verdict.Config{RequireEnd: true},
			status: verdict.StatusInfra, cause: verdict.CauseInfra, findings: []want{{cause: verdict.CauseInfra, source: "VEND", message: "no VM end record"}}},
		{name: "no VEND without RequireEnd passes", stream: vt.Base().Outcomes(vt.Pass()).Exit(0), status: verdict.StatusPass},
		{name: "infra and fail: fail wins", stream: vt.Base().Outcomes(vt.Fail("x", "real")).Loss(1, 1).Finish(),
			status: verdict.StatusFail, cause: verdict.CauseAssertion, findings: []want{{cause: verdict.CauseInfra}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg := def
			if tc.cfg != nil {
				cfg = *tc.cfg
			}
			v := fold(tc.stream, cfg, tc.consoles...)
			if v.Status != tc.status || v.Cause != tc.cause {
				t.Fatalf("status, cause = %s, %q; want %s, %q; findings:%s", v.Status, v.Cause, tc.status, tc.cause, findingsString(v.Findings))
			}
			if v.ExitStatus != tc.status.ExitCode() {
				t.Errorf("ExitStatus = %d, want %d", v.ExitStatus, tc.status.ExitCode())
			}
			for _, w := range tc.findings {
				found := false
				for _, f := range v.Findings {
					found = found || w.matches(f)
				}
				if !found {
					t.Errorf("no finding like %+v; findings:%s", w, findingsString(v.Findings))
				}
			}
			for _, c := range tc.absent {
				for _, f := range v.Findings {
					if f.Cause == c {
						t.Errorf("unexpected %s finding: %s", c, f.Message)
					}
				}
			}
			if tc.cause != "" && !strings.HasPrefix(v.Reason, verdict.CauseLabel(tc.cause)+": ") {
				t.Errorf("Reason = %q, want it to start with %q", v.Reason, verdict.CauseLabel(tc.cause))
			}
		})
	}
}

func TestExitLastWins(t *testing.T) {
	tests := []struct {
		name   string
		stream *vt.Stream
		want   *int32
	}{
		{"none", vt.New(), nil},
		{"one", vt.New().Exit(3), ptr(3)},
		{"last of two", vt.New().Exit(3).Exit(-5), ptr(-5)},
		{"3 bytes ignored", vt.New().Exit(3).Entry(wire.TypeExit, []byte{1, 0, 0}), ptr(3)},
		{"5 bytes ignored", vt.New().Exit(3).Entry(wire.TypeExit, []byte{1, 0, 0, 0, 0}), ptr(3)},
		{"bad CRC ignored", vt.New().Exit(3).BadEntry(wire.TypeExit, wire.AppendExitCode(nil, 9)), ptr(3)},
		{"only a bad one", vt.New().BadEntry(wire.TypeExit, wire.AppendExitCode(nil, 9)), nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			v := fold(tc.stream, verdict.DefaultConfig())
			switch {
			case tc.want == nil && v.GuestExit != nil:
				t.Errorf("GuestExit = %d, want none", *v.GuestExit)
			case tc.want != nil && (v.GuestExit == nil || *v.GuestExit != *tc.want):
				t.Errorf("GuestExit = %v, want %d", v.GuestExit, *tc.want)
			}
		})
	}
	// The exit code is reported, not judged: a passing result with EXIT 1
	// still passes (ktstr's evaluate_vm_result).
	v := fold(vt.Base().Outcomes(vt.Pass()).Exit(1).End(wire.EndPoweroff, 0, 1), verdict.DefaultConfig())
	if v.Status != verdict.StatusPass {
		t.Errorf("pass with EXIT 1: %s, want PASS", v.Status)
	}
}

func ptr(i int32) *int32 { return &i }

func TestTimeline(t *testing.T) {
	s := vt.New().
		Step(false, 0, 0, 2, 0).Step(true, 0, 100, 2, 1000). // closed by its STEN
		Step(false, 1, 100, 4, 1000).                        // closed by the next STIM
		Step(false, 2, 300, 4, 5000).                        // closed by SCEN
		BadEntry(wire.TypeStepEnd, wire.AppendStimulus(nil, wire.Stimulus{StepIndex: 2, ElapsedMS: 301})).
		Entry(wire.TypeStimulus, make([]byte, 23)). // wrong size: ignored
		ScenarioEnd(500, 9000)
	v := fold(s, verdict.DefaultConfig())
	if len(v.Steps) != 3 {
		t.Fatalf("%d steps, want 3: %+v", len(v.Steps), v.Steps)
	}
	type end struct {
		ms, it uint64
		from   string
		rate   float64
	}
	wants := []end{{100, 1000, "step_end", 10000}, {300, 5000, "next_step", 20000}, {500, 9000, "scenario_end", 20000}}
	for i, w := range wants {
		s := v.Steps[i]
		if s.EndMS == nil || *s.EndMS != w.ms || *s.EndIterations != w.it || s.EndFrom != w.from || s.Rate != w.rate {
			t.Errorf("step %d = end %v it %v from %q rate %v; want %+v", i, deref(s.EndMS), deref(s.EndIterations), s.EndFrom, s.Rate, w)
		}
	}
	if v.Scenario.Starts != 0 || v.Scenario.EndMS == nil || *v.Scenario.EndMS != 500 {
		t.Errorf("Scenario = %+v", v.Scenario)
	}
}

func deref(p *uint64) any {
	if p == nil {
		return nil
	}
	return *p
}

func TestSchedLogBlock(t *testing.T) {
	tests := []struct {
		name  string
		s     *vt.Stream
		want  []string
		lines int64
	}{
		{"no markers: everything", vt.New().SchedLog("a\nb\n"), []string{"a", "b"}, 2},
		{"block only", vt.New().SchedLog("pre\n===SCHED_OUTPUT_START===\nin1\n").SchedLog("in2\n===SCHED_OUTPUT_END===\npost\n"), []string{"in1", "in2"}, 2},
		{"lines split across chunks", vt.New().SchedLog("al").SchedLog("pha\nbe").SchedLog("ta"), []string{"alpha", "beta"}, 2},
		{"no SCLG: the output is the log", vt.New().Stdout("===SCHED_OUTPUT_START===\nfrom stdout\n===SCHED_OUTPUT_END===\n"), []string{"from stdout"}, 1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			v := fold(tc.s, verdict.DefaultConfig())
			if v.Logs.Sched == nil {
				t.Fatal("no scheduler log")
			}
			if got := strings.Join(v.Logs.Sched.Tail, "|"); got != strings.Join(tc.want, "|") || v.Logs.Sched.Lines != tc.lines {
				t.Errorf("sched log = %q (%d lines), want %q (%d)", got, v.Logs.Sched.Lines, strings.Join(tc.want, "|"), tc.lines)
			}
		})
	}
}

func TestBugSummary(t *testing.T) {
	tests := []struct {
		name string
		s    *vt.Stream
		want string
	}{
		{"dump body", vt.New().Dmesg("kworker/1:2[57] triggered exit kind 1025:\n  scx_bpf_error (dispatch: bad)\n").SchedExit(1), "scx_bpf_error (dispatch: bad)"},
		{"kernel message", vt.New().Dmesg("sched_ext: BPF scheduler \"s\" disabled (scx_bpf_error)\nsched_ext: s: boom").SchedExit(1), "boom"},
		{"scx_bpf_error line in the log", vt.New().SchedLog("EXIT: scx_bpf_error\nscx_bpf_error at foo.bpf.c:12\n").SchedExit(1), "scx_bpf_error at foo.bpf.c:12"},
		{"nothing", vt.New().SchedExit(1), ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := fold(tc.s, verdict.DefaultConfig()).BugSummary; got != tc.want {
				t.Errorf("BugSummary = %q, want %q", got, tc.want)
			}
		})
	}
}

func TestUnreadable(t *testing.T) {
	good := vt.Base().Outcomes(vt.Pass()).Finish().Bytes(true)
	tests := []struct {
		name  string
		input []byte
		at    int64
	}{
		{"garbage after good records", append(append([]byte{}, good...), []byte("{not json\n")...), 15},
		{"schema version from the future", []byte(`{"v":99,"kind":"entry","seq":0,"at_ns":0}` + "\n"), 1},
		{"truncated msgpack", vt.Base().Outcomes(vt.Pass()).Finish().Bytes(false)[:40], 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			v := verdict.Fold("t", verdict.DefaultConfig(), bytes.NewReader(tc.input)).Verdict()
			if v.Status.Rank() < verdict.StatusInfra.Rank() {
				t.Fatalf("status %s, want at least ERROR; findings:%s", v.Status, findingsString(v.Findings))
			}
			if v.Counts.UnreadableAt == 0 || tc.at != 0 && v.Counts.UnreadableAt != tc.at {
				t.Errorf("UnreadableAt = %d, want %d", v.Counts.UnreadableAt, tc.at)
			}
		})
	}
	f := verdict.NewFolder("t", verdict.DefaultConfig())
	f.ReadError(errors.New("open x.rec: no such file"))
	if v := f.Verdict(); v.Status != verdict.StatusInfra || !strings.Contains(v.Reason, "no such file") {
		t.Errorf("missing file: %s %q, want ERROR naming the error", v.Status, v.Reason)
	}
}

func TestConsoleReadError(t *testing.T) {
	f := verdict.NewFolder("t", verdict.DefaultConfig())
	for _, r := range vt.Base().Outcomes(vt.Pass()).Finish().Records() {
		f.Add(r)
	}
	err := f.AddConsole("console.log", &failingReader{data: "line 1\n"})
	if err == nil {
		t.Fatal("AddConsole = nil, want the read error")
	}
	v := f.Verdict()
	if v.Status != verdict.StatusInfra || len(v.Logs.Console) != 1 || v.Logs.Console[0].Lines != 1 {
		t.Errorf("status %s, consoles %+v; want ERROR and the line read", v.Status, v.Logs.Console)
	}
}

type failingReader struct{ data string }

func (r *failingReader) Read(p []byte) (int, error) {
	if r.data == "" {
		return 0, errors.New("disk on fire")
	}
	n := copy(p, r.data)
	r.data = r.data[n:]
	return n, nil
}

func TestSanitizeNonFinite(t *testing.T) {
	st := vt.Stats()
	st.WorstGapMS = nan()
	s := vt.New().Result(&payload.AssertResult{Outcomes: []payload.Outcome{vt.Pass()}, Stats: st, Measurements: map[string]float64{"x": nan()}}).Finish()
	v := fold(s, verdict.DefaultConfig())
	var b bytes.Buffer
	if err := verdict.WriteJSON(&b, verdict.Aggregate("t", []verdict.Verdict{v})); err != nil {
		t.Fatalf("WriteJSON with NaN stats: %v", err)
	}
	if len(v.Result.InfoNotes) != 2 {
		t.Errorf("InfoNotes = %q, want two notes about non-finite values", v.Result.InfoNotes)
	}
}

// TestSanitizePerfNonFinite: a forged NaN or infinity among the
// performance figures is shown as 0 with a note, never written as JSON.
func TestSanitizePerfNonFinite(t *testing.T) {
	st := vt.Stats()
	st.IterationRate = math.Inf(1)
	st.WakeLatency = &payload.Latency{Count: 1, MeanNS: nan(), CV: nan()}
	st.Cgroups[0].ThroughputCV = nan()
	s := vt.New().Result(&payload.AssertResult{Outcomes: []payload.Outcome{vt.Pass()}, Stats: st}).Finish()
	v := fold(s, verdict.DefaultConfig())
	var b bytes.Buffer
	if err := verdict.WriteJSON(&b, verdict.Aggregate("t", []verdict.Verdict{v})); err != nil {
		t.Fatalf("WriteJSON with NaN perf figures: %v", err)
	}
	if len(v.Result.InfoNotes) != 4 || !strings.Contains(strings.Join(v.Result.InfoNotes, "\n"), "stats.wake_latency.cv") {
		t.Errorf("InfoNotes = %q, want four notes about non-finite values", v.Result.InfoNotes)
	}
}

func TestAggregateNames(t *testing.T) {
	pass := fold(vt.Base().Outcomes(vt.Pass()).Finish(), verdict.DefaultConfig())
	rep := verdict.Aggregate("ktstr", []verdict.Verdict{pass, pass})
	if rep.Status != verdict.StatusPass || rep.Reason != "all 2 runs passed" || rep.Totals.Pass != 2 {
		t.Errorf("Aggregate = %s %q %+v", rep.Status, rep.Reason, rep.Totals)
	}
	if rep := verdict.Aggregate("x", nil); rep.Status != verdict.StatusInfra {
		t.Errorf("Aggregate(no runs) = %s, want ERROR", rep.Status)
	}
}

func nan() float64 { return math.NaN() }

func TestUnknownKind(t *testing.T) {
	f := verdict.NewFolder("t", verdict.DefaultConfig())
	for _, r := range vt.Base().Outcomes(vt.Pass()).Finish().Records() {
		f.Add(r)
	}
	f.Add(&record.Record{Kind: "future", MsgType: uint32(wire.TypeTestResult), CRCOK: true, Payload: []byte{0xc1}})
	v := f.Verdict()
	if v.Status != verdict.StatusPass || v.Counts.UnknownKinds != 1 {
		t.Errorf("status %s, unknown kinds %d; want PASS and 1", v.Status, v.Counts.UnknownKinds)
	}
}

// TestForgedVMEndIgnored: a VEND that more frames follow was written by
// the guest (ktstr-drain writes the real one last) and must not count.
func TestForgedVMEndIgnored(t *testing.T) {
	vend := func(r wire.EndReason) *record.Record {
		return &record.Record{Kind: record.KindEntry, Tag: "VEND", MsgType: uint32(wire.TypeVMEnd), CRCOK: true,
			Payload: wire.AppendVMEnd(nil, wire.VMEnd{Reason: r})}
	}
	exit := &record.Record{Kind: record.KindEntry, Tag: "EXIT", MsgType: uint32(wire.TypeExit), CRCOK: true, Payload: wire.AppendExitCode(nil, 0)}

	f := verdict.NewFolder("forged", verdict.Config{})
	f.Add(vend(wire.EndPoweroff)) // the guest's
	f.Add(exit)
	v := f.Verdict()
	if v.VMEnd != nil {
		t.Errorf("VMEnd = %+v from a VEND followed by EXIT, want none", v.VMEnd)
	}
	found := false
	for _, fd := range v.Findings {
		found = found || (fd.Cause == verdict.CauseInfra && strings.Contains(fd.Message, "forged"))
	}
	if !found {
		t.Errorf("findings %+v, want an infrastructure finding about the forged VEND", v.Findings)
	}

	g := verdict.NewFolder("real", verdict.Config{})
	g.Add(vend(wire.EndPoweroff)) // forged, then followed by the real one
	g.Add(vend(wire.EndTimeout))
	if v := g.Verdict(); v.VMEnd == nil || v.VMEnd.Reason != "timeout" {
		t.Errorf("VMEnd = %+v, want the last VEND (timeout)", v.VMEnd)
	}
}

// A scheduler that detached mid-run while its process lived: the run
// fails with the cause scheduler_detached, and the report says which
// scheduler it was, when it was lost and the stats of the two periods.
func TestSchedDetached(t *testing.T) {
	res := &payload.AssertResult{Scenario: "steady", Stats: vt.Stats(),
		Outcomes: []payload.Outcome{{Verdict: payload.Fail, Kind: payload.KindSchedulerDetached,
			Message: `scheduler schedwrap (sched_ext ops "simple", enable_seq 1) detached 1312 ms into the scenario while its process lived`}},
		Scheduler: &payload.SchedulerInfo{Binary: "schedwrap", SHA256: "0123456789abcdef0123", Ops: "simple", EnableSeq: 1, AttachMS: 812.5,
			Detached: &payload.SchedDetach{AtMS: 1312, ForMS: 41, How: "disabled", State: "disabled", EnableSeq: 1, Alive: true,
				Kernel: `sched_ext: BPF scheduler "simple" disabled (unregistered from user space)`, KernelS: 9.5}},
		StatsAfterDetach: &payload.ScenarioStats{Workers: 4, TotalIterations: 77}}
	v := fold(vt.Base().Result(res).Exit(1).Finish(), verdict.DefaultConfig())
	if v.Status != verdict.StatusFail || v.Cause != verdict.CauseSchedDetached ||
		!strings.HasPrefix(v.Reason, "scheduler detached: scheduler schedwrap") || !strings.Contains(v.Reason, "detached 1312 ms into the scenario") {
		t.Fatalf("status %s cause %q reason %q", v.Status, v.Cause, v.Reason)
	}
	var out strings.Builder
	if err := verdict.WriteText(&out, verdict.Aggregate("t", []verdict.Verdict{v}), verdict.TextOptions{}); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"until the scheduler was lost (1312 ms into the scenario):\n",
		"after the scheduler was lost, until the workers stopped (not judged):\n4 workers, 0 cpus, 0 migrations, worst_spread=0.0%, worst_gap=0.0ms, iterations=77\n",
		`scheduler: schedwrap (sha256 0123456789abcdef...), sched_ext ops "simple", enable_seq 1, attached 812.5 ms after it started`,
		`scheduler lost: disabled at 1312.0 ms into the scenario (state "disabled", ops "", enable_seq 1; process alive), the scenario ran 41.0 ms more`,
		`kernel at 9.500000s: sched_ext: BPF scheduler "simple" disabled (unregistered from user space)`,
	} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("text report lacks %q:\n%s", want, out.String())
		}
	}
}

// TestSchedExitWithoutCode: an SCDX whose payload is not 4 bytes stops
// the scheduler (dispatch writes a kill effect without exit_code) but
// carries no exit code; the verdict must not invent "code 0".
func TestSchedExitWithoutCode(t *testing.T) {
	for _, p := range [][]byte{nil, {7, 0}, {1, 0, 0, 0, 0}} {
		s := vt.Base().Entry(wire.TypeSchedExit, p).Outcomes(vt.Pass()).Finish()
		rec := frames(s, nil)
		var recs bytes.Buffer
		if _, err := dispatch.Run(bytes.NewReader(rec), record.NewWriter(&recs, false), dispatch.Options{}); err != nil {
			t.Fatal(err)
		}
		v := verdict.Fold("scdx", verdict.DefaultConfig(), &recs).Verdict()
		if v.Status != verdict.StatusFail || v.Cause != verdict.CauseSchedulerDied {
			t.Errorf("SCDX %x: %s %s, want FAIL scheduler_died", p, v.Status, v.Cause)
		}
		if v.SchedExit != nil || strings.Contains(v.Reason, "code 0") || !strings.Contains(v.Reason, "no exit code") {
			t.Errorf("SCDX %x: sched_exit_code %v, reason %q, want none and \"no exit code\"", p, v.SchedExit, v.Reason)
		}
	}
}

// TestResultNotUTF8: a TEST whose strings are not UTF-8 does not decode
// (ktstr's postcard refuses it), so the run has no usable result.
func TestResultNotUTF8(t *testing.T) {
	v := fold(vt.Base().Outcomes(vt.Pass(), vt.Fail(payload.KindOther, "bad \xff\xfe bytes")).Finish(), verdict.DefaultConfig())
	if v.Status != verdict.StatusFail || v.Cause != verdict.CauseNoResult || v.Result != nil || !strings.Contains(v.Reason, "not UTF-8") {
		t.Errorf("%s %s %q (result %v), want FAIL no_result: the result does not decode (not UTF-8)", v.Status, v.Cause, v.Reason, v.Result != nil)
	}
}
