package hist

import (
	"errors"
	"fmt"
	"math"
	"math/bits"
)

// Layout constants.
const (
	linear  = 128 // values below are exact
	subBits = 6   // 64 buckets per power of two above
	sub     = 1 << subBits
	// Buckets is the number of buckets: every uint64 has one.
	Buckets = linear + (64-subBits-1)*sub
)

// Hist is a histogram. The zero value is empty and ready to use.
type Hist struct {
	counts   [Buckets]uint64
	n        uint64
	min, max uint64
	sum      float64
	sumSq    float64
}

// Index is the bucket of v.
func Index(v uint64) int {
	if v < linear {
		return int(v)
	}
	shift := bits.Len64(v) - (subBits + 1) // v>>shift is in [64, 128)
	return linear + (shift-1)*sub + int(v>>shift) - sub
}

// Bounds are the lowest and the highest value of bucket i.
func Bounds(i int) (lo, hi uint64) {
	if i < linear {
		return uint64(i), uint64(i)
	}
	shift := (i-linear)/sub + 1
	m := uint64((i-linear)%sub + sub)
	lo = m << shift
	return lo, lo + (1 << shift) - 1
}

// Record adds one value.
func (h *Hist) Record(v uint64) {
	h.counts[Index(v)]++
	if h.n == 0 || v < h.min {
		h.min = v
	}
	if v > h.max {
		h.max = v
	}
	h.n++
	f := float64(v)
	h.sum += f
	h.sumSq += f * f
}

// Merge adds every value recorded in o.
func (h *Hist) Merge(o *Hist) {
	if o == nil || o.n == 0 {
		return
	}
	for i, c := range o.counts {
		h.counts[i] += c
	}
	if h.n == 0 || o.min < h.min {
		h.min = o.min
	}
	h.max = max(h.max, o.max)
	h.n += o.n
	h.sum += o.sum
	h.sumSq += o.sumSq
}

// Count is the number of values recorded.
func (h *Hist) Count() uint64 { return h.n }

// Min and Max are the exact extremes (0 when empty).
func (h *Hist) Min() uint64 { return h.min }

// Max is the exact largest value recorded (0 when empty).
func (h *Hist) Max() uint64 { return h.max }

// Mean is the exact mean (0 when empty).
func (h *Hist) Mean() float64 {
	if h.n == 0 {
		return 0
	}
	return h.sum / float64(h.n)
}

// StdDev is the population standard deviation (0 with fewer than two
// values).
func (h *Hist) StdDev() float64 {
	if h.n < 2 {
		return 0
	}
	m := h.Mean()
	v := h.sumSq/float64(h.n) - m*m
	if v <= 0 {
		return 0
	}
	return math.Sqrt(v)
}

// CV is the coefficient of variation, StdDev/Mean (0 when the mean is 0).
func (h *Hist) CV() float64 {
	m := h.Mean()
	if m == 0 {
		return 0
	}
	return h.StdDev() / m
}

// Quantile is the value at rank ceil(q*Count) as the package comment
// says; q is clamped to [0, 1]; 0 when empty.
func (h *Hist) Quantile(q float64) uint64 {
	if h.n == 0 {
		return 0
	}
	if !(q > 0) { // also NaN
		return h.min
	}
	if q >= 1 {
		return h.max
	}
	rank := uint64(math.Ceil(q * float64(h.n)))
	rank = max(rank, 1)
	var seen uint64
	for i, c := range h.counts {
		seen += c
		if seen >= rank {
			_, hi := Bounds(i)
			return max(min(hi, h.max), h.min)
		}
	}
	return h.max
}

// Summary is the figures the result carries.
type Summary struct {
	Count  uint64  `json:"count"`
	MeanNS float64 `json:"mean_ns"`
	P50NS  uint64  `json:"p50_ns"`
	P90NS  uint64  `json:"p90_ns"`
	P99NS  uint64  `json:"p99_ns"`
	P999NS uint64  `json:"p999_ns"`
	MaxNS  uint64  `json:"max_ns"`
	CV     float64 `json:"cv"`
}

// Summarize returns the count, mean, p50, p90, p99, p99.9, max and CV.
func (h *Hist) Summarize() Summary {
	return Summary{Count: h.n, MeanNS: h.Mean(), P50NS: h.Quantile(0.50), P90NS: h.Quantile(0.90),
		P99NS: h.Quantile(0.99), P999NS: h.Quantile(0.999), MaxNS: h.max, CV: h.CV()}
}

// Sparse is a Hist's exchange form.
type Sparse struct {
	Count   uint64      `json:"count"`
	Min     uint64      `json:"min"`
	Max     uint64      `json:"max"`
	Sum     float64     `json:"sum"`
	SumSq   float64     `json:"sum_sq"`
	Buckets [][2]uint64 `json:"buckets"` // [index, count], increasing index
}

// Sparse returns h's exchange form.
func (h *Hist) Sparse() *Sparse {
	s := &Sparse{Count: h.n, Min: h.min, Max: h.max, Sum: h.sum, SumSq: h.sumSq, Buckets: [][2]uint64{}}
	for i, c := range h.counts {
		if c != 0 {
			s.Buckets = append(s.Buckets, [2]uint64{uint64(i), c})
		}
	}
	return s
}

// ErrSparse is returned (wrapped) by FromSparse for an inconsistent form.
var ErrSparse = errors.New("hist: inconsistent histogram")

// FromSparse rebuilds a Hist, checking s as the package comment says.
func FromSparse(s *Sparse) (*Hist, error) {
	h := &Hist{}
	if s == nil {
		return h, nil
	}
	if len(s.Buckets) > Buckets {
		return nil, fmt.Errorf("%w: %d buckets, at most %d", ErrSparse, len(s.Buckets), Buckets)
	}
	prev := -1
	var n uint64
	for _, b := range s.Buckets {
		if b[0] >= Buckets || int(b[0]) <= prev || b[1] == 0 {
			return nil, fmt.Errorf("%w: bucket [%d, %d] out of range, out of order or empty", ErrSparse, b[0], b[1])
		}
		prev = int(b[0])
		if n+b[1] < n {
			return nil, fmt.Errorf("%w: counts overflow", ErrSparse)
		}
		n += b[1]
		h.counts[b[0]] = b[1]
	}
	if n != s.Count {
		return nil, fmt.Errorf("%w: buckets hold %d values, count says %d", ErrSparse, n, s.Count)
	}
	if n > 0 {
		if h.counts[Index(s.Min)] == 0 || h.counts[Index(s.Max)] == 0 || s.Min > s.Max ||
			Index(s.Min) != int(s.Buckets[0][0]) || Index(s.Max) != prev {
			return nil, fmt.Errorf("%w: min %d or max %d not in the first and last buckets", ErrSparse, s.Min, s.Max)
		}
		if math.IsNaN(s.Sum) || math.IsInf(s.Sum, 0) || s.Sum < 0 || math.IsNaN(s.SumSq) || math.IsInf(s.SumSq, 0) || s.SumSq < 0 {
			return nil, fmt.Errorf("%w: sums %v, %v", ErrSparse, s.Sum, s.SumSq)
		}
		lo, hi := float64(n)*float64(s.Min), float64(n)*float64(s.Max)
		if s.Sum < lo*(1-1e-6) || s.Sum > hi*(1+1e-6) { // rounding: about count*eps
			return nil, fmt.Errorf("%w: sum %v outside count*min..count*max", ErrSparse, s.Sum)
		}
		h.min, h.max, h.sum, h.sumSq = s.Min, s.Max, s.Sum, s.SumSq
	}
	h.n = n
	return h, nil
}
