// Package hist is a bounded log-bucketed histogram of non-negative
// integer values (latencies in nanoseconds), in the manner of
// HdrHistogram: fixed memory whatever the number of values recorded,
// mergeable, with percentiles to a known relative precision.
//
// # Buckets
//
// Values below 128 have a bucket each (exact). Above, each power of two
// [2^k, 2^(k+1)) is cut into 64 buckets of equal width 2^(k-6), so a
// bucket's width is at most 1/64 of its lowest value: a percentile is
// exact below 128 and within 1/64 (1.6%) above. The 3,776 buckets cover
// every uint64; a Hist is about 30 KiB whatever it recorded.
//
// Count, the exact minimum and maximum, the sum and the sum of squares
// (for the mean and the coefficient of variation) are kept beside the
// buckets.
//
// # Percentiles
//
// Quantile(q) is the value at rank ceil(q*Count) (1-based) of the
// recorded values in ascending order, given as the highest value of the
// bucket that rank falls in, clipped to the exact maximum: never lower
// than the true value, and higher by less than one bucket's width.
// Quantile(1) is the exact maximum, Quantile(0) the exact minimum.
//
// # Exchange
//
// A Hist travels as its Sparse form: the totals and the non-empty buckets
// as [index, count] pairs (JSON). FromSparse checks what it is given
// (indexes in range and increasing, counts adding up to Count, min and max
// within the first and last buckets, the sum between Count*min and
// Count*max) since it may come from another process.
package hist
