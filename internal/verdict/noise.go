package verdict

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math"
	"os"
	"slices"
	"strings"

	"github.com/ktstr-go/ktstr/internal/noise"
	"github.com/ktstr-go/ktstr/internal/sanitize"
	"github.com/ktstr-go/ktstr/lib/wire/payload"
)

// CauseHostContention is the cause of a timing failure (fairness, gap,
// latency) in a run whose vCPUs the host starved past the bound: the
// check failed, but the scheduler under test cannot be blamed for it.
const CauseHostContention = "host_contention"

// DefaultHostContentionPct is the bound on the vCPUs' steal (the share of
// their runnable time they waited for a host CPU) above which timing
// failures are inconclusive.
const DefaultHostContentionPct = 10

// hostSensitive are the check kinds that host contention can fail on its
// own: fairness (unfair), gap and workers that did not stop when asked
// (stuck) and latency (benchmark).
var hostSensitive = []string{payload.KindUnfair, payload.KindStuck, payload.KindBenchmark}

// HostNoise is ktstr-boot's measurement of the host (noise.json), as the
// verdict read it.
type HostNoise struct {
	Backend string `json:"backend,omitempty"`
	// StealPct is the share of the vCPU threads' runnable time they
	// waited for a host CPU; WorstStealPct the worst thread's.
	StealPct      float64 `json:"vcpu_steal_pct"`
	WorstStealPct float64 `json:"worst_vcpu_steal_pct"`
	// PSISomePct is the share of the run in which some host task waited
	// for a CPU (/proc/pressure/cpu), when the host has PSI.
	PSISomePct *float64 `json:"host_cpu_pressure_pct,omitempty"`
	BoundPct   float64  `json:"bound_pct"`
	// Contended is StealPct above BoundPct: fairness, gap and latency
	// failures are inconclusive.
	Contended bool `json:"contended"`
	// Demoted counts the failures that were made inconclusive.
	Demoted int `json:"demoted,omitempty"`
	// Error says why the measurement could not be read (nothing is
	// demoted then).
	Error string `json:"error,omitempty"`
}

// AddNoise reads ktstr-boot's host-noise measurement of the run. A
// measurement that cannot be read is noted in the verdict and judges
// nothing.
func (f *Folder) AddNoise(r io.Reader) {
	m, err := noise.Read(r)
	if err != nil {
		f.noise = &HostNoise{Error: err.Error()}
		return
	}
	h := &HostNoise{Backend: sanitize.String(m.Backend), WorstStealPct: round1(m.WorstSteal()), BoundPct: f.cfg.HostContentionPct}
	if s, ok := m.Steal(); ok {
		h.StealPct = round1(s)
		h.Contended = f.cfg.HostContentionPct > 0 && s > f.cfg.HostContentionPct
	}
	if p, ok := m.PSISome(); ok {
		p = round1(p)
		h.PSISomePct = &p
	}
	f.noise = h
}

// AddNoiseFile reads the measurement at path; a file that does not exist
// (an older recording, --vmm host) is no measurement.
func (f *Folder) AddNoiseFile(path string) {
	fh, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		return
	}
	if err != nil {
		f.noise = &HostNoise{Error: err.Error()}
		return
	}
	defer fh.Close()
	f.AddNoise(fh)
}

// hostContention makes the run's timing failures inconclusive when the
// host starved its vCPUs past the bound. Nothing else changes: a run
// never passes because of it.
func (f *Folder) hostContention(v *Verdict) {
	h := f.noise
	if h == nil {
		return
	}
	cp := *h
	v.HostNoise = &cp
	if !h.Contended {
		return
	}
	for i := range v.Findings {
		fd := &v.Findings[i]
		if fd.Status != StatusFail || fd.Cause != CauseAssertion || !slices.Contains(hostSensitive, fd.Kind) {
			continue
		}
		fd.Status, fd.Cause = StatusInconclusive, CauseHostContention
		fd.Lines = append(fd.Lines, fmt.Sprintf("the vCPUs waited for a host CPU %.1f%% of their runnable time (worst vCPU %.1f%%), above the %g%% bound", h.StealPct, h.WorstStealPct, h.BoundPct))
		v.HostNoise.Demoted++
	}
}

// writeHostNoise is the text report's host line.
func writeHostNoise(b *strings.Builder, v Verdict) {
	h := v.HostNoise
	switch {
	case h == nil:
		return
	case h.Error != "":
		fmt.Fprintf(b, "host: no measurement: %s\n", sanitize.String(h.Error))
		return
	}
	fmt.Fprintf(b, "host: vCPU steal %.1f%% (worst vCPU %.1f%%)", h.StealPct, h.WorstStealPct)
	if h.PSISomePct != nil {
		fmt.Fprintf(b, ", host CPU pressure %.1f%%", *h.PSISomePct)
	}
	if h.Contended {
		fmt.Fprintf(b, ": above the %g%% bound, %d timing failures inconclusive\n", h.BoundPct, h.Demoted)
	} else {
		fmt.Fprintf(b, ", bound %g%%\n", h.BoundPct)
	}
}

func round1(x float64) float64 { return math.Round(x*10) / 10 }
