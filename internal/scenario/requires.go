package scenario

import (
	"fmt"

	"github.com/ktstr-go/ktstr/internal/topology"
)

// Requires are a scenario's constraints on the machine shape, ktstr's
// topology constraints. A machine that does not fit makes the run Skip
// with the reason: neither Pass (nothing was tested) nor Fail (the
// scheduler did nothing wrong). Zero fields do not constrain.
type Requires struct {
	MinCPUs      int  `json:"min_cpus,omitempty"`
	MaxCPUs      int  `json:"max_cpus,omitempty"`
	MinLLCs      int  `json:"min_llcs,omitempty"`
	MaxLLCs      int  `json:"max_llcs,omitempty"`
	MinNUMANodes int  `json:"min_numa_nodes,omitempty"`
	MaxNUMANodes int  `json:"max_numa_nodes,omitempty"`
	SMT          bool `json:"requires_smt,omitempty"`
}

func (r Requires) validate() error {
	for _, p := range []struct {
		name     string
		min, max int
	}{{"cpus", r.MinCPUs, r.MaxCPUs}, {"llcs", r.MinLLCs, r.MaxLLCs}, {"numa_nodes", r.MinNUMANodes, r.MaxNUMANodes}} {
		if p.min < 0 || p.max < 0 {
			return fmt.Errorf("min_%s and max_%s must not be negative", p.name, p.name)
		}
		if p.max != 0 && p.min > p.max {
			return fmt.Errorf("min_%s %d is above max_%s %d", p.name, p.min, p.name, p.max)
		}
	}
	return nil
}

// Unmet returns why the machine o does not fit r, or "" when it does.
func (r Requires) Unmet(o topology.Observed) string {
	nodes := 0
	for _, n := range o.Nodes {
		if len(n.CPUs) > 0 {
			nodes++
		}
	}
	for _, c := range []struct {
		what     string
		have     int
		min, max int
	}{
		{"CPUs", len(o.CPUs), r.MinCPUs, r.MaxCPUs},
		{"LLCs", len(o.LLCs), r.MinLLCs, r.MaxLLCs},
		{"NUMA nodes", nodes, r.MinNUMANodes, r.MaxNUMANodes},
	} {
		if c.min > 0 && c.have < c.min {
			return fmt.Sprintf("needs at least %d %s, the machine has %d", c.min, c.what, c.have)
		}
		if c.max > 0 && c.have > c.max {
			return fmt.Sprintf("needs at most %d %s, the machine has %d", c.max, c.what, c.have)
		}
	}
	if r.SMT && !o.SMT() {
		return "needs SMT (cores with more than one thread), the machine has none"
	}
	return ""
}

// Bind returns the scenario for machine o: each cgroup with Each set is
// replaced by one copy per LLC or NUMA node (with CPUs), NAME-K with
// cpuset llc:K or numa:K. Other cgroups and everything else are shared
// with s.
func (s *Scenario) Bind(o topology.Observed) *Scenario {
	out := *s
	out.Cgroups = nil
	for _, c := range s.Cgroups {
		if c.Each == "" {
			out.Cgroups = append(out.Cgroups, c)
			continue
		}
		var ids []int
		switch c.Each {
		case "llc":
			for k := range o.LLCs {
				ids = append(ids, k)
			}
		case "node":
			for _, n := range o.Nodes {
				if len(n.CPUs) > 0 {
					ids = append(ids, n.ID)
				}
			}
		}
		for _, k := range ids {
			cp := c
			cp.Each = ""
			cp.Name = fmt.Sprintf("%s-%d", c.Name, k)
			cp.Cpuset = CpusetSpec{Kind: map[string]string{"llc": "llc", "node": "numa"}[c.Each], Index: k}
			out.Cgroups = append(out.Cgroups, cp)
		}
	}
	return &out
}
