package guest

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/ktstr-go/ktstr/internal/cgroup"
	"github.com/ktstr-go/ktstr/internal/cpulist"
	"github.com/ktstr-go/ktstr/internal/scenario"
	"github.com/ktstr-go/ktstr/internal/topology"
	"github.com/ktstr-go/ktstr/lib/shm"
	"github.com/ktstr-go/ktstr/lib/wire"
	"github.com/ktstr-go/ktstr/lib/wire/payload"
)

// spawnSpec is one batch of workers for one cgroup.
type spawnSpec struct {
	Cgroup    scenario.Cgroup
	Count     int
	CgroupDir string // "" = the agent's own cgroup
	Affinity  []int  // nil = no pin
	// Placement pins worker i to Placement[i%len] instead (one set per
	// LLC or node); Domains map CPUs to LLC and node for the workers'
	// cross-domain counts.
	Placement     [][]int
	LLCOf, NodeOf []int
}

// workerGroup is a running batch of workers.
type workerGroup interface {
	Stop(timeout time.Duration) ([]scenario.WorkerResult, error)
	// PIDs are the workers' processes.
	PIDs() []int
	// Iterations is what the workers completed so far.
	Iterations() uint64
	// Progress is each worker's measurements so far (nil after Stop).
	Progress() []scenario.WorkerResult
}

// spawnFunc starts a batch of workers (the workload package, wired in
// workload.go; tests may substitute).
type spawnFunc func(spawnSpec) (workerGroup, error)

// runEnv is where a scenario runs.
type runEnv struct {
	topo        topology.Observed
	cgroupRoot  string          // cgroup v2 dir to create the scenario's cgroups in; "" = none
	controllers map[string]bool // enabled for cgroupRoot's children
	cgroupSkip  string          // why cgroups are not used, when cgroupRoot is ""
	spawn       spawnFunc
	region      *shm.Region
	send        func(wire.Type, []byte)
	logf        func(string, ...any)
	// stop is closed when the scenario must end early: the scheduler
	// under test was lost (it detached, the kernel disabled it, its
	// process died); stopWhy says why. The measurements are cut at that
	// moment: what came after is kept apart.
	stop    <-chan struct{}
	stopWhy func() string
	// span, when set, learns when the scenario started (SCST) and ended
	// (its workers stopped, SCEN).
	span func(start, end time.Time)
	// killScheduler signals the scheduler under test (nil: none).
	killScheduler func(sig int) error
	// detachScheduler stops the scheduler under test on purpose and
	// attachScheduler starts it again (nil: none); each returns a note.
	detachScheduler, attachScheduler func() (string, error)
	// replaceScheduler detaches it and attaches the replacement.
	replaceScheduler func() (string, error)
	// snapshot asks the host for a snapshot and returns its answer (nil:
	// no channel to the host).
	snapshot func(tag string) (string, error)
	// kernelOp sends a kernel op to the host and returns its reply (nil:
	// no channel to the host).
	kernelOp func(*payload.KernelOpRequest) (*payload.KernelOpReply, error)
}

type liveCgroup struct {
	spec     scenario.Cgroup
	group    *cgroup.Group
	expected []int
	skips    map[string]string
	batches  []workerGroup
	results  []scenario.WorkerResult // until the cut, if any
	after    []scenario.WorkerResult // from the cut to the stop
	parent   *liveCgroup             // for a nested cgroup
	ever     []int                   // every CPU its cpusets allowed so far (isolation allows them all; nil: any)
	pin      []int                   // the workers' pin within the cpuset (isolation holds them to it)
	frozen   bool
	removed  bool
	// changedAt is when its cpuset last changed mid-run (zero: never);
	// strayed the first worker seen outside it since (isolation.go).
	changedAt time.Time
	strayed   string
}

// cut is the moment the scenario lost its scheduler: what each running
// batch had measured then.
type cut struct {
	at       time.Time
	progress map[workerGroup][]scenario.WorkerResult
}

// collect adds a stopped batch's results to c: whole, or split at the
// cut when the batch ran across it.
func (c *liveCgroup) collect(b workerGroup, rs []scenario.WorkerResult, k *cut) {
	var before []scenario.WorkerResult
	if k != nil {
		before = k.progress[b]
	}
	if len(before) != len(rs) {
		c.results = append(c.results, rs...)
		return
	}
	for i, r := range rs {
		a, x := splitAt(before[i], r)
		c.results = append(c.results, a)
		c.after = append(c.after, x)
	}
}

// splitAt splits a worker's final result at an earlier reading of its
// progress: the reading, and the difference (which has no gap or CPU
// figures). A worker that died counts as dead in both.
func splitAt(before, final scenario.WorkerResult) (scenario.WorkerResult, scenario.WorkerResult) {
	sub := func(a, b uint64) uint64 { return a - min(a, b) }
	before.Died = final.Died
	return before, scenario.WorkerResult{
		Iterations: sub(final.Iterations, before.Iterations), RunNS: sub(final.RunNS, before.RunNS),
		WaitNS: sub(final.WaitNS, before.WaitNS), WallNS: sub(final.WallNS, before.WallNS),
		Migrations: sub(final.Migrations, before.Migrations), Died: final.Died,
	}
}

// runScenario runs sc and returns its result. Errors setting the scenario
// up become failing outcomes: the guest always reports.
func runScenario(sc *scenario.Scenario, env runEnv) *payload.AssertResult {
	var setupErrs, notes []string
	failSetup := func(format string, args ...any) {
		setupErrs = append(setupErrs, fmt.Sprintf(format, args...))
	}
	sn := &scene{env: env, byName: map[string]*liveCgroup{}}
	defer sn.removeAll()
	for _, spec := range sc.Cgroups {
		if _, err := sn.makeCgroup(spec); err != nil {
			failSetup("cgroup %s: %v", spec.Name, err)
		}
	}

	env.send(wire.TypeScenarioStart, nil)
	start := time.Now()
	elapsed := func() uint32 { return uint32(time.Since(start).Milliseconds()) }
	stim := wire.Stimulus{CgroupCount: uint16(len(sn.cgs))}
	// iterations is what every worker completed so far: the stopped ones'
	// reports and the running ones' progress.
	iterations := func() uint64 {
		var n uint64
		for _, c := range sn.cgs {
			for _, r := range c.results {
				n += r.Iterations
			}
			for _, b := range c.batches {
				n += b.Iterations()
			}
		}
		return n
	}
	var total uint64
	for _, c := range slices.Clone(sn.cgs) {
		if err := sn.start(c); err != nil {
			failSetup("cgroup %s: %v", c.spec.Name, err)
		}
	}
	stim.WorkerCount = uint16(min(sn.nworkers, 0xffff))

	stopped := ""
	var lost *cut
	hold := func(d time.Duration) {
		if stopped != "" {
			return
		}
		t := time.NewTimer(d)
		defer t.Stop()
		tick := time.NewTicker(50 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-t.C:
				return
			case <-env.stop:
				stopped = env.stopWhy()
				lost = &cut{at: time.Now(), progress: map[workerGroup][]scenario.WorkerResult{}}
				for _, c := range sn.cgs {
					for _, b := range c.batches {
						lost.progress[b] = b.Progress()
					}
				}
				return
			case now := <-tick.C:
				sn.sampleIsolation(now)
				if env.region != nil && env.region.TakeControl(shm.CtlShutdown) != 0 {
					stopped = "the host asked for a graceful shutdown (watchdog soft deadline)"
					return
				}
			}
		}
	}
	// Step 0 is the baseline settle window.
	if sc.SettleMS > 0 {
		stim.StepIndex, stim.ElapsedMS, stim.TotalIterations = 0, elapsed(), iterations()
		env.send(wire.TypeStimulus, wire.AppendStimulus(nil, stim))
		hold(time.Duration(sc.SettleMS) * time.Millisecond)
		stim.ElapsedMS, stim.TotalIterations = elapsed(), iterations()
		env.send(wire.TypeStepEnd, wire.AppendStimulus(nil, stim))
	}
	saved := map[string]uint64{} // values read_kernel kept
	for i, st := range sc.Steps {
		if stopped != "" {
			break
		}
		stim.StepIndex = uint16(min(i+1, 0xffff))
		stim.OpCount = uint16(min(len(st.Ops), 0xffff))
		stim.OpKinds = 0
		for _, spec := range st.Cgroups {
			c, err := sn.makeCgroup(spec)
			if err == nil {
				err = sn.start(c)
			}
			if err != nil {
				failSetup("step %d: cgroup %s: %v", i+1, spec.Name, err)
			}
		}
		for _, op := range st.Ops {
			stim.OpKinds |= opBit(op.Op)
			if op.Op == scenario.OpSnapshot {
				if env.snapshot == nil {
					failSetup("step %d: snapshot %q: no channel to the host", i+1, op.Tag)
				} else if answer, err := env.snapshot(op.Tag); err != nil {
					failSetup("step %d: snapshot %q: %v", i+1, op.Tag, err)
				} else {
					notes = append(notes, fmt.Sprintf("snapshot %q: %s", op.Tag, answer))
				}
				continue
			}
			if op.Op == scenario.OpReadKernel || op.Op == scenario.OpWriteKernel {
				if note, err := env.runKernelOp(op, saved); err != nil {
					failSetup("step %d: %s: %v", i+1, op.Op, err)
				} else {
					notes = append(notes, note)
				}
				continue
			}
			if op.Op == scenario.OpKillScheduler {
				if err := env.kill(op.Signal); err != nil {
					failSetup("step %d: kill_scheduler: %v", i+1, err)
				}
				continue
			}
			if err := sn.apply(op); err != nil {
				failSetup("step %d: %s: %v", i+1, op.String(), err)
			}
		}
		stim.WorkerCount = uint16(min(sn.nworkers, 0xffff))
		stim.CgroupCount = uint16(min(sn.alive(), 0xffff))
		stim.ElapsedMS, stim.TotalIterations = elapsed(), iterations()
		env.send(wire.TypeStimulus, wire.AppendStimulus(nil, stim))
		hold(time.Duration(st.HoldMS) * time.Millisecond)
		// The step's own cgroups go at its end, children first.
		for j := len(st.Cgroups) - 1; j >= 0; j-- {
			if c := sn.byName[st.Cgroups[j].Name]; c != nil && !c.removed {
				if err := sn.remove(c); err != nil {
					failSetup("step %d: remove its cgroup %s: %v", i+1, c.spec.Name, err)
				}
			}
		}
		stim.WorkerCount = uint16(min(sn.nworkers, 0xffff))
		stim.ElapsedMS, stim.TotalIterations = elapsed(), iterations()
		env.send(wire.TypeStepEnd, wire.AppendStimulus(nil, stim))
	}

	sn.endPayloads()
	// Stop every batch at once, then collect.
	var wg sync.WaitGroup
	var mu sync.Mutex
	for _, c := range sn.cgs {
		if c.frozen {
			// A frozen worker cannot see the stop.
			if err := sn.freeze(c, false); err != nil {
				failSetup("cgroup %s: %v", c.spec.Name, err)
			}
		}
		for _, b := range c.batches {
			wg.Add(1)
			go func(c *liveCgroup, b workerGroup) {
				defer wg.Done()
				rs, err := b.Stop(5 * time.Second)
				mu.Lock()
				defer mu.Unlock()
				c.collect(b, rs, lost)
				if err != nil {
					failSetup("cgroup %s: stop workers: %v", c.spec.Name, err)
				}
			}(c, b)
		}
		c.batches = nil
	}
	wg.Wait()
	end := time.Now()
	groups := make([]scenario.CgroupResult, 0, len(sn.cgs))
	var after []scenario.CgroupResult
	for _, c := range sn.cgs {
		if !c.spec.HasWorkers() && len(c.results) == 0 && len(c.after) == 0 {
			continue // a parent or an empty target: nothing to judge
		}
		expected := c.ever
		if c.pin != nil {
			expected = within(orAll(expected, env.topo.CPUs), c.pin)
		}
		for _, r := range slices.Concat(c.results, c.after) {
			total += r.Iterations
		}
		groups = append(groups, scenario.CgroupResult{Spec: c.spec, Expected: expected, Workers: c.results, Skips: c.skips})
		if len(c.after) > 0 {
			after = append(after, scenario.CgroupResult{Spec: c.spec, Expected: expected, Workers: c.after})
		}
	}
	env.send(wire.TypeScenarioEnd, wire.AppendScenarioEnd(nil, wire.ScenarioEnd{ElapsedMS: uint64(end.Sub(start).Milliseconds()), TotalIterations: total}))
	if env.span != nil {
		env.span(start, end)
	}

	// The checks judge the time the scheduler under test ran the workers;
	// the time after it was lost is measured apart.
	res := scenario.Evaluate(sc, groups)
	if after != nil {
		st := scenario.Evaluate(sc, after).Stats
		res.StatsAfterDetach = &st
		res.InfoNotes = append(res.InfoNotes, fmt.Sprintf("the scenario stopped %d ms in, when the scheduler was lost: stats cover the time before; "+
			"stats_after_detach the %d ms the workers took to stop", lost.at.Sub(start).Milliseconds(), end.Sub(lost.at).Milliseconds()))
	}
	for _, c := range sn.cgs {
		if c.strayed != "" {
			res.Outcomes = append(res.Outcomes, payload.Outcome{Verdict: payload.Fail, Kind: payload.KindIsolation, Message: c.strayed})
		}
	}
	for _, e := range setupErrs {
		res.Outcomes = append(res.Outcomes, payload.Outcome{Verdict: payload.Fail, Kind: payload.KindOther, Message: e})
	}
	if stopped != "" {
		res.Outcomes = append(res.Outcomes, payload.Outcome{Verdict: payload.Inconclusive, Kind: payload.KindOther,
			Message: "scenario cut short: " + stopped})
	}
	res.InfoNotes = append(res.InfoNotes, notes...)
	res.InfoNotes = append(res.InfoNotes, sn.notes...)
	res.Measurements = map[string]float64{"elapsed_ms": float64(time.Since(start).Milliseconds()), "workers": float64(sn.nworkers)}
	return res
}

func orAll(cpus, all []int) []int {
	if cpus == nil {
		return all
	}
	return cpus
}

func opBit(op string) uint32 {
	switch op {
	case scenario.OpSetCpuset:
		return 1
	case scenario.OpSetWeight:
		return 2
	case scenario.OpAddWorkers:
		return 4
	case scenario.OpStopWorkers:
		return 8
	case scenario.OpKillScheduler:
		return 16
	case scenario.OpSnapshot:
		return 32
	case scenario.OpReadKernel, scenario.OpWriteKernel:
		return 64
	case scenario.OpDetachScheduler, scenario.OpAttachScheduler, scenario.OpRestartScheduler, scenario.OpReplaceScheduler:
		return 128
	}
	return 0
}

func (env runEnv) kill(sig int) error {
	if env.killScheduler == nil {
		return fmt.Errorf("no scheduler under test")
	}
	if sig == 0 {
		sig = 9
	}
	return env.killScheduler(sig)
}

// mems is the cpuset.mems for a cgroup whose cpuset is a NUMA node
// (numa:K), "" otherwise.
func (c *liveCgroup) mems(topo topology.Observed) string {
	if spec := c.spec.Cpuset; spec.Kind == "numa" && topo.NUMA {
		return strconv.Itoa(spec.Index)
	}
	return ""
}

// setupCgroup resolves the cgroup's cpuset, creates its cgroup and
// applies cpuset and weight where the controllers allow.
func (env runEnv) setupCgroup(c *liveCgroup) error {
	var err error
	if c.expected, err = c.spec.Cpuset.Resolve(env.topo); err != nil {
		return err
	}
	c.ever = c.expected
	if !c.spec.Pin.IsZero() {
		// Pinned workers may run only where pin and cpuset meet.
		pin, err := c.spec.Pin.Resolve(env.topo)
		if err != nil {
			return fmt.Errorf("pin: %v", err)
		}
		c.pin = within(orAll(c.expected, env.topo.CPUs), pin)
		if len(c.pin) == 0 {
			return fmt.Errorf("pin %s: no CPU of the cgroup's cpuset", c.spec.Pin)
		}
	}
	if env.cgroupRoot == "" {
		if c.expected != nil && c.spec.Enforced() {
			c.skips["isolation"] = "cpusets not applied: " + env.cgroupSkip
		}
		return nil
	}
	g, err := env.createGroup(c)
	if err != nil {
		return err
	}
	c.group = g
	if err := env.applyCgroup(c); err != nil {
		return err
	}
	if l := c.spec.Limits; l != nil {
		sn := &scene{env: env}
		err := sn.setLimits(c, l)
		for _, n := range sn.notes {
			env.logf("%s", n)
		}
		return err
	}
	return nil
}

// applyCgroup writes the cgroup's cpuset and weight.
func (env runEnv) applyCgroup(c *liveCgroup) error {
	if c.expected != nil && c.spec.Enforced() {
		if !env.controllers["cpuset"] {
			c.skips["isolation"] = "no cpuset controller"
		} else if err := c.group.SetCPUs(cpulist.Format(c.expected)); err != nil {
			return err
		} else if mems := c.mems(env.topo); mems != "" {
			// numa:K: the cgroup allocates from node K, as it runs there.
			if err := c.group.SetMems(mems); err != nil {
				return err
			}
		}
	}
	if c.spec.Weight != 0 {
		if !env.controllers["cpu"] {
			return fmt.Errorf("cpu.weight %d: no cpu controller", c.spec.Weight)
		}
		if err := c.group.SetWeight(c.spec.Weight); err != nil {
			return err
		}
	}
	return nil
}

// spawnBatch starts n workers for c.
func (env runEnv) spawnBatch(c *liveCgroup, n int) error {
	ss := spawnSpec{Cgroup: c.spec, Count: n}
	if c.group != nil {
		ss.CgroupDir = c.group.Dir
	}
	if !c.spec.Pin.IsZero() {
		pin, err := c.spec.Pin.Resolve(env.topo)
		if err != nil {
			return fmt.Errorf("pin: %v", err)
		}
		ss.Affinity = pin
	}
	ss.LLCOf, ss.NodeOf = env.topo.Domains()
	if c.spec.Place != "" {
		groups := env.topo.LLCs
		switch c.spec.Place {
		case "node":
			groups = nil
			for _, n := range env.topo.Nodes {
				groups = append(groups, n.CPUs)
			}
		case "core":
			groups = env.topo.Cores
		}
		for _, g := range groups {
			if set := within(within(g, c.expected), ss.Affinity); len(set) > 0 {
				ss.Placement = append(ss.Placement, set)
			}
		}
		if len(ss.Placement) == 0 {
			return fmt.Errorf("place %s: no %s has CPUs in the cgroup's cpuset", c.spec.Place, c.spec.Place)
		}
	}
	b, err := env.spawn(ss)
	if err != nil {
		return err
	}
	c.batches = append(c.batches, b)
	return nil
}

// within returns the CPUs of set that are in allowed (all of set when
// allowed is nil).
func within(set, allowed []int) []int {
	if allowed == nil {
		return set
	}
	var out []int
	for _, c := range set {
		if slices.Contains(allowed, c) {
			out = append(out, c)
		}
	}
	return out
}

// setupCgroups prepares the cgroup root for a run: in the guest, mount
// cgroup2 and enable cpu and cpuset at the top; on the host, a child of
// the cgroup v2 hierarchy named after the process. It returns the root
// to create the scenario's cgroups in, the enabled controllers, and a
// cleanup.
func setupCgroups(host bool, logf func(string, ...any)) (root string, ctl map[string]bool, why string, cleanup func()) {
	cleanup = func() {}
	base := cgroup.Root
	if host {
		base = cgroup.FindV2()
		if base == "" {
			return "", nil, "no cgroup v2 hierarchy on the host", cleanup
		}
	} else if err := cgroup.Mount(); err != nil {
		return "", nil, err.Error(), cleanup
	}
	name := "ktstr"
	if host {
		name = fmt.Sprintf("ktstr-%d", os.Getpid())
	}
	ctl = map[string]bool{}
	// cpu and cpuset are wanted; memory and pids (limits) are used where
	// the kernel has them.
	want := []string{"cpu", "cpuset"}
	if at, err := cgroup.Controllers(base); err == nil {
		for _, c := range []string{"memory", "pids"} {
			if at[c] {
				want = append(want, c)
			}
		}
	}
	if err := cgroup.Enable(base, want...); err != nil {
		logf("cgroups: %v", err)
	}
	g, err := cgroup.Create(base, name)
	if err != nil {
		return "", nil, fmt.Sprintf("create %s: %v", filepath.Join(base, name), err), cleanup
	}
	have, _ := cgroup.Controllers(g.Dir)
	for _, c := range want {
		if have[c] {
			if err := g.Enable(c); err == nil {
				ctl[c] = true
			}
		}
	}
	return g.Dir, ctl, "", func() { g.Remove(2 * time.Second) }
}
