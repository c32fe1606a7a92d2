package payload

import (
	"fmt"
	"maps"
	"slices"

	"github.com/vmihailenco/msgpack/v5"

	"github.com/ktstr-go/ktstr/lib/wire"
)

// Verdict is a position in ktstr's lattice. Folding takes the highest:
// Fail > Inconclusive > Pass > Skip.
type Verdict string

const (
	Skip         Verdict = "skip"
	Pass         Verdict = "pass"
	Inconclusive Verdict = "inconclusive"
	Fail         Verdict = "fail"
)

// Rank orders verdicts for folding; an unknown verdict ranks as Fail so
// that a garbled result can never pass.
func (v Verdict) Rank() int {
	switch v {
	case Skip:
		return 0
	case Pass:
		return 1
	case Inconclusive:
		return 2
	}
	return 3
}

// Worse returns the higher of a and b in the lattice.
func Worse(a, b Verdict) Verdict {
	if b.Rank() > a.Rank() {
		return b
	}
	return a
}

// Detail kinds (ktstr's DetailKind, snake_case).
const (
	KindStarved       = "starved"
	KindStuck         = "stuck"
	KindUnfair        = "unfair"
	KindIsolation     = "isolation"
	KindMigration     = "migration"
	KindBenchmark     = "benchmark"
	KindMonitor       = "monitor"
	KindSchedulerDied = "scheduler_died"
	KindNotAttached   = "scheduler_not_attached"
	// KindSchedulerDetached: the scheduler did not stay attached, with the
	// same sched_ext ops, from the scenario's start to its end, although
	// its process lived on.
	KindSchedulerDetached = "scheduler_detached"
	KindSkip              = "skip"
	KindOther             = "other"
	// KindInfra on a failing outcome says the harness, not the scheduler,
	// failed (the guest did not get the machine shape it was given): the
	// verdict is an infrastructure error, not a test failure.
	KindInfra = "infrastructure"
)

// Outcome is one check's result. Pass outcomes carry no detail.
type Outcome struct {
	Verdict Verdict `msgpack:"verdict" json:"verdict"`
	Kind    string  `msgpack:"kind,omitempty" json:"kind,omitempty"`
	Message string  `msgpack:"message,omitempty" json:"message,omitempty"`
}

// PassDetail records a check that passed, for the report.
type PassDetail struct {
	Check   string `msgpack:"check" json:"check"`
	Message string `msgpack:"message,omitempty" json:"message,omitempty"`
}

// CgroupStats are the measurements of one cgroup's workers.
type CgroupStats struct {
	Name       string  `msgpack:"name" json:"name"`
	Workers    int     `msgpack:"workers" json:"workers"`
	CPUs       int     `msgpack:"cpus" json:"cpus"` // distinct CPUs the workers ran on
	Iterations uint64  `msgpack:"iterations" json:"iterations"`
	Migrations uint64  `msgpack:"migrations" json:"migrations"`
	RunNS      uint64  `msgpack:"run_ns" json:"run_ns"`         // total on-CPU time
	WaitNS     uint64  `msgpack:"wait_ns" json:"wait_ns"`       // total runnable-but-waiting time
	SpreadPct  float64 `msgpack:"spread_pct" json:"spread_pct"` // (max-min)/max of per-worker on-CPU time
	MaxGapMS   float64 `msgpack:"max_gap_ms" json:"max_gap_ms"` // longest off-CPU gap of any worker
	// Moves across LLCs and NUMA nodes seen between iterations, and the
	// share of resident pages on the nodes the workers ran on (0: not
	// measured).
	CrossLLCMigrations  uint64  `msgpack:"cross_llc_migrations,omitempty" json:"cross_llc_migrations,omitempty"`
	CrossNodeMigrations uint64  `msgpack:"cross_node_migrations,omitempty" json:"cross_node_migrations,omitempty"`
	PageLocality        float64 `msgpack:"page_locality,omitempty" json:"page_locality,omitempty"`
	// Performance figures (absent or zero: not measured). IterationRate
	// is the throughput: iterations per second of each worker's window,
	// added up over the workers; WorkRate the slowest worker's iterations
	// per second; ThroughputCV the largest, over the workers, coefficient
	// of variation of a worker's iterations per 100 ms slice (how unsteady
	// its rate was over time). WakeLatency and TimerLatency summarise the
	// merged latency histograms of the wake_latency and timer_latency
	// workers.
	IterationRate float64  `msgpack:"iteration_rate,omitempty" json:"iteration_rate,omitempty"`
	WorkRate      float64  `msgpack:"work_rate,omitempty" json:"work_rate,omitempty"`
	ThroughputCV  float64  `msgpack:"throughput_cv,omitempty" json:"throughput_cv,omitempty"`
	WakeLatency   *Latency `msgpack:"wake_latency,omitempty" json:"wake_latency,omitempty"`
	TimerLatency  *Latency `msgpack:"timer_latency,omitempty" json:"timer_latency,omitempty"`
	// RequestLatency: open_loop's, from a request's arrival to its end;
	// its Count over the window is the request throughput.
	RequestLatency *Latency `msgpack:"request_latency,omitempty" json:"request_latency,omitempty"`
}

// Latency summarises a latency histogram (bounded, log-bucketed:
// percentiles exact below 128 ns, within 1/64 above, never below the
// true value). Nanoseconds.
type Latency struct {
	Count  uint64  `msgpack:"count" json:"count"`
	MeanNS float64 `msgpack:"mean_ns" json:"mean_ns"`
	P50NS  uint64  `msgpack:"p50_ns" json:"p50_ns"`
	P90NS  uint64  `msgpack:"p90_ns" json:"p90_ns"`
	P99NS  uint64  `msgpack:"p99_ns" json:"p99_ns"`
	P999NS uint64  `msgpack:"p999_ns" json:"p999_ns"`
	MaxNS  uint64  `msgpack:"max_ns" json:"max_ns"`
	// CV is the coefficient of variation (standard deviation over mean).
	CV float64 `msgpack:"cv" json:"cv"`
	// SchedWaitNS and SchedSlices are the kernel's view of the recording
	// workers (schedstat): their time runnable but waiting, and the times
	// they were put on a CPU. SchedWaitNS/SchedSlices, the wait per time
	// on a CPU, cross-checks MeanNS: each wake-up starts a time on a CPU,
	// and its latency includes the wait before it.
	SchedWaitNS uint64 `msgpack:"sched_wait_ns,omitempty" json:"sched_wait_ns,omitempty"`
	SchedSlices uint64 `msgpack:"sched_slices,omitempty" json:"sched_slices,omitempty"`
}

// ScenarioStats summarise a scenario run.
type ScenarioStats struct {
	Cgroups             []CgroupStats `msgpack:"cgroups,omitempty" json:"cgroups,omitempty"`
	Workers             int           `msgpack:"workers" json:"workers"`
	CPUs                int           `msgpack:"cpus" json:"cpus"`
	Migrations          uint64        `msgpack:"migrations" json:"migrations"`
	WorstSpreadPct      float64       `msgpack:"worst_spread_pct" json:"worst_spread_pct"`
	WorstGapMS          float64       `msgpack:"worst_gap_ms" json:"worst_gap_ms"`
	TotalIterations     uint64        `msgpack:"total_iterations" json:"total_iterations"`
	CrossLLCMigrations  uint64        `msgpack:"cross_llc_migrations,omitempty" json:"cross_llc_migrations,omitempty"`
	CrossNodeMigrations uint64        `msgpack:"cross_node_migrations,omitempty" json:"cross_node_migrations,omitempty"`
	// Performance figures (absent or zero: not measured). IterationRate
	// is the throughput: iterations per second of each worker's window,
	// added up over the workers; WorkRate the slowest worker's iterations
	// per second; ThroughputCV the largest, over the workers, coefficient
	// of variation of a worker's iterations per 100 ms slice (how unsteady
	// its rate was over time). WakeLatency and TimerLatency summarise the
	// merged latency histograms of the wake_latency and timer_latency
	// workers.
	IterationRate float64  `msgpack:"iteration_rate,omitempty" json:"iteration_rate,omitempty"`
	WorkRate      float64  `msgpack:"work_rate,omitempty" json:"work_rate,omitempty"`
	ThroughputCV  float64  `msgpack:"throughput_cv,omitempty" json:"throughput_cv,omitempty"`
	WakeLatency   *Latency `msgpack:"wake_latency,omitempty" json:"wake_latency,omitempty"`
	TimerLatency  *Latency `msgpack:"timer_latency,omitempty" json:"timer_latency,omitempty"`
	// RequestLatency: open_loop's, from a request's arrival to its end;
	// its Count over the window is the request throughput.
	RequestLatency *Latency `msgpack:"request_latency,omitempty" json:"request_latency,omitempty"`
}

// AssertResult is the TEST payload: the guest's verdict on the scenario.
// An empty Outcomes list means Pass (as in ktstr).
type AssertResult struct {
	Scenario     string        `msgpack:"scenario,omitempty" json:"scenario,omitempty"`
	Outcomes     []Outcome     `msgpack:"outcomes" json:"outcomes"`
	Passes       []PassDetail  `msgpack:"passes,omitempty" json:"passes,omitempty"`
	Stats        ScenarioStats `msgpack:"stats" json:"stats"`
	Measurements Measurements  `msgpack:"measurements,omitempty" json:"measurements,omitempty"`
	InfoNotes    []string      `msgpack:"info_notes,omitempty" json:"info_notes,omitempty"`
	// Scheduler names the scheduler under test (nil: the kernel's own).
	Scheduler *SchedulerInfo `msgpack:"scheduler,omitempty" json:"scheduler,omitempty"`
	// StatsAfterDetach are the measurements of the time from the moment
	// the scheduler was lost (Scheduler.Detached) to the moment the
	// workers stopped, under the kernel's own scheduler; Stats then cover
	// only the time before, and the checks judge only that.
	StatsAfterDetach *ScenarioStats `msgpack:"stats_after_detach,omitempty" json:"stats_after_detach,omitempty"`
	// Machine is the shape the guest's kernel reported.
	Machine *Machine `msgpack:"machine,omitempty" json:"machine,omitempty"`
}

// SchedulerInfo names the scheduler under test and says whether it stayed
// attached.
type SchedulerInfo struct {
	Binary    string  `msgpack:"binary" json:"binary"`                     // file name of the binary run
	SHA256    string  `msgpack:"sha256,omitempty" json:"sha256,omitempty"` // of that file, hex
	Ops       string  `msgpack:"ops,omitempty" json:"ops,omitempty"`       // sched_ext's root/ops once attached
	EnableSeq int64   `msgpack:"enable_seq" json:"enable_seq"`             // sched_ext's enable_seq once attached; -1 unknown
	AttachMS  float64 `msgpack:"attach_ms" json:"attach_ms"`               // from its start to its attach
	// Detached says how the scheduler was lost before the scenario ended
	// (nil: it stayed attached with the same ops and enable_seq).
	Detached *SchedDetach `msgpack:"detached,omitempty" json:"detached,omitempty"`
}

// SchedDetach is how and when the scheduler under test was lost.
type SchedDetach struct {
	// AtMS is when the agent saw it, in ms since the scenario start
	// (negative: before the scenario started).
	AtMS float64 `msgpack:"at_ms" json:"at_ms"`
	// ForMS is how long the scenario then still ran (the agent stops it
	// at once: the time the workers took to stop).
	ForMS float64 `msgpack:"for_ms" json:"for_ms"`
	// How: "detached" (sched_ext's state, ops or enable_seq changed),
	// "disabled" (the kernel logged it disabled), or "exited" (its
	// process ended).
	How       string `msgpack:"how" json:"how"`
	State     string `msgpack:"state,omitempty" json:"state,omitempty"` // sched_ext's state then
	Ops       string `msgpack:"ops,omitempty" json:"ops,omitempty"`     // root/ops then ("" none)
	EnableSeq int64  `msgpack:"enable_seq" json:"enable_seq"`           // enable_seq then
	// Kernel is the kernel's "sched_ext: BPF scheduler ... disabled
	// (reason)" line, and KernelS its kernel time (s since boot).
	Kernel  string  `msgpack:"kernel,omitempty" json:"kernel,omitempty"`
	KernelS float64 `msgpack:"kernel_s,omitempty" json:"kernel_s,omitempty"`
	// Alive is true when its process still ran when the agent saw it.
	Alive bool `msgpack:"alive" json:"alive"`
	// ReattachedMS is when it (or another scheduler) attached again, ms
	// since the scenario start; 0 when it did not before the end.
	ReattachedMS float64 `msgpack:"reattached_ms,omitempty" json:"reattached_ms,omitempty"`
}

// Machine is the machine shape as the guest's kernel reported it (sysfs),
// CPU groups in the kernel's list format ("0-3").
type Machine struct {
	// Shape is "N,L,C,T" when the machine is uniform, else "".
	Shape string   `msgpack:"shape,omitempty" json:"shape,omitempty"`
	CPUs  int      `msgpack:"cpus" json:"cpus"`
	LLCs  []string `msgpack:"llcs,omitempty" json:"llcs,omitempty"`
	Nodes []string `msgpack:"nodes,omitempty" json:"nodes,omitempty"`
	SMT   bool     `msgpack:"smt,omitempty" json:"smt,omitempty"`
}

// Measurements are named values a scenario measured. They encode with
// sorted keys, so that equal results give equal bytes.
type Measurements map[string]float64

// EncodeMsgpack implements msgpack.CustomEncoder.
func (m Measurements) EncodeMsgpack(enc *msgpack.Encoder) error {
	if m == nil {
		return enc.EncodeNil()
	}
	if err := enc.EncodeMapLen(len(m)); err != nil {
		return err
	}
	for _, k := range slices.Sorted(maps.Keys(m)) {
		if err := enc.EncodeString(k); err != nil {
			return err
		}
		if err := enc.EncodeFloat64(m[k]); err != nil {
			return err
		}
	}
	return nil
}

// Verdict folds the outcomes: Fail > Inconclusive > Pass > Skip, and Pass
// for an empty list.
func (r *AssertResult) Verdict() Verdict {
	if len(r.Outcomes) == 0 {
		return Pass
	}
	v := Skip
	for _, o := range r.Outcomes {
		v = Worse(v, o.Verdict)
	}
	return v
}

// MarshalAssertResult encodes r for a TEST frame.
func MarshalAssertResult(r *AssertResult) ([]byte, error) {
	return marshal(r)
}

// UnmarshalAssertResult decodes a TEST payload. The key "outcomes" must be
// present (its value may be nil or empty: Pass), so that a garbled or
// truncated payload can never read as a pass; every outcome's verdict must
// be one of the four lattice values.
func UnmarshalAssertResult(p []byte) (*AssertResult, error) {
	var r AssertResult
	if err := unmarshal(wire.TypeTestResult, p, &r, "outcomes"); err != nil {
		return nil, err
	}
	for i, o := range r.Outcomes {
		switch o.Verdict {
		case Skip, Pass, Inconclusive, Fail:
		default:
			return nil, invalid(wire.TypeTestResult, fmt.Sprintf("outcomes[%d].verdict", i), "unknown verdict %q", o.Verdict)
		}
	}
	return &r, nil
}
