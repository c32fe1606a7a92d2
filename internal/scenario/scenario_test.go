package scenario

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/ktstr-go/ktstr/internal/topology"
	"github.com/ktstr-go/ktstr/internal/workload"
	"github.com/ktstr-go/ktstr/lib/wire/payload"
)

func TestCannedScenariosParse(t *testing.T) {
	names := Names()
	if len(names) < 10 {
		t.Fatalf("Names() = %v, want at least 10 canned scenarios", names)
	}
	for _, n := range names {
		t.Run(n, func(t *testing.T) {
			s, _, err := Load(n)
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
		{"unknown field", `{"name":"x","cgroups":[{"name":"a","work":{"type":"spin"}}],"steps":[{"hold_ms":1}],"hold":3}`, `hold: unknown field (allowed: cgroups, checks,`},
		{"no name", `{"cgroups":[{"name":"a","work":{"type":"spin"}}],"steps":[{"hold_ms":1}]}`, "name: missing"},
		{"no cgroups", `{"name":"x","cgroups":[],"steps":[{"hold_ms":1}]}`, "cgroups: want 1..64 cgroups: the scenario makes none"},
		{"bad cgroup name", `{"name":"x","cgroups":[{"name":"../etc","work":{"type":"spin"}}],"steps":[{"hold_ms":1}]}`, "cgroups[0].name"},
		{"duplicate cgroup", `{"name":"x","cgroups":[{"name":"a","work":{"type":"spin"}},{"name":"a","work":{"type":"spin"}}],"steps":[{"hold_ms":1}]}`, `"a" used twice`},
		{"bad cpuset", `{"name":"x","cgroups":[{"name":"a","cpuset":"split:2/2","work":{"type":"spin"}}],"steps":[{"hold_ms":1}]}`, "cgroups[0].cpuset"},
		{"bad cpu list", `{"name":"x","cgroups":[{"name":"a","cpuset":"3-1","work":{"type":"spin"}}],"steps":[{"hold_ms":1}]}`, "bad range"},
		{"weight", `{"name":"x","cgroups":[{"name":"a","weight":20000,"work":{"type":"spin"}}],"steps":[{"hold_ms":1}]}`, "weight: 20000 out of range"},
		{"both worker counts", `{"name":"x","cgroups":[{"name":"a","workers":1,"workers_per_cpu":1,"work":{"type":"spin"}}],"steps":[{"hold_ms":1}]}`, "not both"},
		{"nice", `{"name":"x","cgroups":[{"name":"a","nice":-21,"work":{"type":"spin"}}],"steps":[{"hold_ms":1}]}`, "nice: -21"},
		{"no work", `{"name":"x","cgroups":[{"name":"a","workers":2}],"steps":[{"hold_ms":1}]}`, "work: missing"},
		{"no steps", `{"name":"x","cgroups":[{"name":"a","work":{"type":"spin"}}],"steps":[]}`, "steps: want 1..256"},
		{"hold", `{"name":"x","cgroups":[{"name":"a","work":{"type":"spin"}}],"steps":[{"hold_ms":0}]}`, "steps[0].hold_ms"},
		{"op cgroup", `{"name":"x","cgroups":[{"name":"a","work":{"type":"spin"}}],"steps":[{"hold_ms":1,"ops":[{"op":"set_weight","cgroup":"b","weight":1}]}]}`, `no cgroup "b"`},
		{"op kind", `{"name":"x","cgroups":[{"name":"a","work":{"type":"spin"}}],"steps":[{"hold_ms":1,"ops":[{"op":"explode","cgroup":"a"}]}]}`, `unknown op "explode"`},
		{"kill op with cgroup", `{"name":"x","cgroups":[{"name":"a","work":{"type":"spin"}}],"steps":[{"hold_ms":1,"ops":[{"op":"kill_scheduler","cgroup":"a"}]}]}`, "steps[0].ops[0].cgroup: not a field of kill_scheduler (it takes nothing and optionally signal)"},
		{"op count", `{"name":"x","cgroups":[{"name":"a","work":{"type":"spin"}}],"steps":[{"hold_ms":1,"ops":[{"op":"add_workers","cgroup":"a"}]}]}`, "steps[0].ops[0].count: missing: add_workers takes cgroup, count"},
		{"checks", `{"name":"x","cgroups":[{"name":"a","work":{"type":"spin"}}],"steps":[{"hold_ms":1}],"checks":{"max_spread_pct":101}}`, "within 0..100"},
		{"kernel op without kernel", `{"name":"x","cgroups":[{"name":"a","work":{"type":"spin"}}],"steps":[{"hold_ms":1,"ops":[{"op":"read_kernel"}]}]}`, "kernel: missing"},
		{"kernel op target", `{"name":"x","cgroups":[{"name":"a","work":{"type":"spin"}}],"steps":[{"hold_ms":1,"ops":[{"op":"read_kernel","kernel":{"target":{"kind":"nope"},"value":"u32"}}]}]}`, `target.kind "nope"`},
		{"kernel op value", `{"name":"x","cgroups":[{"name":"a","work":{"type":"spin"}}],"steps":[{"hold_ms":1,"ops":[{"op":"read_kernel","kernel":{"target":{"kind":"symbol","symbol":"jiffies"},"value":"u16"}}]}]}`, `value "u16"`},
		{"kernel op symbol", `{"name":"x","cgroups":[{"name":"a","work":{"type":"spin"}}],"steps":[{"hold_ms":1,"ops":[{"op":"read_kernel","kernel":{"target":{"kind":"symbol"},"value":"u32"}}]}]}`, "target.symbol missing"},
		{"kernel write too wide", `{"name":"x","cgroups":[{"name":"a","work":{"type":"spin"}}],"steps":[{"hold_ms":1,"ops":[{"op":"write_kernel","kernel":{"target":{"kind":"symbol","symbol":"x"},"value":"u32","write":4294967296}}]}]}`, "does not fit u32"},
		{"kernel write with expect", `{"name":"x","cgroups":[{"name":"a","work":{"type":"spin"}}],"steps":[{"hold_ms":1,"ops":[{"op":"write_kernel","kernel":{"target":{"kind":"symbol","symbol":"x"},"value":"u32","expect":{"min":1}}}]}]}`, "save and expect are for reads"},
		{"kernel expect before save", `{"name":"x","cgroups":[{"name":"a","work":{"type":"spin"}}],"steps":[{"hold_ms":1,"ops":[{"op":"read_kernel","kernel":{"target":{"kind":"symbol","symbol":"j"},"value":"u64","expect":{"greater_than":"j0"}}},{"op":"read_kernel","kernel":{"target":{"kind":"symbol","symbol":"j"},"value":"u64","save":"j0"}}]}]}`, `no earlier read saves "j0"`},
		{"kernel bytes too long", `{"name":"x","cgroups":[{"name":"a","work":{"type":"spin"}}],"steps":[{"hold_ms":1,"ops":[{"op":"read_kernel","kernel":{"target":{"kind":"kva","addr":1},"value":"bytes","len":5000}}]}]}`, "bytes of at most 4096"},
		{"kernel op with cgroup", `{"name":"x","cgroups":[{"name":"a","work":{"type":"spin"}}],"steps":[{"hold_ms":1,"ops":[{"op":"read_kernel","cgroup":"a","kernel":{"target":{"kind":"kva"},"value":"u32"}}]}]}`, "steps[0].ops[0].cgroup: not a field of read_kernel"},
		{"op count zero", `{"name":"x","cgroups":[{"name":"a","work":{"type":"spin"}}],"steps":[{"hold_ms":1,"ops":[{"op":"add_workers","cgroup":"a","count":0}]}]}`, "steps[0].ops[0].count: 0 out of range 1..1024"},
		{"path to a bad cpuset", `{"name":"x","cgroups":[{"name":"a","work":{"type":"spin"}}],"steps":[{"hold_ms":1},{"hold_ms":1},{"hold_ms":1,"ops":[{"op":"set_cpuset","cgroup":"a","cpuset":"half"}]}]}`,
			`scenario x: steps[2].ops[0].cpuset: cpu list "half": bad CPU "half" (want "" (no restriction), "all", a CPU list`},
		{"cpuset not a string", `{"name":"x","cgroups":[{"name":"a","cpuset":3,"work":{"type":"spin"}}],"steps":[{"hold_ms":1}]}`, `cgroups[0].cpuset: 3: want a string`},
		{"int as string", `{"name":"x","cgroups":[{"name":"a","workers":"2","work":{"type":"spin"}}],"steps":[{"hold_ms":1}]}`, `cgroups[0].workers: string: want an integer`},
		{"work param", `{"name":"x","cgroups":[{"name":"a","work":{"type":"spin","spin_us":3}}],"steps":[{"hold_ms":1}]}`, `cgroups[0].work: bad parameter: spin_us is not a parameter of spin`},
		{"work unknown key", `{"name":"x","cgroups":[{"name":"a","work":{"type":"spin","lops":3}}],"steps":[{"hold_ms":1}]}`, `cgroups[0].work: unknown field "lops"`},
		{"op field of another op", `{"name":"x","cgroups":[{"name":"a","work":{"type":"spin"}}],"steps":[{"hold_ms":1,"ops":[{"op":"freeze","cgroup":"a","count":2}]}]}`, "steps[0].ops[0].count: not a field of freeze (it takes cgroup)"},
		{"set_cpuset empty", `{"name":"x","cgroups":[{"name":"a","work":{"type":"spin"}}],"steps":[{"hold_ms":1,"ops":[{"op":"set_cpuset","cgroup":"a","cpuset":""}]}]}`, "steps[0].ops[0].cpuset: \"\": want a cpuset"},
		{"swap with itself", `{"name":"x","cgroups":[{"name":"a","work":{"type":"spin"}}],"steps":[{"hold_ms":1,"ops":[{"op":"swap_cpusets","cgroup":"a","with":"a"}]}]}`, `steps[0].ops[0].with: "a": want another cgroup`},
		{"removed cgroup used", `{"name":"x","cgroups":[{"name":"a","work":{"type":"spin"}},{"name":"b","work":{"type":"spin"}}],"steps":[{"hold_ms":1,"ops":[{"op":"remove_cgroup","cgroup":"b"}]},{"hold_ms":1,"ops":[{"op":"freeze","cgroup":"b"}]}]}`, `steps[1].ops[0].cgroup: no cgroup "b" at this step (have a)`},
		{"step cgroup gone after its step", `{"name":"x","cgroups":[{"name":"a","work":{"type":"spin"}}],"steps":[{"hold_ms":1,"cgroups":[{"name":"s","work":{"type":"spin"}}]},{"hold_ms":1,"ops":[{"op":"freeze","cgroup":"s"}]}]}`, `steps[1].ops[0].cgroup: no cgroup "s"`},
		{"added cgroup name reused", `{"name":"x","cgroups":[{"name":"a","work":{"type":"spin"}}],"steps":[{"hold_ms":1,"ops":[{"op":"add_cgroup","spec":{"name":"a","work":{"type":"spin"}}}]}]}`, `steps[0].ops[0].spec.name: "a" used twice`},
		{"nested without parent", `{"name":"x","cgroups":[{"name":"a/b","work":{"type":"spin"}}],"steps":[{"hold_ms":1}]}`, `cgroups[0].name: "a/b": no cgroup "a" to nest in`},
		{"nested in a busy parent", `{"name":"x","cgroups":[{"name":"a","work":{"type":"spin"}},{"name":"a/b","work":{"type":"spin"}}],"steps":[{"hold_ms":1}]}`, `its parent "a" runs workers`},
		{"move into a parent", `{"name":"x","cgroups":[{"name":"p"},{"name":"p/c","work":{"type":"spin"}},{"name":"a","work":{"type":"spin"}}],"steps":[{"hold_ms":1,"ops":[{"op":"move_tasks","cgroup":"a","to":"p"}]}]}`, `steps[0].ops[0].to: cgroup "p" has nested cgroups`},
		{"remove a parent first", `{"name":"x","cgroups":[{"name":"p"},{"name":"p/c","work":{"type":"spin"}}],"steps":[{"hold_ms":1,"ops":[{"op":"remove_cgroup","cgroup":"p"}]}]}`, `still has nested cgroups`},
		{"limits empty", `{"name":"x","cgroups":[{"name":"a","limits":{},"work":{"type":"spin"}}],"steps":[{"hold_ms":1}]}`, `cgroups[0].limits: {}: want at least one of`},
		{"cpu max", `{"name":"x","cgroups":[{"name":"a","limits":{"cpu_max":"10 100000"},"work":{"type":"spin"}}],"steps":[{"hold_ms":1}]}`, `cgroups[0].limits.cpu_max: "10 100000": want "max"`},
		{"memory", `{"name":"x","cgroups":[{"name":"a","work":{"type":"spin"}}],"steps":[{"hold_ms":1,"ops":[{"op":"set_limits","cgroup":"a","limits":{"memory_max":"12X"}}]}]}`, `steps[0].ops[0].limits.memory_max: "12X": want a count, "max", or a size`},
		{"nothing made", `{"name":"x","steps":[{"hold_ms":1}]}`, `cgroups: want 1..64 cgroups: the scenario makes none`},
		{"policy", `{"name":"x","cgroups":[{"name":"a","policy":"deadline","work":{"type":"spin"}}],"steps":[{"hold_ms":1}]}`, `cgroups[0].policy: policy "deadline", want one of normal, batch, idle, fifo, rr, ext`},
		{"rt priority", `{"name":"x","cgroups":[{"name":"a","policy":"fifo","work":{"type":"spin"}}],"steps":[{"hold_ms":1}]}`, `cgroups[0].policy: policy fifo with rt_priority 0`},
		{"comm", `{"name":"x","cgroups":[{"name":"a","comm":"a-very-long-command","work":{"type":"spin"}}],"steps":[{"hold_ms":1}]}`, `cgroups[0].comm: "a-very-long-command": want at most 15 bytes`},
		{"policy without work", `{"name":"x","cgroups":[{"name":"a","policy":"batch"},{"name":"b","work":{"type":"spin"}}],"steps":[{"hold_ms":1}]}`, `cgroups[0].work: missing`},
		{"payload path", `{"name":"x","cgroups":[{"name":"a","work":{"type":"spin"}}],"steps":[{"hold_ms":1,"ops":[{"op":"run_payload","payload":"p","path":"bin/x"}]}]}`, `steps[0].ops[0].path: "bin/x": want an absolute path`},
		{"payload twice", `{"name":"x","cgroups":[{"name":"a","work":{"type":"spin"}}],"steps":[{"hold_ms":1,"ops":[{"op":"run_payload","payload":"p","path":"/x"},{"op":"run_payload","payload":"p","path":"/x"}]}]}`, `steps[0].ops[1].payload: "p" started twice`},
		{"wait before run", `{"name":"x","cgroups":[{"name":"a","work":{"type":"spin"}}],"steps":[{"hold_ms":1,"ops":[{"op":"wait_payload","payload":"p"}]}]}`, `steps[0].ops[0].payload: no payload "p" started before`},
		{"expect exit", `{"name":"x","cgroups":[{"name":"a","work":{"type":"spin"}}],"steps":[{"hold_ms":1,"ops":[{"op":"run_payload","payload":"p","path":"/x"},{"op":"wait_payload","payload":"p","expect_exit":300}]}]}`, `steps[0].ops[1].expect_exit: 300 out of range 0..255`},
		{"attach while attached", `{"name":"x","cgroups":[{"name":"a","work":{"type":"spin"}}],"steps":[{"hold_ms":1,"ops":[{"op":"attach_scheduler"}]}]}`, `steps[0].ops[0].op: attach_scheduler: no earlier detach_scheduler`},
		{"detach twice", `{"name":"x","cgroups":[{"name":"a","work":{"type":"spin"}}],"steps":[{"hold_ms":1,"ops":[{"op":"detach_scheduler"}]},{"hold_ms":1,"ops":[{"op":"restart_scheduler"}]}]}`, `steps[1].ops[0].op: restart_scheduler: the scheduler was detached`},
		{"trailing", `{"name":"x","cgroups":[{"name":"a","work":{"type":"spin"}}],"steps":[{"hold_ms":1}]} {}`, "trailing data"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse([]byte(tc.json))
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

// A decoded scenario is typed: the cpuset specs, limits, ops and work
// are values, and a JSON round trip keeps them.
func TestParseTyped(t *testing.T) {
	s, err := Parse([]byte(`{"name":"x","cgroups":[{"name":"a","cpuset":"split:1/2","policy":"rr","rt_priority":3,
		"limits":{"cpu_max":"20000","memory_high":"64M","pids_max":"max"},"work":{"type":"spin"}}],
		"steps":[{"hold_ms":1,"ops":[{"op":"set_affinity","cgroup":"a","cpuset":"0-1"},{"op":"stop_workers","cgroup":"a"}]}]}`))
	if err != nil {
		t.Fatal(err)
	}
	c := s.Cgroups[0]
	if c.Cpuset.String() != "split:1/2" || c.Policy != "rr" || c.RTPriority != 3 {
		t.Errorf("cgroup %+v", c)
	}
	want := []Setting{{"cpu.max", "20000 100000"}, {"memory.high", "67108864"}, {"pids.max", "max"}}
	if d := cmp.Diff(want, c.Limits.Settings()); d != "" {
		t.Errorf("limits (-want +got):\n%s", d)
	}
	if op := s.Steps[0].Ops[0]; op.Cpuset.Kind != "list" || len(op.Cpuset.List) != 2 {
		t.Errorf("set_affinity cpuset %+v", op.Cpuset)
	}
	if op := s.Steps[0].Ops[1]; op.Count != 0 {
		t.Errorf("stop_workers without count: %+v", op)
	}
	b, err := json.Marshal(s)
	if err != nil {
		t.Fatal(err)
	}
	again, err := Parse(b)
	if err != nil {
		t.Fatalf("round trip: %v\n%s", err, b)
	}
	if d := cmp.Diff(s, again); d != "" {
		t.Errorf("round trip (-first +second):\n%s", d)
	}
}

// Every op kind parses in its minimal form, and names what it acts on.
func TestOpKindsParse(t *testing.T) {
	ops := map[string]string{
		OpSetCpuset:        `{"op":"set_cpuset","cgroup":"a","cpuset":"all"}`,
		OpClearCpuset:      `{"op":"clear_cpuset","cgroup":"a"}`,
		OpSwapCpusets:      `{"op":"swap_cpusets","cgroup":"a","with":"b"}`,
		OpSetWeight:        `{"op":"set_weight","cgroup":"a","weight":50}`,
		OpSetLimits:        `{"op":"set_limits","cgroup":"a","limits":{"pids_max":10}}`,
		OpAddWorkers:       `{"op":"add_workers","cgroup":"a","count":2}`,
		OpStopWorkers:      `{"op":"stop_workers","cgroup":"a","count":1}`,
		OpSetAffinity:      `{"op":"set_affinity","cgroup":"a","cpuset":"0"}`,
		OpMoveTasks:        `{"op":"move_tasks","cgroup":"a","to":"b"}`,
		OpFreeze:           `{"op":"freeze","cgroup":"a"}`,
		OpUnfreeze:         `{"op":"unfreeze","cgroup":"a"}`,
		OpAddCgroup:        `{"op":"add_cgroup","spec":{"name":"c","work":{"type":"spin"}}}`,
		OpRemoveCgroup:     `{"op":"remove_cgroup","cgroup":"b"}`,
		OpKillScheduler:    `{"op":"kill_scheduler"}`,
		OpSnapshot:         `{"op":"snapshot","tag":"t"}`,
		OpReadKernel:       `{"op":"read_kernel","kernel":{"target":{"kind":"symbol","symbol":"jiffies"},"value":"u64"}}`,
		OpWriteKernel:      `{"op":"write_kernel","kernel":{"target":{"kind":"symbol","symbol":"x"},"value":"u32","write":1}}`,
		OpRunPayload:       `{"op":"run_payload","payload":"p","path":"/bin/true","args":["-x"],"cgroup":"a"}`,
		OpWaitPayload:      `{"op":"wait_payload","payload":"p","expect_exit":0,"timeout_ms":100}`,
		OpKillPayload:      `{"op":"kill_payload","payload":"p","signal":15}`,
		OpDetachScheduler:  `{"op":"detach_scheduler"}`,
		OpAttachScheduler:  `{"op":"attach_scheduler"}`,
		OpRestartScheduler: `{"op":"restart_scheduler"}`,
		OpReplaceScheduler: `{"op":"replace_scheduler"}`,
	}
	if len(ops) != len(OpKinds()) {
		t.Errorf("%d ops tested, %d kinds", len(ops), len(OpKinds()))
	}
	for _, kind := range OpKinds() {
		js := ops[kind]
		var op Op
		if err := json.Unmarshal([]byte(js), &op); err != nil || op.Op != kind {
			t.Errorf("%s: %v", js, err)
		}
		pre := `{"op":"run_payload","payload":"p","path":"/x"}`
		if kind == OpAttachScheduler {
			pre = `{"op":"detach_scheduler"}`
		}
		if kind == OpRunPayload {
			pre = `{"op":"snapshot","tag":"x"}`
		}
		doc := `{"name":"x","cgroups":[{"name":"a","work":{"type":"spin"}},{"name":"b","workers":1,"work":{"type":"spin"}}],"steps":[{"hold_ms":1,"ops":[` + pre + `,` + js + `]}]}`
		if _, err := Parse([]byte(doc)); err != nil {
			t.Errorf("%s in a scenario: %v", kind, err)
		}
	}
}

func TestParseTypesWork(t *testing.T) {
	s, err := Parse([]byte(`{"name":"x","cgroups":[{"name":"a","workers":2,"work":{"type":"bursty","spin_us":100}}],"steps":[{"hold_ms":1}]}`))
	if err != nil {
		t.Fatal(err)
	}
	if w := s.Cgroups[0].Work; w.Type != workload.Bursty || w.SpinUS != 100 {
		t.Errorf("work = %+v, want bursty with spin_us 100", w)
	}
	_, err = Parse([]byte(`{"name":"x","cgroups":[{"name":"a","work":{"type":"spin"}},{"name":"b","work":{"type":"bogus"}}],"steps":[{"hold_ms":1}]}`))
	if err == nil || !strings.Contains(err.Error(), `scenario x: cgroups[1].work: unknown work type "bogus"`) {
		t.Fatalf("Parse = %v, want the work type error on cgroups[1].work", err)
	}
}

func TestCpusetResolve(t *testing.T) {
	topo := topology.Topology{Nodes: 2, LLCs: 2, Cores: 2, Threads: 2}.Ideal(512)
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
		{"numa:0", []int{0, 1, 2, 3}, ""},
		{"numa:1", []int{4, 5, 6, 7}, ""},
		{"numa:2", nil, "no NUMA node 2"},
		{"smt:0", []int{0, 2, 4, 6}, ""},
		{"smt:1", []int{1, 3, 5, 7}, ""},
		{"smt:2", nil, "no core of this machine has a thread 2"},
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
		{"did not stop", []CgroupResult{{Spec: cg, Workers: []WorkerResult{{Iterations: 3, WallNS: 10, CPUs: []int{0}, Died: "did not stop in time and was killed", StopTimedOut: true}}}},
			[]string{"fail:stuck"}},
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

func TestRequires(t *testing.T) {
	smt := topology.Topology{Nodes: 1, LLCs: 2, Cores: 2, Threads: 2}.Ideal(512)
	flat := topology.Topology{Nodes: 1, LLCs: 1, Cores: 4, Threads: 1}.Ideal(512)
	numa := topology.Topology{Nodes: 2, LLCs: 2, Cores: 2, Threads: 1}.Ideal(512)
	for _, tc := range []struct {
		r    Requires
		o    topology.Observed
		want string
	}{
		{Requires{}, flat, ""},
		{Requires{SMT: true}, smt, ""},
		{Requires{SMT: true}, flat, "needs SMT (cores with more than one thread), the machine has none"},
		{Requires{MinLLCs: 2}, flat, "needs at least 2 LLCs, the machine has 1"},
		{Requires{MaxLLCs: 1}, smt, "needs at most 1 LLCs, the machine has 2"},
		{Requires{MinCPUs: 8}, flat, "needs at least 8 CPUs, the machine has 4"},
		{Requires{MaxCPUs: 4}, smt, "needs at most 4 CPUs, the machine has 8"},
		{Requires{MinNUMANodes: 2}, smt, "needs at least 2 NUMA nodes, the machine has 1"},
		{Requires{MinNUMANodes: 2, MaxNUMANodes: 2}, numa, ""},
		{Requires{MaxNUMANodes: 1}, numa, "needs at most 1 NUMA nodes, the machine has 2"},
	} {
		if got := tc.r.Unmet(tc.o); got != tc.want {
			t.Errorf("%+v.Unmet = %q, want %q", tc.r, got, tc.want)
		}
	}
	_, err := Parse([]byte(`{"name":"x","requires":{"min_llcs":3,"max_llcs":2},"cgroups":[{"name":"a","work":{"type":"spin"}}],"steps":[{"hold_ms":1}]}`))
	if err == nil || !strings.Contains(err.Error(), "requires: min_llcs 3 is above max_llcs 2") {
		t.Errorf("Parse with min above max = %v", err)
	}
	_, err = Parse([]byte(`{"name":"x","requires":{"min_llc":3},"cgroups":[{"name":"a","work":{"type":"spin"}}],"steps":[{"hold_ms":1}]}`))
	if err == nil || !strings.Contains(err.Error(), "min_llc") {
		t.Errorf("Parse with a misspelt constraint = %v, want it refused", err)
	}
}

func TestTopologyChecks(t *testing.T) {
	ratio := func(v float64) *float64 { return &v }
	sc := &Scenario{Name: "x", Checks: Checks{MaxCrossNodeRatio: ratio(0.25), MaxCrossLLCRatio: ratio(0.5), MinPageLocality: ratio(0.9)}}
	w := func(migr, llc, node, pages, local uint64) WorkerResult {
		r := worker(100, 50, 100, 1e6, 0)
		r.Migrations, r.CrossLLC, r.CrossNode, r.Pages, r.LocalPages = migr, llc, node, pages, local
		return r
	}
	for _, tc := range []struct {
		name    string
		workers []WorkerResult
		want    []string
	}{
		{"all within bounds", []WorkerResult{w(10, 2, 1, 100, 95), w(10, 3, 1, 100, 100)}, nil},
		{"too many node crossings", []WorkerResult{w(10, 5, 4, 100, 100), w(10, 0, 2, 100, 100)}, []string{"fail:migration"}},
		{"too many LLC crossings", []WorkerResult{w(4, 3, 0, 100, 100)}, []string{"fail:migration"}},
		{"pages far away", []WorkerResult{w(0, 0, 0, 100, 50)}, []string{"fail:migration"}},
		{"nothing measured: nothing checked", []WorkerResult{w(0, 0, 0, 0, 0)}, nil},
	} {
		res := Evaluate(sc, []CgroupResult{{Spec: Cgroup{Name: "a"}, Workers: tc.workers}})
		if d := cmp.Diff(tc.want, kinds(res)); d != "" {
			t.Errorf("%s: outcomes (-want +got):\n%s%v", tc.name, d, res.Outcomes)
		}
	}
	res := Evaluate(sc, []CgroupResult{{Spec: Cgroup{Name: "a"}, Workers: []WorkerResult{w(10, 2, 1, 100, 95), w(10, 3, 1, 100, 100)}}})
	st := res.Stats.Cgroups[0]
	if st.CrossLLCMigrations != 5 || st.CrossNodeMigrations != 2 || st.PageLocality != 0.975 {
		t.Errorf("stats %+v: want 5 cross-LLC, 2 cross-node, locality 0.975", st)
	}
	if res.Stats.CrossLLCMigrations != 5 || res.Stats.CrossNodeMigrations != 2 {
		t.Errorf("totals %+v: want 5 cross-LLC, 2 cross-node", res.Stats)
	}
	for _, bad := range []string{`"max_cross_node_migration_ratio":1.5`, `"min_page_locality":-0.1`} {
		_, err := Parse([]byte(`{"name":"x","checks":{` + bad + `},"cgroups":[{"name":"a","work":{"type":"spin"}}],"steps":[{"hold_ms":1}]}`))
		if err == nil || !strings.Contains(err.Error(), "within 0..1") {
			t.Errorf("Parse with %s = %v, want refused", bad, err)
		}
	}
	_, err := Parse([]byte(`{"name":"x","cgroups":[{"name":"a","place":"socket","work":{"type":"spin"}}],"steps":[{"hold_ms":1}]}`))
	if err == nil || !strings.Contains(err.Error(), `cgroups[0].place: "socket": want llc, node or core`) {
		t.Errorf("Parse with place socket = %v", err)
	}
}

func TestBind(t *testing.T) {
	sc, err := Parse([]byte(`{"name":"x","cgroups":[
		{"name":"llc","each":"llc","workers_per_cpu":1,"work":{"type":"spin"}},
		{"name":"mem","each":"node","workers":1,"work":{"type":"spin"}},
		{"name":"plain","work":{"type":"spin"}}],"steps":[{"hold_ms":1}]}`))
	if err != nil {
		t.Fatal(err)
	}
	b := sc.Bind(topology.Topology{Nodes: 2, LLCs: 4, Cores: 1, Threads: 1}.Ideal(512))
	var got []string
	for _, c := range b.Cgroups {
		got = append(got, c.Name+"="+c.Cpuset.String())
	}
	want := []string{"llc-0=llc:0", "llc-1=llc:1", "llc-2=llc:2", "llc-3=llc:3", "mem-0=numa:0", "mem-1=numa:1", "plain="}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("Bind (-want +got):\n%s", d)
	}
	if len(sc.Cgroups) != 3 {
		t.Errorf("Bind changed the scenario it was given: %d cgroups", len(sc.Cgroups))
	}
	for _, tc := range []struct{ js, err string }{
		{`{"name":"x","cgroups":[{"name":"a","each":"core","work":{"type":"spin"}}],"steps":[{"hold_ms":1}]}`, `cgroups[0].each: "core": want llc or node`},
		{`{"name":"x","cgroups":[{"name":"a","each":"llc","cpuset":"0","work":{"type":"spin"}}],"steps":[{"hold_ms":1}]}`, "drop cpuset"},
		{`{"name":"x","cgroups":[{"name":"a","each":"llc","work":{"type":"spin"}}],"steps":[{"hold_ms":1,"ops":[{"op":"add_workers","cgroup":"a","count":1}]}]}`, "ops cannot name it"},
	} {
		if _, err := Parse([]byte(tc.js)); err == nil || !strings.Contains(err.Error(), tc.err) {
			t.Errorf("Parse(%s) = %v, want %q", tc.js, err, tc.err)
		}
	}
}
