package hist

import (
	"encoding/json"
	"errors"
	"math"
	"math/rand/v2"
	"slices"
	"testing"
)

func TestIndexBounds(t *testing.T) {
	cases := []struct {
		v      uint64
		i      int
		lo, hi uint64
	}{
		{0, 0, 0, 0}, {127, 127, 127, 127},
		{128, 128, 128, 129}, {129, 128, 128, 129}, {130, 129, 130, 131},
		{255, 191, 254, 255}, {256, 192, 256, 259},
		{1000, 128 + 2*64 + (1000 >> 3) - 64, 1000, 1007},
		{math.MaxUint64, Buckets - 1, math.MaxUint64 - (1 << 57) + 1, math.MaxUint64},
	}
	for _, c := range cases {
		if got := Index(c.v); got != c.i {
			t.Errorf("Index(%d) = %d, want %d", c.v, got, c.i)
		}
		if lo, hi := Bounds(c.i); lo != c.lo || hi != c.hi {
			t.Errorf("Bounds(%d) = %d..%d, want %d..%d", c.i, lo, hi, c.lo, c.hi)
		}
	}
	// Every bucket follows the previous one without a hole, and its width
	// is at most 1/64 of its lowest value above the linear range.
	prevHi := uint64(0)
	for i := 1; i < Buckets; i++ {
		lo, hi := Bounds(i)
		if lo != prevHi+1 {
			t.Fatalf("bucket %d starts at %d, previous ended at %d", i, lo, prevHi)
		}
		if i >= linear && (hi-lo+1)*64 > lo {
			t.Fatalf("bucket %d (%d..%d) wider than 1/64", i, lo, hi)
		}
		if Index(lo) != i || Index(hi) != i {
			t.Fatalf("bucket %d: Index(%d)=%d Index(%d)=%d", i, lo, Index(lo), hi, Index(hi))
		}
		prevHi = hi
	}
	if prevHi != math.MaxUint64 {
		t.Fatalf("last bucket ends at %d", prevHi)
	}
}

func TestExactBelow128(t *testing.T) {
	var h Hist
	for v := uint64(1); v <= 100; v++ {
		h.Record(v)
	}
	want := map[float64]uint64{0: 1, 0.01: 1, 0.5: 50, 0.9: 90, 0.99: 99, 0.999: 100, 1: 100, 0.505: 51}
	for q, w := range want {
		if got := h.Quantile(q); got != w {
			t.Errorf("Quantile(%v) = %d, want %d", q, got, w)
		}
	}
	if h.Mean() != 50.5 {
		t.Errorf("Mean = %v, want 50.5", h.Mean())
	}
	// Population standard deviation of 1..100: sqrt((100^2-1)/12).
	if sd := h.StdDev(); math.Abs(sd-math.Sqrt(9999.0/12)) > 1e-9 {
		t.Errorf("StdDev = %v", sd)
	}
	s := h.Summarize()
	if s != (Summary{Count: 100, MeanNS: 50.5, P50NS: 50, P90NS: 90, P99NS: 99, P999NS: 100, MaxNS: 100, CV: h.StdDev() / 50.5}) {
		t.Errorf("Summarize = %+v", s)
	}
}

func TestQuantileBucketHigh(t *testing.T) {
	var h Hist
	// 1000 lands in 1000..1007: a percentile there reads 1007, clipped to
	// the maximum when that is lower.
	h.Record(1000)
	if got := h.Quantile(0.5); got != 1000 {
		t.Errorf("single value: p50 = %d, want 1000 (clipped to max)", got)
	}
	h.Record(5000) // 4992..5055
	h.Record(5000)
	if got := h.Quantile(0.3); got != 1007 {
		t.Errorf("p30 = %d, want 1007", got)
	}
	if got := h.Quantile(0.5); got != 5000 {
		t.Errorf("p50 = %d, want 5000", got)
	}
	if h.Min() != 1000 || h.Quantile(0) != 1000 {
		t.Errorf("min = %d", h.Min())
	}
}

// TestAgainstSorted: on random values, every percentile is never below
// the exact one and less than 1/64 above it.
func TestAgainstSorted(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	var h Hist
	var vs []uint64
	for i := 0; i < 20000; i++ {
		v := uint64(r.ExpFloat64() * 50000)
		vs = append(vs, v)
		h.Record(v)
	}
	slices.Sort(vs)
	for _, q := range []float64{0.1, 0.5, 0.9, 0.99, 0.999} {
		rank := int(math.Ceil(q * float64(len(vs))))
		exact := vs[rank-1]
		got := h.Quantile(q)
		if got < exact || float64(got-exact) > float64(exact)/64+1 {
			t.Errorf("q%v = %d, exact %d", q, got, exact)
		}
	}
	if h.Max() != vs[len(vs)-1] {
		t.Errorf("max %d, want %d", h.Max(), vs[len(vs)-1])
	}
}

func TestMerge(t *testing.T) {
	var a, b, all Hist
	for v := uint64(0); v < 3000; v += 7 {
		a.Record(v)
		all.Record(v)
	}
	for v := uint64(1); v < 90000; v += 13 {
		b.Record(v)
		all.Record(v)
	}
	var m Hist
	m.Merge(&a)
	m.Merge(&b)
	m.Merge(nil)
	m.Merge(&Hist{})
	if m != all {
		t.Fatalf("merge differs from recording all")
	}
	var e Hist
	e.Merge(&b)
	if e.Min() != 1 {
		t.Errorf("merge into empty: min %d", e.Min())
	}
}

func TestSparseRoundTrip(t *testing.T) {
	var h Hist
	for _, v := range []uint64{3, 3, 700, 1 << 40} {
		h.Record(v)
	}
	b, err := json.Marshal(h.Sparse())
	if err != nil {
		t.Fatal(err)
	}
	var s Sparse
	if err := json.Unmarshal(b, &s); err != nil {
		t.Fatal(err)
	}
	g, err := FromSparse(&s)
	if err != nil {
		t.Fatal(err)
	}
	if *g != h {
		t.Fatalf("round trip differs")
	}
	if e, err := FromSparse(&Sparse{Buckets: [][2]uint64{}}); err != nil || e.Count() != 0 {
		t.Fatalf("empty: %v", err)
	}
}

func TestFromSparseRefuses(t *testing.T) {
	good := func() *Sparse {
		return &Sparse{Count: 3, Min: 5, Max: 200, Sum: 210, SumSq: 40050, Buckets: [][2]uint64{{5, 2}, {Uint(Index(200)), 1}}}
	}
	if _, err := FromSparse(good()); err != nil {
		t.Fatalf("good: %v", err)
	}
	bad := map[string]func(*Sparse){
		"count":        func(s *Sparse) { s.Count = 4 },
		"order":        func(s *Sparse) { s.Buckets[0], s.Buckets[1] = s.Buckets[1], s.Buckets[0] },
		"range":        func(s *Sparse) { s.Buckets[1][0] = Buckets },
		"empty bucket": func(s *Sparse) { s.Buckets = append(s.Buckets, [2]uint64{Buckets - 1, 0}) },
		"min":          func(s *Sparse) { s.Min = 4 },
		"max":          func(s *Sparse) { s.Max = 1 << 20 },
		"nan":          func(s *Sparse) { s.Sum = math.NaN() },
		"sum":          func(s *Sparse) { s.Sum = 1e9 },
		"overflow":     func(s *Sparse) { s.Buckets[0][1] = math.MaxUint64 },
	}
	for name, f := range bad {
		s := good()
		f(s)
		if _, err := FromSparse(s); !errors.Is(err, ErrSparse) {
			t.Errorf("%s: err = %v, want ErrSparse", name, err)
		}
	}
}

func Uint(i int) uint64 { return uint64(i) } // bucket index as a Sparse pair element

// BenchmarkRecord is the cost of recording one latency.
func BenchmarkRecord(b *testing.B) {
	var h Hist
	for i := 0; i < b.N; i++ {
		h.Record(uint64(i) * 977)
	}
}

// FuzzFromSparse: whatever it is given, FromSparse refuses it or returns
// a histogram whose figures agree with the form it came from.
func FuzzFromSparse(f *testing.F) {
	var h Hist
	for _, v := range []uint64{0, 5, 127, 128, 1000, 1 << 40} {
		h.Record(v)
	}
	b, _ := json.Marshal(h.Sparse())
	f.Add(b)
	f.Add([]byte(`{"count":1,"min":3,"max":3,"sum":3,"sum_sq":9,"buckets":[[3,1]]}`))
	f.Add([]byte(`{"count":0,"buckets":[]}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		var s Sparse
		if json.Unmarshal(b, &s) != nil {
			return
		}
		g, err := FromSparse(&s)
		if err != nil {
			return
		}
		if g.Count() != s.Count || (s.Count > 0 && (g.Min() != s.Min || g.Max() != s.Max)) {
			t.Fatalf("FromSparse(%s): count %d min %d max %d", b, g.Count(), g.Min(), g.Max())
		}
		if q := g.Quantile(0.5); s.Count > 0 && (q < g.Min() || q > g.Max()) {
			t.Fatalf("FromSparse(%s): median %d outside [%d, %d]", b, q, g.Min(), g.Max())
		}
		back := g.Sparse()
		if back.Count != s.Count || len(back.Buckets) != len(s.Buckets) {
			t.Fatalf("FromSparse(%s) does not round-trip", b)
		}
	})
}
