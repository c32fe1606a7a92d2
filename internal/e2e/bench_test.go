package e2e

import (
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
)

// BenchmarkMonitorOverhead runs the same scenario under QEMU with the
// host-side monitor on and off, alternating (on, off, on, off, ...), and
// reports the guest's worker iterations per run for each: what sampling
// every runqueue from the host every 100 ms costs the guest. Run with
// -benchtime=1x; each round is two VM runs.
func BenchmarkMonitorOverhead(b *testing.B) {
	k, _ := needSched(b)
	onPath := filepath.Join(repoRoot(b), "internal/e2e/testdata/monitor-overhead.json")
	src, err := os.ReadFile(onPath)
	if err != nil {
		b.Fatal(err)
	}
	var sc map[string]any
	if err := json.Unmarshal(src, &sc); err != nil {
		b.Fatal(err)
	}
	delete(sc, "monitor")
	off, _ := json.Marshal(sc)
	offPath := filepath.Join(b.TempDir(), "monitor-off.json")
	if err := os.WriteFile(offPath, off, 0o644); err != nil {
		b.Fatal(err)
	}
	var on, offIt []float64
	for range max(b.N, 3) {
		for _, c := range []struct {
			path string
			out  *[]float64
		}{{onPath, &on}, {offPath, &offIt}} {
			r := ktstrRun(b, k, jsonVerdict, "--vmm", "qemu", "--cpus", "2", "--scenario", c.path, "--timeout", "90s")
			var v struct {
				Runs []struct {
					Result *struct {
						Stats struct {
							TotalIterations float64 `json:"total_iterations"`
						} `json:"stats"`
					} `json:"result"`
				} `json:"runs"`
			}
			if err := json.Unmarshal([]byte(r.stdout), &v); err != nil || len(v.Runs) != 1 || v.Runs[0].Result == nil {
				b.Fatalf("verdict: %v\n%s\n%s", err, r.stdout, r.stderr)
			}
			*c.out = append(*c.out, v.Runs[0].Result.Stats.TotalIterations)
		}
	}
	mean := func(x []float64) float64 {
		s := 0.0
		for _, v := range x {
			s += v
		}
		return s / float64(len(x))
	}
	b.ReportMetric(mean(on), "iterations/monitor-on")
	b.ReportMetric(mean(offIt), "iterations/monitor-off")
	b.ReportMetric(100*(mean(offIt)-mean(on))/mean(offIt), "%overhead")
	b.Logf("monitor on: %v; off: %v", on, offIt)
}
