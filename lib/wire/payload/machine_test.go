package payload

import (
	"bytes"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// TestMachineRoundTrip: the machine shape survives a TEST round trip, and
// a result without one encodes no "machine" key at all (older results
// stay byte-identical).
func TestMachineRoundTrip(t *testing.T) {
	r := &AssertResult{Scenario: "steady", Outcomes: []Outcome{},
		Machine: &Machine{Shape: "2,2,2,1", CPUs: 4, LLCs: []string{"0-1", "2-3"}, Nodes: []string{"0-1", "2-3"}}}
	p, err := MarshalAssertResult(r)
	if err != nil {
		t.Fatal(err)
	}
	got, err := UnmarshalAssertResult(p)
	if err != nil {
		t.Fatalf("UnmarshalAssertResult: %v", err)
	}
	if d := cmp.Diff(r.Machine, got.Machine); d != "" {
		t.Errorf("machine (-want +got):\n%s", d)
	}
	p, err = MarshalAssertResult(&AssertResult{Outcomes: []Outcome{}})
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(p, []byte("machine")) {
		t.Errorf("a result without a machine encodes the key: %q", p)
	}
}
