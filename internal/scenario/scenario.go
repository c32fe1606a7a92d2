// Package scenario is the scenario format: what runs in the guest
// (cgroups, cpusets, workers and their work, steps with hold times and
// ops) and the checks applied to what the workers measured. Scenarios
// are data: JSON files, canned into the binary (ktstr-boot --scenario
// NAME; Default when none is named), any other given as a file
// (ktstr-boot --scenario FILE; IsFile is the rule). ktstr-scenario(5) is
// the reference for the format.
//
// A scenario is parsed once into types: Scenario, Cgroup, Step, Op,
// CpusetSpec, Limits and workload.Work implement json.Unmarshaler, so a
// decoded Scenario is valid and typed and nothing parses strings again
// at run time. Unknown fields are errors, and every error (an *Error)
// names the path inside the document, the bad value and what is allowed,
// before any VM boots:
//
//	scenario x: steps[2].ops[0].cpuset: cpu list "half": bad CPU "half" (want "" (no restriction), "all", a CPU list ...)
//
// A scenario:
//
//	{
//	  "name": "two-cgroups",
//	  "description": "two busy cgroups share every CPU",
//	  "settle_ms": 200,                  // baseline window (step 0) before step 1
//	  "cgroups": [                       // alive for the whole run (ktstr's Backdrop)
//	    {"name": "a", "workers_per_cpu": 1, "work": {"type": "spin"}},
//	    {"name": "b", "workers": 2, "cpuset": "split:1/2", "weight": 200,
//	     "limits": {"cpu_max": "50000 100000"},
//	     "work": {"type": "bursty", "spin_us": 500, "sleep_us": 500}}
//	  ],
//	  "steps": [
//	    {"hold_ms": 1000},
//	    {"hold_ms": 1000, "cgroups": [{"name": "s", "workers": 2, "work": {"type": "yield"}}],
//	     "ops": [{"op": "set_cpuset", "cgroup": "b", "cpuset": "all"}]}
//	  ],
//	  "checks": {"max_gap_ms": 2000, "max_spread_pct": 15}
//	}
//
// Cgroups: "policy" (normal, batch, idle, fifo, rr with "rt_priority",
// ext), "nice" and "comm" set how its workers run. A cgroup without
// "work" runs no workers (a parent, or a
// target of move_tasks); "outer/inner" nests a cgroup in an earlier one
// that has no work. A step's "cgroups" are made at its start and removed
// at its end. Names are unique over the whole scenario.
//
// Ops (a step's "ops", applied in order at its start; each takes exactly
// the fields listed):
//
//	set_cpuset    cgroup, cpuset    write the cgroup's cpuset
//	clear_cpuset  cgroup            every CPU again
//	swap_cpusets  cgroup, with      exchange two cgroups' cpusets
//	set_weight    cgroup, weight    cpu.weight 1..10000
//	set_limits    cgroup, limits    cpu.max, cpu.idle, memory.max, memory.high, pids.max (Limits)
//	add_workers   cgroup, count     start count more workers
//	stop_workers  cgroup [, count]  stop count workers (newest batches first), all without count
//	set_affinity  cgroup, cpuset    sched_setaffinity of every thread of its running workers
//	move_tasks    cgroup, to        write its workers into to's cgroup.procs; they count in to from then on
//	freeze        cgroup            cgroup.freeze 1 (the frozen time shows as a gap: raise max_gap_ms)
//	unfreeze      cgroup            cgroup.freeze 0
//	add_cgroup    spec              make a cgroup (a Cgroup object) and start its workers
//	remove_cgroup cgroup            stop its workers (results kept) and remove it
//	kill_scheduler [signal]         signal the scheduler under test (default SIGKILL)
//	snapshot      tag               ask the host for a snapshot (ktstr-snapshot(5))
//	read_kernel, write_kernel  kernel   guest kernel state through the host (KernelOp)
//	run_payload   payload, path [, args, cgroup]  start a program (packed with ktstr-boot --include), output captured
//	wait_payload  payload [, expect_exit, timeout_ms]  wait for it (default 10 s); status and output tail become a note
//	kill_payload  payload [, signal]  signal its process group (default SIGKILL)
//	detach_scheduler                stop the scheduler under test on purpose (SIGINT; no loss): the kernel's scheduler takes over
//	attach_scheduler                start it again and wait for it to attach (a failure fails the run)
//	restart_scheduler               both
//	replace_scheduler               detach it and attach ktstr-boot --replacement in its place
//
// A payload still running at the end is killed and noted. Without a
// scheduler under test the scheduler ops are notes.
//
// The isolation check allows every CPU of every cpuset a cgroup had
// during the run (a worker ran under each of them), and for move_tasks
// the source's too; a cgroup's "pin" holds its workers to pin within
// the cpuset. After a cpuset change the agent also samples the cgroup's
// workers every 50 ms from 200 ms on: one runnable (state R) on a CPU
// outside the new cpuset fails isolation.
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
// "place": "llc", "node" or "core" pins worker i to the CPUs of LLC
// (node, core) i mod their count, within its cpuset; "each": "llc" or "node" makes one
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
	"github.com/ktstr-go/ktstr/internal/workload"
)

// Scenario is one scenario file.
type Scenario struct {
	Name        string `json:"name"`
	Description string `json:"description,omitempty"`
	SettleMS    int    `json:"settle_ms,omitempty"`
	// Cgroups persist across every step (ktstr's Backdrop); steps add
	// their own (Step.Cgroups, op add_cgroup).
	Cgroups []Cgroup `json:"cgroups"`
	Steps   []Step   `json:"steps"`
	Checks  Checks   `json:"checks,omitzero"`
	// Requires constrains the machine shape: a machine that does not fit
	// skips the scenario with the reason.
	Requires Requires `json:"requires,omitzero"`
	// FailOnPurpose adds a failing outcome: the harness's own check that a
	// failing guest gives a failing verdict end to end.
	FailOnPurpose bool `json:"fail_on_purpose,omitempty"`
	// Monitor opts into ktstr-boot's host-side monitor (nil: off).
	Monitor *Monitor `json:"monitor,omitempty"`
}

// Cgroup is one cgroup and its workers.
type Cgroup struct {
	// Name is the cgroup's name, or a path "outer/inner" for a nested
	// cgroup whose parent ("outer") was made before it and runs no
	// workers itself (cgroup v2's no-internal-process rule).
	Name          string     `json:"name"`
	Cpuset        CpusetSpec `json:"cpuset,omitzero"`
	CpusetEnforce *bool      `json:"cpuset_enforce,omitempty"` // default true
	Weight        int        `json:"weight,omitempty"`         // cpu.weight, 1..10000; 0 = kernel default
	Limits        *Limits    `json:"limits,omitempty"`
	Workers       int        `json:"workers,omitempty"`
	WorkersPerCPU int        `json:"workers_per_cpu,omitempty"` // per CPU of the cgroup's cpuset
	// Work is what each worker runs; a cgroup without work has no
	// workers (a parent of nested cgroups, or a target of move_tasks).
	Work workload.Work `json:"work,omitzero"`
	Nice int           `json:"nice,omitempty"`
	// Policy is the workers' scheduling policy (normal, batch, idle,
	// fifo, rr, ext; "" inherits) and RTPriority its priority for fifo
	// and rr (1..99). Comm names the workers (default the cgroup's last
	// name component).
	Policy     string `json:"policy,omitempty"`
	RTPriority int    `json:"rt_priority,omitempty"`
	Comm       string `json:"comm,omitempty"`
	// Pin pins every worker to these CPUs; the isolation check then
	// holds the workers to the pin within the cpuset.
	Pin CpusetSpec `json:"pin,omitzero"`
	// Place spreads the workers over the machine's LLCs ("llc"), NUMA
	// nodes ("node") or cores ("core": the SMT siblings of one core):
	// worker i is pinned to the CPUs of domain i mod the domain count
	// (within the cgroup's cpuset), so the two ends of a pipe pair sit
	// in different domains, and with "core" and two workers per core the
	// siblings of every core contend (ktstr's smt_sibling_spin).
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

// HasWorkers reports whether the cgroup runs workers.
func (c Cgroup) HasWorkers() bool { return c.Work.Type != "" }

// Parent is the name of the cgroup's parent ("" at the top).
func (c Cgroup) Parent() string {
	if i := strings.LastIndexByte(c.Name, '/'); i >= 0 {
		return c.Name[:i]
	}
	return ""
}

// UnmarshalJSON decodes and checks one cgroup.
func (c *Cgroup) UnmarshalJSON(b []byte) error {
	var v Cgroup
	if _, err := decodeObject(b, fields{"name": &v.Name, "cpuset": &v.Cpuset, "cpuset_enforce": &v.CpusetEnforce,
		"weight": &v.Weight, "limits": &v.Limits, "workers": &v.Workers, "workers_per_cpu": &v.WorkersPerCPU,
		"work": &v.Work, "nice": &v.Nice, "policy": &v.Policy, "rt_priority": &v.RTPriority, "comm": &v.Comm, "pin": &v.Pin, "place": &v.Place, "each": &v.Each, "checks": &v.Checks}); err != nil {
		return err
	}
	if err := v.check(); err != nil {
		return err
	}
	*c = v
	return nil
}

// MaxNesting bounds how deep cgroup names nest ("a/b/c/d").
const MaxNesting = 4

// check checks what one cgroup can say about itself.
func (c *Cgroup) check() error {
	parts := strings.Split(c.Name, "/")
	if len(parts) > MaxNesting {
		return at("name", errf("%q: nested more than %d deep", c.Name, MaxNesting))
	}
	for _, p := range parts {
		if !validName(p) {
			return at("name", errf("%q: want 1-64 characters of [A-Za-z0-9_.-], not starting with '.' (or such names joined by '/')", c.Name))
		}
	}
	if c.Each != "" && c.Each != "llc" && c.Each != "node" {
		return at("each", errf("%q: want llc or node", c.Each))
	}
	if c.Each != "" && !c.Cpuset.IsZero() {
		return at("each", errf("each %s sets the cpuset of every copy; drop cpuset %q", c.Each, c.Cpuset))
	}
	if c.Place != "" && c.Place != "llc" && c.Place != "node" && c.Place != "core" {
		return at("place", errf("%q: want llc, node or core", c.Place))
	}
	if c.Weight != 0 && (c.Weight < 1 || c.Weight > 10000) {
		return at("weight", errf("%d out of range 1..10000", c.Weight))
	}
	if c.Workers < 0 || c.Workers > MaxWorkers {
		return at("workers", errf("%d out of range 0..%d", c.Workers, MaxWorkers))
	}
	if c.WorkersPerCPU < 0 || c.WorkersPerCPU > 64 {
		return at("workers_per_cpu", errf("%d out of range 0..64", c.WorkersPerCPU))
	}
	if c.Workers > 0 && c.WorkersPerCPU > 0 {
		return at("workers", errf("give workers or workers_per_cpu, not both"))
	}
	if c.Nice < -20 || c.Nice > 19 {
		return at("nice", errf("%d out of range -20..19", c.Nice))
	}
	if err := workload.ValidPolicy(c.Policy, c.RTPriority); err != nil {
		return at("policy", errf("%s", strings.TrimPrefix(err.Error(), "workload: bad parameter: ")))
	}
	if len(c.Comm) > 15 || strings.ContainsAny(c.Comm, "/\x00\n") {
		return at("comm", errf("%q: want at most 15 bytes, no '/' or control characters", c.Comm))
	}
	if !c.HasWorkers() {
		if c.Workers > 0 || c.WorkersPerCPU > 0 || c.Nice != 0 || !c.Pin.IsZero() || c.Place != "" || c.Policy != "" || c.Comm != "" {
			return at("work", errf("missing: workers, workers_per_cpu, nice, policy, comm, pin and place need work"))
		}
	} else if err := c.Work.Validate(); err != nil {
		return at("work", errf("%s", strings.TrimPrefix(err.Error(), "workload: ")))
	}
	if err := c.Checks.validate(); err != nil {
		return at("checks", err)
	}
	return nil
}

// Step is one phase of the scenario: its cgroups are made and its ops
// applied at its start, then it holds; its cgroups go at its end.
type Step struct {
	HoldMS int `json:"hold_ms"`
	// Cgroups live for this step only (ktstr's per-step cgroups).
	Cgroups []Cgroup `json:"cgroups,omitempty"`
	Ops     []Op     `json:"ops,omitempty"`
}

// MaxOps bounds the ops of one step.
const MaxOps = 64

// UnmarshalJSON decodes and checks one step.
func (st *Step) UnmarshalJSON(b []byte) error {
	var v Step
	if _, err := decodeObject(b, fields{"hold_ms": &v.HoldMS, "cgroups": &listOf[Cgroup]{&v.Cgroups, MaxCgroups},
		"ops": &listOf[Op]{&v.Ops, MaxOps}}); err != nil {
		return err
	}
	if err := v.check(); err != nil {
		return err
	}
	*st = v
	return nil
}

func (st *Step) check() error {
	if st.HoldMS <= 0 || st.HoldMS > MaxHoldMS {
		return at("hold_ms", errf("%d out of range 1..%d", st.HoldMS, MaxHoldMS))
	}
	return nil
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
	MaxCgroups      = 64   // in the scenario's list, in one step, and alive at once
	MaxWorkers      = 1024 // per cgroup, after workers_per_cpu
	MaxSteps        = 256
	MaxHoldMS       = 10 * 60 * 1000
	MaxScenarioSize = 1 << 20
)

// Error is a scenario that does not validate: where (the path inside the
// document, "steps[2].ops[0].cpuset"), and why (the bad value and what
// is allowed).
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

// asError makes any decoding or validation error an *Error of scenario
// name.
func asError(name string, err error) *Error {
	var pe *pathError
	if errors.As(err, &pe) {
		return &Error{Scenario: name, Field: pe.path(), Msg: pe.msg}
	}
	var se *Error
	if errors.As(err, &se) {
		return se
	}
	return &Error{Scenario: name, Msg: "not valid scenario JSON: " + describeJSONError(err)}
}

// UnmarshalJSON decodes a whole scenario and validates it: a decoded
// Scenario is typed and valid.
func (s *Scenario) UnmarshalJSON(b []byte) error {
	var v Scenario
	if _, err := decodeObject(b, fields{"name": &v.Name, "description": &v.Description, "settle_ms": &v.SettleMS,
		"cgroups": &listOf[Cgroup]{&v.Cgroups, MaxCgroups}, "steps": &listOf[Step]{&v.Steps, MaxSteps},
		"checks": &v.Checks, "requires": &v.Requires, "fail_on_purpose": &v.FailOnPurpose, "monitor": &v.Monitor}); err != nil {
		return err
	}
	if err := v.validate(); err != nil {
		return err
	}
	*s = v
	return nil
}

// Parse decodes and validates a scenario. Unknown fields are errors, so a
// typo never silently changes a test; every error is an *Error naming the
// path of the bad value.
func Parse(b []byte) (*Scenario, error) {
	var named struct{ Name string }
	json.Unmarshal(b, &named) // for the error messages only
	name := named.Name
	if name == "" {
		name = "?"
	}
	if len(b) > MaxScenarioSize {
		return nil, &Error{Scenario: name, Msg: fmt.Sprintf("file larger than %d bytes", MaxScenarioSize)}
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	var s Scenario
	if err := dec.Decode(&s); err != nil {
		return nil, asError(name, err)
	}
	if dec.More() {
		return nil, &Error{Scenario: s.Name, Msg: "trailing data after the scenario object"}
	}
	return &s, nil
}

// Validate checks every field it can without knowing the machine (a
// scenario built in Go rather than decoded).
func (s *Scenario) Validate() error {
	if err := s.validate(); err != nil {
		name := s.Name
		if name == "" {
			name = "?"
		}
		return asError(name, err)
	}
	return nil
}

func (c *Checks) validate() error {
	if c == nil {
		return nil
	}
	if c.MaxGapMS != nil && *c.MaxGapMS <= 0 {
		return at("max_gap_ms", errf("%v: must be positive", *c.MaxGapMS))
	}
	if c.MaxSpreadPct != nil && (*c.MaxSpreadPct < 0 || *c.MaxSpreadPct > 100) {
		return at("max_spread_pct", errf("%v: must be within 0..100", *c.MaxSpreadPct))
	}
	for _, r := range []struct {
		name string
		v    *float64
	}{{"max_cross_node_migration_ratio", c.MaxCrossNodeRatio}, {"max_cross_llc_migration_ratio", c.MaxCrossLLCRatio}, {"min_page_locality", c.MinPageLocality}} {
		if r.v != nil && !(*r.v >= 0 && *r.v <= 1) {
			return at(r.name, errf("%v: must be within 0..1", *r.v))
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

// Default is the scenario run when none is named.
const Default = "steady"

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
	if err != nil || strings.ContainsAny(name, "/\\") {
		return nil, fmt.Errorf("unknown scenario %q (canned: %s; or give a file path)", name, strings.Join(Names(), ", "))
	}
	return b, nil
}

// IsFile reports whether a scenario argument names a file (anything
// containing '/' or ending in .json) rather than a canned scenario. It
// is the one place the rule lives: ktstr-boot sends a file's content to
// the guest and a canned name as the name.
func IsFile(arg string) bool {
	return strings.ContainsRune(arg, '/') || strings.HasSuffix(arg, ".json")
}

// Load returns the scenario named by arg ("" is Default): a canned name,
// or a file path (IsFile), which must be a regular file of at most
// MaxScenarioSize bytes (a FIFO or a device is refused without blocking
// or reading). It returns the file's bytes too.
func Load(arg string) (*Scenario, []byte, error) {
	if arg == "" {
		arg = Default
	}
	var b []byte
	var err error
	if IsFile(arg) {
		b, err = regfile.ReadFile(arg, MaxScenarioSize)
	} else {
		b, err = Canned(arg)
	}
	if err != nil {
		return nil, nil, err
	}
	s, err := Parse(b)
	return s, b, err
}
