package guest

import (
	"fmt"
	"path"
	"strings"
	"time"

	"github.com/ktstr-go/ktstr/internal/hist"
	"github.com/ktstr-go/ktstr/internal/scenario"
	"github.com/ktstr-go/ktstr/internal/workload"
)

// spawnWorkload starts a batch of worker processes.
func spawnWorkload(s spawnSpec) (workerGroup, error) {
	g, err := workload.Spawn(workload.SpawnSpec{
		Work: s.Cgroup.Work, Count: s.Count, CgroupDir: s.CgroupDir, Nice: s.Cgroup.Nice,
		Affinity: s.Affinity, Name: comm(s.Cgroup), Placement: s.Placement,
		Policy: s.Cgroup.Policy, RTPriority: s.Cgroup.RTPriority,
		Domains: &workload.Domains{LLC: s.LLCOf, Node: s.NodeOf},
	})
	if err != nil {
		return nil, err
	}
	return workloadGroup{g}, nil
}

// comm is the workers' command name: the cgroup's Comm, else the last
// component of its name.
func comm(c scenario.Cgroup) string {
	if c.Comm != "" {
		return c.Comm
	}
	return path.Base(c.Name)
}

type workloadGroup struct{ g *workload.Group }

func (w workloadGroup) Iterations() uint64 { return w.g.Iterations() }

func (w workloadGroup) PIDs() []int { return w.g.PIDs() }

func (w workloadGroup) Progress() []scenario.WorkerResult {
	ps := w.g.Progress()
	if ps == nil {
		return nil
	}
	out := make([]scenario.WorkerResult, len(ps))
	for i, p := range ps {
		out[i] = scenario.WorkerResult{
			Iterations: p.Iterations, RunNS: p.RunNS, WaitNS: p.WaitNS, WallNS: p.WallNS,
			MaxGapNS: p.MaxGapNS, Migrations: p.Migrations, CPUs: p.CPUs,
		}
	}
	return out
}

func (w workloadGroup) Stop(timeout time.Duration) ([]scenario.WorkerResult, error) {
	stats, err := w.g.Stop(timeout)
	out := make([]scenario.WorkerResult, 0, len(stats))
	for _, s := range stats {
		r := scenario.WorkerResult{
			Iterations: s.Iterations, RunNS: s.RunNS, WaitNS: s.WaitNS, WallNS: s.WallNS,
			MaxGapNS: s.MaxGapNS, Migrations: s.Migrations, CPUs: s.CPUs,
			CrossLLC: s.CrossLLC, CrossNode: s.CrossNode, Pages: s.Pages, LocalPages: s.LocalPages,
		}
		r.RateCV, r.LatencyKind, r.Timeslices = s.RateCV, s.LatencyKind, s.Timeslices
		if s.Latency != nil {
			h, err := hist.FromSparse(s.Latency)
			if err != nil {
				s.Error = joinNonEmpty(s.Error, err.Error())
			}
			r.Latency = h
		}
		if !s.OK() {
			r.Died, r.StopTimedOut = describe(s), s.TimedOut
		}
		out = append(out, r)
	}
	return out, err
}

func describe(s workload.Stats) string {
	var parts []string
	switch {
	case s.TimedOut:
		parts = append(parts, "did not stop in time and was killed")
	case s.Signal != 0:
		parts = append(parts, fmt.Sprintf("killed by signal %d", s.Signal))
	case s.Exited:
		parts = append(parts, fmt.Sprintf("exited with status %d", s.ExitCode))
	case !s.Reported:
		parts = append(parts, "reported nothing")
	}
	if s.Error != "" {
		parts = append(parts, s.Error)
	}
	return fmt.Sprintf("pid %d: %s", s.PID, strings.Join(parts, ": "))
}

func joinNonEmpty(a, b string) string {
	if a == "" {
		return b
	}
	return a + "; " + b
}
