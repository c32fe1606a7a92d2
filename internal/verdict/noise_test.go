package verdict_test

import (
	"bytes"
	"strings"
	"testing"

	"github.com/ktstr-go/ktstr/internal/verdict"
	"github.com/ktstr-go/ktstr/internal/verdict/verdicttest"
	"github.com/ktstr-go/ktstr/lib/wire/payload"
)

// A run on a host that starved its vCPUs: timing failures (fairness,
// gap, latency) become inconclusive with the cause host_contention,
// never pass; other failures stay failures; below the bound, with the
// bound off, or without a readable measurement nothing changes.
func TestHostContention(t *testing.T) {
	const (
		starved = `{"schema": 1, "backend": "qemu", "window_ns": 6000000000, "threads": [{"name": "CPU 0/TCG", "run_ns": 3000000000, "delay_ns": 2000000000}, {"name": "CPU 1/TCG", "run_ns": 4000000000, "delay_ns": 1000000000}], "psi_cpu_some_us": 5400000}`
		quiet   = `{"schema": 1, "backend": "qemu", "window_ns": 6000000000, "threads": [{"name": "CPU 0/TCG", "run_ns": 5000000000, "delay_ns": 100000000}]}`
	)
	unfair := verdicttest.Fail(payload.KindUnfair, "cgroup steady: on-CPU spread 36.6% exceeds 35%")
	stuck := verdicttest.Fail(payload.KindStuck, "cgroup steady: a worker was off-CPU for 2400.0 ms, more than 2000 ms")
	starvedW := verdicttest.Fail(payload.KindStarved, "cgroup steady worker 3 made 0 iterations")
	tests := []struct {
		name     string
		outcomes []payload.Outcome
		noise    string
		bound    float64
		status   verdict.Status
		cause    string
		demoted  int
	}{
		{"unfair, starved host", []payload.Outcome{verdicttest.Pass(), unfair}, starved, 10, verdict.StatusInconclusive, verdict.CauseHostContention, 1},
		{"unfair and stuck, starved host", []payload.Outcome{unfair, stuck}, starved, 10, verdict.StatusInconclusive, verdict.CauseHostContention, 2},
		{"a starved worker stays a failure", []payload.Outcome{unfair, starvedW}, starved, 10, verdict.StatusFail, verdict.CauseAssertion, 1},
		{"quiet host", []payload.Outcome{unfair}, quiet, 10, verdict.StatusFail, verdict.CauseAssertion, 0},
		{"bound above the steal", []payload.Outcome{unfair}, starved, 40, verdict.StatusFail, verdict.CauseAssertion, 0},
		{"bound off", []payload.Outcome{unfair}, starved, 0, verdict.StatusFail, verdict.CauseAssertion, 0},
		{"unreadable measurement", []payload.Outcome{unfair}, `{"schema": 1, "threads": [{"run_ns": -1}]}`, 10, verdict.StatusFail, verdict.CauseAssertion, 0},
		{"a pass stays a pass", []payload.Outcome{verdicttest.Pass()}, starved, 10, verdict.StatusPass, "", 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg := verdict.DefaultConfig()
			cfg.HostContentionPct = tc.bound
			f := verdict.Fold("run", cfg, bytes.NewReader(verdicttest.Base().Outcomes(tc.outcomes...).Finish().Bytes(false)))
			f.AddNoise(strings.NewReader(tc.noise))
			v := f.Verdict()
			if v.Status != tc.status || v.Cause != tc.cause {
				t.Fatalf("status %s cause %q (%s), want %s %q", v.Status, v.Cause, v.Reason, tc.status, tc.cause)
			}
			h := v.HostNoise
			if h == nil {
				t.Fatal("no host_noise in the verdict")
			}
			if h.Demoted != tc.demoted {
				t.Errorf("demoted %d, want %d", h.Demoted, tc.demoted)
			}
			if tc.demoted > 0 {
				if h.StealPct != 30 || h.WorstStealPct != 40 || h.PSISomePct == nil || *h.PSISomePct != 90 || !h.Contended {
					t.Errorf("host noise %+v, want steal 30%%, worst 40%%, pressure 90%%, contended", h)
				}
				if !strings.Contains(v.Reason, "host contention") && tc.status == verdict.StatusInconclusive {
					t.Errorf("reason %q does not name host contention", v.Reason)
				}
			}
			var text strings.Builder
			verdict.WriteText(&text, verdict.Aggregate("run", []verdict.Verdict{v}), verdict.TextOptions{})
			if !strings.Contains(text.String(), "host: ") {
				t.Errorf("the text report has no host line:\n%s", text.String())
			}
		})
	}
}

// A run without a measurement (an older recording, --vmm host) has no
// host_noise and is judged as before.
func TestNoNoise(t *testing.T) {
	f := verdict.Fold("run", verdict.DefaultConfig(), bytes.NewReader(verdicttest.Base().Outcomes(verdicttest.Fail(payload.KindUnfair, "x")).Finish().Bytes(false)))
	f.AddNoiseFile(t.TempDir() + "/noise.json")
	if v := f.Verdict(); v.HostNoise != nil || v.Status != verdict.StatusFail {
		t.Fatalf("verdict %s host %+v, want FAIL and no host noise", v.Status, v.HostNoise)
	}
}
