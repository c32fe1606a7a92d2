package compare

import (
	"math"
	"math/rand/v2"
	"slices"

	"golang.org/x/perf/benchmath"
)

// Bootstrap resamples: the number, and the fixed seed that makes every
// comparison of the same numbers give the same interval.
const (
	Resamples = 4000
	seedHi    = 0x6b747374 // "ktst"
	seedLo    = 0x72636d70 // "rcmp"
)

// median of values (any order; 0 when empty).
func median(values []float64) float64 {
	if len(values) == 0 {
		return 0
	}
	s := slices.Sorted(slices.Values(values))
	n := len(s)
	if n%2 == 1 {
		return s[n/2]
	}
	return (s[n/2-1] + s[n/2]) / 2
}

// diffCI is the percentile bootstrap interval, at confidence conf, of
// median(b) - median(a): each resample draws len(a) values from a and
// len(b) from b with replacement.
func diffCI(a, b []float64, conf float64) (lo, hi float64) {
	rng := rand.New(rand.NewPCG(seedHi, seedLo))
	ra, rb := make([]float64, len(a)), make([]float64, len(b))
	diffs := make([]float64, Resamples)
	for i := range diffs {
		for j := range ra {
			ra[j] = a[rng.IntN(len(a))]
		}
		for j := range rb {
			rb[j] = b[rng.IntN(len(b))]
		}
		diffs[i] = median(rb) - median(ra)
	}
	slices.Sort(diffs)
	tail := (1 - conf) / 2
	li := int(math.Floor(tail * Resamples))
	hiI := int(math.Ceil((1-tail)*Resamples)) - 1
	return diffs[li], diffs[min(hiI, Resamples-1)]
}

// rankTest is the Mann-Whitney U test's two-sided p-value (benchmath's,
// what benchstat uses: exact for small samples without ties).
func rankTest(a, b []float64, alpha float64) (float64, []error) {
	th := &benchmath.Thresholds{CompareAlpha: alpha}
	// NewSample sorts its argument: give it copies.
	c := benchmath.AssumeNothing.Compare(benchmath.NewSample(slices.Clone(a), th), benchmath.NewSample(slices.Clone(b), th))
	return c.P, c.Warnings
}

// summary is a side's median and its order-statistic confidence interval
// (benchmath's, at conf or the next level the sample size allows).
func summary(values []float64, conf float64) benchmath.Summary {
	return benchmath.AssumeNothing.Summary(benchmath.NewSample(slices.Clone(values), &benchmath.DefaultThresholds), conf)
}

// minP is the smallest two-sided p-value the rank test can give for
// samples of n1 and n2 without ties: 2 / C(n1+n2, n1). When it is above
// alpha no difference can be called significant, however large.
func minP(n1, n2 int) float64 {
	c := 1.0
	for i := 1; i <= n1; i++ {
		c = c * float64(n2+i) / float64(i)
	}
	return min(1, 2/c)
}
