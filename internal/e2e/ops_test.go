package e2e

import (
	"path/filepath"
	"strings"
	"testing"
)

// TestVMScenarioOps: the step ops change the guest, as the results show:
// move_tasks counts src's workers in dst, freeze stops a cgroup's workers
// for the 600 ms it lasts (their longest gap covers it), set_limits
// writes cpu.idle (no note says it was skipped).
func TestVMScenarioOps(t *testing.T) {
	k := needVM(t)
	r := ktstrRun(t, k, jsonVerdict, "--scenario", filepath.Join(repoRoot(t), "internal/e2e/testdata/ops.json"))
	v := parseVerdict(t, r.stdout)
	if !passes(t, r.status, v) {
		t.Fatalf("ops: status %d %s (%s: %s)\nstderr:\n%s", r.status, v.Runs[0].Status, v.Runs[0].Cause, v.Runs[0].Reason, r.stderr)
	}
	res := v.Runs[0].Result
	workers, gap := map[string]int{}, map[string]float64{}
	for _, c := range res.Stats.Cgroups {
		workers[c.Name], gap[c.Name] = c.Workers, c.MaxGapMS
	}
	if workers["dst"] != 2 || workers["src"] != 0 {
		t.Errorf("workers src %d dst %d, want 0 and 2: move_tasks moves the workers' counting with them", workers["src"], workers["dst"])
	}
	if gap["frozen"] < 500 {
		t.Errorf("frozen cgroup's longest gap %.1f ms, want at least the 600 ms freeze (less 100 ms)", gap["frozen"])
	}
	if notes := strings.Join(res.InfoNotes, "\n"); strings.Contains(notes, "cpu.idle") {
		t.Errorf("cpu.idle was not written:\n%s", notes)
	}
}

// TestSchedQmapStallCaught: scx_qmap -S N loses every Nth task it is
// asked to enqueue (it never dispatches it); under a change-heavy
// scenario the lost workers make the run fail.
func TestSchedQmapStallCaught(t *testing.T) {
	k, dir := needSched(t)
	r := ktstrRun(t, k, jsonVerdict, "--scheduler", filepath.Join(dir, "scx_qmap"), "--sched-arg=-S", "--sched-arg=200",
		"--scenario", "cpuset-swap")
	v := parseVerdict(t, r.stdout)
	t.Logf("scx_qmap -S 200 on cpuset-swap: status %d %s cause %q reason %q", r.status, v.Runs[0].Status, v.Runs[0].Cause, v.Runs[0].Reason)
	if r.status != 1 || v.Runs[0].Status != "FAIL" {
		t.Fatalf("scx_qmap -S 200: status %d %s, want 1 FAIL\n%s\nstderr:\n%s", r.status, v.Runs[0].Status, r.stdout, r.stderr)
	}
}
