package workload

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"
)

// procStat reads field n (1-based, as proc(5) numbers them) of
// /proc/PID/stat.
func procStat(pid, n int) (int, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, errors.New("no comm")
	}
	f := strings.Fields(string(b[i+1:]))
	if n-3 >= len(f) {
		return 0, errors.New("short stat")
	}
	return strconv.Atoi(f[n-3])
}

// Fields of /proc/PID/stat.
const (
	statMinflt = 10
	statNice   = 19
	statPolicy = 41
)

func wantStat(t *testing.T, what string, pid, field, want int) {
	t.Helper()
	got, err := procStat(pid, field)
	if err != nil || got != want {
		t.Errorf("%s: /proc/%d/stat field %d = %d, %v; want %d", what, pid, field, got, err, want)
	}
}

func TestMoreWorkTypes(t *testing.T) {
	allowed := allowedCPUs(t)
	tests := []struct {
		name   string
		spec   SpawnSpec
		check  func(t *testing.T, stats []Stats)
		during func(t *testing.T, g *Group)
	}{
		{name: "wake_chain", spec: SpawnSpec{Work: Work{Type: WakeChain, Loops: 100}, Count: 4}, check: func(t *testing.T, stats []Stats) {
			// Turns go round the ring in order: no member is more than
			// one turn ahead of another.
			lo, hi := stats[0].Iterations, stats[0].Iterations
			for _, s := range stats {
				lo, hi = min(lo, s.Iterations), max(hi, s.Iterations)
			}
			if hi-lo > 1 {
				t.Errorf("wake_chain: iterations %d..%d, want within one turn", lo, hi)
			}
		}},
		{name: "thundering_herd", spec: SpawnSpec{Work: Work{Type: ThunderingHerd, GroupSize: 3, SleepUS: 500}, Count: 3}, check: func(t *testing.T, stats []Stats) {
			for _, s := range stats[1:] {
				if s.Iterations > stats[0].Iterations {
					t.Errorf("thundering_herd: waiter %d woke %d times, more than the %d wake-ups", s.Index, s.Iterations, stats[0].Iterations)
				}
			}
		}},
		{name: "rt_starvation", spec: SpawnSpec{Work: Work{Type: RTStarvation, SpinUS: 1000, SleepUS: 1000}, Count: 2}, during: func(t *testing.T, g *Group) {
			wantStat(t, "the hog", g.PIDs()[0], statPolicy, 1) // SCHED_FIFO
			wantStat(t, "the normal worker", g.PIDs()[1], statPolicy, 0)
		}},
		{name: "priority_inversion", spec: SpawnSpec{Work: Work{Type: PriorityInversion, HoldLoops: 10000}, Count: 3}, during: func(t *testing.T, g *Group) {
			for i, want := range []int{InvLowNice, InvHighNice, InvMidNice} {
				wantStat(t, "role nice", g.PIDs()[i], statNice, want)
			}
		}},
		{name: "preempt_storm", spec: SpawnSpec{Work: Work{Type: PreemptStorm}, Count: 1}, check: func(t *testing.T, stats []Stats) {
			if stats[0].VoluntaryCtxSwitches == 0 {
				t.Errorf("preempt_storm: no voluntary switches over %d sleeps", stats[0].Iterations)
			}
		}},
		{name: "page_fault_churn", spec: SpawnSpec{Work: Work{Type: PageFaultChurn, SizeKB: 256}, Count: 1}, during: func(t *testing.T, g *Group) {
			waitRun(t, g.PIDs())
			if n, err := procStat(g.PIDs()[0], statMinflt); err != nil || n < 64 {
				t.Errorf("page_fault_churn: %d minor faults, %v; want at least one cycle's 64", n, err)
			}
		}},
		{name: "idle_churn", spec: SpawnSpec{Work: Work{Type: IdleChurn}, Count: 1}, check: func(t *testing.T, stats []Stats) {
			if stats[0].VoluntaryCtxSwitches < stats[0].Iterations/2 {
				t.Errorf("idle_churn: %d voluntary switches over %d sleeps", stats[0].VoluntaryCtxSwitches, stats[0].Iterations)
			}
		}},
		{name: "io_sync_write", spec: SpawnSpec{Work: Work{Type: IOSyncWrite}, Count: 1}},
		{name: "cache_yield", spec: SpawnSpec{Work: Work{Type: CacheYield, SizeKB: 1024}, Count: 1}},
		{name: "sequence", spec: SpawnSpec{Work: Work{Type: Sequence, Phases: []Phase{{SpinUS: 100}, {SleepUS: 100}, {Yield: 2}, {IOKB: 4}}}, Count: 1},
			check: func(t *testing.T, stats []Stats) {
				if stats[0].VoluntaryCtxSwitches == 0 {
					t.Errorf("sequence: no voluntary switches over %d sleeps", stats[0].Iterations)
				}
			}},
		{name: "signal_storm", spec: SpawnSpec{Work: Work{Type: SignalStorm, Loops: 100}, Count: 2}, check: func(t *testing.T, stats []Stats) {
			// A ping-pong: each side receives one signal per send.
			if d := absDiff(stats[0].Iterations, stats[1].Iterations); d > 1 || stats[1].Iterations < 10 {
				t.Errorf("signal_storm: iterations %d and %d, want at least 10 and within one", stats[0].Iterations, stats[1].Iterations)
			}
		}},
		{name: "epoll_storm", spec: SpawnSpec{Work: Work{Type: EpollStorm, SleepUS: 500}, Count: 1}, check: func(t *testing.T, stats []Stats) {
			if stats[0].VoluntaryCtxSwitches == 0 || stats[0].Iterations < 10 {
				t.Errorf("epoll_storm: %d wake-ups, %d voluntary switches", stats[0].Iterations, stats[0].VoluntaryCtxSwitches)
			}
		}},
		{name: "fan_out_compute", spec: SpawnSpec{Work: Work{Type: FanOutCompute, Loops: 2000}, Count: 4}, check: func(t *testing.T, stats []Stats) {
			for _, s := range stats[1:] {
				if s.Iterations != stats[0].Iterations && s.Iterations != stats[0].Iterations+1 {
					t.Errorf("fan_out_compute: waiter %d has %d iterations, the waker %d", s.Index, s.Iterations, stats[0].Iterations)
				}
			}
		}},
		{name: "producer_consumer", spec: SpawnSpec{Work: Work{Type: ProducerConsumer, Loops: 200}, Count: 4}, check: func(t *testing.T, stats []Stats) {
			var consumed uint64
			for _, s := range stats[1:] {
				consumed += s.Iterations
			}
			if p := stats[0].Iterations; consumed > p || p-consumed > PCQueue {
				t.Errorf("producer_consumer: %d produced, %d consumed; want consumed within the %d-token queue", p, consumed, PCQueue)
			}
		}},
		{name: "asymmetric_waker", spec: SpawnSpec{Work: Work{Type: AsymmetricWaker, Loops: 5000}, Count: 2}, check: func(t *testing.T, stats []Stats) {
			// A strict hand-off: the sides alternate.
			if d := absDiff(stats[0].Iterations, stats[1].Iterations); d > 1 || stats[1].Iterations < 10 {
				t.Errorf("asymmetric_waker: iterations %d, %d, want at least 10 and within one", stats[0].Iterations, stats[1].Iterations)
			}
		}},
		{name: "policy batch", spec: SpawnSpec{Work: Work{Type: Spin}, Count: 1, Policy: "batch"}, during: func(t *testing.T, g *Group) {
			wantStat(t, "batch", g.PIDs()[0], statPolicy, 3)
		}},
		{name: "policy rr", spec: SpawnSpec{Work: Work{Type: Bursty}, Count: 1, Policy: "rr", RTPriority: 2}, during: func(t *testing.T, g *Group) {
			wantStat(t, "rr", g.PIDs()[0], statPolicy, 2)
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var pids []int
			stats := runFor(t, tt.spec, func(g *Group) {
				pids = g.PIDs()
				if tt.during != nil {
					tt.during(t, g)
				}
			})
			checkCommon(t, stats, allowed, pids)
			if tt.check != nil {
				tt.check(t, stats)
			}
		})
	}
}

func TestMoreWorkValidate(t *testing.T) {
	for _, tc := range []struct {
		w    Work
		want string
	}{
		{Work{Type: Sequence, Phases: make([]Phase, 17)}, "sequence wants at most 16 phases"},
		{Work{Type: Sequence, Phases: []Phase{{SpinUS: 1, SleepUS: 1}}}, "phases[0]: want exactly one"},
		{Work{Type: Sequence, Phases: []Phase{{Yield: 5000}}}, "phases[0].yield = 5000"},
		{Work{Type: Spin, Phases: []Phase{{Yield: 1}}}, "phases is not a parameter of spin"},
		{Work{Type: WakeChain, GroupSize: 1}, "wake_chain group_size = 1"},
		{Work{Type: PageFaultChurn, Loops: 3}, "loops is not a parameter of page_fault_churn"},
	} {
		if err := tc.w.Validate(); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%+v.Validate() = %v, want %q", tc.w, err, tc.want)
		}
	}
	for _, p := range []struct {
		policy string
		prio   int
		ok     bool
	}{{"", 0, true}, {"fifo", 1, true}, {"fifo", 0, false}, {"batch", 3, false}, {"deadline", 0, false}, {"", 5, false}, {"ext", 0, true}} {
		if err := ValidPolicy(p.policy, p.prio); (err == nil) != p.ok {
			t.Errorf("ValidPolicy(%q, %d) = %v, want ok %v", p.policy, p.prio, err, p.ok)
		}
	}
	if err := (SpawnSpec{Work: Work{Type: WakeChain}, Count: 3}).Validate(); err == nil || !strings.Contains(err.Error(), "groups of 4") {
		t.Errorf("wake_chain with 3 workers: %v, want groups of 4", err)
	}
}
