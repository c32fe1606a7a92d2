package workload

import (
	"fmt"
	"slices"
)

// The work types of scenarios that find scheduler bugs: wake-up
// dependencies, herds, RT pressure, priority inversion, and the churn of
// sleeping, faulting and syncing (the doc.go table says what one
// iteration of each is). They are kept apart from the first eleven so
// the registries in work.go change by one line each.
const (
	WakeChain         Type = "wake_chain"
	ThunderingHerd    Type = "thundering_herd"
	RTStarvation      Type = "rt_starvation"
	PriorityInversion Type = "priority_inversion"
	PreemptStorm      Type = "preempt_storm"
	PageFaultChurn    Type = "page_fault_churn"
	IdleChurn         Type = "idle_churn"
	IOSyncWrite       Type = "io_sync_write"
	CacheYield        Type = "cache_yield"
	Sequence          Type = "sequence"
	SignalStorm       Type = "signal_storm"
	EpollStorm        Type = "epoll_storm"
	FanOutCompute     Type = "fan_out_compute"
	ProducerConsumer  Type = "producer_consumer"
	AsymmetricWaker   Type = "asymmetric_waker"
	// The change-heavy types (worker_churn_linux.go): cgroups created,
	// entered and removed, tasks moved between cgroups and NUMA nodes.
	CgroupChurn        Type = "cgroup_churn"
	CgroupAttachStorm  Type = "cgroup_attach_storm"
	NUMAMigrationChurn Type = "numa_migration_churn"
)

// moreTypes are the types of this file, in the doc.go table's order.
var moreTypes = []Type{WakeChain, ThunderingHerd, RTStarvation, PriorityInversion, PreemptStorm,
	PageFaultChurn, IdleChurn, IOSyncWrite, CacheYield, Sequence, SignalStorm, EpollStorm, FanOutCompute, ProducerConsumer, AsymmetricWaker,
	CgroupChurn, CgroupAttachStorm, NUMAMigrationChurn}

// Defaults of this file's types.
const (
	DefaultChainGroup     = 4     // wake_chain: workers in a ring
	DefaultChainLoops     = 1000  // wake_chain: LCG steps per turn
	DefaultHerdGroup      = 8     // thundering_herd: 1 waker + 7 waiters
	DefaultHerdSleepUS    = 1000  // thundering_herd: the waker's sleep between wake-ups
	DefaultHerdLoops      = 1000  // thundering_herd: a waiter's LCG steps per wake-up
	DefaultRTSpinUS       = 10000 // rt_starvation: the FIFO hog's burst
	DefaultRTSleepUS      = 2000  // rt_starvation: the FIFO hog's sleep
	DefaultInvHold        = 100000
	DefaultInvLoops       = 1000
	DefaultPreemptSpinUS  = 20  // preempt_storm
	DefaultPreemptSleepUS = 200 // preempt_storm
	DefaultFaultSizeKB    = 1024
	DefaultIdleSleepUS    = 50
	DefaultIdleLoops      = 100
	DefaultSyncSizeKB     = 256
	DefaultCacheYieldKB   = 4096
	DefaultCacheYieldLine = 256
	MaxPhases             = 16
	DefaultEpollSleepUS   = 100   // epoll_storm: the timerfd's interval
	DefaultEpollLoops     = 100   // epoll_storm: LCG steps per wake-up
	DefaultFanOutLoops    = 20000 // fan_out_compute: each waiter's share
	DefaultFanOutGroup    = 4
	DefaultPCGroup        = 4     // producer_consumer: 1 producer, 3 consumers
	DefaultPCLoops        = 1000  // producer_consumer: producer's steps per token; consumers do 4x
	PCQueue               = 64    // producer_consumer: tokens queued at most
	DefaultCgChurnLoops   = 10000 // cgroup_churn: LCG steps inside each new cgroup
	DefaultAttachLoops    = 10000 // cgroup_attach_storm: LCG steps between moves
	DefaultNUMAChurnKB    = 4096  // numa_migration_churn: memory touched each round
	// InversionNices are priority_inversion's nice values: the lock
	// holder (low), the waiter (high), the CPU hog between them.
	InvLowNice, InvHighNice, InvMidNice = 19, -10, 0
)

// DefaultPhases are a sequence's phases when it gives none: 500 us
// busy, 500 us asleep, one yield.
func DefaultPhases() []Phase { return []Phase{{SpinUS: 500}, {SleepUS: 500}, {Yield: 1}} }

// Phase is one phase of a sequence: exactly one field set.
type Phase struct {
	SpinUS  int `json:"spin_us,omitempty"`  // busy for this long
	SleepUS int `json:"sleep_us,omitempty"` // nanosleep
	Yield   int `json:"yield,omitempty"`    // this many sched_yield calls
	IOKB    int `json:"io_kb,omitempty"`    // write this many KiB to a memfd and fdatasync
}

func init() {
	uses[WakeChain] = []string{"loops", "group_size"}
	uses[ThunderingHerd] = []string{"loops", "sleep_us", "group_size"}
	uses[RTStarvation] = []string{"loops", "spin_us", "sleep_us", "group_size"}
	uses[PriorityInversion] = []string{"loops", "hold_loops"}
	uses[PreemptStorm] = []string{"spin_us", "sleep_us"}
	uses[PageFaultChurn] = []string{"size_kb"}
	uses[IdleChurn] = []string{"loops", "sleep_us"}
	uses[IOSyncWrite] = []string{"size_kb"}
	uses[CacheYield] = []string{"loops", "size_kb"}
	uses[Sequence] = []string{"phases"}
	uses[SignalStorm] = []string{"loops"}
	uses[EpollStorm] = []string{"loops", "sleep_us"}
	uses[FanOutCompute] = []string{"loops", "group_size"}
	uses[ProducerConsumer] = []string{"loops", "group_size"}
	uses[AsymmetricWaker] = []string{"loops", "hold_loops"}
	uses[CgroupChurn] = []string{"loops"}
	uses[CgroupAttachStorm] = []string{"loops"}
	uses[NUMAMigrationChurn] = []string{"size_kb"}
}

// validateMore checks what the generic checks of Validate cannot.
func (w Work) validateMore() error {
	if len(w.Phases) > 0 && w.Type != Sequence {
		return fmt.Errorf("%w: phases is not a parameter of %s", ErrBadParam, w.Type)
	}
	switch w.Type {
	case WakeChain, ThunderingHerd, RTStarvation, FanOutCompute, ProducerConsumer:
		if w.GroupSize == 1 {
			return fmt.Errorf("%w: %s group_size = 1, want 0 (default) or 2..%d", ErrBadParam, w.Type, MaxGroupSize)
		}
	case Sequence:
		if len(w.Phases) > MaxPhases {
			return fmt.Errorf("%w: sequence wants at most %d phases, has %d", ErrBadParam, MaxPhases, len(w.Phases))
		}
		for i, p := range w.Phases {
			set := 0
			for _, v := range []struct {
				name   string
				v, max int
			}{{"spin_us", p.SpinUS, MaxSpinUS}, {"sleep_us", p.SleepUS, MaxSleepUS}, {"yield", p.Yield, 1000}, {"io_kb", p.IOKB, 1024}} {
				if v.v < 0 || v.v > v.max {
					return fmt.Errorf("%w: sequence phases[%d].%s = %d, want 1..%d", ErrBadParam, i, v.name, v.v, v.max)
				}
				if v.v > 0 {
					set++
				}
			}
			if set != 1 {
				return fmt.Errorf("%w: sequence phases[%d]: want exactly one of spin_us, sleep_us, yield, io_kb", ErrBadParam, i)
			}
		}
	}
	return nil
}

// moreDefaults fills in this file's types' defaults.
func (w Work) moreDefaults() Work {
	switch w.Type {
	case WakeChain:
		def(&w.Loops, DefaultChainLoops)
		def(&w.GroupSize, DefaultChainGroup)
	case ThunderingHerd:
		def(&w.Loops, DefaultHerdLoops)
		def(&w.SleepUS, DefaultHerdSleepUS)
		def(&w.GroupSize, DefaultHerdGroup)
	case RTStarvation:
		def(&w.Loops, DefaultSpinLoops)
		def(&w.SpinUS, DefaultRTSpinUS)
		def(&w.SleepUS, DefaultRTSleepUS)
		def(&w.GroupSize, 2)
	case PriorityInversion:
		def(&w.Loops, DefaultInvLoops)
		def(&w.HoldLoops, DefaultInvHold)
	case PreemptStorm:
		def(&w.SpinUS, DefaultPreemptSpinUS)
		def(&w.SleepUS, DefaultPreemptSleepUS)
	case PageFaultChurn:
		def(&w.SizeKB, DefaultFaultSizeKB)
	case IdleChurn:
		def(&w.Loops, DefaultIdleLoops)
		def(&w.SleepUS, DefaultIdleSleepUS)
	case IOSyncWrite:
		def(&w.SizeKB, DefaultSyncSizeKB)
	case CacheYield:
		def(&w.Loops, DefaultCacheYieldLine)
		def(&w.SizeKB, DefaultCacheYieldKB)
	case Sequence:
		if len(w.Phases) == 0 {
			w.Phases = DefaultPhases()
		}
	case EpollStorm:
		def(&w.Loops, DefaultEpollLoops)
		def(&w.SleepUS, DefaultEpollSleepUS)
	case FanOutCompute:
		def(&w.Loops, DefaultFanOutLoops)
		def(&w.GroupSize, DefaultFanOutGroup)
	case ProducerConsumer:
		def(&w.Loops, DefaultPCLoops)
		def(&w.GroupSize, DefaultPCGroup)
	case AsymmetricWaker:
		def(&w.Loops, DefaultSpinLoops)
		def(&w.HoldLoops, DefaultIdleLoops)
	case CgroupChurn:
		def(&w.Loops, DefaultCgChurnLoops)
	case CgroupAttachStorm:
		def(&w.Loops, DefaultAttachLoops)
	case NUMAMigrationChurn:
		def(&w.SizeKB, DefaultNUMAChurnKB)
	}
	return w
}

// moreGroupSize is the group of this file's grouped types; 0 for others.
func (w Work) moreGroupSize() int {
	switch w.Type {
	case WakeChain, ThunderingHerd, RTStarvation, FanOutCompute, ProducerConsumer:
		return w.moreDefaults().GroupSize
	case PriorityInversion:
		return 3
	case SignalStorm, AsymmetricWaker:
		return 2
	}
	return 0
}

// moreSharedMemory reports whether this file's type shares a memfd.
func (w Work) moreSharedMemory() bool {
	switch w.Type {
	case WakeChain, ThunderingHerd, PriorityInversion, SignalStorm, FanOutCompute, ProducerConsumer, AsymmetricWaker:
		return true
	}
	return false
}

// Policies lists the policy names SpawnSpec.Policy takes.
func Policies() []string { return []string{"normal", "batch", "idle", "fifo", "rr", "ext"} }

// ValidPolicy checks a policy name and its RT priority (1..99 for fifo
// and rr, 0 for the others).
func ValidPolicy(policy string, prio int) error {
	if policy == "" {
		if prio != 0 {
			return fmt.Errorf("%w: rt_priority %d without a policy", ErrBadParam, prio)
		}
		return nil
	}
	if !slices.Contains(Policies(), policy) {
		return fmt.Errorf("%w: policy %q, want one of normal, batch, idle, fifo, rr, ext", ErrBadParam, policy)
	}
	rt := policy == "fifo" || policy == "rr"
	if rt && (prio < 1 || prio > 99) || !rt && prio != 0 {
		return fmt.Errorf("%w: policy %s with rt_priority %d (fifo and rr take 1..99, the others none)", ErrBadParam, policy, prio)
	}
	return nil
}
