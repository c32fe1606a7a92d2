package e2e

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ktstr-go/ktstr/internal/boot"
)

// needSched skips unless the project's sched_ext kernel (make kernel) and
// the example schedulers (make schedulers) are built, and returns the
// kernel and the schedulers' directory.
func needSched(t *testing.T) (kernel, dir string) {
	t.Helper()
	needVM(t)
	kernel = filepath.Join(boot.CacheDir(), "kernel", "bzImage")
	if _, err := os.Stat(kernel); err != nil {
		t.Skipf("no sched_ext kernel at %s (make kernel builds it)", kernel)
	}
	dir = filepath.Join(boot.CacheDir(), "sched", "current")
	if _, err := os.Stat(filepath.Join(dir, "scx_simple")); err != nil {
		t.Skipf("no example schedulers in %s (make schedulers builds them)", dir)
	}
	return kernel, dir
}

func TestSchedSimplePassesSteady(t *testing.T) {
	k, dir := needSched(t)
	r := ktstrRun(t, k, jsonVerdict, "--scheduler", filepath.Join(dir, "scx_simple"), "--scenario", "steady")
	v := parseVerdict(t, r.stdout)
	if r.status != 0 || v.Runs[0].Status != "PASS" {
		t.Fatalf("scx_simple steady: status %d %s (%s)\n%s\nstderr:\n%s", r.status, v.Runs[0].Status, v.Runs[0].Reason, r.stdout, r.stderr)
	}
	if !strings.Contains(r.stdout, `BPF scheduler \"simple\" enabled`) {
		t.Errorf("the kernel log in the verdict does not show scx_simple enabled:\n%s", r.stdout)
	}
}

func TestSchedKilledMidRun(t *testing.T) {
	k, dir := needSched(t)
	r := ktstrRun(t, k, jsonVerdict, "--scheduler", filepath.Join(dir, "scx_simple"),
		"--scenario", filepath.Join(repoRoot(t), "internal/e2e/testdata/kill-scheduler.json"))
	v := parseVerdict(t, r.stdout)
	if r.status != 1 || v.Runs[0].Cause != "scheduler_died" {
		t.Fatalf("killed scx_simple: status %d cause %q, want 1 and scheduler_died\n%s\nstderr:\n%s", r.status, v.Runs[0].Cause, r.stdout, r.stderr)
	}
	if v.Runs[0].VMEnd == nil || v.Runs[0].VMEnd.Reason != "killed" {
		t.Errorf("vm_end = %+v, want killed: the VM must stop early, not run the 5 s step", v.Runs[0].VMEnd)
	}
}

// TestSchedQmapErrorCaught: scx_qmap -e N calls scx_bpf_error() after N
// enqueues; the verdict must say the scheduler died and why.
func TestSchedQmapErrorCaught(t *testing.T) {
	k, dir := needSched(t)
	r := ktstrRun(t, k, jsonVerdict, "--scheduler", filepath.Join(dir, "scx_qmap"), "--sched-arg=-e", "--sched-arg=300", "--scenario", "steady")
	v := parseVerdict(t, r.stdout)
	if r.status != 1 || v.Runs[0].Cause != "scheduler_died" || !strings.Contains(v.Runs[0].Reason, "scx_bpf_error") {
		t.Fatalf("scx_qmap -e 300: status %d cause %q reason %q, want 1, scheduler_died, scx_bpf_error\n%s\nstderr:\n%s",
			r.status, v.Runs[0].Cause, v.Runs[0].Reason, r.stdout, r.stderr)
	}
}

// TestSchedNeverAttaches runs a binary that lives but never registers a
// sched_ext scheduler.
func TestSchedNeverAttaches(t *testing.T) {
	k, _ := needSched(t)
	r := ktstrRun(t, k, jsonVerdict, "--scheduler", "/bin/sleep", "--sched-arg", "60", "--attach-timeout", "3s", "--scenario", "steady")
	v := parseVerdict(t, r.stdout)
	if r.status != 1 || !strings.Contains(v.Runs[0].Reason, "never attached") {
		t.Fatalf("sleep as scheduler: status %d reason %q, want 1 and never attached\n%s\nstderr:\n%s", r.status, v.Runs[0].Reason, r.stdout, r.stderr)
	}
}

// TestSchedSimpleSteadyLLC: scx_simple passes ktstr's steady_llc on a
// machine of two LLCs with SMT, one cgroup per LLC.
func TestSchedSimpleSteadyLLC(t *testing.T) {
	k, dir := needSched(t)
	r := ktstrRun(t, k, jsonVerdict, "--scheduler", filepath.Join(dir, "scx_simple"), "--topology", "1,2,2,2", "--scenario", "steady-llc")
	v := parseVerdict(t, r.stdout)
	if r.status != 0 || v.Runs[0].Status != "PASS" {
		t.Fatalf("scx_simple steady-llc on 1,2,2,2: status %d %s (%s)\n%s\nstderr:\n%s", r.status, v.Runs[0].Status, v.Runs[0].Reason, r.stdout, r.stderr)
	}
	if m := v.Runs[0].Result.Machine; m == nil || m.Shape != "1,2,2,2" {
		t.Errorf("machine %+v, want 1,2,2,2", m)
	}
}
