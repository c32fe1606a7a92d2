package workload

import (
	"math"
	"time"
)

// Defaults of the latency types.
const (
	DefaultWakeGroup      = 4     // wake_latency: workers per group (1 message thread + 3 workers)
	DefaultWakeLoops      = 10000 // wake_latency: LCG steps a worker runs per wake-up
	DefaultWakeSleepUS    = 100   // wake_latency: the message thread's pause between rounds
	DefaultTimerIntervalU = 1000  // timer_latency: period in µs
	DefaultOpenGroup      = 3     // open_loop: 1 generator + 2 servers
	DefaultOpenPeriodUS   = 200   // open_loop: one request every 200 µs (5000/s offered)
	DefaultOpenLoops      = 20000 // open_loop: LCG steps of service per request
)

// Latency kinds: what a worker's Stats.Latency measured.
const (
	LatencyWake  = "wake"  // wake-up to running
	LatencyTimer = "timer" // timer expiry to running
	// LatencyRequest is open_loop's: a request's scheduled arrival to
	// the end of its service (queueing included).
	LatencyRequest = "request"
)

// LatencyKind is the kind of latency the type records, "" for types that
// record none.
func (t Type) LatencyKind() string {
	switch t {
	case WakeLatency:
		return LatencyWake
	case TimerLatency:
		return LatencyTimer
	case OpenLoop:
		return LatencyRequest
	}
	return ""
}

// latencyDefaults fills the latency types' defaults (WithDefaults).
func (w Work) latencyDefaults() Work {
	switch w.Type {
	case WakeLatency:
		def(&w.GroupSize, DefaultWakeGroup)
		def(&w.Loops, DefaultWakeLoops)
		def(&w.SleepUS, DefaultWakeSleepUS)
	case TimerLatency:
		def(&w.SleepUS, DefaultTimerIntervalU)
	case OpenLoop:
		def(&w.GroupSize, DefaultOpenGroup)
		def(&w.SleepUS, DefaultOpenPeriodUS)
		def(&w.Loops, DefaultOpenLoops)
	}
	return w
}

// RateSlice is the width of the time slices a worker's work rate is
// counted over for its coefficient of variation (Stats.RateCV).
const RateSlice = 100 * time.Millisecond

// rateSlices counts iterations per RateSlice since the window opened and
// keeps the running mean and variance of the per-slice counts (Welford):
// fixed memory whatever the run's length. The last, partial slice is not
// counted; a slice with no iteration counts as zero.
type rateSlices struct {
	end     time.Time // end of the current slice
	cur     uint64    // iterations in the current slice
	n       uint64    // slices closed
	mean, m float64   // Welford's running mean and sum of squared deviations
}

func (r *rateSlices) begin(start time.Time) { r.end = start.Add(RateSlice) }

func (r *rateSlices) add(x float64) {
	r.n++
	d := x - r.mean
	r.mean += d / float64(r.n)
	r.m += d * (x - r.mean)
}

// done counts one iteration completed at now.
func (r *rateSlices) done(now time.Time) {
	if now.Before(r.end) {
		r.cur++
		return
	}
	r.add(float64(r.cur))
	r.end = r.end.Add(RateSlice)
	for !now.Before(r.end) { // slices without an iteration: a stall
		r.add(0)
		r.end = r.end.Add(RateSlice)
	}
	r.cur = 1
}

// result returns the number of whole slices and the coefficient of
// variation of their counts (population standard deviation over mean; 0
// with fewer than two slices or no iteration).
func (r *rateSlices) result() (uint64, float64) {
	if r.n < 2 || r.mean == 0 {
		return r.n, 0
	}
	return r.n, math.Sqrt(r.m/float64(r.n)) / r.mean
}
