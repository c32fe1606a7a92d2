package payload

import (
	"testing"

	"github.com/ktstr-go/ktstr/lib/wire"
)

// The host block's payloads (HDMP, HMON) join the codec table, so that
// the round-trip test and the fuzz targets cover them as every other
// structured payload: a guest can forge them.
func init() {
	codecs["HDMP"] = codec{wire.TypeHostDump,
		&HostDump{Path: "failure-dump.json", Reason: "watchdog", Summary: []string{"cpu0: swapper", "cpu1: worker"}, StuckCPU: -1},
		func(p []byte) (any, error) { return UnmarshalHostDump(p) },
		func(v any) ([]byte, error) { return MarshalHostDump(v.(*HostDump)) }}
	codecs["HMON"] = codec{wire.TypeMonitor,
		&Monitor{IntervalMS: 100, Thresholds: MonitorThresholds{MaxImbalanceRatio: 4, MaxLocalDSQDepth: 50, FailOnRQClockStuck: true, SustainedSamples: 3},
			Samples: []MonitorSample{{TMS: 1200, CPUs: [][]uint64{{1, 0, 1 << 40}, {3, 2, 1<<40 + 5}}}}},
		func(p []byte) (any, error) { return UnmarshalMonitor(p) },
		func(v any) ([]byte, error) { return MarshalMonitor(v.(*Monitor)) }}
}

func FuzzHostDump(f *testing.F) { fuzzCodec(f, "HDMP") }
func FuzzMonitor(f *testing.F)  { fuzzCodec(f, "HMON") }
