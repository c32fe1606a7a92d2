package boot

import (
	"errors"
	"fmt"
	"time"

	"github.com/ktstr-go/ktstr/internal/introspect"
	"github.com/ktstr-go/ktstr/internal/scenario"
	"github.com/ktstr-go/ktstr/lib/wire"
	"github.com/ktstr-go/ktstr/lib/wire/payload"
)

// monitorBatch is how many samples go into one HMON frame (a second's).
const monitorBatch = 10

// startMonitor samples every CPU's runqueue from guest memory every
// scenario.MonitorIntervalMS without stopping the guest, and writes the
// samples to host.frames (HMON) in batches, where the verdict checks them
// against th. Sampling starts once the kernel has booted (Running). A CPU whose runnable task has waited
// introspect.StallJiffies or more is a stall: the first one seen triggers
// the run's failure dump, naming that CPU.
func (in *inspector) startMonitor(th payload.MonitorThresholds, start time.Time) {
	in.monStop, in.monDone = make(chan struct{}), make(chan struct{})
	go func() {
		defer close(in.monDone)
		interval := scenario.MonitorIntervalMS * time.Millisecond
		tick := time.NewTicker(interval)
		defer tick.Stop()
		batch := &payload.Monitor{IntervalMS: scenario.MonitorIntervalMS, Thresholds: th}
		flush := func() {
			if len(batch.Samples) == 0 {
				return
			}
			if p, err := payload.MarshalMonitor(batch); err == nil {
				in.host.add(wire.TypeMonitor, p)
			}
			batch.Samples = batch.Samples[:0]
		}
		defer flush()
		var cost latency
		defer func() { in.logf("monitor: %d samples, host time per sample %v", cost.n, cost) }()
		for {
			select {
			case <-in.monStop:
				return
			case now := <-tick.C:
				t0 := time.Now()
				s, stall, ok := in.sample(uint64(now.Sub(start).Milliseconds()))
				if !ok {
					continue
				}
				cost.add(time.Since(t0))
				batch.Samples = append(batch.Samples, s)
				if len(batch.Samples) >= monitorBatch {
					flush()
				}
				if stall != "" {
					in.failureDump(stall)
				}
			}
		}
	}()
}

// stopMonitor stops the monitor and waits until its last samples are
// written; a no-op when none runs.
func (in *inspector) stopMonitor() {
	if in.monStop == nil {
		return
	}
	close(in.monStop)
	<-in.monDone
	in.monStop = nil
}

// sample reads one monitor sample; stall names a stalled CPU when the
// sample shows one. ok is false when the guest cannot be read (yet).
func (in *inspector) sample(tms uint64) (s payload.MonitorSample, stall string, ok bool) {
	t, g, err := in.target()
	if err != nil || g.Kernel() == nil {
		return s, "", false
	}
	var cpus []introspect.CPUState
	err = t.withRAM(func([]introspect.Range) error {
		if up, err := g.Running(); err != nil || !up {
			return errors.New("not booted")
		}
		_, cpus, _ = g.Runqueues()
		return nil
	})
	if err != nil || len(cpus) == 0 {
		return s, "", false
	}
	s = payload.MonitorSample{TMS: tms, CPUs: make([][]uint64, len(cpus))}
	for i, c := range cpus {
		if len(c.Errors) > 0 {
			s.CPUs[i] = []uint64{}
			continue
		}
		var depth uint64
		if c.SCX != nil {
			depth = c.SCX.LocalDSQDepth
		}
		s.CPUs[i] = []uint64{c.NrRunning, depth, c.ClockNS}
	}
	if cpu, o := (&introspect.Report{CPUs: cpus}).Stalled(); o != nil && !in.dumped.Load() {
		stall = fmt.Sprintf("stall: CPU %d: %s[%d] runnable for %d jiffies without running", cpu, o.Comm, o.PID, o.WaitJiffies)
	}
	return s, stall, true
}
