package workload

import (
	"math"
	"testing"
	"time"
)

// TestRateSlices feeds completion times by hand: slices of 2, 4, 0 and 2
// iterations (the trailing partial slice is not counted) have mean 2 and
// population standard deviation sqrt(2), CV 0.7071.
func TestRateSlices(t *testing.T) {
	t0 := time.Unix(1000, 0)
	var r rateSlices
	r.begin(t0)
	at := func(ms ...int) {
		for _, m := range ms {
			r.done(t0.Add(time.Duration(m) * time.Millisecond))
		}
	}
	at(10, 50)             // slice 0: 2
	at(100, 120, 150, 199) // slice 1: 4
	at(310, 320, 450, 460) // slice 2: 0; slice 3: 2; slice 4 partial
	n, cv := r.result()
	if n != 4 || math.Abs(cv-math.Sqrt2/2) > 1e-12 {
		t.Fatalf("result = %d slices, cv %v; want 4, %v", n, cv, math.Sqrt2/2)
	}
	var e rateSlices
	e.begin(t0)
	e.done(t0.Add(150 * time.Millisecond))
	if n, cv := e.result(); n != 1 || cv != 0 {
		t.Fatalf("one slice: %d, %v; want 1, 0", n, cv)
	}
}

func TestLatencyKind(t *testing.T) {
	if WakeLatency.LatencyKind() != LatencyWake || TimerLatency.LatencyKind() != LatencyTimer || Spin.LatencyKind() != "" {
		t.Fatal("LatencyKind")
	}
	w := Work{Type: WakeLatency}.WithDefaults()
	if w.GroupSize != DefaultWakeGroup || w.Loops != DefaultWakeLoops || w.SleepUS != DefaultWakeSleepUS {
		t.Errorf("wake_latency defaults %+v", w)
	}
	if w := (Work{Type: TimerLatency}).WithDefaults(); w.SleepUS != DefaultTimerIntervalU || w.Loops != 0 {
		t.Errorf("timer_latency defaults %+v", w)
	}
}

// BenchmarkRateSlicesDone is the cost the rate-slice bookkeeping adds to
// every iteration of every worker (compare with one spin iteration,
// BenchmarkSpinIteration).
func BenchmarkRateSlicesDone(b *testing.B) {
	var r rateSlices
	t0 := time.Now()
	r.begin(t0)
	for i := 0; i < b.N; i++ {
		r.done(t0.Add(time.Duration(i) * time.Microsecond))
	}
}

// BenchmarkSpinIteration is one spin iteration at the default loops.
func BenchmarkSpinIteration(b *testing.B) {
	w := &worker{work: Work{Type: Spin}.WithDefaults(), x: initialSeed}
	for i := 0; i < b.N; i++ {
		w.spin()
	}
}
