package scenario

import (
	"fmt"
	"slices"
	"strings"
)

// Op kinds. Each takes the fields listed (opFields); every other field
// must be left out.
const (
	OpSetCpuset   = "set_cpuset"   // cgroup, cpuset: write the cgroup's cpuset
	OpClearCpuset = "clear_cpuset" // cgroup: every CPU again
	OpSwapCpusets = "swap_cpusets" // cgroup, with: exchange two cgroups' cpusets
	OpSetWeight   = "set_weight"   // cgroup, weight: cpu.weight
	OpSetLimits   = "set_limits"   // cgroup, limits: cpu.max, cpu.idle, memory.max/high, pids.max
	OpAddWorkers  = "add_workers"  // cgroup, count
	// OpStopWorkers stops count workers of the cgroup (whole batches,
	// newest first), or all of them without count.
	OpStopWorkers = "stop_workers"
	// OpSetAffinity pins every thread of the cgroup's running workers to
	// the CPUs of cpuset ("all" unpins them).
	OpSetAffinity = "set_affinity"
	// OpMoveTasks moves every worker of cgroup into cgroup to (its
	// cgroup.procs); they are counted in to from then on.
	OpMoveTasks = "move_tasks"
	OpFreeze    = "freeze"   // cgroup: cgroup.freeze 1
	OpUnfreeze  = "unfreeze" // cgroup: cgroup.freeze 0
	// OpAddCgroup makes the cgroup spec (and starts its workers) mid-run;
	// it lives until remove_cgroup or the end.
	OpAddCgroup = "add_cgroup"
	// OpRemoveCgroup stops the cgroup's workers (their results are kept)
	// and removes the cgroup.
	OpRemoveCgroup = "remove_cgroup"
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
	// OpRunPayload starts a program (any binary packed with ktstr-boot
	// --include) as payload: path and args, in cgroup when given. Its
	// output (the last 4 KiB) and exit status are captured.
	OpRunPayload = "run_payload"
	// OpWaitPayload waits up to timeout_ms (default 10000) for payload
	// to exit; its status becomes a note, and a status other than
	// expect_exit (when given) fails the run.
	OpWaitPayload = "wait_payload"
	// OpKillPayload sends signal (default SIGKILL) to payload.
	OpKillPayload = "kill_payload"
	// OpDetachScheduler stops the scheduler under test on purpose
	// (SIGINT): the workers go on under the kernel's own scheduler, and
	// this is no loss. OpAttachScheduler starts it again and waits for it
	// to attach; OpRestartScheduler does both. Without a scheduler under
	// test they are notes.
	OpDetachScheduler  = "detach_scheduler"
	OpAttachScheduler  = "attach_scheduler"
	OpRestartScheduler = "restart_scheduler"
	// OpReplaceScheduler detaches the scheduler under test and attaches
	// the replacement (ktstr-boot --replacement) in its place; a later
	// attach_scheduler or restart_scheduler starts the replacement.
	OpReplaceScheduler = "replace_scheduler"
)

// Payload limits.
const (
	MaxPayloadArgs       = 64
	MaxPayloadArgLen     = 4096
	DefaultPayloadWaitMS = 10000
)

// opFields lists, per op, the fields it needs and those it may have.
var opFields = map[string]struct{ need, may []string }{
	OpSetCpuset:        {need: []string{"cgroup", "cpuset"}},
	OpClearCpuset:      {need: []string{"cgroup"}},
	OpSwapCpusets:      {need: []string{"cgroup", "with"}},
	OpSetWeight:        {need: []string{"cgroup", "weight"}},
	OpSetLimits:        {need: []string{"cgroup", "limits"}},
	OpAddWorkers:       {need: []string{"cgroup", "count"}},
	OpStopWorkers:      {need: []string{"cgroup"}, may: []string{"count"}},
	OpSetAffinity:      {need: []string{"cgroup", "cpuset"}},
	OpMoveTasks:        {need: []string{"cgroup", "to"}},
	OpFreeze:           {need: []string{"cgroup"}},
	OpUnfreeze:         {need: []string{"cgroup"}},
	OpAddCgroup:        {need: []string{"spec"}},
	OpRemoveCgroup:     {need: []string{"cgroup"}},
	OpKillScheduler:    {may: []string{"signal"}},
	OpSnapshot:         {need: []string{"tag"}},
	OpReadKernel:       {need: []string{"kernel"}},
	OpWriteKernel:      {need: []string{"kernel"}},
	OpRunPayload:       {need: []string{"payload", "path"}, may: []string{"args", "cgroup"}},
	OpWaitPayload:      {need: []string{"payload"}, may: []string{"expect_exit", "timeout_ms"}},
	OpKillPayload:      {need: []string{"payload"}, may: []string{"signal"}},
	OpDetachScheduler:  {},
	OpAttachScheduler:  {},
	OpRestartScheduler: {},
	OpReplaceScheduler: {},
}

// OpKinds lists the op kinds, sorted.
func OpKinds() []string {
	out := make([]string, 0, len(opFields))
	for k := range opFields {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

// Op changes the scenario at the start of a step.
type Op struct {
	Op     string     `json:"op"`
	Cgroup string     `json:"cgroup,omitempty"`
	Cpuset CpusetSpec `json:"cpuset,omitzero"`
	With   string     `json:"with,omitempty"` // swap_cpusets: the other cgroup
	To     string     `json:"to,omitempty"`   // move_tasks: the destination
	Weight int        `json:"weight,omitempty"`
	Limits *Limits    `json:"limits,omitempty"`
	Count  int        `json:"count,omitempty"`
	Spec   *Cgroup    `json:"spec,omitempty"` // add_cgroup
	Signal int        `json:"signal,omitempty"`
	Tag    string     `json:"tag,omitempty"`
	// Kernel is what read_kernel and write_kernel read or write.
	Kernel *KernelOp `json:"kernel,omitempty"`
	// Payload names a program run by run_payload (Path, Args), waited
	// for by wait_payload (ExpectExit, TimeoutMS) or signalled by
	// kill_payload.
	Payload    string   `json:"payload,omitempty"`
	Path       string   `json:"path,omitempty"`
	Args       []string `json:"args,omitempty"`
	ExpectExit *int     `json:"expect_exit,omitempty"`
	TimeoutMS  int      `json:"timeout_ms,omitempty"`
}

// UnmarshalJSON decodes one op: its kind, then exactly the fields that
// kind takes, each checked.
func (o *Op) UnmarshalJSON(b []byte) error {
	var v Op
	present, err := decodeObject(b, fields{"op": &v.Op, "cgroup": &v.Cgroup, "cpuset": &v.Cpuset, "with": &v.With,
		"to": &v.To, "weight": &v.Weight, "limits": &v.Limits, "count": &v.Count, "spec": &v.Spec,
		"signal": &v.Signal, "tag": &v.Tag, "kernel": &v.Kernel, "payload": &v.Payload, "path": &v.Path,
		"args": &v.Args, "expect_exit": &v.ExpectExit, "timeout_ms": &v.TimeoutMS})
	if err != nil {
		return err
	}
	f, ok := opFields[v.Op]
	if !ok {
		return at("op", errf("unknown op %q (want %s)", v.Op, strings.Join(OpKinds(), ", ")))
	}
	for _, k := range f.need {
		if !present[k] {
			return at(k, errf("missing: %s takes %s", v.Op, describeOpFields(f.need, f.may)))
		}
	}
	for _, k := range sortedPresent(present) {
		if k != "op" && !slices.Contains(f.need, k) && !slices.Contains(f.may, k) {
			return at(k, errf("not a field of %s (it takes %s)", v.Op, describeOpFields(f.need, f.may)))
		}
	}
	if err := v.check(); err != nil {
		return err
	}
	*o = v
	return nil
}

func sortedPresent(m map[string]bool) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

func describeOpFields(need, may []string) string {
	s := strings.Join(need, ", ")
	if len(need) == 0 {
		s = "nothing"
	}
	if len(may) > 0 {
		s += " and optionally " + strings.Join(may, ", ")
	}
	return s
}

// check checks the values of the op's own fields.
func (o *Op) check() error {
	f, ok := opFields[o.Op]
	if !ok {
		return at("op", errf("unknown op %q (want %s)", o.Op, strings.Join(OpKinds(), ", ")))
	}
	if slices.Contains(f.need, "cgroup") && o.Cgroup == "" {
		return at("cgroup", errf("missing"))
	}
	switch o.Op {
	case OpSetCpuset, OpSetAffinity:
		if o.Cpuset.IsZero() {
			return at("cpuset", errf(`"": want a cpuset (%s names no CPUs; clear_cpuset or "all" for every CPU)`, o.Op))
		}
	case OpSwapCpusets, OpMoveTasks:
		other := map[string]string{OpSwapCpusets: "with", OpMoveTasks: "to"}[o.Op]
		if n := o.With + o.To; n == "" || n == o.Cgroup {
			return at(other, errf("%q: want another cgroup than %q", n, o.Cgroup))
		}
	case OpSetWeight:
		if o.Weight < 1 || o.Weight > 10000 {
			return at("weight", errf("%d out of range 1..10000", o.Weight))
		}
	case OpSetLimits:
		if len(o.Limits.Settings()) == 0 {
			return at("limits", errf("missing"))
		}
	case OpAddWorkers:
		if o.Count < 1 || o.Count > MaxWorkers {
			return at("count", errf("%d out of range 1..%d", o.Count, MaxWorkers))
		}
	case OpStopWorkers:
		if o.Count < 0 || o.Count > MaxWorkers {
			return at("count", errf("%d out of range 1..%d (or leave it out: all)", o.Count, MaxWorkers))
		}
	case OpAddCgroup:
		if o.Spec == nil {
			return at("spec", errf("missing"))
		}
		if err := o.Spec.check(); err != nil {
			return at("spec", err)
		}
		if o.Spec.Each != "" {
			return at("spec.each", errf("each is for the scenario's own cgroups only"))
		}
	case OpRunPayload:
		if !validName(o.Payload) {
			return at("payload", errf("%q: want 1-64 characters of [A-Za-z0-9_.-], not starting with '.'", o.Payload))
		}
		if !strings.HasPrefix(o.Path, "/") || len(o.Path) > MaxPayloadArgLen || strings.ContainsRune(o.Path, 0) {
			return at("path", errf("%q: want an absolute path in the guest (a file packed with --include)", o.Path))
		}
		if len(o.Args) > MaxPayloadArgs {
			return at("args", errf("%d arguments, at most %d", len(o.Args), MaxPayloadArgs))
		}
		for i, a := range o.Args {
			if len(a) > MaxPayloadArgLen || strings.ContainsRune(a, 0) {
				return at("args", at(index(i), errf("want at most %d bytes and no NUL", MaxPayloadArgLen)))
			}
		}
	case OpWaitPayload:
		if o.TimeoutMS < 0 || o.TimeoutMS > MaxHoldMS {
			return at("timeout_ms", errf("%d out of range 1..%d (default %d)", o.TimeoutMS, MaxHoldMS, DefaultPayloadWaitMS))
		}
		if e := o.ExpectExit; e != nil && (*e < 0 || *e > 255) {
			return at("expect_exit", errf("%d out of range 0..255", *e))
		}
	case OpKillPayload, OpKillScheduler:
		if o.Signal < 0 || o.Signal > 64 {
			return at("signal", errf("%d out of range 1..64 (default 9, SIGKILL)", o.Signal))
		}
	case OpSnapshot:
		if o.Tag == "" || len(o.Tag) > 64 {
			return at("tag", errf("%q: want 1..64 bytes", o.Tag))
		}
	case OpReadKernel, OpWriteKernel:
		if err := o.Kernel.validate(o.Op == OpWriteKernel); err != nil {
			return at("kernel", errf("%v", err))
		}
	}
	return nil
}

// liveSet follows which cgroups exist, step by step, as the guest will
// make and remove them, so that every name an op uses is checked.
type liveSet struct {
	live     map[string]*Cgroup
	used     map[string]bool
	payloads map[string]bool
	detached bool // by detach_scheduler, not attached again
}

func (l *liveSet) add(c *Cgroup) error {
	if l.used[c.Name] {
		return at("name", errf("%q used twice (names are unique over the whole scenario)", c.Name))
	}
	if p := c.Parent(); p != "" {
		pc, ok := l.live[p]
		switch {
		case !ok:
			return at("name", errf("%q: no cgroup %q to nest in", c.Name, p))
		case pc.HasWorkers():
			return at("name", errf("%q: its parent %q runs workers (a cgroup with workers cannot have children)", c.Name, p))
		case pc.Each != "":
			return at("name", errf("%q: its parent %q is copied per %s (each)", c.Name, p, pc.Each))
		}
	}
	if len(l.live) >= MaxCgroups {
		return at("name", errf("%q: more than %d cgroups alive at once", c.Name, MaxCgroups))
	}
	l.used[c.Name] = true
	l.live[c.Name] = c
	return nil
}

// named returns the live cgroup an op names at field, refusing one
// copied per LLC or node.
func (l *liveSet) named(field, name string) (*Cgroup, error) {
	c, ok := l.live[name]
	if !ok {
		return nil, at(field, errf("no cgroup %q at this step (have %s)", name, strings.Join(l.names(), ", ")))
	}
	if c.Each != "" {
		return nil, at(field, errf("cgroup %q is copied per %s (each); ops cannot name it", name, c.Each))
	}
	return c, nil
}

func (l *liveSet) names() []string {
	out := make([]string, 0, len(l.live))
	for n := range l.live {
		out = append(out, n)
	}
	slices.Sort(out)
	return out
}

func (l *liveSet) children(name string) bool {
	for n := range l.live {
		if strings.HasPrefix(n, name+"/") {
			return true
		}
	}
	return false
}

func (l *liveSet) remove(field, name string) error {
	if l.children(name) {
		return at(field, errf("cgroup %q still has nested cgroups; remove them first", name))
	}
	delete(l.live, name)
	return nil
}

// validate checks the whole scenario: every part, and every name used
// against the cgroups alive at that step.
func (s *Scenario) validate() error {
	if s.Name == "" {
		return at("name", errf("missing"))
	}
	if s.SettleMS < 0 || s.SettleMS > MaxHoldMS {
		return at("settle_ms", errf("%d out of range 0..%d", s.SettleMS, MaxHoldMS))
	}
	if err := s.Requires.validate(); err != nil {
		return at("requires", errf("%v", err))
	}
	if len(s.Cgroups) > MaxCgroups {
		return at("cgroups", errf("want at most %d cgroups, have %d", MaxCgroups, len(s.Cgroups)))
	}
	l := &liveSet{live: map[string]*Cgroup{}, used: map[string]bool{}, payloads: map[string]bool{}}
	for i := range s.Cgroups {
		c := &s.Cgroups[i]
		if err := c.check(); err != nil {
			return at("cgroups", at(index(i), err))
		}
		if err := l.add(c); err != nil {
			return at("cgroups", at(index(i), err))
		}
	}
	if len(s.Steps) == 0 || len(s.Steps) > MaxSteps {
		return at("steps", errf("want 1..%d steps, have %d", MaxSteps, len(s.Steps)))
	}
	ever := len(s.Cgroups) > 0
	saves := map[string]bool{} // values kept by read_kernel so far
	for i := range s.Steps {
		if err := s.Steps[i].validate(l, saves, &ever); err != nil {
			return at("steps", at(index(i), err))
		}
	}
	if !ever {
		return at("cgroups", errf("want 1..%d cgroups: the scenario makes none", MaxCgroups))
	}
	if err := s.Checks.validate(); err != nil {
		return at("checks", err)
	}
	if err := s.Monitor.validate(); err != nil {
		return at("monitor", errf("%v", err))
	}
	return nil
}

func (st *Step) validate(l *liveSet, saves map[string]bool, ever *bool) error {
	if err := st.check(); err != nil {
		return err
	}
	if len(st.Ops) > MaxOps {
		return at("ops", errf("%d ops, at most %d", len(st.Ops), MaxOps))
	}
	if len(st.Cgroups) > MaxCgroups {
		return at("cgroups", errf("%d cgroups, at most %d", len(st.Cgroups), MaxCgroups))
	}
	for j := range st.Cgroups {
		c := &st.Cgroups[j]
		err := c.check()
		if err == nil && c.Each != "" {
			err = at("each", errf("each is for the scenario's own cgroups only"))
		}
		if err == nil {
			err = l.add(c)
		}
		if err != nil {
			return at("cgroups", at(index(j), err))
		}
		*ever = true
	}
	for j := range st.Ops {
		if err := st.Ops[j].validate(l, saves, ever); err != nil {
			return at("ops", at(index(j), err))
		}
	}
	for j := len(st.Cgroups) - 1; j >= 0; j-- {
		if _, alive := l.live[st.Cgroups[j].Name]; alive {
			if err := l.remove("cgroups", st.Cgroups[j].Name); err != nil {
				return err
			}
		}
	}
	return nil
}

func (op *Op) validate(l *liveSet, saves map[string]bool, ever *bool) error {
	if err := op.check(); err != nil {
		return err
	}
	switch op.Op {
	case OpKillScheduler, OpSnapshot:
		return nil
	case OpDetachScheduler, OpRestartScheduler, OpReplaceScheduler:
		if l.detached {
			return at("op", errf("%s: the scheduler was detached by an earlier op", op.Op))
		}
		l.detached = op.Op == OpDetachScheduler
		return nil
	case OpAttachScheduler:
		if !l.detached {
			return at("op", errf("attach_scheduler: no earlier detach_scheduler"))
		}
		l.detached = false
		return nil
	case OpReadKernel, OpWriteKernel:
		for _, ref := range op.Kernel.Expect.refs() {
			if !saves[ref] {
				return at("kernel", at("expect", errf("no earlier read saves %q", ref)))
			}
		}
		if op.Kernel.Save != "" {
			saves[op.Kernel.Save] = true
		}
		return nil
	case OpAddCgroup:
		*ever = true
		return at("spec", l.add(op.Spec))
	case OpRunPayload:
		if l.payloads[op.Payload] {
			return at("payload", errf("%q started twice", op.Payload))
		}
		l.payloads[op.Payload] = true
		if op.Cgroup != "" {
			if _, err := l.named("cgroup", op.Cgroup); err != nil {
				return err
			}
			if l.children(op.Cgroup) {
				return at("cgroup", errf("cgroup %q has nested cgroups: it cannot take tasks", op.Cgroup))
			}
		}
		return nil
	case OpWaitPayload, OpKillPayload:
		if !l.payloads[op.Payload] {
			return at("payload", errf("no payload %q started before", op.Payload))
		}
		return nil
	}
	c, err := l.named("cgroup", op.Cgroup)
	if err != nil {
		return err
	}
	switch op.Op {
	case OpSwapCpusets:
		_, err = l.named("with", op.With)
	case OpMoveTasks:
		var to *Cgroup
		if to, err = l.named("to", op.To); err == nil && l.children(op.To) {
			err = at("to", errf("cgroup %q has nested cgroups: it cannot take tasks", to.Name))
		}
	case OpAddWorkers, OpSetAffinity:
		if !c.HasWorkers() {
			err = at("cgroup", errf("cgroup %q has no work: %s needs workers", op.Cgroup, op.Op))
		}
	case OpRemoveCgroup:
		err = l.remove("cgroup", op.Cgroup)
	}
	return err
}

// String is a short description of the op, for notes and errors.
func (op *Op) String() string {
	switch op.Op {
	case OpAddCgroup:
		return fmt.Sprintf("%s %s", op.Op, op.Spec.Name)
	case OpSwapCpusets:
		return fmt.Sprintf("%s %s %s", op.Op, op.Cgroup, op.With)
	case OpMoveTasks:
		return fmt.Sprintf("%s %s -> %s", op.Op, op.Cgroup, op.To)
	case OpRunPayload, OpWaitPayload, OpKillPayload:
		return op.Op + " " + op.Payload
	}
	if op.Cgroup != "" {
		return op.Op + " on cgroup " + op.Cgroup
	}
	return op.Op
}
