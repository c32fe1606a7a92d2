package guest

import (
	"github.com/ktstr-go/ktstr/internal/cpulist"
	"github.com/ktstr-go/ktstr/internal/scenario"
	"github.com/ktstr-go/ktstr/internal/topology"
	"github.com/ktstr-go/ktstr/lib/wire/payload"
)

// machineResult reads the machine shape the kernel reports and checks
// it, before anything runs: a shape other than the one ktstr-boot gave
// the VM is an infrastructure error (never a pass on the wrong machine),
// and a shape the scenario does not fit skips it. It returns the shape,
// and a result to finish with instead of running (nil: run).
func machineResult(root string, want *topology.Topology, memoryMB int, sc *scenario.Scenario) (topology.Observed, *payload.AssertResult) {
	o, err := topology.Read(root)
	if err != nil {
		return o, &payload.AssertResult{Scenario: sc.Name, Outcomes: []payload.Outcome{{Verdict: payload.Fail,
			Kind: payload.KindInfra, Message: "read the machine shape from sysfs: " + err.Error()}}}
	}
	m := machineOf(o)
	if want != nil {
		if err := o.Check(*want, memoryMB); err != nil {
			return o, &payload.AssertResult{Scenario: sc.Name, Machine: m, Outcomes: []payload.Outcome{{Verdict: payload.Fail,
				Kind: payload.KindInfra, Message: "wrong machine shape: " + err.Error()}}}
		}
	}
	if why := sc.Requires.Unmet(o); why != "" {
		return o, &payload.AssertResult{Scenario: sc.Name, Machine: m, Outcomes: []payload.Outcome{{Verdict: payload.Skip,
			Kind: payload.KindSkip, Message: "scenario " + sc.Name + " " + why}}}
	}
	return o, nil
}

// machineOf summarises o for the result.
func machineOf(o topology.Observed) *payload.Machine {
	m := &payload.Machine{CPUs: len(o.CPUs), SMT: o.SMT()}
	if t, ok := o.Shape(); ok {
		m.Shape = t.String()
	}
	for _, l := range o.LLCs {
		m.LLCs = append(m.LLCs, cpulist.Format(l))
	}
	for _, n := range o.Nodes {
		m.Nodes = append(m.Nodes, cpulist.Format(n.CPUs))
	}
	return m
}
