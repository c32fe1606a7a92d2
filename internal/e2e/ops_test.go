package e2e

import (
	"path/filepath"
	"strings"
	"testing"
)

// TestVMScenarioOps: the step ops change the guest, as the results show:
// move_tasks counts src's workers in dst, freeze stops a cgroup's workers
// for the 600 ms it lasts (their longest gap covers it), set_limits
// writes cpu.idle (no note says it was skipped), run_payload and
// wait_payload run the guest's own /init and report its output.
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
	notes := strings.Join(res.InfoNotes, "\n")
	if strings.Contains(notes, "cpu.idle") {
		t.Errorf("cpu.idle was not written:\n%s", notes)
	}
	if !strings.Contains(notes, "payload self (/init): exited with status 0; output: ") || !strings.Contains(notes, "wake-chain") {
		t.Errorf("no note of the payload's status and output:\n%s", notes)
	}
}

// TestSchedQmapErrorMidChurn: scx_qmap -e N fails itself (scx_bpf_error)
// after N enqueues, here while cgroups come and go (cgroup-churn); the
// run must fail with the cause scheduler_died and the kernel's reason.
// (scx_qmap -S N, which drops every Nth enqueue, is no such test: the
// dropped tasks are recovered and the runs pass, with gaps under 1 s.)
func TestSchedQmapErrorMidChurn(t *testing.T) {
	k, dir := needSched(t)
	r := ktstrRun(t, k, jsonVerdict, "--scheduler", filepath.Join(dir, "scx_qmap"), "--sched-arg=-e", "--sched-arg=400",
		"--scenario", "cgroup-churn")
	v := parseVerdict(t, r.stdout)
	if r.status != 1 || v.Runs[0].Cause != "scheduler_died" || !strings.Contains(v.Runs[0].Reason, "scx_bpf_error") {
		t.Fatalf("scx_qmap -e 400 on cgroup-churn: status %d cause %q reason %q, want 1, scheduler_died, scx_bpf_error\n%s\nstderr:\n%s",
			r.status, v.Runs[0].Cause, v.Runs[0].Reason, r.stdout, r.stderr)
	}
}

// TestSchedRestartMidRun: scheduler-restart under scx_simple detaches it,
// attaches it again and restarts it mid-run; none of that is a loss, and
// the notes say each hand-over happened (enable_seq 2 and 3).
func TestSchedRestartMidRun(t *testing.T) {
	k, dir := needSched(t)
	r := ktstrRun(t, k, jsonVerdict, "--scheduler", filepath.Join(dir, "scx_simple"), "--scenario", "scheduler-restart")
	v := parseVerdict(t, r.stdout)
	if !passes(t, r.status, v) {
		t.Fatalf("scheduler-restart under scx_simple: status %d %s (%s: %s)\n%s\nstderr:\n%s", r.status, v.Runs[0].Status,
			v.Runs[0].Cause, v.Runs[0].Reason, r.stdout, r.stderr)
	}
	notes := strings.Join(v.Runs[0].Result.InfoNotes, "\n")
	for _, want := range []string{"scheduler scx_simple detached by the scenario", "enable_seq 2)", "enable_seq 3)"} {
		if !strings.Contains(notes, want) {
			t.Errorf("notes lack %q:\n%s", want, notes)
		}
	}
}

// TestSchedReplaceMidRun: replace_scheduler swaps scx_simple for
// scx_qmap (--replacement) mid-run; the run passes and the notes show
// both hand-overs, the replacement attached with a new enable_seq.
func TestSchedReplaceMidRun(t *testing.T) {
	k, dir := needSched(t)
	r := ktstrRun(t, k, jsonVerdict, "--scheduler", filepath.Join(dir, "scx_simple"), "--replacement", filepath.Join(dir, "scx_qmap"),
		"--scenario", filepath.Join(repoRoot(t), "internal/e2e/testdata/replace.json"))
	v := parseVerdict(t, r.stdout)
	if !passes(t, r.status, v) {
		t.Fatalf("replace: status %d %s (%s: %s)\n%s\nstderr:\n%s", r.status, v.Runs[0].Status, v.Runs[0].Cause, v.Runs[0].Reason, r.stdout, r.stderr)
	}
	notes := strings.Join(v.Runs[0].Result.InfoNotes, "\n")
	if !strings.Contains(notes, "scheduler scx_simple detached by the scenario") || !strings.Contains(notes, `scheduler scx_qmap attached`) ||
		!strings.Contains(notes, `sched_ext ops "qmap", enable_seq 2`) {
		t.Errorf("notes do not show scx_simple replaced by scx_qmap:\n%s", notes)
	}
}
