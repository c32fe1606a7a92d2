package e2e

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/ktstr-go/ktstr/internal/scenario"
)

// TestVMCannedShapesCoverEveryRequirement: every canned scenario with
// requires has a shape in cannedShapes, and that shape meets them (else
// TestVMCannedScenarios would see a skip, not a pass).
func TestVMCannedShapesCoverEveryRequirement(t *testing.T) {
	for _, name := range scenario.Names() {
		s, _, err := scenario.Load(name)
		if err != nil {
			t.Fatal(err)
		}
		if s.Requires == (scenario.Requires{}) {
			continue
		}
		if _, ok := cannedShapes[name]; !ok {
			t.Errorf("canned scenario %s has requirements %+v and no shape in cannedShapes", name, s.Requires)
		}
	}
}

// TestVMTopologyLLCGroups: on 1,2,2,2 the guest's LLC groups are the
// two sockets QEMU was given, SMT siblings in each.
func TestVMTopologyLLCGroups(t *testing.T) {
	k := needVM(t)
	r := ktstrRun(t, k, jsonVerdict, "--topology", "1,2,2,2", "--scenario", "smt-siblings")
	v := parseVerdict(t, r.stdout)
	if !passes(t, r.status, v) {
		t.Fatalf("smt-siblings on 1,2,2,2: status %d %s (%s)\n%s", r.status, v.Runs[0].Status, v.Runs[0].Reason, r.stderr)
	}
	m := v.Runs[0].Result.Machine
	if d := cmp.Diff([]string{"0-3", "4-7"}, m.LLCs); d != "" {
		t.Errorf("LLC groups (-want +got):\n%s", d)
	}
}

// TestVMTopologySkip: a scenario that needs SMT skips on a machine
// without it, naming why: neither a pass nor a failure.
func TestVMTopologySkip(t *testing.T) {
	k := needVM(t)
	r := ktstrRun(t, k, jsonVerdict, "--topology", "1,1,4,1", "--scenario", "smt-siblings")
	v := parseVerdict(t, r.stdout)
	if r.status != 0 || v.Runs[0].Status != "SKIP" || !strings.Contains(v.Runs[0].Reason, "needs SMT") {
		t.Fatalf("smt-siblings on 1,1,4,1: status %d %s (%s), want 0 SKIP saying it needs SMT\n%s", r.status, v.Runs[0].Status, v.Runs[0].Reason, r.stderr)
	}
}

// TestVMWrongShapeIsAnInfrastructureError: a guest that does not get the
// shape it was given (here the kernel brings up only 4 of 8 CPUs) never
// passes: the run is an infrastructure error naming the difference.
func TestVMWrongShapeIsAnInfrastructureError(t *testing.T) {
	k := needVM(t)
	r := ktstrRun(t, k, jsonVerdict, "--topology", "1,2,2,2", "--append", "maxcpus=4", "--scenario", "steady")
	v := parseVerdict(t, r.stdout)
	if r.status != 4 || v.Runs[0].Status != "ERROR" || !strings.Contains(v.Runs[0].Reason, "wrong machine shape: asked for 1,2,2,2 (8 vCPUs), the guest has CPUs") {
		t.Fatalf("maxcpus=4 on 1,2,2,2: status %d %s (%s), want 4 ERROR naming the wrong shape\n%s", r.status, v.Runs[0].Status, v.Runs[0].Reason, r.stderr)
	}
}
