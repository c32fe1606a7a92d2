package scenario

import (
	"errors"
	"fmt"

	"github.com/ktstr-go/ktstr/internal/hist"
	"github.com/ktstr-go/ktstr/lib/wire/payload"
)

// PerfChecks are the performance thresholds (ktstr's names), part of
// Checks; none is checked unless set, and a cgroup without the figure
// (no latency work type, a run too short for two rate slices) is not
// judged by it:
//
//	max_p99_wake_latency_ns  the cgroup's merged wake-up latency p99, ns
//	max_wake_latency_cv      the wake-up latencies' coefficient of variation
//	min_work_rate            the slowest worker's iterations per second
//	max_throughput_cv        the largest CV of a worker's iterations per 100 ms slice
//	min_iteration_rate       the cgroup's iterations per second, all workers
type PerfChecks struct {
	MaxP99WakeLatencyNS *uint64  `json:"max_p99_wake_latency_ns,omitempty"`
	MaxWakeLatencyCV    *float64 `json:"max_wake_latency_cv,omitempty"`
	MinWorkRate         *float64 `json:"min_work_rate,omitempty"`
	MaxThroughputCV     *float64 `json:"max_throughput_cv,omitempty"`
	MinIterationRate    *float64 `json:"min_iteration_rate,omitempty"`
}

func (c PerfChecks) merge(o PerfChecks) PerfChecks {
	override(&c.MaxP99WakeLatencyNS, o.MaxP99WakeLatencyNS)
	override(&c.MaxWakeLatencyCV, o.MaxWakeLatencyCV)
	override(&c.MinWorkRate, o.MinWorkRate)
	override(&c.MaxThroughputCV, o.MaxThroughputCV)
	override(&c.MinIterationRate, o.MinIterationRate)
	return c
}

func (c PerfChecks) validate() error {
	if c.MaxP99WakeLatencyNS != nil && *c.MaxP99WakeLatencyNS == 0 {
		return errors.New("max_p99_wake_latency_ns must be positive")
	}
	for _, r := range []struct {
		name string
		v    *float64
	}{{"max_wake_latency_cv", c.MaxWakeLatencyCV}, {"min_work_rate", c.MinWorkRate},
		{"max_throughput_cv", c.MaxThroughputCV}, {"min_iteration_rate", c.MinIterationRate}} {
		if r.v != nil && !(*r.v >= 0 && *r.v < 1e15) {
			return fmt.Errorf("%s must be a non-negative number", r.name)
		}
	}
	return nil
}

// latencyKinds are the latency kinds the workers record ("wake",
// "timer", "request"), in the order of the histograms perfOf returns.
var latencyKinds = [...]string{"wake", "timer", "request"}

// hists are a cgroup's or the scenario's merged latency histograms, by
// latencyKinds.
type hists [len(latencyKinds)]hist.Hist

// latencies are the summaries' places in the stats, by latencyKinds.
func latencies(wake, timer, request **payload.Latency) [len(latencyKinds)]**payload.Latency {
	return [...]**payload.Latency{wake, timer, request}
}

// perfOf fills a cgroup's performance figures from its workers and
// returns its merged latency histograms for the total. A latency
// worker's schedstat wait and times on a CPU count only when it recorded
// (not wake_latency's message thread nor open_loop's generator).
func perfOf(st *payload.CgroupStats, workers []WorkerResult) *hists {
	var hs hists
	var sched [len(latencyKinds)]struct{ wait, slices uint64 }
	first := true
	for _, w := range workers {
		for i, k := range latencyKinds {
			if w.LatencyKind == k && w.Latency != nil && w.Latency.Count() > 0 {
				hs[i].Merge(w.Latency)
				sched[i].wait += w.WaitNS
				sched[i].slices += w.Timeslices
			}
		}
		if w.WallNS == 0 {
			continue
		}
		r := float64(w.Iterations) / (float64(w.WallNS) / 1e9)
		st.IterationRate += r
		if first || r < st.WorkRate {
			st.WorkRate = r
		}
		first = false
		st.ThroughputCV = max(st.ThroughputCV, w.RateCV)
	}
	for i, p := range latencies(&st.WakeLatency, &st.TimerLatency, &st.RequestLatency) {
		if *p = latencyOf(&hs[i]); *p != nil {
			(*p).SchedWaitNS, (*p).SchedSlices = sched[i].wait, sched[i].slices
		}
	}
	return &hs
}

// latencyOf summarises h; nil when empty.
func latencyOf(h *hist.Hist) *payload.Latency {
	if h.Count() == 0 {
		return nil
	}
	s := h.Summarize()
	return &payload.Latency{Count: s.Count, MeanNS: s.MeanNS, P50NS: s.P50NS, P90NS: s.P90NS,
		P99NS: s.P99NS, P999NS: s.P999NS, MaxNS: s.MaxNS, CV: s.CV}
}

// checkPerf applies the performance checks to one cgroup's figures.
func checkPerf(ck PerfChecks, st *payload.CgroupStats, fail, pass func(check, format string, args ...any)) {
	name := st.Name
	if l := st.WakeLatency; l != nil {
		if m := ck.MaxP99WakeLatencyNS; m != nil {
			if l.P99NS > *m {
				fail("max_p99_wake_latency_ns", "cgroup %s: wake-up latency p99 %d ns, more than %d ns", name, l.P99NS, *m)
			} else {
				pass("max_p99_wake_latency_ns", "cgroup %s: wake-up latency p99 %d ns <= %d ns", name, l.P99NS, *m)
			}
		}
		if m := ck.MaxWakeLatencyCV; m != nil {
			if l.CV > *m {
				fail("max_wake_latency_cv", "cgroup %s: wake-up latency cv %.3f, more than %.3f", name, l.CV, *m)
			} else {
				pass("max_wake_latency_cv", "cgroup %s: wake-up latency cv %.3f <= %.3f", name, l.CV, *m)
			}
		}
	}
	if st.IterationRate > 0 || st.Workers > 0 {
		if m := ck.MinWorkRate; m != nil {
			if st.WorkRate < *m {
				fail("min_work_rate", "cgroup %s: slowest worker made %.1f iterations/s, less than %.1f", name, st.WorkRate, *m)
			} else {
				pass("min_work_rate", "cgroup %s: slowest worker %.1f iterations/s >= %.1f", name, st.WorkRate, *m)
			}
		}
		if m := ck.MinIterationRate; m != nil {
			if st.IterationRate < *m {
				fail("min_iteration_rate", "cgroup %s: %.1f iterations/s, less than %.1f", name, st.IterationRate, *m)
			} else {
				pass("min_iteration_rate", "cgroup %s: %.1f iterations/s >= %.1f", name, st.IterationRate, *m)
			}
		}
	}
	if m := ck.MaxThroughputCV; m != nil && st.ThroughputCV > 0 {
		if st.ThroughputCV > *m {
			fail("max_throughput_cv", "cgroup %s: work rate cv over 100 ms slices %.3f, more than %.3f", name, st.ThroughputCV, *m)
		} else {
			pass("max_throughput_cv", "cgroup %s: work rate cv %.3f <= %.3f", name, st.ThroughputCV, *m)
		}
	}
}

// totalPerf fills the scenario's figures: rates added up, the slowest
// worker's rate, the worst cv, latency histograms merged.
func totalPerf(t *payload.ScenarioStats, hs *hists) {
	first := true
	for _, c := range t.Cgroups {
		t.IterationRate += c.IterationRate
		if c.Workers > 0 && (first || c.WorkRate < t.WorkRate) {
			t.WorkRate, first = c.WorkRate, false
		}
		t.ThroughputCV = max(t.ThroughputCV, c.ThroughputCV)
	}
	total := latencies(&t.WakeLatency, &t.TimerLatency, &t.RequestLatency)
	for i, p := range total {
		*p = latencyOf(&hs[i])
	}
	for _, c := range t.Cgroups {
		for i, from := range []*payload.Latency{c.WakeLatency, c.TimerLatency, c.RequestLatency} {
			if to := *total[i]; from != nil && to != nil {
				to.SchedWaitNS += from.SchedWaitNS
				to.SchedSlices += from.SchedSlices
			}
		}
	}
}
