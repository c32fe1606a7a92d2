package vmm

import (
	"errors"
	"io/fs"
	"os"
	"testing"

	"github.com/ktstr-go/ktstr/internal/scenario"
)

// TestNestedScenario loads scripts/test-own-vmm's default scenario the
// way ktstr-boot does, so a change to the scenario format cannot leave
// it behind unnoticed.
func TestNestedScenario(t *testing.T) {
	const path = "testdata/nested-llc.json"
	if _, err := os.Stat(path); errors.Is(err, fs.ErrNotExist) {
		t.Skipf("no %s here (the test binary runs away from its source, as under make test-nested)", path)
	}
	s, _, err := scenario.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	if len(s.Cgroups) != 1 || s.Cgroups[0].Each != "llc" || s.Checks.MaxCrossLLCRatio == nil || *s.Checks.MaxCrossLLCRatio != 0 {
		t.Errorf("nested-llc: %+v, want one cgroup per LLC with no cross-LLC migrations allowed", s)
	}
}
