package guest

import (
	"fmt"
	"os"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/ktstr-go/ktstr/lib/wire"
	"github.com/ktstr-go/ktstr/lib/wire/payload"
)

// Scenario is a workload and the checks applied to it.
type Scenario struct {
	Name string
	// Workers per CPU.
	WorkersPerCPU int
	Hold          time.Duration
	MaxGap        time.Duration
	MaxSpreadPct  float64
	// FailOnPurpose makes the scenario fail: the harness's own test that a
	// failing guest gives a failing verdict.
	FailOnPurpose bool
}

var builtins = map[string]Scenario{
	"steady": {Name: "steady", WorkersPerCPU: 2, Hold: 2 * time.Second, MaxGap: 3 * time.Second, MaxSpreadPct: 90},
	"fail":   {Name: "fail", WorkersPerCPU: 1, Hold: 500 * time.Millisecond, MaxGap: 3 * time.Second, MaxSpreadPct: 90, FailOnPurpose: true},
}

// Builtin returns a built-in scenario by name.
func Builtin(name string) (Scenario, error) {
	s, ok := builtins[name]
	if !ok {
		names := make([]string, 0, len(builtins))
		for n := range builtins {
			names = append(names, n)
		}
		sort.Strings(names)
		return Scenario{}, fmt.Errorf("unknown scenario %q (have %s)", name, strings.Join(names, ", "))
	}
	return s, nil
}

// workerStats are one worker's measurements.
type workerStats struct {
	iterations uint64
	runNS      uint64
	waitNS     uint64
	maxGap     time.Duration
}

func (a *agent) runScenario(sc Scenario) *payload.AssertResult {
	ncpu := runtime.NumCPU()
	n := max(1, sc.WorkersPerCPU*ncpu)
	a.send(wire.TypeScenarioStart, nil)
	scStart := time.Now()
	step := wire.Stimulus{StepIndex: 1, CgroupCount: 1, WorkerCount: uint16(min(n, 0xffff))}
	a.send(wire.TypeStimulus, wire.AppendStimulus(nil, step))

	stats := make([]workerStats, n)
	var wg sync.WaitGroup
	deadline := time.Now().Add(sc.Hold)
	for i := range stats {
		wg.Add(1)
		go func(ws *workerStats) {
			defer wg.Done()
			spin(ws, deadline)
		}(&stats[i])
	}
	wg.Wait()

	var total uint64
	for _, ws := range stats {
		total += ws.iterations
	}
	step.ElapsedMS = uint32(time.Since(scStart).Milliseconds())
	step.TotalIterations = total
	a.send(wire.TypeStepEnd, wire.AppendStimulus(nil, step))
	a.send(wire.TypeScenarioEnd, wire.AppendScenarioEnd(nil, wire.ScenarioEnd{ElapsedMS: uint64(time.Since(scStart).Milliseconds()), TotalIterations: total}))
	return evaluate(sc, stats, ncpu)
}

// spin burns CPU in small iterations until deadline, on its own OS thread,
// and reads the thread's scheduler accounting before and after.
func spin(ws *workerStats, deadline time.Time) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	run0, wait0 := schedstat()
	last := time.Now()
	var x uint64 = 1
	for {
		for i := 0; i < 20000; i++ {
			x = x*6364136223846793005 + 1442695040888963407
		}
		ws.iterations++
		now := time.Now()
		if g := now.Sub(last); g > ws.maxGap {
			ws.maxGap = g
		}
		last = now
		if !now.Before(deadline) {
			break
		}
	}
	run1, wait1 := schedstat()
	ws.runNS, ws.waitNS = run1-run0, wait1-wait0
	if x == 0 { // keep the loop from being optimised away
		ws.iterations++
	}
}

// schedstat reads the calling thread's on-CPU and run-queue wait time in
// nanoseconds from /proc/thread-self/schedstat.
func schedstat() (run, wait uint64) {
	b, err := os.ReadFile("/proc/thread-self/schedstat")
	if err != nil {
		return 0, 0
	}
	f := strings.Fields(string(b))
	if len(f) < 2 {
		return 0, 0
	}
	run, _ = strconv.ParseUint(f[0], 10, 64)
	wait, _ = strconv.ParseUint(f[1], 10, 64)
	return run, wait
}

func evaluate(sc Scenario, stats []workerStats, ncpu int) *payload.AssertResult {
	res := &payload.AssertResult{Scenario: sc.Name}
	cg := payload.CgroupStats{Name: "root", Workers: len(stats), CPUs: ncpu}
	var minRun, maxRun uint64 = ^uint64(0), 0
	var maxGap time.Duration
	for _, ws := range stats {
		cg.Iterations += ws.iterations
		cg.RunNS += ws.runNS
		cg.WaitNS += ws.waitNS
		minRun, maxRun = min(minRun, ws.runNS), max(maxRun, ws.runNS)
		maxGap = max(maxGap, ws.maxGap)
	}
	if maxRun > 0 {
		cg.SpreadPct = float64(maxRun-minRun) / float64(maxRun) * 100
	}
	cg.MaxGapMS = float64(maxGap) / float64(time.Millisecond)
	res.Stats = payload.ScenarioStats{Cgroups: []payload.CgroupStats{cg}, Workers: cg.Workers, CPUs: ncpu,
		WorstSpreadPct: cg.SpreadPct, WorstGapMS: cg.MaxGapMS, TotalIterations: cg.Iterations}

	for i, ws := range stats {
		if ws.iterations == 0 {
			res.Outcomes = append(res.Outcomes, payload.Outcome{Verdict: payload.Fail, Kind: payload.KindStarved,
				Message: fmt.Sprintf("worker %d made no progress", i)})
		}
	}
	if maxGap > sc.MaxGap {
		res.Outcomes = append(res.Outcomes, payload.Outcome{Verdict: payload.Fail, Kind: payload.KindStuck,
			Message: fmt.Sprintf("longest off-CPU gap %.1f ms exceeds %.1f ms", cg.MaxGapMS, float64(sc.MaxGap)/1e6)})
	} else {
		res.Passes = append(res.Passes, payload.PassDetail{Check: "stuck", Message: fmt.Sprintf("longest gap %.1f ms", cg.MaxGapMS)})
	}
	if cg.SpreadPct > sc.MaxSpreadPct {
		res.Outcomes = append(res.Outcomes, payload.Outcome{Verdict: payload.Fail, Kind: payload.KindUnfair,
			Message: fmt.Sprintf("on-CPU spread %.1f%% exceeds %.1f%%", cg.SpreadPct, sc.MaxSpreadPct)})
	} else {
		res.Passes = append(res.Passes, payload.PassDetail{Check: "fairness", Message: fmt.Sprintf("spread %.1f%%", cg.SpreadPct)})
	}
	if sc.FailOnPurpose {
		res.Outcomes = append(res.Outcomes, payload.Outcome{Verdict: payload.Fail, Kind: payload.KindOther,
			Message: "scenario \"fail\" fails on purpose"})
	}
	if len(res.Outcomes) == 0 {
		res.Outcomes = append(res.Outcomes, payload.Outcome{Verdict: payload.Pass})
	}
	return res
}
