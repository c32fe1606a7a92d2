package scenario

import (
	"encoding/json"
	"testing"

	"github.com/ktstr-go/ktstr/internal/topology"
)

// FuzzParse: any bytes either fail with a *scenario.Error or give a
// scenario that validates again, whose cpusets resolve (or fail) without
// a panic, and that survives a JSON round trip unchanged in meaning.
func FuzzParse(f *testing.F) {
	for _, n := range Names() {
		b, _ := Canned(n)
		f.Add(b)
	}
	f.Add([]byte(`{"name":"x","cgroups":[{"name":"a","cpuset":"overlap:1/3","pin":"0-1","work":{"type":"spin"}}],"steps":[{"hold_ms":1,"ops":[{"op":"kill_scheduler"}]}]}`))
	topo := topology.Topology{Nodes: 1, LLCs: 2, Cores: 2, Threads: 1}.Ideal(512)
	f.Fuzz(func(t *testing.T, b []byte) {
		s, err := Parse(b)
		if err != nil {
			if _, ok := err.(*Error); !ok {
				t.Fatalf("Parse error %T %v, want *scenario.Error", err, err)
			}
			return
		}
		if err := s.Validate(); err != nil {
			t.Fatalf("accepted scenario does not validate again: %v", err)
		}
		for _, c := range s.Cgroups {
			for _, cs := range []CpusetSpec{c.Cpuset, c.Pin} {
				spec := cs.String()
				if again, err := ParseCpuset(spec); err != nil || again.String() != spec {
					t.Fatalf("accepted cpuset %+v prints as %q, which parses as %+v, %v", cs, spec, again, err)
				}
				if cpus, err := cs.Resolve(topo); err == nil {
					for _, x := range cpus {
						if x < 0 || x > 3 {
							t.Fatalf("Resolve(%q) = %v: CPU %d is not online", spec, cpus, x)
						}
					}
				}
			}
		}
		again, err := json.Marshal(s)
		if err != nil {
			t.Fatal(err)
		}
		s2, err := Parse(again)
		if err != nil {
			t.Fatalf("re-encoded scenario does not parse: %v\n%s", err, again)
		}
		if s2.Duration() != s.Duration() || len(s2.Cgroups) != len(s.Cgroups) {
			t.Fatalf("round trip changed the scenario:\n%s", again)
		}
	})
}
