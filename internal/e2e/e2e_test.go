// Package e2e runs the whole pipeline against a real VM: ktstr-boot boots
// a real kernel under QEMU, and ktstr-drain | ktstr-dispatch |
// ktstr-verdict turn the guest's frames into a verdict. The tests skip,
// with the reason, only where QEMU or a kernel is missing.
package e2e

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"testing"

	"github.com/ktstr-go/ktstr/internal/boot"
)

var binDir string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "ktstr-e2e-bin-")
	if err != nil {
		panic(err)
	}
	binDir = dir
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// repoRoot is the module root, two levels above this package.
func repoRoot(t testing.TB) string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..")
}

var built bool

// buildTools builds the four binaries once, statically (the guest runs
// ktstr-boot as /init with no libc), and the tests' scheduler wrapper
// (testdata/schedwrap).
func buildTools(t testing.TB) {
	t.Helper()
	if built {
		return
	}
	cmd := exec.Command("go", "build", "-trimpath", "-o", binDir+"/",
		"./cmd/ktstr-boot", "./cmd/ktstr-drain", "./cmd/ktstr-dispatch", "./cmd/ktstr-verdict", "./cmd/ktstr-matrix", "./cmd/ktstr-compare", "./internal/e2e/testdata/schedwrap")
	cmd.Dir = repoRoot(t)
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	built = true
}

// needVM skips unless QEMU and a kernel are available, and returns the
// kernel.
func needVM(t testing.TB) string {
	t.Helper()
	if testing.Short() {
		t.Skip("real VM test: skipped with -short")
	}
	if _, err := exec.LookPath("qemu-system-x86_64"); err != nil {
		t.Skip("qemu-system-x86_64 not installed (make deps installs it)")
	}
	k, err := boot.DefaultKernel()
	if err != nil {
		t.Skipf("no kernel: %v (make deps fetches Debian's)", err)
	}
	buildTools(t)
	return k
}

type runResult struct {
	status int
	stdout string
	stderr string
}

// ktstrRun runs scripts/ktstr-run with the given ktstr-boot arguments.
// Its run directory goes under the test's own TMPDIR (env may set
// another), so one a failed run keeps is removed with the test.
func ktstrRun(t testing.TB, kernel string, env []string, args ...string) runResult {
	t.Helper()
	cmd := exec.Command(filepath.Join(repoRoot(t), "scripts", "ktstr-run"), args...)
	cmd.Env = append(os.Environ(), append([]string{"KTSTR_BIN=" + binDir, "KTSTR_KERNEL=" + kernel, "TMPDIR=" + t.TempDir()}, env...)...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	return runResult{exitStatus(t, cmd.Run()), out.String(), errb.String()}
}

// exitStatus is the status of a command that ran, from its Run or Wait
// error; an error that is not an exit status fails the test.
func exitStatus(t testing.TB, err error) int {
	t.Helper()
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return ee.ExitCode()
	}
	if err != nil {
		t.Fatal(err)
	}
	return 0
}

func TestPipelinePasses(t *testing.T) {
	k := needVM(t)
	r := ktstrRun(t, k, nil, "--scenario", "steady")
	contended := r.status == 3 && strings.HasPrefix(r.stdout, "INCONCLUSIVE run: host contention: ") // a host too loaded to judge timing
	if contended {
		t.Logf("inconclusive, host contention:\n%s", r.stdout)
	}
	if !contended && (r.status != 0 || !strings.HasPrefix(r.stdout, "PASS ")) {
		t.Fatalf("steady: status %d, want 0 and PASS\nstdout:\n%s\nstderr:\n%s", r.status, r.stdout, r.stderr)
	}
	for _, want := range []string{"vm: poweroff", "exit_code=0", "step 1:"} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("report lacks %q:\n%s", want, r.stdout)
		}
	}
	// Per-step iterations and rate: workers publish their progress while
	// they run.
	if !regexp.MustCompile(`(?m)^step 1: .* iterations=[1-9][0-9]* \([0-9.]+/s\)$`).MatchString(r.stdout) {
		t.Errorf("step 1 has no iterations and rate in the timeline:\n%s", r.stdout)
	}
	if !strings.Contains(r.stderr, "backend: qemu") {
		t.Errorf("ktstr-boot did not name its backend on stderr:\n%s", r.stderr)
	}
}

func TestPipelineFailsOnPurpose(t *testing.T) {
	k := needVM(t)
	r := ktstrRun(t, k, nil, "--scenario", "fail")
	if r.status != 1 || !strings.HasPrefix(r.stdout, "FAIL ") || !strings.Contains(r.stdout, "fails on purpose") {
		t.Fatalf("fail: status %d, want 1 and FAIL\nstdout:\n%s\nstderr:\n%s", r.status, r.stdout, r.stderr)
	}
}

// TestRecordingReplays records the raw frames of a run and replays them
// through ktstr-dispatch | ktstr-verdict: the same verdict, byte for byte
// in JSON.
func TestRecordingReplays(t *testing.T) {
	k := needVM(t)
	rec := filepath.Join(t.TempDir(), "run.frames")
	live := ktstrRun(t, k, []string{"KTSTR_RECORD=" + rec, "KTSTR_VERDICT_ARGS=--format json"}, "--scenario", "fail")
	if live.status != 1 {
		t.Fatalf("live run: status %d, want 1\n%s\n%s", live.status, live.stdout, live.stderr)
	}
	replay := func() (string, int) {
		cmd := exec.Command("sh", "-c", `"$B/ktstr-dispatch" --quiet < "$R" | "$B/ktstr-verdict" --require-end --console "$R.consoles/console.log" --console "$R.consoles/com2.log" --noise "$R.consoles/noise.json" --format json`)
		cmd.Env = append(os.Environ(), "B="+binDir, "R="+rec)
		out, err := cmd.Output()
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			return string(out), ee.ExitCode()
		}
		if err != nil {
			t.Fatal(err)
		}
		return string(out), 0
	}
	a, sa := replay()
	b, sb := replay()
	if sa != 1 || sb != 1 {
		t.Fatalf("replay statuses %d, %d, want 1", sa, sb)
	}
	if a != b {
		t.Fatalf("two replays differ:\n%s\n---\n%s", a, b)
	}
	if a != live.stdout {
		t.Fatalf("replay differs from the live verdict:\nlive:\n%s\nreplay:\n%s", live.stdout, a)
	}
	// The recording begins with ktstr-drain's HELO, so its trailer was
	// checked against the run's nonce.
	if !strings.Contains(a, `"host_nonce": true`) || !strings.Contains(a, `"vm_end"`) {
		t.Errorf("the report does not show a VEND checked against the run's nonce:\n%s", a)
	}
}
