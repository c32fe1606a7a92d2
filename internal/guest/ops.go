package guest

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"time"

	"github.com/ktstr-go/ktstr/internal/cgroup"
	"github.com/ktstr-go/ktstr/internal/cpulist"
	"github.com/ktstr-go/ktstr/internal/scenario"
	"golang.org/x/sys/unix"
)

// scene is the set of cgroups alive during a run, in the order they were
// made (a parent before its children), with the ones already removed.
type scene struct {
	env      runEnv
	cgs      []*liveCgroup
	byName   map[string]*liveCgroup
	nworkers int
	notes    []string
	payloads map[string]*program
}

// alive counts the cgroups not removed.
func (s *scene) alive() int {
	n := 0
	for _, c := range s.cgs {
		if !c.removed {
			n++
		}
	}
	return n
}

// makeCgroup creates a cgroup (nested in its parent when its name is a
// path) and applies its cpuset, weight and limits; the workers start
// with start.
func (s *scene) makeCgroup(spec scenario.Cgroup) (*liveCgroup, error) {
	c := &liveCgroup{spec: spec, skips: map[string]string{}}
	s.cgs = append(s.cgs, c)
	s.byName[spec.Name] = c
	if p := spec.Parent(); p != "" {
		c.parent = s.byName[p]
	}
	return c, s.env.setupCgroup(c)
}

// start starts the cgroup's workers (none for a cgroup without work).
func (s *scene) start(c *liveCgroup) error {
	if !c.spec.HasWorkers() {
		return nil
	}
	n := c.spec.Workers
	if n == 0 {
		n = max(1, c.spec.WorkersPerCPU*max(1, len(orAll(c.expected, s.env.topo.CPUs))))
	}
	if err := s.env.spawnBatch(c, n); err != nil {
		return fmt.Errorf("start %d workers: %v", n, err)
	}
	s.nworkers += n
	return nil
}

// stopBatches stops the cgroup's newest batches until at least n
// workers have stopped (all of them for n <= 0), keeping their results.
func (s *scene) stopBatches(c *liveCgroup, n int) error {
	if c.frozen {
		if err := s.freeze(c, false); err != nil {
			return err
		}
	}
	stopped := 0
	var errs []error
	for (n <= 0 || stopped < n) && len(c.batches) > 0 {
		b := c.batches[len(c.batches)-1]
		c.batches = c.batches[:len(c.batches)-1]
		rs, err := b.Stop(5 * time.Second)
		c.results = append(c.results, rs...)
		stopped += len(rs)
		errs = append(errs, err)
	}
	s.nworkers -= stopped
	return errors.Join(errs...)
}

// remove stops the cgroup's workers and removes the cgroup.
func (s *scene) remove(c *liveCgroup) error {
	err := s.stopBatches(c, 0)
	if c.group != nil {
		err = errors.Join(err, c.group.Remove(2*time.Second))
		c.group = nil
	}
	c.removed = true
	return err
}

// removeAll removes every cgroup left, children first.
func (s *scene) removeAll() {
	for i := len(s.cgs) - 1; i >= 0; i-- {
		if c := s.cgs[i]; c.group != nil {
			c.group.Remove(2 * time.Second)
			c.group = nil
		}
	}
}

func (s *scene) freeze(c *liveCgroup, on bool) error {
	if c.group == nil {
		return fmt.Errorf("no cgroup: %s", s.env.cgroupSkip)
	}
	v := map[bool]string{false: "0", true: "1"}[on]
	if err := os.WriteFile(filepath.Join(c.group.Dir, "cgroup.freeze"), []byte(v), 0); err != nil {
		return fmt.Errorf("cgroup.freeze: %w", err)
	}
	c.frozen = on
	return nil
}

// pids are the processes of the cgroup's running workers.
func (c *liveCgroup) pids() []int {
	var out []int
	for _, b := range c.batches {
		out = append(out, b.PIDs()...)
	}
	return out
}

// union is the CPUs of a and b; nil (any CPU) when either is nil.
func union(a, b []int) []int {
	if a == nil || b == nil {
		return nil
	}
	out := slices.Concat(a, b)
	slices.Sort(out)
	return slices.Compact(out)
}

// setCpuset gives c the cpuset spec; the isolation check then allows
// every CPU the cgroup had (the workers ran under the old cpuset too).
func (s *scene) setCpuset(c *liveCgroup, spec scenario.CpusetSpec) error {
	cpus, err := spec.Resolve(s.env.topo)
	if err != nil {
		return err
	}
	c.spec.Cpuset = spec
	c.ever = union(c.ever, cpus)
	c.expected = cpus
	if c.group == nil || !c.spec.Enforced() {
		return nil
	}
	if !s.env.controllers["cpuset"] {
		c.skips["isolation"] = "no cpuset controller"
		return nil
	}
	err = c.group.SetCPUs(cpulist.Format(orAll(cpus, s.env.topo.CPUs)))
	c.changedAt = time.Now() // the kernel moved the queued and running workers by now
	return err
}

// apply performs one op on the scene.
func (s *scene) apply(op scenario.Op) error {
	switch op.Op {
	case scenario.OpRunPayload:
		return s.runPayload(op)
	case scenario.OpWaitPayload:
		return s.waitPayload(op)
	case scenario.OpKillPayload:
		return s.killPayload(op)
	case scenario.OpDetachScheduler, scenario.OpAttachScheduler, scenario.OpRestartScheduler, scenario.OpReplaceScheduler:
		return s.schedOp(op.Op)
	}
	if op.Op == scenario.OpAddCgroup {
		c, err := s.makeCgroup(*op.Spec)
		if err != nil {
			return err
		}
		return s.start(c)
	}
	c := s.byName[op.Cgroup]
	if c == nil || c.removed {
		return fmt.Errorf("no cgroup %q", op.Cgroup)
	}
	switch op.Op {
	case scenario.OpSetCpuset:
		return s.setCpuset(c, op.Cpuset)
	case scenario.OpClearCpuset:
		return s.setCpuset(c, scenario.CpusetSpec{})
	case scenario.OpSwapCpusets:
		d := s.byName[op.With]
		if d == nil || d.removed {
			return fmt.Errorf("no cgroup %q", op.With)
		}
		a, b := c.spec.Cpuset, d.spec.Cpuset
		return errors.Join(s.setCpuset(c, b), s.setCpuset(d, a))
	case scenario.OpSetWeight:
		c.spec.Weight = op.Weight
		if c.group == nil {
			return fmt.Errorf("no cgroup: %s", s.env.cgroupSkip)
		}
		return c.group.SetWeight(op.Weight)
	case scenario.OpSetLimits:
		return s.setLimits(c, op.Limits)
	case scenario.OpAddWorkers:
		if err := s.env.spawnBatch(c, op.Count); err != nil {
			return err
		}
		s.nworkers += op.Count
	case scenario.OpStopWorkers:
		return s.stopBatches(c, op.Count)
	case scenario.OpSetAffinity:
		cpus, err := op.Cpuset.Resolve(s.env.topo)
		if err != nil {
			return err
		}
		return setAffinity(c.pids(), orAll(cpus, s.env.topo.CPUs))
	case scenario.OpMoveTasks:
		d := s.byName[op.To]
		if d == nil || d.removed {
			return fmt.Errorf("no cgroup %q", op.To)
		}
		if d.group != nil {
			for _, pid := range c.pids() {
				if err := os.WriteFile(filepath.Join(d.group.Dir, "cgroup.procs"), []byte(strconv.Itoa(pid)), 0); err != nil {
					return fmt.Errorf("move pid %d: %w", pid, err)
				}
			}
		}
		// The workers count in the destination from now on; the
		// isolation check allows them both cgroups' CPUs.
		d.batches = append(d.batches, c.batches...)
		c.batches = nil
		d.ever = union(d.ever, c.ever)
	case scenario.OpFreeze, scenario.OpUnfreeze:
		return s.freeze(c, op.Op == scenario.OpFreeze)
	case scenario.OpRemoveCgroup:
		return s.remove(c)
	default:
		return fmt.Errorf("op %s not known to the agent", op.Op)
	}
	return nil
}

// schedOp detaches, attaches or restarts the scheduler under test; with
// none, it is a note.
func (s *scene) schedOp(kind string) error {
	if s.env.detachScheduler == nil || s.env.attachScheduler == nil {
		s.notes = append(s.notes, kind+": no scheduler under test")
		return nil
	}
	var steps []func() (string, error)
	switch kind {
	case scenario.OpDetachScheduler:
		steps = append(steps, s.env.detachScheduler)
	case scenario.OpAttachScheduler:
		steps = append(steps, s.env.attachScheduler)
	case scenario.OpReplaceScheduler:
		if s.env.replaceScheduler == nil {
			return fmt.Errorf("no replacement scheduler")
		}
		steps = append(steps, s.env.replaceScheduler)
	default:
		steps = append(steps, s.env.detachScheduler, s.env.attachScheduler)
	}
	for _, f := range steps {
		note, err := f()
		if err != nil {
			return err
		}
		s.notes = append(s.notes, note)
	}
	return nil
}

// setLimits writes the controller settings; a file the kernel does not
// have is a note, not a failure.
func (s *scene) setLimits(c *liveCgroup, l *scenario.Limits) error {
	if c.group == nil {
		return fmt.Errorf("no cgroup: %s", s.env.cgroupSkip)
	}
	for _, st := range l.Settings() {
		p := filepath.Join(c.group.Dir, st.File)
		if _, err := os.Stat(p); err != nil {
			s.notes = append(s.notes, fmt.Sprintf("cgroup %s: %s %s not set: the kernel has no %s here", c.spec.Name, st.File, st.Value, st.File))
			continue
		}
		if err := os.WriteFile(p, []byte(st.Value), 0); err != nil {
			return fmt.Errorf("write %q to %s: %w", st.Value, st.File, err)
		}
	}
	return nil
}

// setAffinity pins every thread of every process in pids to cpus. A
// process that is gone is skipped.
func setAffinity(pids, cpus []int) error {
	var set unix.CPUSet
	for _, c := range cpus {
		set.Set(c)
	}
	for _, pid := range pids {
		ents, err := os.ReadDir(fmt.Sprintf("/proc/%d/task", pid))
		if err != nil {
			continue
		}
		for _, e := range ents {
			tid, err := strconv.Atoi(e.Name())
			if err != nil {
				continue
			}
			if err := unix.SchedSetaffinity(tid, &set); err != nil && err != unix.ESRCH {
				return fmt.Errorf("pid %d thread %d: sched_setaffinity %s: %w", pid, tid, cpulist.Format(cpus), err)
			}
		}
	}
	return nil
}

// createGroup makes c's cgroup in its parent's (or the run's root),
// enabling the run's controllers in the parent for it.
func (env runEnv) createGroup(c *liveCgroup) (*cgroup.Group, error) {
	dir, name := env.cgroupRoot, c.spec.Name
	if c.parent != nil {
		if c.parent.group == nil {
			return nil, fmt.Errorf("parent %s has no cgroup", c.parent.spec.Name)
		}
		dir, name = c.parent.group.Dir, filepath.Base(c.spec.Name)
		var ctl []string
		for k := range env.controllers {
			ctl = append(ctl, k)
		}
		slices.Sort(ctl)
		if err := c.parent.group.Enable(ctl...); err != nil {
			return nil, err
		}
	}
	return cgroup.Create(dir, name)
}
