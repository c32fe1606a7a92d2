package tsc

import (
	"math"
	"os/exec"
	"regexp"
	"strconv"
	"testing"
	"time"
)

// kernelKHz is the host kernel's own idea of the counter's frequency,
// from its log ("tsc: Detected 2100.000 MHz processor", or the refined
// calibration that follows), or 0 where the log is not readable.
func kernelKHz(t *testing.T) float64 {
	out, err := exec.Command("dmesg").Output()
	if err != nil {
		return 0
	}
	var mhz float64
	re := regexp.MustCompile(`tsc: (?:Detected|Refined TSC clocksource calibration:) ([0-9.]+) MHz`)
	for _, m := range re.FindAllSubmatch(out, -1) {
		mhz, _ = strconv.ParseFloat(string(m[1]), 64)
	}
	return mhz * 1000
}

// TestKHz: the measured frequency agrees with the host kernel's (which
// the guest would otherwise approximate by its own calibration) within
// 0.1%, or, where the kernel log is not readable, with a second
// measurement over a longer span.
func TestKHz(t *testing.T) {
	if !supported {
		t.Skip("not an x86-64 host")
	}
	if err := constant(); err != nil {
		t.Skipf("host counter: %v", err)
	}
	got, err := KHz(20 * time.Millisecond)
	if err != nil {
		t.Skipf("%v (a busy host: the readings were too wide)", err)
	}
	ref := kernelKHz(t)
	what := "the host kernel's"
	if ref == 0 {
		r, err := KHz(100 * time.Millisecond)
		if err != nil {
			t.Skipf("second measurement: %v", err)
		}
		ref, what = float64(r), "a 100 ms measurement's"
	}
	if d := math.Abs(float64(got)-ref) / ref; d > 1e-3 {
		t.Errorf("KHz = %d, %s %.0f: off by %.3f%%", got, what, ref, d*100)
	}
}

// TestRdtscAdvances: the counter moves forward with time.
func TestRdtscAdvances(t *testing.T) {
	if !supported {
		t.Skip("not an x86-64 host")
	}
	a := rdtsc()
	time.Sleep(time.Millisecond)
	if b := rdtsc(); b <= a {
		t.Errorf("rdtsc went from %d to %d over a millisecond", a, b)
	}
}
