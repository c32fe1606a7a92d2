package workload

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestValidate(t *testing.T) {
	tests := []struct {
		work Work
		err  error  // nil: valid
		want string // in the message
	}{
		{Work{Type: Spin}, nil, ""},
		{Work{Type: Spin, Loops: 5}, nil, ""},
		{Work{Type: Bursty, SpinUS: 100, SleepUS: 900}, nil, ""},
		{Work{Type: FutexFanout, GroupSize: 8}, nil, ""},
		{Work{Type: Cache, SizeKB: 65536, Loops: 64}, nil, ""},
		{Work{Type: NiceSweep, Nices: []int{-20, 0, 19}}, nil, ""},
		{Work{Type: AffinityChurn, Every: 3}, nil, ""},
		{Work{Type: Mutex, HoldLoops: 10, GroupSize: 2}, nil, ""},
		{Work{Type: WakeLatency, GroupSize: 2, SleepUS: 50}, nil, ""},
		{Work{Type: TimerLatency, SleepUS: 200, Loops: 10}, nil, ""},
		{Work{Type: WakeLatency, GroupSize: 1}, ErrBadParam, "wake_latency group_size = 1"},
		{Work{Type: TimerLatency, GroupSize: 2}, ErrBadParam, "group_size is not a parameter of timer_latency"},
		{Work{}, ErrUnknownType, `""`},
		{Work{Type: "sleep"}, ErrUnknownType, `unknown work type "sleep" (have spin, yield`},
		{Work{Type: Spin, Loops: -1}, ErrBadParam, "spin loops = -1"},
		{Work{Type: Spin, Loops: MaxLoops + 1}, ErrBadParam, "want 0 (default) or 1..1073741824"},
		{Work{Type: Spin, SpinUS: 10}, ErrBadParam, "spin_us is not a parameter of spin (it takes loops)"},
		{Work{Type: Bursty, Loops: 10}, ErrBadParam, "loops is not a parameter of bursty"},
		{Work{Type: Bursty, SleepUS: MaxSleepUS + 1}, ErrBadParam, "sleep_us = 1000001"},
		{Work{Type: Pipe, GroupSize: 4}, ErrBadParam, "group_size is not a parameter of pipe"},
		{Work{Type: FutexFanout, GroupSize: 1}, ErrBadParam, "group_size = 1"},
		{Work{Type: Cache, SizeKB: MaxSizeKB + 1}, ErrBadParam, "size_kb"},
		{Work{Type: Spin, Nices: []int{1}}, ErrBadParam, "nices is not a parameter of spin"},
		{Work{Type: NiceSweep, Nices: []int{0, 20}}, ErrBadParam, "nices[1] = 20"},
		{Work{Type: AffinityChurn, Every: -2}, ErrBadParam, "every = -2"},
	}
	for _, tt := range tests {
		t.Run(string(tt.work.Type), func(t *testing.T) {
			err := tt.work.Validate()
			if !errors.Is(err, tt.err) || (err == nil) != (tt.err == nil) {
				t.Fatalf("Validate(%+v) = %v, want %v", tt.work, err, tt.err)
			}
			if err != nil && !strings.Contains(err.Error(), tt.want) {
				t.Errorf("Validate(%+v) = %q, want it to contain %q", tt.work, err, tt.want)
			}
		})
	}
}

// TestEveryTypeDocumented checks that each type validates, has its
// parameter list, and appears in the doc.go table.
func TestEveryTypeDocumented(t *testing.T) {
	doc := readDoc(t)
	if len(Types()) != len(uses) {
		t.Errorf("Types() has %d types, uses %d", len(Types()), len(uses))
	}
	for _, ty := range Types() {
		if err := (Work{Type: ty}).Validate(); err != nil {
			t.Errorf("Validate(%s) = %v", ty, err)
		}
		if !strings.Contains(doc, "| "+string(ty)+" ") {
			t.Errorf("doc.go has no table row for %s", ty)
		}
	}
}

func TestWithDefaults(t *testing.T) {
	tests := []struct{ in, want Work }{
		{Work{Type: Spin}, Work{Type: Spin, Loops: DefaultSpinLoops}},
		{Work{Type: Spin, Loops: 7}, Work{Type: Spin, Loops: 7}},
		{Work{Type: Bursty}, Work{Type: Bursty, SpinUS: DefaultBurstSpinUS, SleepUS: DefaultBurstSleepUS}},
		{Work{Type: FutexFanout}, Work{Type: FutexFanout, Loops: DefaultFanoutLoops, GroupSize: DefaultFanoutGroup}},
		{Work{Type: Cache}, Work{Type: Cache, Loops: DefaultCacheLines, SizeKB: DefaultCacheSizeKB}},
		{Work{Type: AffinityChurn}, Work{Type: AffinityChurn, Loops: DefaultSpinLoops, Every: DefaultChurnEvery}},
		{Work{Type: Mutex}, Work{Type: Mutex, Loops: DefaultMutexLoops, HoldLoops: DefaultMutexHold}},
		{Work{Type: Pipe}, Work{Type: Pipe}},
		{Work{Type: ForkExit}, Work{Type: ForkExit}},
	}
	for _, tt := range tests {
		if diff := cmp.Diff(tt.want, tt.in.WithDefaults()); diff != "" {
			t.Errorf("WithDefaults(%+v) mismatch (-want +got):\n%s", tt.in, diff)
		}
	}
}

func TestNiceFor(t *testing.T) {
	tests := []struct {
		w            Work
		index, count int
		want         int
	}{
		{Work{Type: NiceSweep}, 0, 1, 0},
		{Work{Type: NiceSweep}, 0, 2, -10},
		{Work{Type: NiceSweep}, 1, 2, 10},
		{Work{Type: NiceSweep}, 2, 5, 0},
		{Work{Type: NiceSweep}, 4, 5, 10},
		{Work{Type: NiceSweep}, 1, 21, -9},
		{Work{Type: NiceSweep, Nices: []int{3, -4}}, 3, 10, -4},
	}
	for _, tt := range tests {
		if got := tt.w.NiceFor(tt.index, tt.count); got != tt.want {
			t.Errorf("NiceFor(%d, %d) with %v = %d, want %d", tt.index, tt.count, tt.w.Nices, got, tt.want)
		}
	}
}

// TestWorkJSON pins the scenario-file keys.
func TestWorkJSON(t *testing.T) {
	in := `{"type":"mutex","loops":1,"hold_loops":2,"group_size":3}`
	var w Work
	if err := json.Unmarshal([]byte(in), &w); err != nil {
		t.Fatal(err)
	}
	want := Work{Type: Mutex, Loops: 1, HoldLoops: 2, GroupSize: 3}
	if diff := cmp.Diff(want, w); diff != "" {
		t.Errorf("Unmarshal(%s) mismatch (-want +got):\n%s", in, diff)
	}
	out, _ := json.Marshal(Work{Type: Bursty, SpinUS: 1, SleepUS: 2, SizeKB: 3, Nices: []int{4}, Every: 5})
	if got, want := string(out), `{"type":"bursty","spin_us":1,"sleep_us":2,"size_kb":3,"nices":[4],"every":5}`; got != want {
		t.Errorf("Marshal = %s, want %s", got, want)
	}
}
