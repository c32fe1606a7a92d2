package compare

import (
	"strings"

	"github.com/ktstr-go/ktstr/lib/wire/payload"
)

// Direction says which way a metric is better.
type Direction int

const (
	LowerIsBetter Direction = iota
	HigherIsBetter
)

func (d Direction) String() string {
	if d == HigherIsBetter {
		return "higher"
	}
	return "lower"
}

// Def is one metric the comparison knows: its name, unit, direction and
// default threshold (the relative change, in percent, below which a
// significant difference is still called no change).
type Def struct {
	Name      string
	Unit      string
	Dir       Direction
	Threshold float64
}

// Defs are the metrics, in the order of the tables. The thresholds are
// wider where the measure is noisier (tails, coefficients of variation).
var Defs = []Def{
	{"iteration_rate", "it/s", HigherIsBetter, 5},
	{"work_rate", "it/s", HigherIsBetter, 10},
	{"throughput_cv", "", LowerIsBetter, 25},
	{"wake_p50_ns", "ns", LowerIsBetter, 10},
	{"wake_p90_ns", "ns", LowerIsBetter, 10},
	{"wake_p99_ns", "ns", LowerIsBetter, 15},
	{"wake_p999_ns", "ns", LowerIsBetter, 25},
	{"wake_max_ns", "ns", LowerIsBetter, 50},
	{"wake_cv", "", LowerIsBetter, 25},
	{"timer_p50_ns", "ns", LowerIsBetter, 10},
	{"timer_p99_ns", "ns", LowerIsBetter, 15},
	{"timer_max_ns", "ns", LowerIsBetter, 50},
	{"request_p50_ns", "ns", LowerIsBetter, 10},
	{"request_p99_ns", "ns", LowerIsBetter, 15},
	{"request_max_ns", "ns", LowerIsBetter, 50},
	{"max_gap_ms", "ms", LowerIsBetter, 25},
}

// def returns the definition of name.
func def(name string) (Def, bool) {
	for _, d := range Defs {
		if d.Name == name {
			return d, true
		}
	}
	return Def{}, false
}

// Overall is the scope of the whole scenario's figures; a cgroup's scope
// is "cg:" and its name.
const Overall = "all"

// metricsOf returns a run's metric values by scope and name; a metric
// not measured (no latency workers, a zero rate) is absent.
func metricsOf(r *payload.AssertResult, cgroups bool) map[key]float64 {
	m := map[key]float64{}
	add := func(scope string, rate, work, cv, gapMS float64, wake, timer, request *payload.Latency) {
		put := func(name string, v float64) {
			if v > 0 {
				m[key{scope, name}] = v
			}
		}
		put("iteration_rate", rate)
		put("work_rate", work)
		put("throughput_cv", cv)
		if wake != nil && wake.Count > 0 {
			put("wake_p50_ns", float64(wake.P50NS))
			put("wake_p90_ns", float64(wake.P90NS))
			put("wake_p99_ns", float64(wake.P99NS))
			put("wake_p999_ns", float64(wake.P999NS))
			put("wake_max_ns", float64(wake.MaxNS))
			put("wake_cv", wake.CV)
		}
		if timer != nil && timer.Count > 0 {
			put("timer_p50_ns", float64(timer.P50NS))
			put("timer_p99_ns", float64(timer.P99NS))
			put("timer_max_ns", float64(timer.MaxNS))
		}
		if request != nil && request.Count > 0 {
			put("request_p50_ns", float64(request.P50NS))
			put("request_p99_ns", float64(request.P99NS))
			put("request_max_ns", float64(request.MaxNS))
		}
		put("max_gap_ms", gapMS)
	}
	s := &r.Stats
	add(Overall, s.IterationRate, s.WorkRate, s.ThroughputCV, s.WorstGapMS, s.WakeLatency, s.TimerLatency, s.RequestLatency)
	if cgroups {
		for _, c := range s.Cgroups {
			add("cg:"+strings.ToValidUTF8(c.Name, "?"), c.IterationRate, c.WorkRate, c.ThroughputCV, c.MaxGapMS, c.WakeLatency, c.TimerLatency, c.RequestLatency)
		}
	}
	return m
}

type key struct{ scope, name string }
