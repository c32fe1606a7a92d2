package e2e

import (
	"os"
	"path/filepath"
	"testing"
)

// TestQEMUCommaInRunDir: a run directory whose path has a comma (here
// through TMPDIR, where ktstr-run makes it) still boots under QEMU; the
// comma used to split QEMU's option lists.
func TestQEMUCommaInRunDir(t *testing.T) {
	k := needVM(t)
	tmp := filepath.Join(t.TempDir(), "a,b")
	if err := os.Mkdir(tmp, 0o700); err != nil {
		t.Fatal(err)
	}
	r := ktstrRun(t, k, append([]string{"TMPDIR=" + tmp}, jsonVerdict...), "--vmm", "qemu", "--scenario", "steady")
	v := parseVerdict(t, r.stdout)
	if r.status != 0 || v.Runs[0].Status != "PASS" {
		t.Fatalf("run dir with a comma: status %d %s (%s: %s)\nstderr:\n%s", r.status, v.Runs[0].Status, v.Runs[0].Cause, v.Runs[0].Reason, r.stderr)
	}
}
