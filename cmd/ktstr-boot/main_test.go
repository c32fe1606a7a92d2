package main

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rogpeppe/go-internal/testscript"

	"github.com/ktstr-go/ktstr/internal/cache"
	"github.com/ktstr-go/ktstr/internal/clitest"
)

func TestMain(m *testing.M) {
	testscript.Main(m, map[string]func(){
		"ktstr-boot": main, // main, so that host-mode runs can re-execute it as their workers
	})
}

// TestScripts runs the CLI contract in testdata/*.txtar: usage errors
// are one line on stderr and status 2, nothing on stdout; runs that cannot
// start are status 4. Booting for real is the e2e package's job.
func TestScripts(t *testing.T) {
	// The scripts run this test binary as ktstr-boot; built with -race it
	// is dynamic, and ktstr-boot refuses a dynamic /init. Runs that go as
	// far as the backend pack a static build of ktstr-boot instead.
	init := filepath.Join(t.TempDir(), "ktstr-boot")
	build := exec.Command("go", "build", "-o", init, ".")
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	testscript.Run(t, testscript.Params{
		Setup: func(e *testscript.Env) error {
			e.Setenv("KTSTR_INIT", init)
			return nil
		},
		Dir:                 "testdata",
		RequireExplicitExec: true,
		Cmds:                map[string]func(ts *testscript.TestScript, neg bool, args []string){"status": clitest.Status, "closedstdout": clitest.ClosedStdout},
		Condition:           clitest.Condition,
	})
}

// TestSchedulerNeedsSchedExt: a --scheduler with a kernel built without
// sched_ext (Debian's cloud kernel, whose config-VERSION file says so) is
// a usage error naming the missing option, before anything boots.
func TestSchedulerNeedsSchedExt(t *testing.T) {
	c, err := cache.Dir()
	if err != nil {
		t.Skipf("no cache directory: %v", err)
	}
	k := filepath.Join(c, "debian", "vmlinuz")
	if _, err := os.Stat(k); err != nil {
		t.Skip("no Debian kernel cached (scripts/fetch-kernel)")
	}
	var stdout, stderr bytes.Buffer
	dir := filepath.Join(t.TempDir(), "r")
	code := run([]string{"ktstr-boot", "--kernel", k, "--scheduler", "/bin/true", "--run-dir", dir, "--timeout", "5s"}, nil, &stdout, &stderr)
	if code != 2 || stdout.Len() != 0 || !strings.Contains(stderr.String(), "CONFIG_SCHED_CLASS_EXT is not set") ||
		strings.Count(stderr.String(), "\n") != 1 {
		t.Fatalf("status %d, stdout %q, stderr %q; want 2 and one line naming CONFIG_SCHED_CLASS_EXT", code, stdout.String(), stderr.String())
	}
	if _, err := os.Stat(dir); err == nil {
		t.Error("the run directory was made")
	}
}
