package workload

import "github.com/ktstr-go/ktstr/internal/hist"

// Stats are one worker's measurements over its measured window: from the
// moment Spawn released the workers to the moment the worker saw Stop (or
// could not go on). Durations are nanoseconds. The doc.go table says where
// each value comes from.
type Stats struct {
	// Index is the worker's position in the spawn, 0..Count-1.
	Index int    `json:"index"`
	PID   int    `json:"pid"`
	Type  Type   `json:"type"`
	Name  string `json:"name,omitempty"`
	// TID is the thread that ran the work loop. It is the PID: the loop
	// runs on the process's main thread, so /proc/PID/schedstat and
	// /proc/PID/sched read from outside describe the same task.
	TID int `json:"tid"`

	Iterations uint64 `json:"iterations"`
	WallNS     uint64 `json:"wall_ns"`
	RunNS      uint64 `json:"run_ns"`
	WaitNS     uint64 `json:"wait_ns"`
	Timeslices uint64 `json:"timeslices"`
	// MaxGapNS is the longest wall-clock time between two consecutive
	// iteration completions (the first gap starts when the window opens).
	MaxGapNS uint64 `json:"max_gap_ns"`
	// RateSlices is the number of whole RateSlice slices of the window,
	// RateCV the coefficient of variation of the iterations completed in
	// each (0 with fewer than two): how steady the work rate was.
	RateSlices uint64  `json:"rate_slices"`
	RateCV     float64 `json:"rate_cv"`
	// Latency is the histogram of the latency the type measures (wake_latency,
	// timer_latency; nil for the others), LatencyKind which ("wake", "timer").
	Latency     *hist.Sparse `json:"latency,omitempty"`
	LatencyKind string       `json:"latency_kind,omitempty"`

	Migrations uint64 `json:"migrations"`
	// MigrationsFrom says where Migrations comes from: "sched" (the
	// kernel's se.nr_migrations) or "getcpu" (CPU changes seen between
	// iterations, where /proc/PID/sched is absent).
	MigrationsFrom string `json:"migrations_from"`
	// CPUChanges counts iterations that completed on a different CPU than
	// the one before.
	CPUChanges uint64 `json:"cpu_changes"`
	// CPUs are the CPUs the worker completed iterations on, sorted.
	CPUs []int `json:"cpus"`
	// CrossLLC and CrossNode count the CPU changes (as CPUChanges sees
	// them) that crossed an LLC or a NUMA node boundary; 0 when the spawn
	// gave no Domains.
	CrossLLC  uint64 `json:"cross_llc"`
	CrossNode uint64 `json:"cross_node"`
	// Pages is the worker's resident anonymous pages at the end of the
	// window (/proc/self/numa_maps), LocalPages those on the NUMA nodes
	// of the CPUs it ran on; both 0 without Domains or numa_maps.
	Pages      uint64 `json:"pages,omitempty"`
	LocalPages uint64 `json:"local_pages,omitempty"`

	VoluntaryCtxSwitches   uint64 `json:"voluntary_ctxt_switches"`
	InvoluntaryCtxSwitches uint64 `json:"involuntary_ctxt_switches"`
	// Nice is the worker thread's nice value at the end of the window.
	Nice int `json:"nice"`

	// Reported is true when the worker delivered these measurements
	// itself. False: it died or hung, and only the identity and exit
	// fields below are meaningful.
	Reported bool `json:"reported"`
	// Exited is true when the worker process ended abnormally: on its own
	// before Stop, with a non-zero status, or by a signal (Stop's SIGKILL
	// included).
	Exited   bool `json:"exited"`
	ExitCode int  `json:"exit_code"`
	Signal   int  `json:"signal,omitempty"`
	// TimedOut is true when the worker had not finished within Stop's
	// timeout and Stop killed it with SIGKILL.
	TimedOut bool `json:"timed_out,omitempty"`
	// Error says what went wrong, from the worker (a peer that went away, a
	// failed system call) or from Stop (the worker's last stderr lines).
	Error string `json:"error,omitempty"`
}

// OK reports whether the worker ran and reported normally.
func (s *Stats) OK() bool {
	return s.Reported && !s.Exited && !s.TimedOut && s.Error == ""
}
