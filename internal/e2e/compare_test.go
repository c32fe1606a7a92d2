package e2e

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/ktstr-go/ktstr/internal/cache"
	"github.com/ktstr-go/ktstr/lib/wire/payload"
)

// checkLatency: a latency summary that came out, in order.
func checkLatency(t *testing.T, what string, l *payload.Latency) {
	t.Helper()
	if l == nil || l.Count == 0 {
		t.Fatalf("%s: no latency recorded", what)
	}
	if !(l.P50NS <= l.P90NS && l.P90NS <= l.P99NS && l.P99NS <= l.P999NS && l.P999NS <= l.MaxNS && l.P50NS > 0) {
		t.Errorf("%s: percentiles out of order or zero: %+v", what, l)
	}
	t.Logf("%s: n=%d p50=%d p90=%d p99=%d p99.9=%d max=%d ns cv=%.2f", what, l.Count, l.P50NS, l.P90NS, l.P99NS, l.P999NS, l.MaxNS, l.CV)
}

// TestVMWakeLatencyPercentiles runs the canned latency scenario once in
// a VM under the kernel's scheduler, and once under scx_simple when the
// project's kernel and schedulers are built: each run's result carries
// wake-up and timer latency percentiles and the work rates, per cgroup
// and overall.
func TestVMWakeLatencyPercentiles(t *testing.T) {
	k := needVM(t)
	runs := []struct {
		name string
		args []string
	}{{"eevdf", nil}}
	if sk, dir := schedulersIfBuilt(); sk != "" {
		k = sk
		runs = append(runs, struct {
			name string
			args []string
		}{"scx_simple", []string{"--scheduler", filepath.Join(dir, "scx_simple")}})
	} else {
		t.Log("no sched_ext kernel and schedulers built: EEVDF only")
	}
	for _, run := range runs {
		t.Run(run.name, func(t *testing.T) {
			r := ktstrRun(t, k, jsonVerdict, append([]string{"--scenario", "wake-latency"}, run.args...)...)
			v := parseVerdict(t, r.stdout)
			if !passes(t, r.status, v) {
				t.Fatalf("wake-latency: status %d %s (%s)\nstderr:\n%s", r.status, v.Runs[0].Status, v.Runs[0].Reason, r.stderr)
			}
			s := v.Runs[0].Result.Stats
			checkLatency(t, "all wake", s.WakeLatency)
			checkLatency(t, "all timer", s.TimerLatency)
			if s.IterationRate <= 0 || s.WorkRate <= 0 || s.WorkRate > s.IterationRate {
				t.Errorf("rates: iteration %v work %v", s.IterationRate, s.WorkRate)
			}
			for _, c := range s.Cgroups {
				switch c.Name {
				case "wake":
					checkLatency(t, "cgroup wake", c.WakeLatency)
				case "timer":
					checkLatency(t, "cgroup timer", c.TimerLatency)
				case "load":
					if c.WakeLatency != nil || c.TimerLatency != nil || c.IterationRate <= 0 {
						t.Errorf("cgroup load: %+v", c)
					}
				}
			}
		})
	}
}

// schedulersIfBuilt returns the project's kernel and schedulers'
// directory when both are built (as needSched, without skipping).
func schedulersIfBuilt() (kernel, dir string) {
	c, err := cache.Dir()
	if err != nil {
		return "", ""
	}
	kernel, dir = filepath.Join(c, "kernel", "bzImage"), filepath.Join(c, "sched", "current")
	for _, f := range []string{kernel, filepath.Join(dir, "scx_simple")} {
		if _, err := os.Stat(f); err != nil {
			return "", ""
		}
	}
	return kernel, dir
}

// TestCompareRecordedRuns: ktstr-compare on runs recorded in VMs on the
// project's development machine (testdata/compare: 2 x 5 runs of
// wake-latency under EEVDF, and 5 runs of a deliberately slower variant
// with four CPU-bound workers per CPU instead of one). A/A flags nothing
// (exit 0); the slower side is flagged (exit 1), its wake-up latency
// among the regressions; A against a different scenario is refused
// (exit 3).
func TestCompareRecordedRuns(t *testing.T) {
	buildTools(t)
	dir := filepath.Join(repoRoot(t), "internal/e2e/testdata/compare")
	compare := func(args ...string) (int, string, string) {
		cmd := exec.Command(filepath.Join(binDir, "ktstr-compare"), args...)
		var out, errb bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &errb
		return exitStatus(t, cmd.Run()), out.String(), errb.String()
	}
	a, a2, slow := filepath.Join(dir, "eevdf-a.json"), filepath.Join(dir, "eevdf-b.json"), filepath.Join(dir, "slow.json")
	if st, out, errs := compare(a, "--", a2); st != 0 || !strings.Contains(out, "no regression") {
		t.Errorf("A/A: status %d, want 0\n%s%s", st, out, errs)
	}
	st, out, errs := compare(a, "--", slow)
	if st != 1 || !strings.Contains(out, "regression(s) of gated metrics beyond threshold") || !regexp.MustCompile(`(?m)^all/wake_p99_ns .*: REGRESSION$`).MatchString(out) {
		t.Errorf("A vs slower B: status %d, want 1 with wake_p99_ns among the regressions\n%s%s", st, out, errs)
	}
	t.Logf("A vs slower B:\n%s", out)
	// The same runs under another scenario's name are refused.
	b, err := os.ReadFile(a2)
	if err != nil {
		t.Fatal(err)
	}
	other := filepath.Join(t.TempDir(), "steady.json")
	os.WriteFile(other, bytes.ReplaceAll(b, []byte(`"scenario": "wake-latency"`), []byte(`"scenario": "steady"`)), 0o644)
	if st, _, errs := compare(a, "--", other); st != 3 || !strings.Contains(errs, "refusing to compare different scenarios") {
		t.Errorf("A vs another scenario: status %d, want 3 and a refusal\n%s", st, errs)
	}
}
