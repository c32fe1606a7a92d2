package scenario

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/ktstr-go/ktstr/lib/wire/payload"
)

func TestCannedScenariosParse(t *testing.T) {
	names := Names()
	if len(names) < 10 {
		t.Fatalf("Names() = %v, want at least 10 canned scenarios", names)
	}
	for _, n := range names {
		t.Run(n, func(t *testing.T) {
			s, _, err := Load(n, nil)
			if err != nil {
				t.Fatalf("Load(%q): %v", n, err)
			}
			if s.Name != n {
				t.Errorf("scenario file %s.json names itself %q", n, s.Name)
			}
			if s.Description == "" {
				t.Errorf("%s has no description", n)
			}
			if s.Duration() <= 0 {
				t.Errorf("%s Duration() = %d", n, s.Duration())
			}
		})
	}
}

func TestParseErrors(t *testing.T) {
	for _, tc := range []struct {
		name, json, want string
	}{
		{"not json", `{`, "not valid scenario JSON"},
		{"unknown field", `{"name":"x","cgroups":[{"name":"a","work":{"type":"spin"}}],"steps":[{"hold_ms":1}],"hold":3}`, `unknown field "hold"`},
		{"no name", `{"cgroups":[{"name":"a","work":{}}],"steps":[{"hold_ms":1}]}`, "name: missing"},
		{"no cgroups", `{"name":"x","cgroups":[],"steps":[{"hold_ms":1}]}`, "cgroups: want 1..64"},
		{"bad cgroup name", `{"name":"x","cgroups":[{"name":"../etc","work":{}}],"steps":[{"hold_ms":1}]}`, "cgroups[0].name"},
		{"duplicate cgroup", `{"name":"x","cgroups":[{"name":"a","work":{}},{"name":"a","work":{}}],"steps":[{"hold_ms":1}]}`, `"a" used twice`},
		{"bad cpuset", `{"name":"x","cgroups":[{"name":"a","cpuset":"split:2/2","work":{}}],"steps":[{"hold_ms":1}]}`, "cgroups[0].cpuset"},
		{"bad cpu list", `{"name":"x","cgroups":[{"name":"a","cpuset":"3-1","work":{}}],"steps":[{"hold_ms":1}]}`, "bad range"},
		{"weight", `{"name":"x","cgroups":[{"name":"a","weight":20000,"work":{}}],"steps":[{"hold_ms":1}]}`, "weight: 20000 out of range"},
		{"both worker counts", `{"name":"x","cgroups":[{"name":"a","workers":1,"workers_per_cpu":1,"work":{}}],"steps":[{"hold_ms":1}]}`, "not both"},
		{"nice", `{"name":"x","cgroups":[{"name":"a","nice":-21,"work":{}}],"steps":[{"hold_ms":1}]}`, "nice: -21"},
		{"no work", `{"name":"x","cgroups":[{"name":"a"}],"steps":[{"hold_ms":1}]}`, "work: missing"},
		{"no steps", `{"name":"x","cgroups":[{"name":"a","work":{}}],"steps":[]}`, "steps: want 1..256"},
		{"hold", `{"name":"x","cgroups":[{"name":"a","work":{}}],"steps":[{"hold_ms":0}]}`, "steps[0].hold_ms"},
		{"op cgroup", `{"name":"x","cgroups":[{"name":"a","work":{}}],"steps":[{"hold_ms":1,"ops":[{"op":"set_weight","cgroup":"b","weight":1}]}]}`, `no cgroup "b"`},
		{"op kind", `{"name":"x","cgroups":[{"name":"a","work":{}}],"steps":[{"hold_ms":1,"ops":[{"op":"explode","cgroup":"a"}]}]}`, `unknown op "explode"`},
		{"kill op with cgroup", `{"name":"x","cgroups":[{"name":"a","work":{}}],"steps":[{"hold_ms":1,"ops":[{"op":"kill_scheduler","cgroup":"a"}]}]}`, "takes only a signal"},
		{"op count", `{"name":"x","cgroups":[{"name":"a","work":{}}],"steps":[{"hold_ms":1,"ops":[{"op":"add_workers","cgroup":"a"}]}]}`, "count: 0 out of range"},
		{"checks", `{"name":"x","cgroups":[{"name":"a","work":{}}],"steps":[{"hold_ms":1}],"checks":{"max_spread_pct":101}}`, "within 0..100"},
		{"kernel op without kernel", `{"name":"x","cgroups":[{"name":"a","work":{}}],"steps":[{"hold_ms":1,"ops":[{"op":"read_kernel"}]}]}`, "kernel: missing"},
		{"kernel op target", `{"name":"x","cgroups":[{"name":"a","work":{}}],"steps":[{"hold_ms":1,"ops":[{"op":"read_kernel","kernel":{"target":{"kind":"nope"},"value":"u32"}}]}]}`, `target.kind "nope"`},
		{"kernel op value", `{"name":"x","cgroups":[{"name":"a","work":{}}],"steps":[{"hold_ms":1,"ops":[{"op":"read_kernel","kernel":{"target":{"kind":"symbol","symbol":"jiffies"},"value":"u16"}}]}]}`, `value "u16"`},
		{"kernel op symbol", `{"name":"x","cgroups":[{"name":"a","work":{}}],"steps":[{"hold_ms":1,"ops":[{"op":"read_kernel","kernel":{"target":{"kind":"symbol"},"value":"u32"}}]}]}`, "target.symbol missing"},
		{"kernel write too wide", `{"name":"x","cgroups":[{"name":"a","work":{}}],"steps":[{"hold_ms":1,"ops":[{"op":"write_kernel","kernel":{"target":{"kind":"symbol","symbol":"x"},"value":"u32","write":4294967296}}]}]}`, "does not fit u32"},
		{"kernel write with expect", `{"name":"x","cgroups":[{"name":"a","work":{}}],"steps":[{"hold_ms":1,"ops":[{"op":"write_kernel","kernel":{"target":{"kind":"symbol","symbol":"x"},"value":"u32","expect":{"min":1}}}]}]}`, "save and expect are for reads"},
		{"kernel expect before save", `{"name":"x","cgroups":[{"name":"a","work":{}}],"steps":[{"hold_ms":1,"ops":[{"op":"read_kernel","kernel":{"target":{"kind":"symbol","symbol":"j"},"value":"u64","expect":{"greater_than":"j0"}}},{"op":"read_kernel","kernel":{"target":{"kind":"symbol","symbol":"j"},"value":"u64","save":"j0"}}]}]}`, `no earlier read saves "j0"`},
		{"kernel bytes too long", `{"name":"x","cgroups":[{"name":"a","work":{}}],"steps":[{"hold_ms":1,"ops":[{"op":"read_kernel","kernel":{"target":{"kind":"kva","addr":1},"value":"bytes","len":5000}}]}]}`, "bytes of at most 4096"},
		{"kernel op with cgroup", `{"name":"x","cgroups":[{"name":"a","work":{}}],"steps":[{"hold_ms":1,"ops":[{"op":"read_kernel","cgroup":"a","kernel":{"target":{"kind":"kva"},"value":"u32"}}]}]}`, "names no cgroup"},
		{"trailing", `{"name":"x","cgroups":[{"name":"a","work":{}}],"steps":[{"hold_ms":1}]} {}`, "trailing data"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse([]byte(tc.json), nil)
			var se *Error
			if !errors.As(err, &se) {
				t.Fatalf("Parse = %v, want a *scenario.Error", err)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("Parse error = %q, want it to mention %q", err, tc.want)
			}
		})
	}
}

func TestParseCallsWorkValidator(t *testing.T) {
	var seen []string
	v := func(raw json.RawMessage) error {
		seen = append(seen, string(raw))
		if strings.Contains(string(raw), "bogus") {
			return errors.New("unknown work type \"bogus\"")
		}
		return nil
	}
	_, err := Parse([]byte(`{"name":"x","cgroups":[{"name":"a","work":{"type":"spin"}},{"name":"b","work":{"type":"bogus"}}],"steps":[{"hold_ms":1}]}`), v)
	if err == nil || !strings.Contains(err.Error(), `cgroups[1].work: unknown work type "bogus"`) {
		t.Fatalf("Parse = %v, want the validator's error on cgroups[1].work", err)
	}
	if len(seen) != 2 {
		t.Errorf("validator saw %d works, want 2", len(seen))
	}
}

func TestCpusetResolve(t *testing.T) {
	topo := Topology{CPUs: []int{0, 1, 2, 3, 4, 5, 6, 7}, LLCs: [][]int{{0, 1, 2, 3}, {4, 5, 6, 7}}}
	for _, tc := range []struct {
		spec string
		want []int
		err  string
	}{
		{"", nil, ""},
		{"all", []int{0, 1, 2, 3, 4, 5, 6, 7}, ""},
		{"1,3-4", []int{1, 3, 4}, ""},
		{"split:0/2", []int{0, 1, 2, 3}, ""},
		{"split:1/2", []int{4, 5, 6, 7}, ""},
		{"split:2/3", []int{5, 6, 7}, ""},
		{"overlap:0/2", []int{0, 1, 2, 3, 4}, ""},
		{"overlap:1/2", []int{3, 4, 5, 6, 7}, ""},
		{"llc:1", []int{4, 5, 6, 7}, ""},
		{"llc:2", nil, "2 LLC groups"},
		{"9", nil, "not online"},
		{"split:0/9", nil, "at least 9 CPUs"},
	} {
		s, err := ParseCpuset(tc.spec)
		if err != nil {
			t.Fatalf("ParseCpuset(%q): %v", tc.spec, err)
		}
		got, err := s.Resolve(topo)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("Resolve(%q) = %v, %v; want error with %q", tc.spec, got, err, tc.err)
			}
			continue
		}
		if err != nil || !cmp.Equal(got, tc.want) {
			t.Errorf("Resolve(%q) = %v, %v; want %v", tc.spec, got, err, tc.want)
		}
	}
}

func TestCPUListRoundTrip(t *testing.T) {
	for _, s := range []string{"0", "0-3", "0-1,3,5-7", "2,4,6"} {
		l, err := ParseCPUList(s)
		if err != nil {
			t.Fatalf("ParseCPUList(%q): %v", s, err)
		}
		if got := FormatCPUList(l); got != s {
			t.Errorf("FormatCPUList(ParseCPUList(%q)) = %q", s, got)
		}
	}
	if l, _ := ParseCPUList("3,1,1-2"); !cmp.Equal(l, []int{1, 2, 3}) {
		t.Errorf("ParseCPUList(3,1,1-2) = %v, want sorted distinct [1 2 3]", l)
	}
	for _, bad := range []string{"a", "-1", "1-", "5-2", "99999"} {
		if _, err := ParseCPUList(bad); err == nil {
			t.Errorf("ParseCPUList(%q) = nil error", bad)
		}
	}
}

func worker(iters, run, wall, gap uint64, cpus ...int) WorkerResult {
	return WorkerResult{Iterations: iters, RunNS: run, WallNS: wall, MaxGapNS: gap, CPUs: cpus}
}

func kinds(r *payload.AssertResult) []string {
	var out []string
	for _, o := range r.Outcomes {
		out = append(out, string(o.Verdict)+":"+o.Kind)
	}
	return out
}

func TestEvaluateChecks(t *testing.T) {
	sc := &Scenario{Name: "t"}
	ms := uint64(1e6)
	cg := Cgroup{Name: "a"}
	for _, tc := range []struct {
		name   string
		groups []CgroupResult
		want   []string
	}{
		{"pass", []CgroupResult{{Spec: cg, Workers: []WorkerResult{worker(10, 500*ms, 1000*ms, 5*ms, 0), worker(10, 520*ms, 1000*ms, 5*ms, 1)}}},
			nil},
		{"starved", []CgroupResult{{Spec: cg, Workers: []WorkerResult{worker(0, 0, 1000*ms, 0), worker(10, 500*ms, 1000*ms, 5*ms, 1)}}},
			[]string{"fail:starved", "fail:unfair"}},
		{"stuck", []CgroupResult{{Spec: cg, Workers: []WorkerResult{worker(10, 500*ms, 1000*ms, 2500*ms, 0)}}},
			[]string{"fail:stuck"}},
		{"unfair", []CgroupResult{{Spec: cg, Workers: []WorkerResult{worker(10, 800*ms, 1000*ms, 5*ms, 0), worker(10, 200*ms, 1000*ms, 5*ms, 1)}}},
			[]string{"fail:unfair"}},
		{"fairness off", []CgroupResult{{Spec: Cgroup{Name: "a", Checks: &Checks{Fairness: ptr(false)}}, Workers: []WorkerResult{worker(10, 800*ms, 1000*ms, 5*ms, 0), worker(10, 200*ms, 1000*ms, 5*ms, 1)}}},
			nil},
		{"isolation", []CgroupResult{{Spec: cg, Expected: []int{0}, Workers: []WorkerResult{worker(10, 500*ms, 1000*ms, 5*ms, 0, 1)}}},
			[]string{"fail:isolation"}},
		{"isolation skipped", []CgroupResult{{Spec: cg, Expected: []int{0}, Skips: map[string]string{"isolation": "no cpuset controller"}, Workers: []WorkerResult{worker(10, 500*ms, 1000*ms, 5*ms, 0)}}},
			[]string{"skip:skip"}},
		{"died", []CgroupResult{{Spec: cg, Workers: []WorkerResult{{Iterations: 3, WallNS: 10, CPUs: []int{0}, Died: "killed by signal 9"}}}},
			[]string{"fail:other"}},
		{"gap override", []CgroupResult{{Spec: Cgroup{Name: "a", Checks: &Checks{MaxGapMS: ptr(5000.0)}}, Workers: []WorkerResult{worker(10, 500*ms, 1000*ms, 2500*ms, 0)}}},
			nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := Evaluate(sc, tc.groups)
			if d := cmp.Diff(tc.want, kinds(r)); d != "" {
				t.Errorf("outcomes (-want +got):\n%s", d)
			}
			if tc.want == nil && r.Verdict() != payload.Pass {
				t.Errorf("verdict %v with no outcomes, want pass", r.Verdict())
			}
		})
	}
}

func TestEvaluateStats(t *testing.T) {
	ms := uint64(1e6)
	r := Evaluate(&Scenario{Name: "t"}, []CgroupResult{
		{Spec: Cgroup{Name: "a"}, Workers: []WorkerResult{worker(10, 400*ms, 1000*ms, 7*ms, 0), worker(20, 500*ms, 1000*ms, 3*ms, 0, 1)}},
		{Spec: Cgroup{Name: "b"}, Workers: []WorkerResult{worker(5, 300*ms, 1000*ms, 9*ms, 2)}},
	})
	s := r.Stats
	if s.Workers != 3 || s.CPUs != 3 || s.TotalIterations != 35 {
		t.Errorf("totals = %d workers, %d cpus, %d iterations; want 3, 3, 35", s.Workers, s.CPUs, s.TotalIterations)
	}
	if a := s.Cgroups[0]; a.CPUs != 2 || a.SpreadPct != 10 || a.MaxGapMS != 7 {
		t.Errorf("cgroup a = %+v, want 2 cpus, spread 10, gap 7", a)
	}
	if s.WorstGapMS != 9 || s.WorstSpreadPct != 10 {
		t.Errorf("worst gap %v spread %v, want 9 and 10", s.WorstGapMS, s.WorstSpreadPct)
	}
	if r.Verdict() != payload.Pass {
		t.Errorf("verdict %v, want pass", r.Verdict())
	}
}

func TestFailOnPurpose(t *testing.T) {
	r := Evaluate(&Scenario{Name: "fail", FailOnPurpose: true}, nil)
	if r.Verdict() != payload.Fail {
		t.Errorf("verdict %v, want fail", r.Verdict())
	}
}
