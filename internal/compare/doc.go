// Package compare is the A/B comparison of ktstr runs, the logic of
// ktstr-compare(1): did a change make the scheduler slower?
//
// Each side is a set of runs of the same scenario on the same machine
// shape (verdict JSON reports, record streams, or KTSTR_SAVE
// directories: Load). From each run's TEST result it takes the
// performance figures (Defs: throughput, work rate and its variation,
// wake-up and timer latency percentiles, the longest gap) of the whole
// scenario, and with Options.Cgroups of each cgroup. Per metric it gives
// each side's median with its order-statistic confidence interval, the
// difference of the medians (B - A) with a percentile-bootstrap
// confidence interval (Resamples resamples, fixed seed: the same numbers
// always give the same interval), and the two-sided p-value of the
// Mann-Whitney U test (golang.org/x/perf/benchmath, what benchstat
// uses). No assumption of normality is made: latency tails are not.
//
// # Verdicts
//
// A metric is "better" or "worse" when the rank test rejects "same
// distribution" and the medians differ by at least the metric's threshold
// (percent of A's median, in the metric's bad or good direction); "~"
// when the test does not reject; "~ (< threshold)" when it does but the
// change is smaller than the threshold.
//
// Only the gated metrics (Options.Gate; by default DefaultGate: the whole
// scenario's throughput and wake-up latency p50 and p99; three, so that
// 5 runs against 4 can still show a regression at 0.05) can fail the
// comparison: their p-values are adjusted together
// (Holm-Bonferroni), so that an A/A comparison fails with probability at
// most Alpha however many metrics are gated, and a gated metric that is
// worse by the adjusted p-value is a regression. The other metrics are
// judged by their own p-value, for information. Fewer than two usable
// runs on a side give ErrNotEnoughRuns; runs of different scenarios (by
// name), or of different machine shapes, give ErrMismatch: nothing is
// compared.
//
// # Noise
//
// Under the null hypothesis (A/A: the same scheduler on both sides) each
// metric is called significant with probability at most Alpha, and the
// comparison fails with probability at most Alpha (Holm over the gated
// metrics). With n runs per side the smallest p-value the rank test can
// give is 2/C(2n, n): 0.333 for 2, 0.1 for 3, 0.029 for 4, 0.0079 for 5,
// 0.0022 for 6; with m gated metrics Holm needs the smallest below
// Alpha/m, so 5 runs per side can gate at most 6 metrics at 0.05 (and
// only on a complete separation of the two sides). The comparison says
// when nothing can be significant.
package compare
