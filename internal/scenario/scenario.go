// Package scenario is the scenario format: what runs in the guest
// (cgroups, cpusets, workers and their work, steps with hold times) and
// the checks applied to what the workers measured. Scenarios are data:
// JSON files, ten of them canned into the binary (ktstr-boot --scenario
// NAME), any other given as a file (ktstr-boot --scenario FILE).
//
// A scenario:
//
//	{
//	  "name": "two-cgroups",
//	  "description": "two busy cgroups share every CPU",
//	  "settle_ms": 200,                  // baseline window (step 0) before step 1
//	  "cgroups": [
//	    {"name": "a", "workers_per_cpu": 1, "work": {"type": "spin"}},
//	    {"name": "b", "workers": 2, "cpuset": "split:1/2", "weight": 200,
//	     "work": {"type": "bursty", "spin_us": 500, "sleep_us": 500}}
//	  ],
//	  "steps": [
//	    {"hold_ms": 1000},
//	    {"hold_ms": 1000, "ops": [{"op": "set_cpuset", "cgroup": "b", "cpuset": "all"}]}
//	  ],
//	  "checks": {"max_gap_ms": 2000, "max_spread_pct": 15}
//	}
//
// Cpuset specs: "" (no restriction), "all", an exact list ("0-2,5"),
// "split:I/N" (slice I of N disjoint slices of the CPUs), "overlap:I/N"
// (slice I of N, widened by one CPU into its neighbour, so neighbours
// overlap), "llc:K" (the CPUs sharing last-level cache K), "numa:K" (the
// CPUs of NUMA node K; the cgroup's cpuset.mems is set to K too) and
// "smt:I" (thread I of every core: "smt:0" is one sibling of each core).
// Slices are 0-based.
//
// Machine shape: "requires" ({"min_llcs": 2, "requires_smt": true, ...};
// also max_llcs, min_cpus, max_cpus, min_numa_nodes, max_numa_nodes)
// skips the scenario on a machine that does not meet it. A cgroup's
// "place": "llc" or "node" pins worker i to the CPUs of LLC (or node) i
// mod their count, within its cpuset; "each": "llc" or "node" makes one
// copy of the cgroup per LLC or node, NAME-K on llc:K or numa:K (Bind).
// Checks max_cross_llc_migration_ratio and max_cross_node_migration_ratio
// bound the share of a cgroup's migrations that crossed an LLC or a node;
// min_page_locality the share of its workers' anonymous pages on the nodes
// they ran on. Performance checks (PerfChecks, perf.go; ktstr's names)
// bound the latency types' percentiles and the work rates:
// max_p99_wake_latency_ns, max_wake_latency_cv, min_work_rate,
// max_throughput_cv, min_iteration_rate. A cgroup's "cpuset_enforce": false makes its cpuset an
// expectation only (checked, not written to the cgroup): the isolation
// check's own test, and hosts without the cpuset controller.
//
// Looking into the guest kernel from the host: a step's op "snapshot"
// ({"op": "snapshot", "tag": "mid-run"}) has ktstr-boot freeze the guest
// and write a report (ktstr-snapshot(5)); "read_kernel" and
// "write_kernel" read or write kernel state through the host (KernelOp:
// a symbol, an address, a per-CPU or task field through BTF), and a
// read's value can be saved and checked. "monitor": {} turns on the
// host-side monitor with ktstr's thresholds (Monitor).
package scenario

import (
	"bytes"
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"path"
	"sort"
	"strings"

	"github.com/ktstr-go/ktstr/internal/regfile"
)

// Scenario is one scenario file.
type Scenario struct {
	Name        string   `json:"name"`
	Description string   `json:"description,omitempty"`
	SettleMS    int      `json:"settle_ms,omitempty"`
	Cgroups     []Cgroup `json:"cgroups"`
	Steps       []Step   `json:"steps"`
	Checks      Checks   `json:"checks,omitempty"`
	// Requires constrains the machine shape: a machine that does not fit
	// skips the scenario with the reason.
	Requires Requires `json:"requires,omitempty"`
	// FailOnPurpose adds a failing outcome: the harness's own check that a
	// failing guest gives a failing verdict end to end.
	FailOnPurpose bool `json:"fail_on_purpose,omitempty"`
	// Monitor opts into ktstr-boot's host-side monitor (nil: off).
	Monitor *Monitor `json:"monitor,omitempty"`
}

// Cgroup is one cgroup and its workers.
type Cgroup struct {
	Name          string          `json:"name"`
	Cpuset        string          `json:"cpuset,omitempty"`
	CpusetEnforce *bool           `json:"cpuset_enforce,omitempty"` // default true
	Weight        int             `json:"weight,omitempty"`         // cpu.weight, 1..10000; 0 = kernel default
	Workers       int             `json:"workers,omitempty"`
	WorkersPerCPU int             `json:"workers_per_cpu,omitempty"` // per CPU of the cgroup's cpuset
	Work          json.RawMessage `json:"work"`                      // a workload.Work
	Nice          int             `json:"nice,omitempty"`
	Pin           string          `json:"pin,omitempty"` // pin every worker to these CPUs (cpuset spec)
	// Place spreads the workers over the machine's LLCs ("llc") or NUMA
	// nodes ("node"): worker i is pinned to the CPUs of domain i mod the
	// domain count (within the cgroup's cpuset), so the two ends of a
	// pipe pair sit in different domains.
	Place string `json:"place,omitempty"`
	// Each makes one copy of the cgroup per LLC ("llc") or NUMA node
	// ("node") of the machine, named NAME-K with cpuset llc:K or numa:K
	// (Bind expands it): ktstr's steady_llc. Ops cannot name such a
	// cgroup.
	Each   string  `json:"each,omitempty"`
	Checks *Checks `json:"checks,omitempty"`
}

// Enforced reports whether the cgroup's cpuset is written to the cgroup.
func (c Cgroup) Enforced() bool { return c.CpusetEnforce == nil || *c.CpusetEnforce }

// Step is one phase of the scenario: ops applied at its start, then a hold.
type Step struct {
	HoldMS int  `json:"hold_ms"`
	Ops    []Op `json:"ops,omitempty"`
}

// Op kinds.
const (
	OpSetCpuset   = "set_cpuset"   // Cgroup, Cpuset
	OpSetWeight   = "set_weight"   // Cgroup, Weight
	OpAddWorkers  = "add_workers"  // Cgroup, Count
	OpStopWorkers = "stop_workers" // Cgroup, Count (the newest first)
	// OpKillScheduler sends Signal (default SIGKILL) to the scheduler
	// under test: the harness's own check that a scheduler dying mid-run
	// is caught. It names no cgroup.
	OpKillScheduler = "kill_scheduler"
	// OpSnapshot asks the host to capture a snapshot named Tag (SNRQ) and
	// waits for its reply (SNRP); the answer becomes an info note. A
	// host that does not answer fails the run.
	OpSnapshot = "snapshot"
	// OpReadKernel and OpWriteKernel read or write guest kernel state
	// through the host (KORQ/KORP): Kernel says what. A read's value can
	// be kept under a name and checked (KernelOp.Expect); a host that
	// answers ERR, or a check that does not hold, fails the run.
	OpReadKernel  = "read_kernel"
	OpWriteKernel = "write_kernel"
)

// Op changes the scenario at the start of a step.
type Op struct {
	Op     string `json:"op"`
	Cgroup string `json:"cgroup"`
	Cpuset string `json:"cpuset,omitempty"`
	Weight int    `json:"weight,omitempty"`
	Count  int    `json:"count,omitempty"`
	Signal int    `json:"signal,omitempty"`
	Tag    string `json:"tag,omitempty"`
	// Kernel is what read_kernel and write_kernel read or write.
	Kernel *KernelOp `json:"kernel,omitempty"`
}

// Checks are the thresholds; a nil field inherits (defaults, then the
// scenario, then the cgroup).
type Checks struct {
	MaxGapMS      *float64 `json:"max_gap_ms,omitempty"`
	MaxSpreadPct  *float64 `json:"max_spread_pct,omitempty"`
	MinIterations *uint64  `json:"min_iterations,omitempty"`
	Isolation     *bool    `json:"isolation,omitempty"`
	Fairness      *bool    `json:"fairness,omitempty"`
	// Topology checks (not checked unless set): the share of a cgroup's
	// migrations that crossed a NUMA node or an LLC, and the share of its
	// workers' resident pages on the nodes they ran on.
	MaxCrossNodeRatio *float64 `json:"max_cross_node_migration_ratio,omitempty"`
	MaxCrossLLCRatio  *float64 `json:"max_cross_llc_migration_ratio,omitempty"`
	MinPageLocality   *float64 `json:"min_page_locality,omitempty"`
	// Performance thresholds (perf.go).
	PerfChecks
}

// Defaults are ktstr's release-build defaults: a 2000 ms gap, a 15%
// spread, at least one iteration, isolation and fairness checked.
func Defaults() Checks {
	return Checks{MaxGapMS: ptr(2000.0), MaxSpreadPct: ptr(15.0), MinIterations: ptr(uint64(1)),
		Isolation: ptr(true), Fairness: ptr(true)}
}

func ptr[T any](v T) *T { return &v }

// Merge returns c with the fields set in o replacing its own.
func (c Checks) Merge(o *Checks) Checks {
	if o == nil {
		return c
	}
	override(&c.MaxGapMS, o.MaxGapMS)
	override(&c.MaxSpreadPct, o.MaxSpreadPct)
	override(&c.MinIterations, o.MinIterations)
	override(&c.Isolation, o.Isolation)
	override(&c.Fairness, o.Fairness)
	override(&c.MaxCrossNodeRatio, o.MaxCrossNodeRatio)
	override(&c.MaxCrossLLCRatio, o.MaxCrossLLCRatio)
	override(&c.MinPageLocality, o.MinPageLocality)
	c.PerfChecks = c.PerfChecks.merge(o.PerfChecks)
	return c
}

// override sets *dst to src when src is set.
func override[T any](dst **T, src *T) {
	if src != nil {
		*dst = src
	}
}

// Limits on what a scenario may ask for.
const (
	MaxCgroups      = 64
	MaxWorkers      = 1024 // per cgroup, after workers_per_cpu
	MaxSteps        = 256
	MaxHoldMS       = 10 * 60 * 1000
	MaxScenarioSize = 1 << 20
)

// Error is a scenario that does not validate: where, and why.
type Error struct {
	Scenario string
	Field    string
	Msg      string
}

func (e *Error) Error() string {
	if e.Field == "" {
		return fmt.Sprintf("scenario %s: %s", e.Scenario, e.Msg)
	}
	return fmt.Sprintf("scenario %s: %s: %s", e.Scenario, e.Field, e.Msg)
}

// WorkValidator checks a cgroup's "work" object; the agent passes the
// workload package's validator (kept as a function so this package does not
// depend on how workers run).
type WorkValidator func(raw json.RawMessage) error

// Parse decodes and validates a scenario. Unknown fields are errors, so a
// typo never silently changes a test.
func Parse(b []byte, validWork WorkValidator) (*Scenario, error) {
	if len(b) > MaxScenarioSize {
		return nil, &Error{Scenario: "?", Msg: fmt.Sprintf("file larger than %d bytes", MaxScenarioSize)}
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	var s Scenario
	if err := dec.Decode(&s); err != nil {
		return nil, &Error{Scenario: "?", Msg: "not valid scenario JSON: " + err.Error()}
	}
	if dec.More() {
		return nil, &Error{Scenario: s.Name, Msg: "trailing data after the scenario object"}
	}
	if err := s.Validate(validWork); err != nil {
		return nil, err
	}
	return &s, nil
}

// Validate checks every field it can without knowing the machine.
func (s *Scenario) Validate(validWork WorkValidator) error {
	bad := func(field, format string, args ...any) error {
		return &Error{Scenario: s.Name, Field: field, Msg: fmt.Sprintf(format, args...)}
	}
	if s.Name == "" {
		s.Name = "?"
		return bad("name", "missing")
	}
	if s.SettleMS < 0 || s.SettleMS > MaxHoldMS {
		return bad("settle_ms", "%d out of range 0..%d", s.SettleMS, MaxHoldMS)
	}
	if err := s.Requires.validate(); err != nil {
		return bad("requires", "%v", err)
	}
	if len(s.Cgroups) == 0 || len(s.Cgroups) > MaxCgroups {
		return bad("cgroups", "want 1..%d cgroups, have %d", MaxCgroups, len(s.Cgroups))
	}
	names, each := map[string]bool{}, map[string]bool{}
	for i, c := range s.Cgroups {
		each[c.Name] = c.Each != ""
		f := fmt.Sprintf("cgroups[%d]", i)
		if !validName(c.Name) {
			return bad(f+".name", "%q: want 1-64 characters of [A-Za-z0-9_.-], not starting with '.'", c.Name)
		}
		if names[c.Name] {
			return bad(f+".name", "%q used twice", c.Name)
		}
		names[c.Name] = true
		if _, err := ParseCpuset(c.Cpuset); err != nil {
			return bad(f+".cpuset", "%v", err)
		}
		if c.Each != "" && c.Each != "llc" && c.Each != "node" {
			return bad(f+".each", "%q: want llc or node", c.Each)
		}
		if c.Each != "" && c.Cpuset != "" {
			return bad(f+".each", "each %s sets the cpuset of every copy; drop cpuset %q", c.Each, c.Cpuset)
		}
		if c.Place != "" && c.Place != "llc" && c.Place != "node" {
			return bad(f+".place", "%q: want llc or node", c.Place)
		}
		if _, err := ParseCpuset(c.Pin); err != nil {
			return bad(f+".pin", "%v", err)
		}
		if c.Weight != 0 && (c.Weight < 1 || c.Weight > 10000) {
			return bad(f+".weight", "%d out of range 1..10000", c.Weight)
		}
		if c.Workers < 0 || c.WorkersPerCPU < 0 || c.Workers > MaxWorkers || c.WorkersPerCPU > 64 {
			return bad(f+".workers", "out of range")
		}
		if c.Workers > 0 && c.WorkersPerCPU > 0 {
			return bad(f+".workers", "give workers or workers_per_cpu, not both")
		}
		if c.Nice < -20 || c.Nice > 19 {
			return bad(f+".nice", "%d out of range -20..19", c.Nice)
		}
		if len(c.Work) == 0 {
			return bad(f+".work", "missing")
		}
		if validWork != nil {
			if err := validWork(c.Work); err != nil {
				return bad(f+".work", "%v", err)
			}
		}
		if err := c.Checks.validate(); err != nil {
			return bad(f+".checks", "%v", err)
		}
	}
	if len(s.Steps) == 0 || len(s.Steps) > MaxSteps {
		return bad("steps", "want 1..%d steps, have %d", MaxSteps, len(s.Steps))
	}
	saves := map[string]bool{} // values kept by read_kernel so far
	for i, st := range s.Steps {
		f := fmt.Sprintf("steps[%d]", i)
		if st.HoldMS <= 0 || st.HoldMS > MaxHoldMS {
			return bad(f+".hold_ms", "%d out of range 1..%d", st.HoldMS, MaxHoldMS)
		}
		for j, op := range st.Ops {
			g := fmt.Sprintf("%s.ops[%d]", f, j)
			if op.Op == OpSnapshot {
				if op.Cgroup != "" || op.Tag == "" || len(op.Tag) > 64 {
					return bad(g, "snapshot takes only a tag of 1..64 bytes")
				}
				continue
			}
			if op.Op == OpReadKernel || op.Op == OpWriteKernel {
				if op.Cgroup != "" {
					return bad(g+".cgroup", "%s names no cgroup", op.Op)
				}
				if err := op.Kernel.validate(op.Op == OpWriteKernel); err != nil {
					return bad(g+".kernel", "%v", err)
				}
				for _, ref := range op.Kernel.Expect.refs() {
					if !saves[ref] {
						return bad(g+".kernel.expect", "no earlier read saves %q", ref)
					}
				}
				if op.Kernel.Save != "" {
					saves[op.Kernel.Save] = true
				}
				continue
			}
			if op.Op == OpKillScheduler {
				if op.Cgroup != "" || op.Signal < 0 || op.Signal > 64 {
					return bad(g, "kill_scheduler takes only a signal number (1..64)")
				}
				continue
			}
			if !names[op.Cgroup] {
				return bad(g+".cgroup", "no cgroup %q", op.Cgroup)
			}
			if each[op.Cgroup] {
				return bad(g+".cgroup", "cgroup %q is copied per %s (each); ops cannot name it", op.Cgroup, "LLC or node")
			}
			switch op.Op {
			case OpSetCpuset:
				if _, err := ParseCpuset(op.Cpuset); err != nil {
					return bad(g+".cpuset", "%v", err)
				}
			case OpSetWeight:
				if op.Weight < 1 || op.Weight > 10000 {
					return bad(g+".weight", "%d out of range 1..10000", op.Weight)
				}
			case OpAddWorkers, OpStopWorkers:
				if op.Count < 1 || op.Count > MaxWorkers {
					return bad(g+".count", "%d out of range 1..%d", op.Count, MaxWorkers)
				}
			default:
				return bad(g+".op", "unknown op %q (want %s, %s, %s, %s, %s, %s, %s or %s)", op.Op, OpSetCpuset, OpSetWeight, OpAddWorkers, OpStopWorkers, OpKillScheduler, OpSnapshot, OpReadKernel, OpWriteKernel)
			}
		}
	}
	if err := s.Checks.validate(); err != nil {
		return bad("checks", "%v", err)
	}
	if err := s.Monitor.validate(); err != nil {
		return bad("monitor", "%v", err)
	}
	return nil
}

func (c *Checks) validate() error {
	if c == nil {
		return nil
	}
	if c.MaxGapMS != nil && *c.MaxGapMS <= 0 {
		return errors.New("max_gap_ms must be positive")
	}
	if c.MaxSpreadPct != nil && (*c.MaxSpreadPct < 0 || *c.MaxSpreadPct > 100) {
		return errors.New("max_spread_pct must be within 0..100")
	}
	for _, r := range []struct {
		name string
		v    *float64
	}{{"max_cross_node_migration_ratio", c.MaxCrossNodeRatio}, {"max_cross_llc_migration_ratio", c.MaxCrossLLCRatio}, {"min_page_locality", c.MinPageLocality}} {
		if r.v != nil && !(*r.v >= 0 && *r.v <= 1) {
			return fmt.Errorf("%s must be within 0..1", r.name)
		}
	}
	return c.PerfChecks.validate()
}

func validName(s string) bool {
	if len(s) == 0 || len(s) > 64 || s[0] == '.' {
		return false
	}
	for _, c := range s {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-' || c == '.') {
			return false
		}
	}
	return true
}

// Duration is the scenario's total planned time in milliseconds: the
// settle window and every hold.
func (s *Scenario) Duration() int {
	d := s.SettleMS
	for _, st := range s.Steps {
		d += st.HoldMS
	}
	return d
}

//go:embed canned/*.json
var canned embed.FS

// Names lists the canned scenarios.
func Names() []string {
	ents, _ := canned.ReadDir("canned")
	var out []string
	for _, e := range ents {
		out = append(out, strings.TrimSuffix(e.Name(), ".json"))
	}
	sort.Strings(out)
	return out
}

// Canned returns the JSON of a canned scenario.
func Canned(name string) ([]byte, error) {
	b, err := canned.ReadFile(path.Join("canned", name+".json"))
	if err != nil {
		return nil, fmt.Errorf("unknown scenario %q (canned: %s; or give a file path)", name, strings.Join(Names(), ", "))
	}
	return b, nil
}

// Load returns the scenario named by arg: a canned name, or a file path
// (anything containing '/' or ending in .json), which must be a regular
// file of at most MaxScenarioSize bytes (a FIFO or a device is refused
// without blocking or reading).
func Load(arg string, validWork WorkValidator) (*Scenario, []byte, error) {
	var b []byte
	var err error
	if strings.ContainsRune(arg, '/') || strings.HasSuffix(arg, ".json") {
		b, err = regfile.ReadFile(arg, MaxScenarioSize)
	} else {
		b, err = Canned(arg)
	}
	if err != nil {
		return nil, nil, err
	}
	s, err := Parse(b, validWork)
	return s, b, err
}
