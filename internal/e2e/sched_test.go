package e2e

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ktstr-go/ktstr/internal/boot"
	"github.com/ktstr-go/ktstr/internal/cache"
)

// needSched skips unless the project's sched_ext kernel (make kernel) and
// the example schedulers (make schedulers) are built, and returns the
// kernel and the schedulers' directory.
func needSched(t testing.TB) (kernel, dir string) {
	t.Helper()
	needVM(t)
	c, err := cache.Dir()
	if err != nil {
		t.Skipf("no cache: %v", err)
	}
	kernel = filepath.Join(c, "kernel", "bzImage")
	if _, err := os.Stat(kernel); err != nil {
		t.Skipf("no sched_ext kernel at %s (make kernel builds it)", kernel)
	}
	dir = filepath.Join(c, "sched", "current")
	if _, err := os.Stat(filepath.Join(dir, "scx_simple")); err != nil {
		t.Skipf("no example schedulers in %s (make schedulers builds them)", dir)
	}
	return kernel, dir
}

func TestSchedSimplePassesSteady(t *testing.T) {
	k, dir := needSched(t)
	r := ktstrRun(t, k, jsonVerdict, "--scheduler", filepath.Join(dir, "scx_simple"), "--scenario", "steady")
	v := parseVerdict(t, r.stdout)
	if !passes(t, r.status, v) {
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
	// The kill is forwarded (early kill); the agent stops the scenario at
	// the death too, so the VM ends killed or, when the guest's done mark
	// reaches ktstr-boot first, by poweroff: never after the 5 s step.
	if v.Runs[0].Counts.Kills < 1 {
		t.Errorf("kills = %d: ktstr-dispatch did not forward the early kill\n%s", v.Runs[0].Counts.Kills, r.stdout)
	}
	if e := v.Runs[0].VMEnd; e == nil || e.Reason != "killed" && e.Reason != "poweroff" {
		t.Errorf("vm_end = %+v, want killed or poweroff", e)
	}
	if end := v.Runs[0].Scenario.EndMS; end != nil && *end >= 5500 {
		t.Errorf("scenario ended at %d ms: it ran the 5 s step instead of stopping at the kill", *end)
	}
}

// TestSchedQmapErrorCaught: scx_qmap -e N calls scx_bpf_error() after N
// enqueues; the verdict must say the scheduler died and why. The kernel
// disables it before its process exits: the agent stops the scenario at
// once, and the result (which now arrives before SCDX) keeps the stats
// of the time after apart.
func TestSchedQmapErrorCaught(t *testing.T) {
	k, dir := needSched(t)
	r := ktstrRun(t, k, jsonVerdict, "--scheduler", filepath.Join(dir, "scx_qmap"), "--sched-arg=-e", "--sched-arg=300",
		"--scenario", filepath.Join(repoRoot(t), "internal/e2e/testdata/detach.json"))
	v := parseVerdict(t, r.stdout)
	if r.status != 1 || v.Runs[0].Cause != "scheduler_died" || !strings.Contains(v.Runs[0].Reason, "scx_bpf_error") {
		t.Fatalf("scx_qmap -e 300: status %d cause %q reason %q, want 1, scheduler_died, scx_bpf_error\n%s\nstderr:\n%s",
			r.status, v.Runs[0].Cause, v.Runs[0].Reason, r.stdout, r.stderr)
	}
	res := v.Runs[0].Result
	if res == nil || res.Scheduler == nil || res.Scheduler.Detached == nil || res.StatsAfterDetach == nil {
		t.Fatalf("no result with the scheduler's loss and the stats after it:\n%s", r.stdout)
	}
	if d := res.Scheduler.Detached; d.AtMS > 4200 || !strings.Contains(d.Kernel, "disabled (scx_bpf_error)") {
		t.Errorf("loss %+v: want it seen during the scenario, with the kernel's scx_bpf_error line", d)
	}
	if end := v.Runs[0].Scenario.EndMS; end == nil || *end > 4000 {
		t.Errorf("scenario end %v ms: it must stop at the loss, not run its 4.2 s", end)
	}
}

// TestSchedDetach: a scheduler that unregisters mid-run while its process
// lives (schedwrap's child scx_simple is told to leave 1 s after it
// attached) fails the run with the cause scheduler_detached, which says
// when; the scenario stops there and the result names the scheduler.
func TestSchedDetach(t *testing.T) {
	k, dir := needSched(t)
	args := wrapped(t, filepath.Join(dir, "scx_simple"), []string{"-detach-after", "1s"})
	r := ktstrRun(t, k, jsonVerdict, append(args, "--scenario", filepath.Join(repoRoot(t), "internal/e2e/testdata/detach.json"))...)
	v := parseVerdict(t, r.stdout)
	run := v.Runs[0]
	if r.status != 1 || run.Cause != "scheduler_detached" || !strings.Contains(run.Reason, "ms into the scenario while its process lived") {
		t.Fatalf("detach: status %d cause %q reason %q, want 1 and scheduler_detached\n%s\nstderr:\n%s", r.status, run.Cause, run.Reason, r.stdout, r.stderr)
	}
	if hasFinding(v, "scheduler_died", "") {
		t.Errorf("a scheduler_died finding, but the wrapper lived:\n%s", r.stdout)
	}
	res := run.Result
	if res == nil || res.Scheduler == nil || res.Scheduler.Detached == nil {
		t.Fatalf("no scheduler loss in the result:\n%s", r.stdout)
	}
	si, d := res.Scheduler, res.Scheduler.Detached
	if si.Binary != "schedwrap" || len(si.SHA256) != 64 || si.Ops != "simple" || si.AttachMS <= 0 {
		t.Errorf("scheduler %+v: want schedwrap, its sha256, ops simple and the attach time", si)
	}
	if !d.Alive || d.AtMS < 0 || d.AtMS > 4200 || !strings.Contains(d.Kernel, "unregistered from user space") {
		t.Errorf("loss %+v: want alive, during the scenario, with the kernel's line", d)
	}
	if res.StatsAfterDetach == nil {
		t.Errorf("no stats after the detach:\n%s", r.stdout)
	}
	if end := run.Scenario.EndMS; end == nil || *end > 4000 {
		t.Errorf("scenario end %v ms: it must stop at the detach, not run its 4.2 s", end)
	}
}

// TestSchedNeverAttaches runs a binary that lives but never registers a
// sched_ext scheduler.
func TestSchedNeverAttaches(t *testing.T) {
	k, _ := needSched(t)
	r := ktstrRun(t, k, jsonVerdict, "--scheduler", "/bin/sleep", "--sched-arg", "60", "--attach-timeout", "3s", "--scenario", "steady")
	v := parseVerdict(t, r.stdout)
	if r.status != 1 || v.Runs[0].Cause != "scheduler_not_attached" || !strings.Contains(v.Runs[0].Reason, "not attached within 3s, still initialising") {
		t.Fatalf("sleep as scheduler: status %d cause %q reason %q, want 1, scheduler_not_attached, still initialising\n%s\nstderr:\n%s",
			r.status, v.Runs[0].Cause, v.Runs[0].Reason, r.stdout, r.stderr)
	}
}

// wrapped returns ktstr-boot arguments that run testdata/schedwrap with
// wrapArgs as the scheduler, and pack the real scheduler sched (with its
// shared libraries) as /ktstr/bin/NAME, which ends the wrapper's
// arguments, followed by schedArgs.
func wrapped(t *testing.T, sched string, wrapArgs []string, schedArgs ...string) []string {
	t.Helper()
	deps, err := boot.ELFDeps(sched)
	if err != nil {
		t.Fatal(err)
	}
	dst := "/ktstr/bin/" + filepath.Base(sched)
	args := []string{"--scheduler", filepath.Join(binDir, "schedwrap"), "--include", sched + ":" + dst}
	for _, d := range deps {
		args = append(args, "--include", d.Src+":"+d.Dst)
	}
	for _, a := range append(append(wrapArgs, dst), schedArgs...) {
		args = append(args, "--sched-arg="+a)
	}
	return args
}

// TestSchedKconfig: a scheduler with a __kconfig extern (scx_kconfig,
// scripts/sched) loads, because the guest has the kernel's configuration
// as /boot/config-$(uname -r) (packed from the cached build's config) and
// /proc/config.gz.
func TestSchedKconfig(t *testing.T) {
	k, dir := needSched(t)
	sched := filepath.Join(dir, "scx_kconfig")
	if _, err := os.Stat(sched); err != nil {
		t.Skipf("no %s (make schedulers builds it)", sched)
	}
	r := ktstrRun(t, k, jsonVerdict, append(wrapped(t, sched, []string{"-require-boot-config"}),
		"--scenario", filepath.Join(repoRoot(t), "internal/e2e/testdata/sched-short.json"))...)
	v := parseVerdict(t, r.stdout)
	if !passes(t, r.status, v) {
		t.Fatalf("scx_kconfig: status %d %s (%s)\n%s\nstderr:\n%s", r.status, v.Runs[0].Status, v.Runs[0].Reason, r.stdout, r.stderr)
	}
	for _, want := range []string{"stdout: schedwrap: /boot/config-", "stdout: kconfig: CONFIG_NR_CPUS="} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("scheduler log lacks %q:\n%s", want, r.stdout)
		}
	}
}

// TestSchedSlowAttach: a scheduler still initialising at the attach
// timeout is reported as such, with its last output, and the answer to
// the harness's SIGINT is not read as its death.
func TestSchedSlowAttach(t *testing.T) {
	k, dir := needSched(t)
	args := wrapped(t, filepath.Join(dir, "scx_simple"), []string{"-sleep", "10s"})
	r := ktstrRun(t, k, jsonVerdict, append(args, "--attach-timeout", "3s", "--scenario", filepath.Join(repoRoot(t), "internal/e2e/testdata/sched-short.json"))...)
	v := parseVerdict(t, r.stdout)
	run := v.Runs[0]
	if r.status != 1 || run.Cause != "scheduler_not_attached" ||
		!strings.Contains(run.Reason, "not attached within 3s, still initialising (its last output: \"schedwrap: sleeping 10s before starting") ||
		!strings.Contains(run.Reason, "raise --attach-timeout") {
		t.Fatalf("slow attach: status %d cause %q reason %q\n%s\nstderr:\n%s", r.status, run.Cause, run.Reason, r.stdout, r.stderr)
	}
	if hasFinding(v, "scheduler_died", "") {
		t.Errorf("a scheduler_died finding for a scheduler the harness stopped:\n%s", r.stdout)
	}
}

// TestSchedSimpleSteadyLLC: scx_simple passes ktstr's steady_llc on a
// machine of two LLCs with SMT, one cgroup per LLC.
func TestSchedSimpleSteadyLLC(t *testing.T) {
	k, dir := needSched(t)
	r := ktstrRun(t, k, jsonVerdict, "--scheduler", filepath.Join(dir, "scx_simple"), "--topology", "1,2,2,2", "--scenario", "steady-llc")
	v := parseVerdict(t, r.stdout)
	if !passes(t, r.status, v) {
		t.Fatalf("scx_simple steady-llc on 1,2,2,2: status %d %s (%s)\n%s\nstderr:\n%s", r.status, v.Runs[0].Status, v.Runs[0].Reason, r.stdout, r.stderr)
	}
	if m := v.Runs[0].Result.Machine; m == nil || m.Shape != "1,2,2,2" {
		t.Errorf("machine %+v, want 1,2,2,2", m)
	}
}

// TestSchedKernelHasTheLimitControllers: on the project's kernel the
// cgroup-limits scenario writes every setting (cpu.max, memory.high,
// pids.max: CFS_BANDWIDTH, MEMCG, CGROUP_PIDS in the fragment) rather
// than skipping one with a note, and passes.
func TestSchedKernelHasTheLimitControllers(t *testing.T) {
	k, _ := needSched(t)
	r := ktstrRun(t, k, jsonVerdict, "--scenario", "cgroup-limits")
	v := parseVerdict(t, r.stdout)
	if !passes(t, r.status, v) {
		t.Fatalf("cgroup-limits: status %d %s (%s)\nstderr:\n%s", r.status, v.Runs[0].Status, v.Runs[0].Reason, r.stderr)
	}
	if res := v.Runs[0].Result; res != nil {
		for _, n := range res.InfoNotes {
			if strings.Contains(n, "not set") {
				t.Errorf("a limit was skipped on the project's kernel: %s", n)
			}
		}
	}
}
