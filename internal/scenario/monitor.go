package scenario

import (
	"errors"

	"github.com/ktstr-go/ktstr/lib/wire/payload"
)

// Monitor opts a scenario into ktstr-boot's host-side monitor: every
// 100 ms the host reads each CPU's runqueue depth, local DSQ depth and rq
// clock from guest memory, without stopping the guest, and the verdict
// checks the samples. A field left out takes ktstr's default:
//
//	"monitor": {}                           ktstr's thresholds
//	"monitor": {"max_imbalance_ratio": 2}   a stricter balance
type Monitor struct {
	// MaxImbalanceRatio: the busiest CPU's nr_running over the idlest's
	// (at least 1); default 4.
	MaxImbalanceRatio *float64 `json:"max_imbalance_ratio,omitempty"`
	// MaxLocalDSQDepth: tasks in one CPU's sched_ext local DSQ; default 50.
	MaxLocalDSQDepth *uint64 `json:"max_local_dsq_depth,omitempty"`
	// FailOnRQClockStuck: fail when a CPU with tasks keeps its rq clock
	// from one sample to the next; default true.
	FailOnRQClockStuck *bool `json:"fail_on_rq_clock_stuck,omitempty"`
	// SustainedSamples: samples in a row a condition must hold; default 5.
	SustainedSamples *uint64 `json:"sustained_samples,omitempty"`
}

// MonitorIntervalMS is the monitor's sampling period.
const MonitorIntervalMS = 100

// Thresholds returns m's checks with ktstr's defaults filled in.
func (m *Monitor) Thresholds() payload.MonitorThresholds {
	t := payload.MonitorThresholds{MaxImbalanceRatio: 4, MaxLocalDSQDepth: 50, FailOnRQClockStuck: true, SustainedSamples: 5}
	if m.MaxImbalanceRatio != nil {
		t.MaxImbalanceRatio = *m.MaxImbalanceRatio
	}
	if m.MaxLocalDSQDepth != nil {
		t.MaxLocalDSQDepth = *m.MaxLocalDSQDepth
	}
	if m.FailOnRQClockStuck != nil {
		t.FailOnRQClockStuck = *m.FailOnRQClockStuck
	}
	if m.SustainedSamples != nil {
		t.SustainedSamples = *m.SustainedSamples
	}
	return t
}

func (m *Monitor) validate() error {
	if m == nil {
		return nil
	}
	if m.MaxImbalanceRatio != nil && *m.MaxImbalanceRatio < 1 {
		return errors.New("max_imbalance_ratio must be at least 1")
	}
	if m.SustainedSamples != nil && (*m.SustainedSamples < 1 || *m.SustainedSamples > 600) {
		return errors.New("sustained_samples must be within 1..600")
	}
	return nil
}
