package payload

import "github.com/ktstr-go/ktstr/lib/wire"

// HostDump is the HDMP payload: a summary of the failure dump ktstr-boot
// took on its own before it stopped the VM.
type HostDump struct {
	// Path is the dump's file (failure-dump.json in the run directory,
	// ktstr-snapshot(5)).
	Path   string `msgpack:"path" json:"path"`
	Reason string `msgpack:"reason" json:"reason"`
	// Summary is what each CPU was running and the sched_ext state, a
	// line each.
	Summary []string `msgpack:"summary" json:"summary"`
	// StuckCPU is the CPU whose runnable task waited longest, at least
	// the stall threshold; -1 for none.
	StuckCPU int `msgpack:"stuck_cpu" json:"stuck_cpu"`
}

// MarshalHostDump encodes d for an HDMP frame.
func MarshalHostDump(d *HostDump) ([]byte, error) { return marshal(d) }

// UnmarshalHostDump decodes an HDMP payload; path and reason must be
// present.
func UnmarshalHostDump(p []byte) (*HostDump, error) {
	var d HostDump
	if err := unmarshal(wire.TypeHostDump, p, &d, "path", "reason"); err != nil {
		return nil, err
	}
	return &d, nil
}

// MonitorThresholds are the host-side monitor's checks (ktstr's
// MonitorThresholds).
type MonitorThresholds struct {
	// MaxImbalanceRatio fails the run when the busiest CPU's nr_running
	// exceeds the idlest's (at least 1) by more than this ratio.
	MaxImbalanceRatio float64 `msgpack:"max_imbalance_ratio" json:"max_imbalance_ratio"`
	// MaxLocalDSQDepth fails it when a CPU's local DSQ holds more tasks.
	MaxLocalDSQDepth uint64 `msgpack:"max_local_dsq_depth" json:"max_local_dsq_depth"`
	// FailOnRQClockStuck fails it when a CPU with tasks to run keeps the
	// same rq clock from one sample to the next.
	FailOnRQClockStuck bool `msgpack:"fail_on_rq_clock_stuck" json:"fail_on_rq_clock_stuck"`
	// SustainedSamples is how many samples in a row a condition must hold
	// to fail the run.
	SustainedSamples uint64 `msgpack:"sustained_samples" json:"sustained_samples"`
}

// MonitorSample is the per-CPU state at one moment: for each CPU
// [nr_running, scx local DSQ depth, rq clock ns] (a missing or unreadable
// CPU is an empty array).
type MonitorSample struct {
	TMS  uint64     `msgpack:"t_ms" json:"t_ms"` // since the VM started
	CPUs [][]uint64 `msgpack:"cpus" json:"cpus"`
}

// Monitor is the HMON payload: a batch of host-side monitor samples.
type Monitor struct {
	IntervalMS uint64            `msgpack:"interval_ms" json:"interval_ms"`
	Thresholds MonitorThresholds `msgpack:"thresholds" json:"thresholds"`
	Samples    []MonitorSample   `msgpack:"samples" json:"samples"`
}

// MarshalMonitor encodes m for an HMON frame.
func MarshalMonitor(m *Monitor) ([]byte, error) { return marshal(m) }

// UnmarshalMonitor decodes an HMON payload; thresholds and samples must be
// present.
func UnmarshalMonitor(p []byte) (*Monitor, error) {
	var m Monitor
	if err := unmarshal(wire.TypeMonitor, p, &m, "thresholds", "samples"); err != nil {
		return nil, err
	}
	return &m, nil
}
