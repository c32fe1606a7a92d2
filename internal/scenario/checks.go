package scenario

import (
	"fmt"
	"sort"

	"github.com/ktstr-go/ktstr/internal/cpulist"
	"github.com/ktstr-go/ktstr/internal/hist"
	"github.com/ktstr-go/ktstr/lib/wire/payload"
)

// WorkerResult is what one worker measured, as the checks need it.
type WorkerResult struct {
	Iterations uint64
	RunNS      uint64 // on-CPU time
	WaitNS     uint64 // runnable but waiting
	WallNS     uint64 // the worker's lifetime
	MaxGapNS   uint64 // longest gap between iterations
	Migrations uint64
	CPUs       []int  // CPUs the worker ran on
	Died       string // non-empty when the worker died abnormally
	// StopTimedOut: the worker did not stop within its grace after the
	// stop request and was killed (Died says so too). It is a stuck
	// worker, a timing failure, not a crash: a host that starved the
	// vCPUs can cause it as well as a scheduler that never runs it.
	StopTimedOut bool
	// CrossLLC and CrossNode count the worker's CPU changes across an LLC
	// or a NUMA node; Pages and LocalPages its resident pages and those on
	// the nodes it ran on.
	CrossLLC, CrossNode uint64
	Pages, LocalPages   uint64
	// RateCV is the coefficient of variation of the worker's iterations
	// per 100 ms slice; Latency its latency histogram (nil: none) and
	// LatencyKind which ("wake", "timer").
	RateCV      float64
	Latency     *hist.Hist
	LatencyKind string
	// Timeslices is the times the worker was put on a CPU (schedstat).
	Timeslices uint64
}

// CgroupResult is one cgroup's workers and what the checks compare them to.
type CgroupResult struct {
	Spec Cgroup
	// Expected is the cgroup's resolved cpuset; nil means any CPU.
	Expected []int
	Workers  []WorkerResult
	// Skips are checks that could not run here, with the reason
	// (for example no cpuset controller on the host).
	Skips map[string]string
}

// Evaluate applies the checks (defaults, then the scenario's, then each
// cgroup's) to the results and returns the TEST payload. Every failed
// check is an outcome with its kind; every passed one a pass detail. An
// empty outcome list is a pass, so callers may append outcomes of their
// own.
func Evaluate(s *Scenario, groups []CgroupResult) *payload.AssertResult {
	res := &payload.AssertResult{Scenario: s.Name, Outcomes: []payload.Outcome{}}
	fail := func(kind, format string, args ...any) {
		res.Outcomes = append(res.Outcomes, payload.Outcome{Verdict: payload.Fail, Kind: kind, Message: fmt.Sprintf(format, args...)})
	}
	pass := func(check, format string, args ...any) {
		res.Passes = append(res.Passes, payload.PassDetail{Check: check, Message: fmt.Sprintf(format, args...)})
	}
	base := Defaults().Merge(&s.Checks)
	allCPUs := map[int]bool{}
	var all hists
	for _, g := range groups {
		ck := base.Merge(g.Spec.Checks)
		name := g.Spec.Name
		st := payload.CgroupStats{Name: name, Workers: len(g.Workers)}
		cpus := map[int]bool{}
		var minPct, maxPct float64 = 101, -1
		var maxGap, changes, pages, local uint64
		for i, w := range g.Workers {
			st.Iterations += w.Iterations
			st.RunNS += w.RunNS
			st.WaitNS += w.WaitNS
			st.Migrations += w.Migrations
			st.CrossLLCMigrations += w.CrossLLC
			st.CrossNodeMigrations += w.CrossNode
			changes += max(w.Migrations, w.CrossLLC)
			pages += w.Pages
			local += w.LocalPages
			maxGap = max(maxGap, w.MaxGapNS)
			for _, c := range w.CPUs {
				cpus[c] = true
				allCPUs[c] = true
			}
			if w.WallNS > 0 {
				pct := float64(w.RunNS) / float64(w.WallNS) * 100
				minPct, maxPct = min(minPct, pct), max(maxPct, pct)
			}
			switch {
			case w.StopTimedOut:
				fail(payload.KindStuck, "cgroup %s worker %d did not stop when asked: %s", name, i, w.Died)
			case w.Died != "":
				fail(payload.KindOther, "cgroup %s worker %d died: %s", name, i, w.Died)
			}
			if w.Iterations < *ck.MinIterations {
				fail(payload.KindStarved, "cgroup %s worker %d made %d iterations, want at least %d", name, i, w.Iterations, *ck.MinIterations)
			}
			if *ck.Isolation && g.Expected != nil {
				if out := outside(w.CPUs, g.Expected); len(out) > 0 {
					fail(payload.KindIsolation, "cgroup %s worker %d ran on CPUs %s outside its cpuset %s",
						name, i, cpulist.Format(out), cpulist.Format(g.Expected))
				}
			}
		}
		st.CPUs = len(cpus)
		for i, h := range perfOf(&st, g.Workers) {
			all[i].Merge(&h)
		}
		checkPerf(ck.PerfChecks, &st, func(_, format string, args ...any) { fail(payload.KindBenchmark, format, args...) }, pass)
		if maxPct >= 0 {
			st.SpreadPct = maxPct - minPct
		}
		st.MaxGapMS = float64(maxGap) / 1e6
		if pages > 0 {
			st.PageLocality = float64(local) / float64(pages)
		}
		res.Stats.Cgroups = append(res.Stats.Cgroups, st)

		crossRatio := func(check, what string, crossed uint64, limit *float64) {
			if limit == nil || changes == 0 {
				return
			}
			ratio := float64(crossed) / float64(changes)
			if ratio > *limit {
				fail(payload.KindMigration, "cgroup %s: %d of %d migrations crossed %s (%.2f), more than %.2f", name, crossed, changes, what, ratio, *limit)
			} else {
				pass(check, "cgroup %s: %s ratio %.2f <= %.2f", name, check, ratio, *limit)
			}
		}
		crossRatio("cross_node_migration", "a NUMA node", st.CrossNodeMigrations, ck.MaxCrossNodeRatio)
		crossRatio("cross_llc_migration", "an LLC", st.CrossLLCMigrations, ck.MaxCrossLLCRatio)
		if m := ck.MinPageLocality; m != nil && pages > 0 {
			if st.PageLocality < *m {
				fail(payload.KindMigration, "cgroup %s: %.2f of its %d resident pages on the nodes it ran on, less than %.2f", name, st.PageLocality, pages, *m)
			} else {
				pass("page_locality", "cgroup %s: page locality %.2f >= %.2f", name, st.PageLocality, *m)
			}
		}

		if st.MaxGapMS > *ck.MaxGapMS {
			fail(payload.KindStuck, "cgroup %s: a worker was off-CPU for %.1f ms, more than %.0f ms", name, st.MaxGapMS, *ck.MaxGapMS)
		} else if len(g.Workers) > 0 {
			pass("stuck", "cgroup %s: longest gap %.1f ms <= %.0f ms", name, st.MaxGapMS, *ck.MaxGapMS)
		}
		switch {
		case !*ck.Fairness || len(g.Workers) < 2:
		case st.SpreadPct > *ck.MaxSpreadPct:
			fail(payload.KindUnfair, "cgroup %s: on-CPU spread %.1f%% (%.1f%%..%.1f%%) exceeds %.0f%%", name, st.SpreadPct, minPct, maxPct, *ck.MaxSpreadPct)
		default:
			pass("fairness", "cgroup %s: spread %.1f%% <= %.0f%%", name, st.SpreadPct, *ck.MaxSpreadPct)
		}
		if *ck.Isolation && g.Expected != nil && !hasFailure(res, payload.KindIsolation, name) {
			if reason, skipped := g.Skips["isolation"]; skipped {
				res.Outcomes = append(res.Outcomes, payload.Outcome{Verdict: payload.Skip, Kind: payload.KindSkip,
					Message: fmt.Sprintf("cgroup %s: isolation not checked: %s", name, reason)})
			} else {
				pass("isolation", "cgroup %s: every worker stayed within %s", name, cpulist.Format(g.Expected))
			}
		}
	}
	s.total(res, allCPUs)
	totalPerf(&res.Stats, &all)
	if s.FailOnPurpose {
		fail(payload.KindOther, "scenario %q fails on purpose", s.Name)
	}
	return res // no outcome is a pass (ktstr's rule)
}

func (s *Scenario) total(res *payload.AssertResult, cpus map[int]bool) {
	t := &res.Stats
	t.CPUs = len(cpus)
	for _, c := range t.Cgroups {
		t.Workers += c.Workers
		t.Migrations += c.Migrations
		t.CrossLLCMigrations += c.CrossLLCMigrations
		t.CrossNodeMigrations += c.CrossNodeMigrations
		t.TotalIterations += c.Iterations
		t.WorstSpreadPct = max(t.WorstSpreadPct, c.SpreadPct)
		t.WorstGapMS = max(t.WorstGapMS, c.MaxGapMS)
	}
}

func hasFailure(res *payload.AssertResult, kind, cgroup string) bool {
	prefix := "cgroup " + cgroup + " "
	for _, o := range res.Outcomes {
		if o.Kind == kind && len(o.Message) >= len(prefix) && o.Message[:len(prefix)] == prefix {
			return true
		}
	}
	return false
}

// outside returns the CPUs in used that are not in allowed.
func outside(used, allowed []int) []int {
	ok := map[int]bool{}
	for _, c := range allowed {
		ok[c] = true
	}
	var out []int
	for _, c := range used {
		if !ok[c] {
			out = append(out, c)
		}
	}
	sort.Ints(out)
	return out
}
