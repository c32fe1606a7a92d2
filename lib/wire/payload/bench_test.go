package payload

import (
	"fmt"
	"runtime"
	"testing"
)

// benchResult is a TEST payload of a busy scenario: eight cgroups, a few
// outcomes and passes, measurements and a scheduler.
func benchResult() *AssertResult {
	r := *sampleResult
	r.Stats.Cgroups = nil
	for i := range 8 {
		cg := sampleResult.Stats.Cgroups[0]
		cg.Name = fmt.Sprintf("cg%d", i)
		r.Stats.Cgroups = append(r.Stats.Cgroups, cg)
	}
	r.Measurements = Measurements{}
	for i := range 16 {
		r.Measurements[fmt.Sprintf("lat_p%02d_ns", i)] = float64(i) * 1.5
	}
	return &r
}

// BenchmarkUnmarshalAssertResult decodes one TEST payload; it reports the
// allocations per payload.
func BenchmarkUnmarshalAssertResult(b *testing.B) {
	p, err := MarshalAssertResult(benchResult())
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(p)))
	var m0, m1 runtime.MemStats
	runtime.ReadMemStats(&m0)
	for b.Loop() {
		if _, err := UnmarshalAssertResult(p); err != nil {
			b.Fatal(err)
		}
	}
	runtime.ReadMemStats(&m1)
	b.ReportMetric(float64(m1.Mallocs-m0.Mallocs)/float64(b.N), "allocs/payload")
}

// BenchmarkMarshalAssertResult encodes the same payload.
func BenchmarkMarshalAssertResult(b *testing.B) {
	r := benchResult()
	for b.Loop() {
		if _, err := MarshalAssertResult(r); err != nil {
			b.Fatal(err)
		}
	}
}
