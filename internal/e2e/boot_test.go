package e2e

import (
	"os"
	"path/filepath"
	"strings"
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

// TestRunDirRemovedUnlessFailed: ktstr-run removes its run directory
// after a run that passed, keeps it (and says where) after one that did
// not, and keeps it on request. Host mode, so no VM is needed.
func TestRunDirRemovedUnlessFailed(t *testing.T) {
	if testing.Short() {
		t.Skip("pipeline test: skipped with -short")
	}
	buildTools(t)
	smoke := filepath.Join(repoRoot(t), "internal/e2e/testdata/host-smoke.json")
	for _, tc := range []struct {
		name   string
		env    []string
		args   []string
		status int
		kept   bool
	}{
		{"pass", nil, []string{"--scenario", smoke}, 0, false},
		{"fail", nil, []string{"--scenario", "fail"}, 1, true},
		{"keep", []string{"KTSTR_KEEP=1"}, []string{"--scenario", smoke}, 0, true},
		{"--keep", nil, []string{"--scenario", smoke, "--keep"}, 0, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tmp := t.TempDir()
			r := ktstrRun(t, "", append([]string{"TMPDIR=" + tmp}, tc.env...), append([]string{"--vmm", "host", "--timeout", "60s"}, tc.args...)...)
			if r.status != tc.status {
				t.Fatalf("status %d, want %d\nstdout:\n%s\nstderr:\n%s", r.status, tc.status, r.stdout, r.stderr)
			}
			left, _ := filepath.Glob(filepath.Join(tmp, "ktstr-run.*"))
			if tc.kept != (len(left) == 1) || len(left) > 1 {
				t.Fatalf("run directories left: %q, want kept=%v\nstderr:\n%s", left, tc.kept, r.stderr)
			}
			if tc.kept && !strings.Contains(r.stderr, "ktstr-run: run directory "+left[0]+" kept") {
				t.Errorf("ktstr-run did not say where the kept run directory is:\n%s", r.stderr)
			}
		})
	}
}
