package payload

import (
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
)

func TestHostPayloadsRoundTrip(t *testing.T) {
	d := &HostDump{Path: "/run/failure-dump.json", Reason: "scheduler died", Summary: []string{"CPU 0: running init[1]"}, StuckCPU: -1}
	b, err := MarshalHostDump(d)
	if err != nil {
		t.Fatal(err)
	}
	got, err := UnmarshalHostDump(b)
	if err != nil || !cmp.Equal(d, got) {
		t.Errorf("HostDump round trip = %+v, %v; want %+v", got, err, d)
	}
	m := &Monitor{IntervalMS: 100, Thresholds: MonitorThresholds{MaxImbalanceRatio: 4, MaxLocalDSQDepth: 50, FailOnRQClockStuck: true, SustainedSamples: 5},
		Samples: []MonitorSample{{TMS: 100, CPUs: [][]uint64{{1, 0, 123}, {}}}}}
	b, err = MarshalMonitor(m)
	if err != nil {
		t.Fatal(err)
	}
	gm, err := UnmarshalMonitor(b)
	if err != nil || !cmp.Equal(m, gm, cmpopts.EquateEmpty()) {
		t.Errorf("Monitor round trip = %+v, %v; want %+v", gm, err, m)
	}
	if _, err := UnmarshalHostDump([]byte{0x80}); err == nil {
		t.Error("HostDump without path: no error")
	}
	if _, err := UnmarshalMonitor([]byte{0x81, 0xa1, 'x', 0x01}); err == nil {
		t.Error("Monitor without samples: no error")
	}
}
