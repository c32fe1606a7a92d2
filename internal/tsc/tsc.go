// Package tsc measures the host's time-stamp counter frequency.
//
// A guest under QEMU's software emulation (TCG) reads the host's counter
// as its own: TCG's RDTSC returns the host's TSC plus an offset. Its kernel
// calibrates the counter against the emulated PIT, HPET or ACPI PM timer;
// QEMU's microvm machine has neither of the last two, and a loaded host
// makes the PIT calibration fail ("tsc: Unable to calibrate against PIT"),
// after which that guest hung in boot (2 of 8 boots on this project's
// 2-core machine). Handing the guest kernel the host's frequency
// (tsc_early_khz=) skips the calibration; where the machine has a
// reference timer (pc's HPET) the kernel still refines it.
package tsc

import (
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// sample is one reading of the counter between two clock readings.
type sample struct {
	ns    int64 // the midpoint of the clock readings
	width int64 // their distance: the sample's uncertainty
	tsc   uint64
}

func now() int64 {
	var ts unix.Timespec
	unix.ClockGettime(unix.CLOCK_MONOTONIC_RAW, &ts)
	return ts.Nano()
}

// read takes the narrowest of a few samples (a busy host preempts some
// between the clock readings).
func read() sample {
	best := sample{width: 1 << 62}
	for range 32 {
		t0 := now()
		c := rdtsc()
		t1 := now()
		if w := t1 - t0; w < best.width {
			best = sample{ns: t0 + w/2, width: w, tsc: c}
		}
	}
	return best
}

// MaxError is the largest relative error KHz accepts from its readings.
const MaxError = 1e-4

// MaxSpan bounds how long KHz keeps measuring on a busy host.
const MaxSpan = time.Second

// KHz measures the counter against CLOCK_MONOTONIC_RAW over span (20 ms
// is ample on a quiet host: readings a microsecond wide give 1e-4) and
// returns its frequency in kHz. On a busy host, whose readings are wider
// (a preemption between the clock readings), it goes on measuring, up to
// MaxSpan, until the two readings' widths are within MaxError of the time
// between them. It fails where the counter is not constant (no
// constant_tsc and nonstop_tsc in /proc/cpuinfo), on other
// architectures, and when even MaxSpan is not enough.
func KHz(span time.Duration) (uint64, error) {
	if !supported {
		return 0, errors.New("tsc: not an x86-64 host")
	}
	if err := constant(); err != nil {
		return 0, err
	}
	a := read()
	time.Sleep(span)
	for start := a.ns; ; time.Sleep(span) {
		b := read()
		dt := b.ns - a.ns
		if dt > 0 && b.tsc > a.tsc && float64(a.width+b.width)/float64(dt) <= MaxError {
			return uint64(float64(b.tsc-a.tsc) * 1e6 / float64(dt)), nil
		}
		if b.ns-start >= int64(MaxSpan) {
			return 0, fmt.Errorf("tsc: no readings within %g of the clock in %v (a busy host: the narrowest were %v and %v wide)", MaxError, MaxSpan, time.Duration(a.width), time.Duration(b.width))
		}
	}
}

// constant checks that the host's counter ticks at one rate whatever the
// CPU's frequency and sleep state.
func constant() error {
	b, err := os.ReadFile("/proc/cpuinfo")
	if err != nil {
		return fmt.Errorf("tsc: %w", err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		k, v, ok := strings.Cut(line, ":")
		if !ok || strings.TrimSpace(k) != "flags" {
			continue
		}
		flags := strings.Fields(v)
		if !slices.Contains(flags, "constant_tsc") || !slices.Contains(flags, "nonstop_tsc") {
			return errors.New("tsc: the host's counter is not constant (no constant_tsc and nonstop_tsc)")
		}
		return nil
	}
	return errors.New("tsc: no flags line in /proc/cpuinfo")
}
