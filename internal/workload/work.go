package workload

import (
	"errors"
	"fmt"
	"slices"
	"strings"
)

// Type names a work type. The values are the strings a scenario file uses.
type Type string

// The work types. The doc.go table says what one iteration of each is.
const (
	Spin          Type = "spin"
	Yield         Type = "yield"
	Bursty        Type = "bursty"
	Pipe          Type = "pipe"
	FutexPingPong Type = "futex_pingpong"
	FutexFanout   Type = "futex_fanout"
	ForkExit      Type = "fork_exit"
	Cache         Type = "cache"
	NiceSweep     Type = "nice_sweep"
	AffinityChurn Type = "affinity_churn"
	Mutex         Type = "mutex"
	// The latency types (latency_linux.go) record each iteration's
	// latency in a histogram.
	WakeLatency  Type = "wake_latency"
	TimerLatency Type = "timer_latency"
	OpenLoop     Type = "open_loop"
)

// Types returns every work type, in the order of the doc.go table.
func Types() []Type {
	return append(append([]Type{Spin, Yield, Bursty, Pipe, FutexPingPong, FutexFanout, ForkExit, Cache, NiceSweep, AffinityChurn, Mutex}, moreTypes...),
		WakeLatency, TimerLatency, OpenLoop)
}

// Defaults of the parameters, used where a parameter is zero.
const (
	DefaultSpinLoops    = 20000 // spin, nice_sweep, affinity_churn: LCG steps per iteration
	DefaultYieldLoops   = 1000  // yield: LCG steps before each sched_yield
	DefaultBurstSpinUS  = 500   // bursty: busy time per iteration
	DefaultBurstSleepUS = 500   // bursty: sleep per iteration
	DefaultFanoutGroup  = 4     // futex_fanout: workers per group (1 waker + 3 waiters)
	DefaultFanoutLoops  = 1000  // futex_fanout: LCG steps per wake, waker and waiters
	DefaultCacheLines   = 1024  // cache: cache lines touched per iteration
	DefaultCacheSizeKB  = 32 << 10
	DefaultChurnEvery   = 10   // affinity_churn: iterations between moves
	DefaultMutexHold    = 1000 // mutex: LCG steps inside the lock
	DefaultMutexLoops   = 1000 // mutex: LCG steps outside the lock
)

// Upper bounds of the parameters; Validate refuses larger values.
const (
	MaxLoops     = 1 << 30
	MaxSpinUS    = 1000000 // 1 s
	MaxSleepUS   = 1000000 // 1 s: a sleeping worker notices Stop only between sleeps
	MaxGroupSize = 1024
	MaxSizeKB    = 4 << 20 // 4 GiB
	MaxEvery     = 1 << 30
	MaxCPU       = 1023 // affinity is handled with a 1024-CPU mask
)

// Work is one work type and its parameters. A zero parameter means its
// default (see the doc.go table); a parameter the type does not use must be
// zero. JSON keys are the scenario file's.
type Work struct {
	Type Type `json:"type"`
	// Loops is the amount of computation per iteration, in steps of a
	// 64-bit linear congruential generator (about 1 ns each); for cache it
	// is the number of cache lines touched per iteration.
	Loops int `json:"loops,omitempty"`
	// HoldLoops is, for mutex, the computation done while holding the lock.
	HoldLoops int `json:"hold_loops,omitempty"`
	// SpinUS and SleepUS are bursty's busy and sleeping time per iteration,
	// in microseconds of wall-clock time.
	SpinUS  int `json:"spin_us,omitempty"`
	SleepUS int `json:"sleep_us,omitempty"`
	// GroupSize is, for futex_fanout, the workers per group (one waker and
	// GroupSize-1 waiters); for mutex, the workers sharing one lock (zero:
	// all the workers of the spawn).
	GroupSize int `json:"group_size,omitempty"`
	// SizeKB is cache's buffer size in KiB, rounded down to a power of two.
	SizeKB int `json:"size_kb,omitempty"`
	// Nices is nice_sweep's list of nice values; worker i takes
	// Nices[i % len(Nices)]. Empty: an even sweep from -10 to +10.
	Nices []int `json:"nices,omitempty"`
	// Every is, for affinity_churn, how many iterations run between two
	// moves to the next allowed CPU.
	Every int `json:"every,omitempty"`
	// Phases are a sequence's phases, run in order each iteration.
	Phases []Phase `json:"phases,omitempty"`
}

// ErrUnknownType is returned (wrapped) by Validate for a type it does not know.
var ErrUnknownType = errors.New("workload: unknown work type")

// ErrBadParam is returned (wrapped) by Validate for a parameter out of range
// or not used by the type.
var ErrBadParam = errors.New("workload: bad parameter")

// param describes one numeric parameter for Validate.
type param struct {
	name string
	get  func(*Work) int
	max  int
}

var params = []param{
	{"loops", func(w *Work) int { return w.Loops }, MaxLoops},
	{"hold_loops", func(w *Work) int { return w.HoldLoops }, MaxLoops},
	{"spin_us", func(w *Work) int { return w.SpinUS }, MaxSpinUS},
	{"sleep_us", func(w *Work) int { return w.SleepUS }, MaxSleepUS},
	{"group_size", func(w *Work) int { return w.GroupSize }, MaxGroupSize},
	{"size_kb", func(w *Work) int { return w.SizeKB }, MaxSizeKB},
	{"every", func(w *Work) int { return w.Every }, MaxEvery},
}

// uses lists the parameters each type takes.
var uses = map[Type][]string{
	Spin:          {"loops"},
	Yield:         {"loops"},
	Bursty:        {"spin_us", "sleep_us"},
	Pipe:          {"loops"},
	FutexPingPong: {"loops"},
	FutexFanout:   {"loops", "group_size"},
	ForkExit:      {"loops"},
	Cache:         {"loops", "size_kb"},
	NiceSweep:     {"loops", "nices"},
	AffinityChurn: {"loops", "every"},
	Mutex:         {"loops", "hold_loops", "group_size"},
	WakeLatency:   {"loops", "sleep_us", "group_size"},
	TimerLatency:  {"loops", "sleep_us"},
	OpenLoop:      {"loops", "sleep_us", "group_size"},
}

// Validate reports the first problem with w: an unknown type, a negative or
// too large parameter, or a parameter the type does not use.
func (w Work) Validate() error {
	u, ok := uses[w.Type]
	if !ok {
		names := make([]string, 0, len(uses))
		for _, t := range Types() {
			names = append(names, string(t))
		}
		return fmt.Errorf("%w %q (have %s)", ErrUnknownType, w.Type, strings.Join(names, ", "))
	}
	for _, p := range params {
		v := p.get(&w)
		switch {
		case v == 0:
			continue
		case !slices.Contains(u, p.name):
			return fmt.Errorf("%w: %s is not a parameter of %s (it takes %s)", ErrBadParam, p.name, w.Type, strings.Join(u, ", "))
		case v < 0 || v > p.max:
			return fmt.Errorf("%w: %s %s = %d, want 0 (default) or 1..%d", ErrBadParam, w.Type, p.name, v, p.max)
		}
	}
	if len(w.Nices) > 0 {
		if w.Type != NiceSweep {
			return fmt.Errorf("%w: nices is not a parameter of %s (it takes %s)", ErrBadParam, w.Type, strings.Join(u, ", "))
		}
		for i, n := range w.Nices {
			if n < -20 || n > 19 {
				return fmt.Errorf("%w: nice_sweep nices[%d] = %d, want -20..19", ErrBadParam, i, n)
			}
		}
	}
	if (w.Type == FutexFanout || w.Type == WakeLatency || w.Type == OpenLoop) && w.GroupSize == 1 {
		return fmt.Errorf("%w: %s group_size = 1, want 0 (default %d) or 2..%d", ErrBadParam, w.Type, DefaultFanoutGroup, MaxGroupSize)
	}
	return w.validateMore()
}

// WithDefaults returns w with every zero parameter the type uses replaced by
// its default: the parameters a worker actually runs with. GroupSize of
// mutex stays zero (all workers share one lock); Nices stays empty (the
// even sweep, which depends on the worker count).
func (w Work) WithDefaults() Work {
	switch w.Type {
	case Spin, NiceSweep:
		def(&w.Loops, DefaultSpinLoops)
	case AffinityChurn:
		def(&w.Loops, DefaultSpinLoops)
		def(&w.Every, DefaultChurnEvery)
	case Yield:
		def(&w.Loops, DefaultYieldLoops)
	case Bursty:
		def(&w.SpinUS, DefaultBurstSpinUS)
		def(&w.SleepUS, DefaultBurstSleepUS)
	case FutexFanout:
		def(&w.Loops, DefaultFanoutLoops)
		def(&w.GroupSize, DefaultFanoutGroup)
	case Cache:
		def(&w.Loops, DefaultCacheLines)
		def(&w.SizeKB, DefaultCacheSizeKB)
	case Mutex:
		def(&w.Loops, DefaultMutexLoops)
		def(&w.HoldLoops, DefaultMutexHold)
	default:
		w = w.moreDefaults().latencyDefaults() // each sets its own types' parameters
	}
	return w
}

// groupSize is the number of workers that share one set of resources (a
// pipe pair, a futex word, a lock), given the spawn's worker count; 1 for
// types whose workers are independent.
func (w Work) groupSize(count int) int {
	switch w.Type {
	case Pipe, FutexPingPong:
		return 2
	case FutexFanout, WakeLatency, OpenLoop:
		return w.WithDefaults().GroupSize
	case Mutex:
		if w.GroupSize == 0 {
			return max(count, 1)
		}
		return w.GroupSize
	}
	return max(w.moreGroupSize(), 1)
}

// sharedMemory reports whether the type's workers share a memfd mapping.
func (w Work) sharedMemory() bool {
	switch w.Type {
	case FutexPingPong, FutexFanout, Mutex, WakeLatency, OpenLoop:
		return true
	}
	return w.moreSharedMemory()
}

// NiceFor is the nice value nice_sweep gives worker index of count: from
// Nices when set, else an even sweep from -10 (index 0) to +10 (index
// count-1); 0 for a single worker.
func (w Work) NiceFor(index, count int) int {
	if len(w.Nices) > 0 {
		return w.Nices[index%len(w.Nices)]
	}
	if count <= 1 {
		return 0
	}
	return -10 + (20*index)/(count-1)
}

// def sets *p to d where it is still zero (a default).
func def(p *int, d int) {
	if *p == 0 {
		*p = d
	}
}
