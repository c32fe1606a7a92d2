package gauntlet

import "math"

// z95 is the standard normal quantile for a two-sided 95% interval.
const z95 = 1.959963984540054

// Wilson returns the Wilson score interval, at 95% confidence, of a
// failure rate seen as failures out of n runs: unlike failures/n ± its
// normal approximation, it stays inside [0, 1] and is wide for few runs,
// so "0 of 2" ([0, 0.658]) does not read like "0 of 20" ([0, 0.161]). It
// is [0, 1] for n = 0.
func Wilson(failures, n int) (lo, hi float64) {
	if n <= 0 {
		return 0, 1
	}
	nf := float64(n)
	p := float64(failures) / nf
	z2 := z95 * z95
	den := 1 + z2/nf
	center := (p + z2/(2*nf)) / den
	half := z95 / den * math.Sqrt(p*(1-p)/nf+z2/(4*nf*nf))
	lo, hi = max(0, center-half), min(1, center+half)
	if failures == 0 {
		lo = 0 // exactly, not a rounding error's 1e-17
	}
	if failures == n {
		hi = 1
	}
	return lo, hi
}
