package e2e

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/ktstr-go/ktstr/internal/introspect"
)

// runDir is the run directory ktstr-boot names on stderr (kept with
// KTSTR_KEEP=1).
func runDir(t *testing.T, stderr string) string {
	t.Helper()
	m := regexp.MustCompile(`ktstr-boot: run directory (\S+)`).FindStringSubmatch(stderr)
	if m == nil {
		t.Fatalf("ktstr-boot named no run directory:\n%s", stderr)
	}
	return m[1]
}

func readReport(t *testing.T, path string) *introspect.Report {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var r introspect.Report
	if err := json.Unmarshal(b, &r); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return &r
}

// TestVMIntrospection boots the project kernel under QEMU with scx_simple
// and runs, in one VM, the host's look into the guest: jiffies read twice
// (the second read checked to be larger), panic_print written and read
// back (Hot, then Cold), a per-CPU runqueue field and the agent's own
// task_struct read through BTF, and a snapshot whose report names the
// scheduler and shows every CPU.
func TestVMIntrospection(t *testing.T) {
	k, dir := needSched(t)
	for _, cpus := range []string{"2", "8"} {
		t.Run(cpus+" vCPUs", func(t *testing.T) {
			r := ktstrRun(t, k, append([]string{"KTSTR_KEEP=1"}, jsonVerdict...), "--vmm", "qemu", "--cpus", cpus,
				"--scheduler", filepath.Join(dir, "scx_simple"), "--scenario", filepath.Join(repoRoot(t), "internal/e2e/testdata/introspect.json"), "--timeout", "90s")
			v := parseVerdict(t, r.stdout)
			if r.status != 0 || v.Runs[0].Status != "PASS" {
				t.Fatalf("status %d %s (%s)\n%s\nstderr:\n%s", r.status, v.Runs[0].Status, v.Runs[0].Reason, r.stdout, r.stderr)
			}
			if v.Runs[0].Result == nil {
				t.Fatalf("no result:\n%s", r.stdout)
			}
			notes := strings.Join(v.Runs[0].Result.InfoNotes, "\n")
			for _, w := range []*regexp.Regexp{
				regexp.MustCompile(`read_kernel jiffies: \d+ \(hot`),
				regexp.MustCompile(`read_kernel panic_print: 1234567 \(hot`),
				regexp.MustCompile(`read_kernel panic_print: 0 \(cold`),
				regexp.MustCompile(`read_kernel runqueues.cpu on CPU 1: 1 `),
				regexp.MustCompile(`read_kernel task 1's comm: "init" \(696e6974`),
				regexp.MustCompile(`snapshot "mid-run": captured in `),
			} {
				if !w.MatchString(notes) {
					t.Errorf("notes lack %v:\n%s", w, notes)
				}
			}
			t.Logf("guest-side latencies:\n%s", notes)
			rep := readReport(t, filepath.Join(runDir(t, r.stderr), "snapshot-mid-run.json"))
			if rep.SchedExt == nil || rep.SchedExt.Ops != "simple" || rep.SchedExt.State != "SCX_OPS_ENABLED" {
				t.Errorf("sched_ext = %+v, want simple enabled", rep.SchedExt)
			}
			if len(rep.CPUs) != len(rep.VCPUs) || len(rep.CPUs) == 0 || rep.Backend != "qemu" || rep.Tag != "mid-run" {
				t.Fatalf("report: %d CPUs, %d vCPUs, backend %q, tag %q", len(rep.CPUs), len(rep.VCPUs), rep.Backend, rep.Tag)
			}
			want := map[string]int{"2": 2, "8": 8}[cpus]
			if len(rep.CPUs) != want {
				t.Errorf("%d CPUs in the report, want %d", len(rep.CPUs), want)
			}
			for _, c := range rep.CPUs {
				if c.CurrComm == "" || c.SCX == nil || len(c.Errors) > 0 || c.ClockNS == 0 {
					t.Errorf("CPU %d: %+v", c.CPU, c)
				}
			}
			if len(rep.Errors) > 0 {
				t.Errorf("report errors: %v", rep.Errors)
			}
			t.Logf("%s vCPUs: vCPUs frozen for %.1f ms in the snapshot", cpus, float64(rep.FrozenNS)/1e6)
			// The host's figures (from the request's arrival at ktstr-boot
			// to its reply; the guest's own clock stops while frozen).
			if m := regexp.MustCompile(`introspection: .*`).FindString(r.stderr); m != "" {
				t.Logf("%s vCPUs: %s", cpus, m)
			} else {
				t.Errorf("ktstr-boot logged no introspection figures:\n%s", r.stderr)
			}
		})
	}
}

// TestVMQmapStallDump: scx_qmap -t 20 drops every 20th user-thread
// enqueue, so a task stays runnable without running. The scenario turns
// the host-side monitor on; it sees the task wait on its CPU and
// ktstr-boot dumps the state before sched_ext's watchdog (5 s for qmap)
// kills the scheduler. The verdict says the scheduler died, and its
// failure dump names the stuck CPU, which the dump file confirms.
func TestVMQmapStallDump(t *testing.T) {
	k, dir := needSched(t)
	r := ktstrRun(t, k, jsonVerdict, "--vmm", "qemu", "--scheduler", filepath.Join(dir, "scx_qmap"),
		"--sched-arg=-t", "--sched-arg=20", "--scenario", filepath.Join(repoRoot(t), "internal/e2e/testdata/qmap-stall.json"), "--timeout", "90s")
	v := parseVerdict(t, r.stdout)
	if r.status != 1 || v.Runs[0].Cause != "scheduler_died" || !strings.Contains(v.Runs[0].Reason, "runnable task stall") {
		t.Fatalf("status %d cause %q (%s), want 1 scheduler_died by a runnable task stall\n%s\nstderr:\n%s", r.status, v.Runs[0].Cause, v.Runs[0].Reason, r.stdout, r.stderr)
	}
	f := v.Runs[0]
	d := f.FailureDump
	if d == nil || d.StuckCPU < 0 || !strings.HasPrefix(d.Reason, "stall: CPU ") || d.Path != filepath.Join(runDir(t, r.stderr), "failure-dump.json") {
		t.Fatalf("failure dump %+v, want a stall naming a CPU, in the run directory\n%s", d, r.stdout)
	}
	stuck := fmt.Sprintf("stuck CPU %d: ", d.StuckCPU)
	if !strings.Contains(strings.Join(d.Summary, "\n"), stuck) {
		t.Errorf("summary lacks %q:\n%s", stuck, strings.Join(d.Summary, "\n"))
	}
	rep := readReport(t, d.Path)
	if cpu, o := rep.Stalled(); cpu != d.StuckCPU || o == nil {
		t.Errorf("the dump file's stalled CPU is %d (%+v), the verdict's %d", cpu, o, d.StuckCPU)
	}
	if rep.SchedExt == nil || rep.SchedExt.Ops != "qmap" {
		t.Errorf("sched_ext in the dump: %+v", rep.SchedExt)
	}
	if f.Monitor == nil || f.Monitor.Samples == 0 {
		t.Errorf("no monitor samples in the verdict: %+v", f.Monitor)
	}
	t.Logf("failure dump:\n%s", strings.Join(d.Summary, "\n"))
}
