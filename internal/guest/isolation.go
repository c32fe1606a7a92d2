package guest

import (
	"bytes"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/ktstr-go/ktstr/internal/cpulist"
)

// After a cgroup's cpuset changes mid-run the end-of-run isolation check
// can only allow every CPU of every cpuset the cgroup had. So while the
// scenario holds, the agent also samples the workers of such a cgroup:
// a worker that is running or runnable (state R) sits on its CPU's
// runqueue, and the kernel moves a queued or running task as the cpuset
// write returns (a sleeping one moves when it wakes), so one in state R
// on a CPU outside the current cpuset, past a grace after the change, is
// an isolation failure.

// isolationGrace is how long after a cpuset change the samples wait.
const isolationGrace = 200 * time.Millisecond

// taskCPU reads a task's state and last CPU from /proc/PID/stat.
func taskCPU(pid int) (state byte, cpu int, ok bool) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0, 0, false
	}
	return parseStatCPU(b)
}

// parseStatCPU takes the state (field 3) and processor (field 39) of a
// /proc/PID/stat line.
func parseStatCPU(b []byte) (state byte, cpu int, ok bool) {
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, 0, false
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 37 || len(f[0]) != 1 {
		return 0, 0, false
	}
	c, err := strconv.Atoi(f[36])
	if err != nil {
		return 0, 0, false
	}
	return f[0][0], c, true
}

// sampleIsolation checks the running workers of every cgroup whose
// cpuset changed at least isolationGrace ago; the first violation per
// cgroup is kept in c.strayed.
func (s *scene) sampleIsolation(now time.Time) {
	for _, c := range s.cgs {
		if c.removed || c.changedAt.IsZero() || now.Sub(c.changedAt) < isolationGrace || c.strayed != "" ||
			c.expected == nil || !c.spec.Enforced() || c.group == nil || !s.env.controllers["cpuset"] {
			continue
		}
		for _, pid := range c.pids() {
			st, cpu, ok := taskCPU(pid)
			if ok && st == 'R' && !slices.Contains(c.expected, cpu) {
				c.strayed = fmt.Sprintf("cgroup %s worker pid %d was runnable on CPU %d, outside its cpuset %s (set %v before)",
					c.spec.Name, pid, cpu, cpulist.Format(c.expected), now.Sub(c.changedAt).Round(time.Millisecond))
				break
			}
		}
	}
}
