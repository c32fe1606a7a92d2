package hist_test

import (
	"fmt"

	"github.com/ktstr-go/ktstr/internal/hist"
)

// Two workers' latencies, merged; percentiles exact below 128 ns and
// the top of their bucket (within 1/64) above.
func Example() {
	var a, b hist.Hist
	for _, ns := range []uint64{90, 100, 110, 120} {
		a.Record(ns)
	}
	for _, ns := range []uint64{1000, 5000, 250000} {
		b.Record(ns)
	}
	a.Merge(&b)
	s := a.Summarize()
	fmt.Println(s.Count, s.P50NS, s.P90NS, s.P99NS, s.MaxNS)
	// Output: 7 120 250000 250000 250000
}
