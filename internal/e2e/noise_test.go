package e2e

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/ktstr-go/ktstr/internal/noise"
	"github.com/ktstr-go/ktstr/internal/verdict"
)

// TestHostNoise: a run while the host is saturated (two busy processes
// per host CPU besides the VM). ktstr-boot measures its vCPU threads'
// run delay (noise.json: QEMU's "CPU 0/TCG" and "CPU 1/TCG"); the
// scenario's fairness check fails (its bound is 0%), and the verdict
// names host contention instead: INCONCLUSIVE, exit 3, never PASS. The
// same recording judged with the rule off fails.
func TestHostNoise(t *testing.T) {
	k := needVM(t)
	for range 2 * runtime.NumCPU() {
		hog := exec.Command("sh", "-c", "while :; do :; done")
		if err := hog.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { hog.Process.Kill(); hog.Wait() })
	}
	save := filepath.Join(t.TempDir(), "run")
	r := ktstrRun(t, k, []string{"KTSTR_SAVE=" + save, "KTSTR_VERDICT_ARGS=--format json"},
		"--scenario", filepath.Join(repoRoot(t), "internal/e2e/testdata/noise-unfair.json"))
	var rep verdict.Report
	if err := json.Unmarshal([]byte(r.stdout), &rep); err != nil || len(rep.Runs) != 1 {
		t.Fatalf("verdict: %v\n%s\n%s", err, r.stdout, r.stderr)
	}
	v := rep.Runs[0]
	f, err := os.Open(filepath.Join(save, "noise.json"))
	if err != nil {
		t.Fatal(err)
	}
	m, err := noise.Read(f)
	f.Close()
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, th := range m.Threads {
		names = append(names, th.Name)
		if th.RunNS <= 0 {
			t.Errorf("thread %s never ran: %+v", th.Name, th)
		}
	}
	if strings.Join(names, ",") != "CPU 0/TCG,CPU 1/TCG" || m.Backend != "qemu" {
		t.Fatalf("noise.json: backend %q threads %v, want qemu with CPU 0/TCG and CPU 1/TCG", m.Backend, names)
	}
	steal, _ := m.Steal()
	if v.HostNoise == nil || v.HostNoise.StealPct < 10 || !v.HostNoise.Contended {
		t.Fatalf("host noise %+v (steal %.1f%%): want contended above 10%% with %d busy processes on %d CPUs", v.HostNoise, steal, 2*runtime.NumCPU(), runtime.NumCPU())
	}
	if r.status != 3 || v.Status != verdict.StatusInconclusive || v.Cause != verdict.CauseHostContention || !strings.Contains(v.Reason, "on-CPU spread") {
		t.Fatalf("status %d, verdict %s %s %q: want 3, INCONCLUSIVE, host_contention over the fairness failure", r.status, v.Status, v.Cause, v.Reason)
	}
	// The recording, judged with the rule off: the fairness failure.
	cmd := exec.Command(filepath.Join(binDir, "ktstr-verdict"), "--require-end", "--host-contention", "0",
		"--console", filepath.Join(save, "console.log"), "--console", filepath.Join(save, "com2.log"),
		"--noise", filepath.Join(save, "noise.json"), filepath.Join(save, "records"))
	out, err := cmd.Output()
	if exitStatus(t, err) != 1 || !strings.HasPrefix(string(out), "FAIL records: assertion failed: cgroup spin: on-CPU spread") {
		t.Errorf("with --host-contention 0: %v\n%s", err, out)
	}
}
