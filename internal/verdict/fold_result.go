package verdict

import (
	"bytes"
	"fmt"
	"maps"
	"math"
	"slices"

	"github.com/ktstr-go/ktstr/internal/sanitize"
	"github.com/ktstr-go/ktstr/lib/wire"
	"github.com/ktstr-go/ktstr/lib/wire/payload"
)

// resultFold is what the guest says of its own run: its result (the last
// CRC-valid TEST), its exit code (the last valid EXIT) and how far it got
// (LIFE phases, each with its first reason). It answers with the decoded
// result and a finding for each outcome that is not a pass.
type resultFold struct {
	test    []byte
	seen    bool // a TEST arrived
	exit    *int32
	phases  []wire.Phase
	reasons map[wire.Phase]string
}

func newResultFold() resultFold { return resultFold{reasons: map[wire.Phase]string{}} }

// entry notes an entry of one of the guest's own types.
func (r *resultFold) entry(t wire.Type, p []byte) {
	switch t {
	case wire.TypeTestResult:
		r.test, r.seen = bytes.Clone(p), true // p is reused after Add
	case wire.TypeExit:
		if code, err := wire.DecodeExitCode(t, p); err == nil {
			r.exit = &code
		}
	case wire.TypeLifecycle:
		if l, err := wire.DecodeLifecycle(p); err == nil {
			if _, ok := r.reasons[l.Phase]; !ok {
				r.phases = append(r.phases, l.Phase)
				r.reasons[l.Phase] = cutText(l.Reason)
			}
		}
	}
}

// result decodes the last TEST: the result, made safe to report, with a
// finding for each outcome that is not a pass; or a finding that it does
// not decode. It returns nil when there is no result.
func (r *resultFold) result(add func(Finding)) *payload.AssertResult {
	if !r.seen {
		return nil
	}
	res, err := payload.UnmarshalAssertResult(r.test)
	if err != nil {
		add(Finding{Status: StatusFail, Cause: CauseNoResult, Source: "TEST", Message: fmt.Sprintf("the test result does not decode: %v", err)})
		return nil
	}
	cleanResult(res)
	outcomeFindings(res.Outcomes, add)
	return res
}

// phaseNames are the LIFE phases in the order they came.
func (r *resultFold) phaseNames() []string {
	var out []string
	for _, p := range r.phases {
		out = append(out, p.String())
	}
	return out
}

// stage is ktstr's classify_init_stage over CRC-valid LIFE entries.
func (r *resultFold) stage(result bool) string {
	if result {
		return "test result received"
	}
	if _, ok := r.reasons[wire.PhasePayloadStarting]; ok {
		return "payload started but produced no test result"
	}
	if len(r.phases) > 0 {
		return "init started but payload never ran (cgroup/scheduler setup failed)"
	}
	return "init script never started (kernel or mount failure)"
}

// outcomeFindings adds a finding for each Fail, Inconclusive and Skip
// outcome, the first maxOutcomeFindings of each, and one that counts the
// rest.
func outcomeFindings(os []payload.Outcome, add func(Finding)) {
	kinds := []struct {
		v            payload.Verdict
		status       Status
		cause, words string
	}{
		{payload.Fail, StatusFail, CauseAssertion, "failed"},
		{payload.Inconclusive, StatusInconclusive, CauseInconclusive, "inconclusive"},
		{payload.Skip, StatusSkip, CauseSkip, "skipped"},
	}
	for _, k := range kinds {
		n := 0
		for _, o := range os {
			if o.Verdict != k.v {
				continue
			}
			if n < maxOutcomeFindings {
				status, cause := k.status, k.cause
				switch {
				case k.v != payload.Fail:
				case o.Kind == payload.KindInfra: // the guest did not get the machine it was given
					status, cause = StatusInfra, CauseInfra
				case o.Kind == payload.KindSchedulerDetached:
					cause = CauseSchedDetached
				}
				add(Finding{Status: status, Cause: cause, Kind: cutText(o.Kind), Message: cutText(o.Message), Source: "TEST"})
			}
			n++
		}
		if more := int64(n - maxOutcomeFindings); more > 0 {
			add(Finding{Status: k.status, Cause: k.cause, Kind: "more", Source: "TEST",
				Message: fmt.Sprintf("and %d more %s %s not listed", more, k.words, pluralWord(more, "check"))})
		}
	}
}

// cleanResult makes a decoded result safe to report: its strings are
// sanitised, and non-finite floats, which JSON cannot carry, become 0
// with a note in the result's info notes.
func cleanResult(r *payload.AssertResult) {
	r.Scenario = sanitize.String(r.Scenario)
	for i := range r.Outcomes {
		o := &r.Outcomes[i]
		o.Kind, o.Message = sanitize.String(o.Kind), sanitize.String(o.Message)
	}
	for i := range r.Passes {
		p := &r.Passes[i]
		p.Check, p.Message = sanitize.String(p.Check), sanitize.String(p.Message)
	}
	for i := range r.InfoNotes {
		r.InfoNotes[i] = sanitize.String(r.InfoNotes[i])
	}
	for i := range r.Stats.Cgroups {
		r.Stats.Cgroups[i].Name = sanitize.String(r.Stats.Cgroups[i].Name)
	}
	if len(r.Measurements) > 0 {
		m := make(payload.Measurements, len(r.Measurements))
		for _, k := range slices.Sorted(maps.Keys(r.Measurements)) {
			sk := sanitize.String(k)
			if _, dup := m[sk]; dup {
				r.InfoNotes = append(r.InfoNotes, "verdict: measurement "+sk+" given twice once escaped; the first is kept")
				continue
			}
			m[sk] = r.Measurements[k]
		}
		r.Measurements = m
	}
	fix := func(p *float64, what string) {
		if math.IsNaN(*p) || math.IsInf(*p, 0) {
			r.InfoNotes = append(r.InfoNotes, fmt.Sprintf("verdict: non-finite %s (%v) shown as 0", what, *p))
			*p = 0
		}
	}
	perf := func(name string, rate, work, cv *float64, lats ...*payload.Latency) {
		fix(rate, name+".iteration_rate")
		fix(work, name+".work_rate")
		fix(cv, name+".throughput_cv")
		for i, l := range lats {
			if l != nil {
				what := name + []string{".wake_latency", ".timer_latency", ".request_latency"}[i]
				fix(&l.MeanNS, what+".mean_ns")
				fix(&l.CV, what+".cv")
			}
		}
	}
	stats := func(s *payload.ScenarioStats, name string) {
		fix(&s.WorstSpreadPct, name+".worst_spread_pct")
		fix(&s.WorstGapMS, name+".worst_gap_ms")
		perf(name, &s.IterationRate, &s.WorkRate, &s.ThroughputCV, s.WakeLatency, s.TimerLatency, s.RequestLatency)
		for i := range s.Cgroups {
			c := &s.Cgroups[i]
			fix(&c.SpreadPct, fmt.Sprintf("%s.cgroups[%d].spread_pct", name, i))
			fix(&c.MaxGapMS, fmt.Sprintf("%s.cgroups[%d].max_gap_ms", name, i))
			perf(fmt.Sprintf("%s.cgroups[%d]", name, i), &c.IterationRate, &c.WorkRate, &c.ThroughputCV, c.WakeLatency, c.TimerLatency, c.RequestLatency)
		}
	}
	stats(&r.Stats, "stats")
	if r.StatsAfterDetach != nil {
		stats(r.StatsAfterDetach, "stats_after_detach")
	}
	if si := r.Scheduler; si != nil {
		fix(&si.AttachMS, "scheduler.attach_ms")
		if d := si.Detached; d != nil {
			fix(&d.AtMS, "scheduler.detached.at_ms")
			fix(&d.ForMS, "scheduler.detached.for_ms")
			fix(&d.KernelS, "scheduler.detached.kernel_s")
			fix(&d.ReattachedMS, "scheduler.detached.reattached_ms")
		}
	}
	for _, k := range slices.Sorted(maps.Keys(r.Measurements)) {
		x := r.Measurements[k]
		fix(&x, "measurements."+k)
		r.Measurements[k] = x
	}
}
