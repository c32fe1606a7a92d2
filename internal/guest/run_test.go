package guest

import (
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/ktstr-go/ktstr/internal/scenario"
	"github.com/ktstr-go/ktstr/internal/topology"
	"github.com/ktstr-go/ktstr/lib/wire"
	"github.com/ktstr-go/ktstr/lib/wire/payload"
)

// fakeGroup is a batch of workers that report fixed results: 100
// iterations each, of which they have done one more per progress reading.
type fakeGroup struct {
	spec    spawnSpec
	stopped bool
	done    uint64 // iterations per worker so far
}

func (f *fakeGroup) Iterations() uint64 {
	if !f.stopped {
		f.done = min(f.done+1, 100)
	}
	return f.done * uint64(f.spec.Count)
}

func (f *fakeGroup) PIDs() []int { return nil }

func (f *fakeGroup) Progress() []scenario.WorkerResult {
	if f.stopped {
		return nil
	}
	f.done = min(f.done+1, 100)
	out := make([]scenario.WorkerResult, f.spec.Count)
	for i := range out {
		out[i] = scenario.WorkerResult{Iterations: f.done, RunNS: 5e6 * f.done, WallNS: 1e7 * f.done, MaxGapNS: 1e6, CPUs: []int{i % 2}}
	}
	return out
}

func (f *fakeGroup) Stop(time.Duration) ([]scenario.WorkerResult, error) {
	f.stopped = true
	f.done = 100
	out := make([]scenario.WorkerResult, f.spec.Count)
	for i := range out {
		cpus := f.spec.Affinity
		if cpus == nil {
			cpus = []int{i % 2}
		}
		out[i] = scenario.WorkerResult{Iterations: 100, RunNS: 5e8, WallNS: 1e9, MaxGapNS: 1e6, CPUs: cpus}
	}
	return out, nil
}

type recorder struct {
	mu     sync.Mutex
	frames []wire.Type
	stims  []wire.Stimulus
	groups []*fakeGroup
}

func (r *recorder) send(t wire.Type, p []byte) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.frames = append(r.frames, t)
	if t == wire.TypeStimulus || t == wire.TypeStepEnd {
		s, err := wire.DecodeStimulus(p)
		if err != nil {
			panic(err)
		}
		r.stims = append(r.stims, s)
	}
}

func (r *recorder) spawn(s spawnSpec) (workerGroup, error) {
	if strings.Contains(s.Cgroup.Name, "explode") {
		return nil, errors.New("cannot start")
	}
	g := &fakeGroup{spec: s}
	r.groups = append(r.groups, g)
	return g, nil
}

func testEnv(r *recorder) runEnv {
	return runEnv{
		topo:       topology.Topology{Nodes: 1, LLCs: 1, Cores: 2, Threads: 1}.Ideal(512),
		cgroupSkip: "test: no cgroups",
		spawn:      r.spawn,
		send:       r.send,
		logf:       func(string, ...any) {},
		stop:       make(chan struct{}),
		stopWhy:    func() string { return "" },
	}
}

func mustParse(t *testing.T, js string) *scenario.Scenario {
	t.Helper()
	s, err := scenario.Parse([]byte(js))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestRunScenarioFramesAndSteps(t *testing.T) {
	sc := mustParse(t, `{"name":"t","settle_ms":10,
		"cgroups":[{"name":"a","workers_per_cpu":2,"work":{"type":"spin"}}],
		"steps":[{"hold_ms":10},{"hold_ms":10,"ops":[{"op":"add_workers","cgroup":"a","count":1}]}]}`)
	r := &recorder{}
	res := runScenario(sc, testEnv(r))
	want := []wire.Type{wire.TypeScenarioStart,
		wire.TypeStimulus, wire.TypeStepEnd, // step 0: baseline
		wire.TypeStimulus, wire.TypeStepEnd, // step 1
		wire.TypeStimulus, wire.TypeStepEnd, // step 2
		wire.TypeScenarioEnd}
	if d := cmp.Diff(want, r.frames); d != "" {
		t.Errorf("frames (-want +got):\n%s", d)
	}
	var steps []uint16
	for _, s := range r.stims {
		steps = append(steps, s.StepIndex)
	}
	if d := cmp.Diff([]uint16{0, 0, 1, 1, 2, 2}, steps); d != "" {
		t.Errorf("step indexes (-want +got):\n%s", d)
	}
	if got := r.stims[4].WorkerCount; got != 5 {
		t.Errorf("step 2 worker count = %d, want 5 (4 per 2 CPUs + 1 added)", got)
	}
	if r.stims[4].OpCount != 1 || r.stims[4].OpKinds != 4 {
		t.Errorf("step 2 ops = %d kinds %#x, want 1 and add_workers (4)", r.stims[4].OpCount, r.stims[4].OpKinds)
	}
	if len(r.groups) != 2 || r.groups[0].spec.Count != 4 || r.groups[1].spec.Count != 1 {
		t.Fatalf("spawned %d batches, want 4 then 1 worker", len(r.groups))
	}
	for _, g := range r.groups {
		if !g.stopped {
			t.Error("a batch was never stopped")
		}
	}
	if res.Verdict() != payload.Pass || res.Stats.Workers != 5 {
		t.Errorf("result %v with %d workers, want pass with 5: %+v", res.Verdict(), res.Stats.Workers, res.Outcomes)
	}
}

func TestRunScenarioNoCgroupsSkipsIsolation(t *testing.T) {
	sc := mustParse(t, `{"name":"t","cgroups":[{"name":"a","cpuset":"0","workers":1,"work":{"type":"spin"}}],"steps":[{"hold_ms":5}]}`)
	res := runScenario(sc, testEnv(&recorder{}))
	if res.Verdict() != payload.Skip && res.Verdict() != payload.Pass {
		t.Fatalf("verdict %v: %+v", res.Verdict(), res.Outcomes)
	}
	found := false
	for _, o := range res.Outcomes {
		found = found || (o.Verdict == payload.Skip && strings.Contains(o.Message, "test: no cgroups"))
	}
	if !found {
		t.Errorf("no Skip outcome naming why isolation was not checked: %+v", res.Outcomes)
	}
}

func TestRunScenarioPinResolvesAffinity(t *testing.T) {
	sc := mustParse(t, `{"name":"t","cgroups":[{"name":"a","cpuset":"0","cpuset_enforce":false,"pin":"1","workers":1,"work":{"type":"spin"}}],"steps":[{"hold_ms":5}]}`)
	r := &recorder{}
	res := runScenario(sc, testEnv(r))
	if d := cmp.Diff([]int{1}, r.groups[0].spec.Affinity); d != "" {
		t.Errorf("affinity (-want +got):\n%s", d)
	}
	if res.Verdict() != payload.Fail || res.Outcomes[0].Kind != payload.KindIsolation {
		t.Errorf("worker on CPU 1 with expected cpuset 0: %+v, want an isolation failure", res.Outcomes)
	}
}

func TestRunScenarioSpawnFailureFails(t *testing.T) {
	sc := mustParse(t, `{"name":"t","cgroups":[{"name":"a","workers":1,"work":{"type":"spin","loops":7}}],"steps":[{"hold_ms":5}]}`)
	r := &recorder{}
	env := testEnv(r)
	env.spawn = func(spawnSpec) (workerGroup, error) { return nil, errors.New("cannot start") }
	res := runScenario(sc, env)
	if res.Verdict() != payload.Fail || !strings.Contains(res.Outcomes[len(res.Outcomes)-1].Message, "cannot start") {
		t.Errorf("outcomes %+v, want a failure naming the spawn error", res.Outcomes)
	}
}

func TestRunScenarioStopCutsShort(t *testing.T) {
	sc := mustParse(t, `{"name":"t","cgroups":[{"name":"a","workers":1,"work":{"type":"spin"}}],"steps":[{"hold_ms":60000},{"hold_ms":60000}]}`)
	r := &recorder{}
	env := testEnv(r)
	stop := make(chan struct{})
	env.stop = stop
	env.stopWhy = func() string { return "scheduler x exited with code 3" }
	time.AfterFunc(20*time.Millisecond, func() { close(stop) })
	done := make(chan *payload.AssertResult)
	go func() { done <- runScenario(sc, env) }()
	select {
	case res := <-done:
		if res.Verdict() != payload.Inconclusive || !strings.Contains(res.Outcomes[len(res.Outcomes)-1].Message, "code 3") {
			t.Errorf("outcomes %+v, want inconclusive naming the cause", res.Outcomes)
		}
		if n := len(r.stims); n != 2 {
			t.Errorf("%d STIM/STEN frames, want 2 (the second step never starts)", n)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("runScenario did not stop when told to")
	}
}

func TestRunScenarioKillSchedulerOp(t *testing.T) {
	sc := mustParse(t, `{"name":"t","cgroups":[{"name":"a","workers":1,"work":{"type":"spin"}}],
		"steps":[{"hold_ms":5,"ops":[{"op":"kill_scheduler","signal":15}]}]}`)
	var got []int
	env := testEnv(&recorder{})
	env.killScheduler = func(sig int) error { got = append(got, sig); return nil }
	if res := runScenario(sc, env); res.Verdict() != payload.Pass {
		t.Errorf("verdict %v: %+v", res.Verdict(), res.Outcomes)
	}
	if d := cmp.Diff([]int{15}, got); d != "" {
		t.Errorf("signals sent (-want +got):\n%s", d)
	}
	// Without a scheduler the op is a setup failure, not silently ignored.
	env.killScheduler = nil
	if res := runScenario(sc, env); res.Verdict() != payload.Fail {
		t.Errorf("kill_scheduler without a scheduler: %v, want fail", res.Verdict())
	}
}

// STIM and STEN carry the iterations done so far, which only grow and end
// at most at SCEN's total.
func TestRunScenarioStepIterations(t *testing.T) {
	sc := mustParse(t, `{"name":"t","settle_ms":10,
		"cgroups":[{"name":"a","workers":2,"work":{"type":"spin"}}],
		"steps":[{"hold_ms":10},{"hold_ms":10,"ops":[{"op":"add_workers","cgroup":"a","count":2}]},
			{"hold_ms":10,"ops":[{"op":"stop_workers","cgroup":"a","count":2}]}]}`)
	r := &recorder{}
	res := runScenario(sc, testEnv(r))
	var got []uint64
	for _, s := range r.stims {
		got = append(got, s.TotalIterations)
	}
	// Batch a: one more iteration per worker and reading (2 workers: +2);
	// step 2 adds batch b (+2 more per reading); step 3 stops b, which
	// reports 100 per worker.
	want := []uint64{2, 4, 6, 8, 10 + 2, 12 + 4, 14 + 200, 16 + 200}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("step iterations (-want +got):\n%s", d)
	}
	if res.Stats.TotalIterations != 400 {
		t.Errorf("total iterations %d, want 400", res.Stats.TotalIterations)
	}
}

// A lost scheduler stops the scenario at once; the checks judge only the
// time before, and the time after is measured apart.
func TestRunScenarioCutAtLoss(t *testing.T) {
	sc := mustParse(t, `{"name":"t","settle_ms":10000,
		"cgroups":[{"name":"a","workers":2,"work":{"type":"spin"},"checks":{"min_iterations":3}}],
		"steps":[{"hold_ms":10000}]}`)
	r := &recorder{}
	env := testEnv(r)
	stop := make(chan struct{})
	close(stop)
	env.stop, env.stopWhy = stop, func() string { return "the scheduler was lost: sched_ext state disabled" }
	var start, end time.Time
	env.span = func(s, e time.Time) { start, end = s, e }
	res := runScenario(sc, env)
	if start.IsZero() || end.Before(start) {
		t.Errorf("span(%v, %v): want the scenario's start and end", start, end)
	}
	// 2 workers; progress: 1 at STIM, 2 at the cut; 100 each at the end.
	if got := res.Stats.TotalIterations; got != 4 {
		t.Errorf("stats cover %d iterations, want the 4 before the cut", got)
	}
	if a := res.StatsAfterDetach; a == nil || a.TotalIterations != 196 || a.Workers != 2 {
		t.Fatalf("stats after detach %+v, want 196 iterations of 2 workers", a)
	}
	starved := 0
	for _, o := range res.Outcomes {
		if o.Kind == payload.KindStarved {
			starved++ // 2 each before the cut, fewer than min_iterations 3: judged on the time before
		}
	}
	if starved != 2 {
		t.Errorf("outcomes %+v: want both workers starved before the cut", res.Outcomes)
	}
	if len(res.InfoNotes) == 0 || !strings.Contains(res.InfoNotes[len(res.InfoNotes)-1], "stats_after_detach") {
		t.Errorf("info notes %q lack the cut", res.InfoNotes)
	}
	want := []wire.Type{wire.TypeScenarioStart, wire.TypeStimulus, wire.TypeStepEnd, wire.TypeScenarioEnd}
	if d := cmp.Diff(want, r.frames); d != "" {
		t.Errorf("frames (-want +got):\n%s", d)
	}
}

// TestPlacement: place spreads a cgroup's workers round the LLCs (or
// nodes) within its cpuset, and every batch carries the CPU-to-domain
// maps the workers count crossings with.
func TestPlacement(t *testing.T) {
	sc := mustParse(t, `{"name":"t","cgroups":[
		{"name":"a","workers":4,"place":"llc","cpuset":"1-7","work":{"type":"pipe"}},
		{"name":"b","workers":2,"place":"node","work":{"type":"spin"}}],
		"steps":[{"hold_ms":1}]}`)
	r := &recorder{}
	env := testEnv(r)
	env.topo = topology.Topology{Nodes: 2, LLCs: 2, Cores: 2, Threads: 2}.Ideal(512)
	runScenario(sc, env)
	if len(r.groups) != 2 {
		t.Fatalf("%d batches, want 2", len(r.groups))
	}
	a, b := r.groups[0].spec, r.groups[1].spec
	if d := cmp.Diff([][]int{{1, 2, 3}, {4, 5, 6, 7}}, a.Placement); d != "" {
		t.Errorf("place llc within 1-7 (-want +got):\n%s", d)
	}
	if d := cmp.Diff([][]int{{0, 1, 2, 3}, {4, 5, 6, 7}}, b.Placement); d != "" {
		t.Errorf("place node (-want +got):\n%s", d)
	}
	if d := cmp.Diff([]int{0, 0, 0, 0, 1, 1, 1, 1}, a.LLCOf); d != "" {
		t.Errorf("LLCOf (-want +got):\n%s", d)
	}
	if d := cmp.Diff([]int{0, 0, 0, 0, 1, 1, 1, 1}, a.NodeOf); d != "" {
		t.Errorf("NodeOf (-want +got):\n%s", d)
	}
}

// TestRunScenarioKernelOps: read_kernel and write_kernel go to the host
// as KORQ; values read are saved and checked; an ERR answer or a failed
// check fails the run with a message naming the step and what failed.
func TestRunScenarioKernelOps(t *testing.T) {
	sc := mustParse(t, `{"name":"t","cgroups":[{"name":"a","workers":1,"work":{"type":"spin"}}],"steps":[
		{"hold_ms":1,"ops":[{"op":"read_kernel","kernel":{"target":{"kind":"symbol","symbol":"jiffies"},"value":"u64","save":"j0"}}]},
		{"hold_ms":1,"ops":[{"op":"read_kernel","kernel":{"target":{"kind":"symbol","symbol":"jiffies"},"value":"u64","expect":{"greater_than":"j0"}}},
			{"op":"write_kernel","kernel":{"target":{"kind":"symbol","symbol":"panic_print"},"value":"u64","write":5,"cold":true}},
			{"op":"read_kernel","kernel":{"target":{"kind":"symbol","symbol":"nosuch"},"value":"u32"}},
			{"op":"read_kernel","kernel":{"target":{"kind":"symbol","symbol":"jiffies"},"value":"u64","expect":{"max":1}}}]}]}`)
	env := testEnv(&recorder{})
	jiffies := uint64(1000)
	var reqs []*payload.KernelOpRequest
	env.kernelOp = func(req *payload.KernelOpRequest) (*payload.KernelOpReply, error) {
		reqs = append(reqs, req)
		e := req.Entries[0]
		if e.Target.Symbol == "nosuch" {
			return &payload.KernelOpReply{Reason: "entry 0 (symbol nosuch): introspect: unknown symbol nosuch"}, nil
		}
		if req.Direction == payload.DirWrite {
			return &payload.KernelOpReply{Success: true}, nil
		}
		jiffies += 10
		return &payload.KernelOpReply{Success: true, ReadValues: []payload.Value{{Kind: e.Value.Kind, U: jiffies}}}, nil
	}
	res := runScenario(sc, env)
	if len(reqs) != 5 || reqs[2].Direction != payload.DirWrite || reqs[2].Mode != payload.ModeCold || reqs[2].Entries[0].Value.U != 5 {
		t.Fatalf("requests %+v", reqs)
	}
	var fails []string
	for _, o := range res.Outcomes {
		if o.Verdict == payload.Fail {
			fails = append(fails, o.Message)
		}
	}
	want := []string{
		"step 2: read_kernel: host answered ERR: entry 0 (symbol nosuch): introspect: unknown symbol nosuch",
		"step 2: read_kernel: jiffies is 1030, want at most 1",
	}
	if d := cmp.Diff(want, fails); d != "" {
		t.Errorf("failures (-want +got):\n%s", d)
	}
	notes := strings.Join(res.InfoNotes, "\n")
	for _, w := range []string{"read_kernel jiffies: 1010 (hot, answered in", "read_kernel jiffies: 1020 (hot", "write_kernel panic_print: wrote 5 (cold"} {
		if !strings.Contains(notes, w) {
			t.Errorf("notes lack %q:\n%s", w, notes)
		}
	}
	env.kernelOp = nil
	res = runScenario(sc, env)
	if len(res.Outcomes) == 0 || !strings.Contains(res.Outcomes[len(res.Outcomes)-1].Message, "no channel to the host") {
		t.Errorf("without a host channel: %+v", res.Outcomes)
	}
}
