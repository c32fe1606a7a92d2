package verdict

import (
	"fmt"

	"github.com/ktstr-go/ktstr/lib/wire"
	"github.com/ktstr-go/ktstr/lib/wire/payload"
)

// CauseMonitor: the host-side monitor saw a runqueue condition hold too
// long (imbalance, local DSQ depth, rq clock stuck).
const CauseMonitor = "monitor"

// hostBlock tracks ktstr-boot's block of host frames (HBLK, then HDMP and
// HMON). Only a block whose HBLK carries the run's nonce (when the stream
// began with a HELO) and that nothing but host frames follows up to the
// stream's end counts: anything else means a guest wrote them, and they
// are dropped.
type hostBlock struct {
	open    bool
	dumps   []*payload.HostDump // the last one only: ktstr-boot writes one
	mons    []*payload.Monitor
	samples int // in mons, at most maxMonitorSamples
	forged  int64
}

// Bounds on what a host block can make the verdict keep.
const (
	maxMonitorSamples = 1 << 17 // 3.6 hours at 10 per second
	maxDumpLines      = 300
)

// see folds one entry of type t (CRC good or not); host says whether a
// nonce is the run's.
func (h *hostBlock) see(t wire.Type, crcOK bool, p []byte, host func(wire.Nonce) bool) {
	switch t {
	case wire.TypeHello, wire.TypeLoss, wire.TypeVMEnd:
		return // ktstr-drain's own frames: the verdict checks their nonce
	case wire.TypeHostBlock:
		h.drop()
		n, err := wire.DecodeHostBlock(p)
		h.open = crcOK && err == nil && host(n)
		if !h.open {
			h.forged++
		}
		return
	case wire.TypeHostDump, wire.TypeMonitor:
		if !h.open || !crcOK {
			h.forged++
			h.drop()
			return
		}
		if t == wire.TypeHostDump {
			if d, err := payload.UnmarshalHostDump(p); err == nil {
				d.Path, d.Reason = cutText(d.Path), cutText(d.Reason)
				d.Summary = d.Summary[:min(len(d.Summary), maxDumpLines)]
				for i, l := range d.Summary {
					d.Summary[i] = cutText(l)
				}
				h.dumps = []*payload.HostDump{d}
			}
		} else if m, err := payload.UnmarshalMonitor(p); err == nil && h.samples+len(m.Samples) <= maxMonitorSamples {
			h.samples += len(m.Samples)
			h.mons = append(h.mons, m)
		}
		return
	}
	h.drop()
}

func (h *hostBlock) drop() {
	if h.open && (len(h.dumps) > 0 || len(h.mons) > 0) {
		h.forged++
	}
	h.open, h.dumps, h.mons, h.samples = false, nil, nil, 0
}

// Monitor is what the host-side monitor's samples showed.
type Monitor struct {
	Samples          int     `json:"samples"`
	IntervalMS       uint64  `json:"interval_ms"`
	WorstImbalance   float64 `json:"worst_imbalance_ratio"`
	MaxLocalDSQDepth uint64  `json:"max_local_dsq_depth"`
	// Thresholds are the checks the samples were held to.
	Thresholds payload.MonitorThresholds `json:"thresholds"`
}

// monitorFindings evaluates ktstr's monitor checks over the samples of
// every HMON in order: a condition that holds for SustainedSamples
// samples in a row fails the run, once per condition (and CPU).
func monitorFindings(mons []*payload.Monitor, add func(Finding)) *Monitor {
	if len(mons) == 0 {
		return nil
	}
	th := mons[len(mons)-1].Thresholds
	sum := &Monitor{IntervalMS: mons[len(mons)-1].IntervalMS, Thresholds: th}
	need := max(th.SustainedSamples, 1)
	var imbRun, dsqRun uint64
	var imbDone, dsqDone bool
	stuckRun := map[int]uint64{}
	stuckDone := map[int]bool{}
	var prev [][]uint64
	fail := func(kind, msg string) {
		add(Finding{Status: StatusFail, Cause: CauseMonitor, Kind: kind, Message: msg, Source: "HMON"})
	}
	for _, m := range mons {
		for _, s := range m.Samples {
			sum.Samples++
			// Imbalance over the CPUs this sample could read.
			var lo, hi uint64
			loCPU, hiCPU, n := -1, -1, 0
			var deep uint64
			deepCPU := -1
			for cpu, c := range s.CPUs {
				if len(c) < 3 {
					continue
				}
				n++
				if loCPU < 0 || c[0] < lo {
					lo, loCPU = c[0], cpu
				}
				if hiCPU < 0 || c[0] > hi {
					hi, hiCPU = c[0], cpu
				}
				if c[1] > deep || deepCPU < 0 {
					deep, deepCPU = c[1], cpu
				}
				if th.FailOnRQClockStuck && cpu < len(prev) && len(prev[cpu]) >= 3 && c[0] > 0 && c[2] == prev[cpu][2] {
					stuckRun[cpu]++
					if stuckRun[cpu] >= need && !stuckDone[cpu] {
						stuckDone[cpu] = true
						fail("rq_clock_stuck", fmt.Sprintf("CPU %d's rq clock stayed at %d ns with %d tasks for %d samples (at %d ms)", cpu, c[2], c[0], stuckRun[cpu], s.TMS))
					}
				} else {
					stuckRun[cpu] = 0
				}
			}
			prev = s.CPUs
			if n >= 2 {
				ratio := float64(hi) / float64(max(lo, 1))
				sum.WorstImbalance = max(sum.WorstImbalance, ratio)
				if th.MaxImbalanceRatio > 0 && ratio > th.MaxImbalanceRatio {
					imbRun++
					if imbRun >= need && !imbDone {
						imbDone = true
						fail("imbalance", fmt.Sprintf("runqueue imbalance %.1f > %.1f for %d samples (at %d ms: CPU %d has %d tasks, CPU %d %d)", ratio, th.MaxImbalanceRatio, imbRun, s.TMS, hiCPU, hi, loCPU, lo))
					}
				} else {
					imbRun = 0
				}
			}
			if deepCPU >= 0 {
				sum.MaxLocalDSQDepth = max(sum.MaxLocalDSQDepth, deep)
				if th.MaxLocalDSQDepth > 0 && deep > th.MaxLocalDSQDepth {
					dsqRun++
					if dsqRun >= need && !dsqDone {
						dsqDone = true
						fail("local_dsq_depth", fmt.Sprintf("CPU %d's local DSQ held %d tasks > %d for %d samples (at %d ms)", deepCPU, deep, th.MaxLocalDSQDepth, dsqRun, s.TMS))
					}
				} else {
					dsqRun = 0
				}
			}
		}
	}
	return sum
}
