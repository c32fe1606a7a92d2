package introspect

import (
	"errors"
	"fmt"
	"sort"
	"strings"

	"github.com/cilium/ebpf/btf"
)

// ReportVersion is the version of the snapshot report's JSON
// (ktstr-snapshot(5)).
const ReportVersion = 1

// Report is a snapshot of the guest's scheduler state. Every part that
// could not be read is left out and says why in Errors; what the kernel
// lacks is listed in SchedExt.Missing.
type Report struct {
	Version  int        `json:"version"`
	Tag      string     `json:"tag,omitempty"`
	Reason   string     `json:"reason,omitempty"` // why ktstr-boot took it on its own (failure dump)
	Backend  string     `json:"backend,omitempty"`
	Time     string     `json:"time,omitempty"`      // RFC 3339, when the vCPUs froze
	FrozenNS int64      `json:"frozen_ns,omitempty"` // how long the vCPUs stayed frozen (0: not frozen)
	Kernel   string     `json:"kernel,omitempty"`    // linux_banner
	Jiffies  uint64     `json:"jiffies,omitempty"`
	VCPUs    []VCPU     `json:"vcpus"`
	CPUs     []CPUState `json:"cpus"`
	SchedExt *SchedExt  `json:"sched_ext,omitempty"`
	Errors   []string   `json:"errors,omitempty"`
}

// VCPU is one vCPU's registers at the freeze.
type VCPU struct {
	Index int `json:"index"`
	Regs
}

// CPUState is one CPU's runqueue (struct rq, per-CPU runqueues).
type CPUState struct {
	CPU       int    `json:"cpu"`
	NrRunning uint64 `json:"nr_running"`
	ClockNS   uint64 `json:"clock_ns"`
	CurrPID   int32  `json:"curr_pid"`
	CurrComm  string `json:"curr_comm"`
	// SCX is the runqueue's sched_ext part (absent without sched_ext).
	SCX    *SCXRq   `json:"scx,omitempty"`
	Errors []string `json:"errors,omitempty"`
}

// SCXRq is struct scx_rq of one CPU.
type SCXRq struct {
	NrRunning     uint64 `json:"nr_running"`
	LocalDSQDepth uint64 `json:"local_dsq_depth"`
	// Runnable is how many tasks wait on the runqueue's runnable list
	// (counted up to MaxRunnable); Oldest the one waiting longest.
	Runnable int           `json:"runnable"`
	Oldest   *RunnableTask `json:"oldest,omitempty"`
}

// MaxRunnable bounds the walk of one runqueue's runnable list.
const MaxRunnable = 1024

// RunnableTask is a task on a runnable list and how long it has waited
// (jiffies since its runnable_at).
type RunnableTask struct {
	PID         int32  `json:"pid"`
	Comm        string `json:"comm"`
	WaitJiffies uint64 `json:"wait_jiffies"`
}

// SchedExt is sched_ext's global state.
type SchedExt struct {
	State      string           `json:"state,omitempty"` // SCX_OPS_ENABLED, ...
	Ops        string           `json:"ops,omitempty"`   // the scheduler's ops name ("" when none)
	ExitKind   string           `json:"exit_kind,omitempty"`
	ExitCode   int64            `json:"exit_code,omitempty"`
	ExitReason string           `json:"exit_reason,omitempty"`
	ExitMsg    string           `json:"exit_msg,omitempty"`
	Counters   map[string]int64 `json:"counters,omitempty"`
	Missing    []string         `json:"missing,omitempty"`
}

// Capture reads the report from the guest (the caller has frozen the
// vCPUs, or accepts a moving picture). regs are the vCPUs' registers,
// also used to find the kernel's page tables.
func (g *Guest) Capture(regs []Regs) *Report {
	r := &Report{Version: ReportVersion, VCPUs: make([]VCPU, len(regs)), CPUs: []CPUState{}}
	for i, rg := range regs {
		r.VCPUs[i] = VCPU{Index: i, Regs: rg}
	}
	if g.k == nil {
		r.Errors = append(r.Errors, ErrNoVmlinux.Error())
		return r
	}
	r.Kernel = g.k.Banner
	if _, err := g.Paging(regs); err != nil {
		r.Errors = append(r.Errors, err.Error())
		return r
	}
	var errs []string
	r.Jiffies, r.CPUs, errs = g.Runqueues()
	r.Errors = append(r.Errors, errs...)
	r.SchedExt = g.schedExt()
	return r
}

// Runqueues reads jiffies and every CPU's runqueue (the per-CPU part of
// a report). Errors say what could not be read; the rest is filled. It
// reads while the vCPUs run just as well (the host-side monitor): each
// value is one aligned load, each pointer followed is checked.
func (g *Guest) Runqueues() (jiffies uint64, cpus []CPUState, errs []string) {
	cpus = []CPUState{}
	if _, err := g.Paging(nil); err != nil {
		return 0, cpus, []string{err.Error()}
	}
	j, err := g.SymbolU64("jiffies")
	if err != nil {
		errs = append(errs, "jiffies: "+err.Error())
	}
	n, err := g.NrCPUs()
	if err != nil {
		errs = append(errs, err.Error())
	}
	g.mu.Lock()
	rl, rerr := g.rq, g.rqErr
	if rl == nil && rerr == nil {
		var l rqLayout
		if l, rerr = g.rqLayout(); rerr == nil {
			rl = &l
		}
		g.rq, g.rqErr = rl, rerr
	}
	g.mu.Unlock()
	if rerr != nil {
		return j, cpus, append(errs, "runqueues: "+rerr.Error())
	}
	for cpu := range n {
		cpus = append(cpus, g.cpuState(*rl, cpu, j))
	}
	return j, cpus, errs
}

// rqLayout is where struct rq and what it points to keep what a report
// reads. A zero scx means the kernel has no sched_ext.
type rqLayout struct {
	nrRunning, clock, curr     Field
	scxNr, scxDSQ, scxRunnable Field
	pid, comm                  Field // in task_struct
	runnableNode, runnableAt   Field // in task_struct (scx.)
	haveSCX                    bool
}

func (g *Guest) rqLayout() (rqLayout, error) {
	var l rqLayout
	_, rq, err := g.k.PerCPU("runqueues")
	if err != nil {
		return l, err
	}
	if rq == nil {
		return l, errors.New("struct rq not in BTF")
	}
	ts, err := g.k.Struct("task_struct")
	if err != nil {
		return l, err
	}
	for _, f := range []struct {
		t    btf.Type
		path string
		dst  *Field
	}{{rq, "nr_running", &l.nrRunning}, {rq, "clock", &l.clock}, {rq, "curr", &l.curr},
		{ts, "pid", &l.pid}, {ts, "comm", &l.comm}} {
		if *f.dst, err = FieldOf(f.t, f.path); err != nil {
			return l, err
		}
	}
	l.haveSCX = true
	for _, f := range []struct {
		t    btf.Type
		path string
		dst  *Field
	}{{rq, "scx.nr_running", &l.scxNr}, {rq, "scx.local_dsq.nr", &l.scxDSQ}, {rq, "scx.runnable_list", &l.scxRunnable},
		{ts, "scx.runnable_node", &l.runnableNode}, {ts, "scx.runnable_at", &l.runnableAt}} {
		if *f.dst, err = FieldOf(f.t, f.path); err != nil {
			l.haveSCX = false
		}
	}
	return l, nil
}

func (g *Guest) cpuState(l rqLayout, cpu int, jiffies uint64) CPUState {
	c := CPUState{CPU: cpu}
	note := func(what string, err error) { c.Errors = append(c.Errors, what+": "+err.Error()) }
	rq, _, err := g.PerCPU("runqueues", cpu)
	if err != nil {
		note("runqueues", err)
		return c
	}
	if c.NrRunning, err = g.Uint(rq+l.nrRunning.Offset, l.nrRunning.Size); err != nil {
		note("nr_running", err)
	}
	if c.ClockNS, err = g.Uint(rq+l.clock.Offset, l.clock.Size); err != nil {
		note("clock", err)
	}
	if curr, err := g.U64(rq + l.curr.Offset); err != nil {
		note("curr", err)
	} else if pid, comm, err := g.task(l, curr); err != nil {
		note("curr task", err)
	} else {
		c.CurrPID, c.CurrComm = pid, comm
	}
	if !l.haveSCX {
		return c
	}
	s := &SCXRq{}
	c.SCX = s
	if s.NrRunning, err = g.Uint(rq+l.scxNr.Offset, l.scxNr.Size); err != nil {
		note("scx.nr_running", err)
	}
	if s.LocalDSQDepth, err = g.Uint(rq+l.scxDSQ.Offset, l.scxDSQ.Size); err != nil {
		note("scx.local_dsq.nr", err)
	}
	head := rq + l.scxRunnable.Offset
	cur := head
	for s.Runnable < MaxRunnable {
		next, err := g.U64(cur)
		if err != nil {
			note("scx.runnable_list", err)
			break
		}
		if next == head {
			break
		}
		s.Runnable++
		task := next - l.runnableNode.Offset
		at, err := g.U64(task + l.runnableAt.Offset)
		if err != nil {
			note("scx.runnable_list", err)
			break
		}
		if wait := jiffies - at; jiffies >= at && (s.Oldest == nil || wait > s.Oldest.WaitJiffies) {
			pid, comm, err := g.task(l, task)
			if err != nil {
				note("scx.runnable_list", err)
				break
			}
			s.Oldest = &RunnableTask{PID: pid, Comm: comm, WaitJiffies: wait}
		}
		cur = next
	}
	return c
}

// task reads a task's pid and comm.
func (g *Guest) task(l rqLayout, task uint64) (int32, string, error) {
	pid, err := g.Uint(task+l.pid.Offset, 4)
	if err != nil {
		return 0, "", err
	}
	b := make([]byte, l.comm.Size)
	if err := g.Read(task+l.comm.Offset, b); err != nil {
		return 0, "", err
	}
	return int32(pid), cstring(b), nil
}

// Counters sched_ext keeps as plain globals (6.12); each is read at its
// ELF symbol's size.
var scxCounters = []string{"scx_nr_rejected", "scx_hotplug_seq", "scx_enable_seq", "scx_ops_bypass_depth", "scx_switching_all"}

// schedExt reads sched_ext's root state the way Linux 6.12 keeps it:
// scx_ops_enable_state_var, scx_ops (struct sched_ext_ops), scx_exit_kind,
// scx_exit_info, the counters above, and the per-CPU event_stats_cpu
// (struct scx_event_stats, Linux 6.15 and later) summed over CPUs. Names
// this kernel lacks are listed in Missing.
func (g *Guest) schedExt() *SchedExt {
	s := &SchedExt{}
	missing := func(what string, err error) { s.Missing = append(s.Missing, what+": "+trimPrefix(err)) }
	enumAt := func(sym, enum string) (string, error) {
		a, _, err := g.k.Symbol(sym)
		if err != nil {
			return "", err
		}
		v, err := g.Uint(a, 4)
		if err != nil {
			return "", err
		}
		names, err := g.k.Enum(enum)
		if err != nil {
			return fmt.Sprint(v), nil
		}
		if n, ok := names[v]; ok {
			return n, nil
		}
		return fmt.Sprint(v), nil
	}
	var err error
	if s.State, err = enumAt("scx_ops_enable_state_var", "scx_ops_enable_state"); err != nil {
		missing("scx_ops_enable_state_var", err)
	}
	if s.ExitKind, err = enumAt("scx_exit_kind", "scx_exit_kind"); err != nil {
		missing("scx_exit_kind", err)
	}
	if err := g.opsName(s); err != nil {
		missing("scx_ops", err)
	}
	if err := g.exitInfo(s); err != nil {
		missing("scx_exit_info", err)
	}
	s.Counters = map[string]int64{}
	for _, name := range scxCounters {
		a, size, err := g.k.Symbol(name)
		if err == nil && size != 1 && size != 2 && size != 4 && size != 8 {
			err = fmt.Errorf("%d-byte symbol", size)
		}
		if err != nil {
			missing(name, err)
			continue
		}
		v, err := g.Uint(a, size)
		if err != nil {
			missing(name, err)
			continue
		}
		s.Counters[strings.TrimPrefix(name, "scx_")] = signExtend(v, size)
	}
	if err := g.eventStats(s.Counters); err != nil {
		missing("event_stats_cpu", err)
	}
	sort.Strings(s.Missing)
	return s
}

func (g *Guest) opsName(s *SchedExt) error {
	a, _, err := g.k.Symbol("scx_ops")
	if err != nil {
		return err
	}
	t, err := g.k.Struct("sched_ext_ops")
	if err != nil {
		return err
	}
	f, err := FieldOf(t, "name")
	if err != nil {
		return err
	}
	s.Ops, err = g.String(a+f.Offset, int(min(f.Size, 256)))
	return err
}

func (g *Guest) exitInfo(s *SchedExt) error {
	a, _, err := g.k.Symbol("scx_exit_info")
	if err != nil {
		return err
	}
	ei, err := g.U64(a)
	if err != nil || ei == 0 {
		return err // no exit info allocated: nothing to say
	}
	t, err := g.k.Struct("scx_exit_info")
	if err != nil {
		return err
	}
	var kind, code, reason, msg Field
	for _, f := range []struct {
		path string
		dst  *Field
	}{{"kind", &kind}, {"exit_code", &code}, {"reason", &reason}, {"msg", &msg}} {
		if *f.dst, err = FieldOf(t, f.path); err != nil {
			return err
		}
	}
	k, err := g.Uint(ei+kind.Offset, kind.Size)
	if err != nil || k == 0 {
		return err // SCX_EXIT_NONE: the scheduler has not exited
	}
	c, err := g.Uint(ei+code.Offset, code.Size)
	if err != nil {
		return err
	}
	s.ExitCode = int64(c)
	for _, p := range []struct {
		f   Field
		dst *string
		max int
	}{{reason, &s.ExitReason, 256}, {msg, &s.ExitMsg, 1024}} {
		ptr, err := g.U64(ei + p.f.Offset)
		if err != nil {
			return err
		}
		if ptr != 0 {
			if *p.dst, err = g.String(ptr, p.max); err != nil {
				return err
			}
		}
	}
	return nil
}

// eventStats sums struct scx_event_stats over CPUs into counters.
func (g *Guest) eventStats(counters map[string]int64) error {
	_, t, err := g.k.PerCPU("event_stats_cpu")
	if err != nil {
		return err
	}
	st, ok := btf.UnderlyingType(t).(*btf.Struct)
	if !ok {
		return fmt.Errorf("event_stats_cpu is not a struct in BTF")
	}
	n, err := g.NrCPUs()
	if err != nil {
		return err
	}
	for cpu := range n {
		base, _, err := g.PerCPU("event_stats_cpu", cpu)
		if err != nil {
			return err
		}
		for _, m := range st.Members {
			v, err := g.U64(base + uint64(m.Offset/8))
			if err != nil {
				return err
			}
			counters[m.Name] += int64(v)
		}
	}
	return nil
}

func signExtend(v, size uint64) int64 {
	shift := 64 - 8*size
	return int64(v<<shift) >> shift
}

func trimPrefix(err error) string { return strings.TrimPrefix(err.Error(), "introspect: ") }
