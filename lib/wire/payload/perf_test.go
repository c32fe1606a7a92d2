package payload

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// TestPerfRoundTrip: the performance figures travel inline in the cgroup
// and scenario stats, msgpack and JSON, and are absent when not measured.
func TestPerfRoundTrip(t *testing.T) {
	lat := &Latency{Count: 10, MeanNS: 1500.5, P50NS: 1000, P90NS: 2000, P99NS: 3000, P999NS: 3100, MaxNS: 3100, CV: 0.25}
	r := &AssertResult{Stats: ScenarioStats{
		Cgroups:       []CgroupStats{{Name: "cg", Workers: 4, IterationRate: 1234.5, WorkRate: 300, ThroughputCV: 0.1, WakeLatency: lat}},
		IterationRate: 1234.5, WakeLatency: lat, TimerLatency: lat,
	}}
	b, err := MarshalAssertResult(r)
	if err != nil {
		t.Fatal(err)
	}
	got, err := UnmarshalAssertResult(b)
	if err != nil {
		t.Fatal(err)
	}
	if d := cmp.Diff(r, got); d != "" {
		t.Fatalf("round trip (-want +got):\n%s", d)
	}
	j, _ := json.Marshal(r.Stats.Cgroups[0])
	for _, k := range []string{`"iteration_rate":1234.5`, `"work_rate":300`, `"throughput_cv":0.1`, `"wake_latency":{"count":10`, `"p999_ns":3100`} {
		if !strings.Contains(string(j), k) {
			t.Errorf("JSON %s lacks %s", j, k)
		}
	}
	j, _ = json.Marshal(CgroupStats{Name: "x"})
	if strings.Contains(string(j), "latency") || strings.Contains(string(j), "rate") {
		t.Errorf("unmeasured figures present: %s", j)
	}
}
