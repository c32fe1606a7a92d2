package scenario

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/ktstr-go/ktstr/internal/hist"
	"github.com/ktstr-go/ktstr/lib/wire/payload"
)

// latWorker is a wake_latency worker of 1 s that recorded lats.
func latWorker(iters uint64, cv float64, lats ...uint64) WorkerResult {
	h := &hist.Hist{}
	for _, l := range lats {
		h.Record(l)
	}
	w := worker(iters, 500e6, 1e9, 1e6, 0)
	w.Latency, w.LatencyKind, w.RateCV = h, "wake", cv
	w.WaitNS, w.Timeslices = 1000, 10
	return w
}

// TestEvaluatePerf: per-cgroup figures from the workers (rates per
// second of each worker's window, histograms merged), the total over the
// cgroups, exact percentiles below 128 ns.
func TestEvaluatePerf(t *testing.T) {
	var lats []uint64
	for v := uint64(1); v <= 100; v++ {
		lats = append(lats, v)
	}
	r := Evaluate(&Scenario{Name: "t"}, []CgroupResult{
		{Spec: Cgroup{Name: "a"}, Workers: []WorkerResult{latWorker(100, 0.1, lats[:50]...), latWorker(300, 0.3, lats[50:]...)}},
		{Spec: Cgroup{Name: "b"}, Workers: []WorkerResult{worker(50, 250e6, 500e6, 1e6, 1)}},
	})
	a, b, all := r.Stats.Cgroups[0], r.Stats.Cgroups[1], r.Stats
	if a.IterationRate != 400 || a.WorkRate != 100 || a.ThroughputCV != 0.3 {
		t.Errorf("cgroup a: rate %v, work rate %v, cv %v; want 400, 100, 0.3", a.IterationRate, a.WorkRate, a.ThroughputCV)
	}
	wantLat := &payload.Latency{Count: 100, MeanNS: 50.5, P50NS: 50, P90NS: 90, P99NS: 99, P999NS: 100, MaxNS: 100, CV: a.WakeLatency.CV,
		SchedWaitNS: 2000, SchedSlices: 20}
	if d := cmp.Diff(wantLat, a.WakeLatency); d != "" {
		t.Errorf("cgroup a wake latency (-want +got):\n%s", d)
	}
	if b.WakeLatency != nil || b.IterationRate != 100 || b.WorkRate != 100 {
		t.Errorf("cgroup b: %+v", b)
	}
	if all.IterationRate != 500 || all.WorkRate != 100 || all.ThroughputCV != 0.3 || all.WakeLatency == nil || all.WakeLatency.P99NS != 99 || all.TimerLatency != nil ||
		all.WakeLatency.SchedWaitNS != 2000 || all.WakeLatency.SchedSlices != 20 {
		t.Errorf("total: rate %v work %v cv %v wake %+v timer %+v", all.IterationRate, all.WorkRate, all.ThroughputCV, all.WakeLatency, all.TimerLatency)
	}
}

// TestEvaluateRequestLatency: open_loop's servers' histograms merge into
// request_latency; its generator (an empty histogram) adds no schedstat
// figures.
func TestEvaluateRequestLatency(t *testing.T) {
	server := latWorker(3, 0, 1000, 2000, 3000)
	server.LatencyKind = "request"
	gen := worker(3, 1e6, 1e9, 1e6, 0)
	gen.Latency, gen.LatencyKind, gen.WaitNS, gen.Timeslices = &hist.Hist{}, "request", 99, 99
	r := Evaluate(&Scenario{Name: "t"}, []CgroupResult{{Spec: Cgroup{Name: "r"}, Workers: []WorkerResult{gen, server, server}}})
	for _, l := range []*payload.Latency{r.Stats.Cgroups[0].RequestLatency, r.Stats.RequestLatency} {
		if l == nil || l.Count != 6 || l.P50NS != 2015 || l.MaxNS != 3000 || l.SchedWaitNS != 2000 || l.SchedSlices != 20 {
			t.Errorf("request latency %+v; want 6 values, p50 2015 (2000's bucket top), max 3000, schedstat of the two servers", l)
		}
	}
	if r.Stats.WakeLatency != nil || r.Stats.TimerLatency != nil {
		t.Errorf("wake or timer latency from request workers")
	}
}

func TestPerfChecks(t *testing.T) {
	lats := []uint64{1000, 1000, 1000, 50000}
	group := func(c *Checks) []CgroupResult {
		return []CgroupResult{{Spec: Cgroup{Name: "a", Checks: c}, Workers: []WorkerResult{latWorker(100, 0.2, lats...), latWorker(100, 0.2, lats...)}}}
	}
	for _, tc := range []struct {
		name   string
		checks Checks
		want   []string
		passes string
	}{
		{"none", Checks{}, nil, ""},
		{"p99 ok", Checks{PerfChecks: PerfChecks{MaxP99WakeLatencyNS: ptr(uint64(60000))}}, nil, "max_p99_wake_latency_ns"},
		{"p99 over", Checks{PerfChecks: PerfChecks{MaxP99WakeLatencyNS: ptr(uint64(40000))}}, []string{"fail:benchmark"}, ""},
		{"cv over", Checks{PerfChecks: PerfChecks{MaxWakeLatencyCV: ptr(0.5)}}, []string{"fail:benchmark"}, ""},
		{"work rate", Checks{PerfChecks: PerfChecks{MinWorkRate: ptr(150.0)}}, []string{"fail:benchmark"}, ""},
		{"iteration rate ok", Checks{PerfChecks: PerfChecks{MinIterationRate: ptr(150.0)}}, nil, "min_iteration_rate"},
		{"throughput cv", Checks{PerfChecks: PerfChecks{MaxThroughputCV: ptr(0.1)}}, []string{"fail:benchmark"}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := Evaluate(&Scenario{Name: "t"}, group(&tc.checks))
			if d := cmp.Diff(tc.want, kinds(r)); d != "" {
				t.Errorf("outcomes (-want +got):\n%s", d)
			}
			var passes []string
			for _, p := range r.Passes {
				passes = append(passes, p.Check)
			}
			if tc.passes != "" && !strings.Contains(strings.Join(passes, " "), tc.passes) {
				t.Errorf("passes %v lack %s", passes, tc.passes)
			}
		})
	}
}

func TestPerfChecksParse(t *testing.T) {
	s, err := Parse([]byte(`{"name":"x","cgroups":[{"name":"a","workers":1,"work":{"type":"spin"}}],"steps":[{"hold_ms":10}],
		"checks":{"max_p99_wake_latency_ns":500000,"max_throughput_cv":0.5,"min_iteration_rate":10}}`))
	if err != nil {
		t.Fatal(err)
	}
	if *s.Checks.MaxP99WakeLatencyNS != 500000 || *s.Checks.MaxThroughputCV != 0.5 || *s.Checks.MinIterationRate != 10 {
		t.Errorf("checks %+v", s.Checks.PerfChecks)
	}
	for _, bad := range []string{`"max_p99_wake_latency_ns":0`, `"min_work_rate":-1`} {
		_, err := Parse([]byte(`{"name":"x","cgroups":[{"name":"a","workers":1,"work":{"type":"spin"}}],"steps":[{"hold_ms":10}],"checks":{` + bad + `}}`))
		if err == nil {
			t.Errorf("%s: no error", bad)
		}
	}
}
