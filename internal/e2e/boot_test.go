package e2e

import (
	"debug/elf"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
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
	if !passes(t, r.status, v) {
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

// TestRunEndsWithBootsUsageError: a ktstr-boot that fails before the VM
// starts (a scenario typo, a missing scheduler) ends ktstr-run at once
// with its own status and its one line. ktstr-run used to wait 60 s for
// the region and end with status 4 and "init script never started".
func TestRunEndsWithBootsUsageError(t *testing.T) {
	if testing.Short() {
		t.Skip("pipeline test: skipped with -short")
	}
	buildTools(t)
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--scenario", "stedy"}, `ktstr-boot: --scenario: unknown scenario "stedy"`},
		{[]string{"--scheduler", "/no/such/scx_simple"}, "ktstr-boot: --scheduler: open /no/such/scx_simple: no such file or directory"},
	} {
		t.Run(tc.args[0], func(t *testing.T) {
			tmp := t.TempDir()
			done := make(chan runResult, 1)
			go func() { done <- ktstrRun(t, "", []string{"TMPDIR=" + tmp}, tc.args...) }()
			var r runResult
			select {
			case r = <-done:
			case <-time.After(45 * time.Second): // a guard against the old 60 s wait, not a timing check
				t.Fatalf("ktstr-run %q still running after 45 s: it waits for a region ktstr-boot will never make", tc.args)
			}
			if r.status != 2 || !strings.Contains(r.stderr, tc.want) {
				t.Errorf("status %d, want ktstr-boot's 2 and %q\nstderr:\n%s", r.status, tc.want, r.stderr)
			}
			if strings.Contains(r.stderr, "init script never started") || r.stdout != "" {
				t.Errorf("ktstr-run went on to a verdict:\nstdout:\n%s\nstderr:\n%s", r.stdout, r.stderr)
			}
			if left, _ := filepath.Glob(filepath.Join(tmp, "*")); len(left) > 0 {
				t.Errorf("an empty run directory was left: %q", left)
			}
		})
	}
}

// plainBoot builds ktstr-boot the way a Go user would, `go build` with
// its defaults and cgo on (CGO_ENABLED=1 and a C compiler present), once.
func plainBoot(t *testing.T) string {
	t.Helper()
	if _, err := exec.LookPath("cc"); err != nil {
		t.Skip("no C compiler: cgo would be off and the build static anyway")
	}
	if plainBootPath != "" {
		return plainBootPath
	}
	dir := filepath.Join(binDir, "plain") // lives as long as the test binary
	cmd := exec.Command("go", "build", "-o", dir+"/", "./cmd/ktstr-boot")
	cmd.Dir = repoRoot(t)
	cmd.Env = append(os.Environ(), "CGO_ENABLED=1")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	plainBootPath = filepath.Join(dir, "ktstr-boot")
	return plainBootPath
}

var plainBootPath string

// TestPlainGoBuildIsStatic: ktstr-boot is /init in the guest, where there
// is no libc; a plain `go build` with cgo on must still give a static
// binary (no PT_INTERP). It used to link dynamically (the net package's
// cgo resolver, pulled in by the control socket).
func TestPlainGoBuildIsStatic(t *testing.T) {
	bin := plainBoot(t)
	f, err := elf.Open(bin)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			b := make([]byte, p.Filesz)
			p.ReadAt(b, 0)
			t.Fatalf("go build with CGO_ENABLED=1 gives a dynamic ktstr-boot (PT_INTERP %q)", strings.TrimRight(string(b), "\x00"))
		}
	}
}

// TestPlainGoBuildRunsToPass: that ktstr-boot, as the guest's /init, runs
// a scenario to PASS through the whole pipeline.
func TestPlainGoBuildRunsToPass(t *testing.T) {
	k := needVM(t)
	bin := plainBoot(t)
	dir := t.TempDir()
	for _, tool := range []string{"ktstr-drain", "ktstr-dispatch", "ktstr-verdict"} {
		if err := os.Symlink(filepath.Join(binDir, tool), filepath.Join(dir, tool)); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Symlink(bin, filepath.Join(dir, "ktstr-boot")); err != nil {
		t.Fatal(err)
	}
	r := ktstrRun(t, k, append([]string{"KTSTR_BIN=" + dir}, jsonVerdict...), "--scenario", "steady")
	v := parseVerdict(t, r.stdout)
	if !passes(t, r.status, v) {
		t.Fatalf("plain go build: status %d %s (%s: %s)\nstderr:\n%s", r.status, v.Runs[0].Status, v.Runs[0].Cause, v.Runs[0].Reason, r.stderr)
	}
}
