package introspect

import (
	"fmt"
	"strings"
)

// Summary is the report in a few lines for a verdict: what each CPU was
// running, the sched_ext state, and the CPUs where a runnable task waited
// longest (see Stalled).
func (r *Report) Summary() []string {
	var out []string
	if s := r.SchedExt; s != nil {
		line := "sched_ext: " + or(s.State, "state unknown")
		if s.Ops != "" {
			line += ", ops " + s.Ops
		}
		if s.ExitKind != "" && s.ExitKind != "SCX_EXIT_NONE" {
			line += ", exit " + s.ExitKind
		}
		if s.ExitMsg != "" {
			line += fmt.Sprintf(" (%s)", s.ExitMsg)
		} else if s.ExitReason != "" {
			line += fmt.Sprintf(" (%s)", s.ExitReason)
		}
		out = append(out, line)
	}
	for _, c := range r.CPUs {
		line := fmt.Sprintf("CPU %d: running %s[%d], nr_running %d", c.CPU, c.CurrComm, c.CurrPID, c.NrRunning)
		if c.SCX != nil {
			line += fmt.Sprintf(", scx nr_running %d, local DSQ %d", c.SCX.NrRunning, c.SCX.LocalDSQDepth)
			if o := c.SCX.Oldest; o != nil {
				line += fmt.Sprintf(", %s[%d] runnable for %d jiffies", o.Comm, o.PID, o.WaitJiffies)
			}
		}
		if len(c.Errors) > 0 {
			line += " (" + strings.Join(c.Errors, "; ") + ")"
		}
		out = append(out, line)
	}
	if cpu, o := r.Stalled(); o != nil {
		out = append(out, fmt.Sprintf("stuck CPU %d: %s[%d] runnable for %d jiffies without running", cpu, o.Comm, o.PID, o.WaitJiffies))
	}
	for _, e := range r.Errors {
		out = append(out, "error: "+e)
	}
	return out
}

// Stalled returns the CPU whose runnable list holds the task that has
// waited longest, when that wait is at least StallJiffies; nil when none
// has.
func (r *Report) Stalled() (int, *RunnableTask) {
	cpu, worst := -1, (*RunnableTask)(nil)
	for _, c := range r.CPUs {
		if c.SCX == nil || c.SCX.Oldest == nil || c.SCX.Oldest.WaitJiffies < StallJiffies {
			continue
		}
		if worst == nil || c.SCX.Oldest.WaitJiffies > worst.WaitJiffies {
			cpu, worst = c.CPU, c.SCX.Oldest
		}
	}
	return cpu, worst
}

// StallJiffies is how long a runnable task must have waited for Stalled
// to name its CPU: 1 s at ktstr's kernel's HZ=250 (a fifth of scx_qmap's
// 5 s sched_ext watchdog timeout), 0.25 s at HZ=1000. A busy runqueue's
// tasks wait a slice or a few (20 ms each by default), far less.
const StallJiffies = 250

func or(s, def string) string {
	if s == "" {
		return def
	}
	return s
}
