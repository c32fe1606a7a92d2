package e2e

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// bootExec runs ktstr-boot --exec CMD on QEMU and returns its status,
// stdout and stderr.
func bootExec(t *testing.T, kernel string, args ...string) runResult {
	t.Helper()
	cmd := exec.Command(filepath.Join(binDir, "ktstr-boot"), append([]string{"--vmm", "qemu", "--kernel", kernel}, args...)...)
	cmd.Env = append(os.Environ(), "TMPDIR="+t.TempDir())
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	return runResult{exitStatus(t, cmd.Run()), out.String(), errb.String()}
}

// TestExec: ktstr-boot --exec runs one command in the guest; its output
// comes back on stdout as it wrote it (stdout and stderr, no CR added),
// and its exit status is ktstr-boot's, a failing one included. The
// program (sh) is the host's, packed with its libraries.
func TestExec(t *testing.T) {
	k := needVM(t)
	for _, tc := range []struct {
		cmd    string
		status int
		stdout string
	}{
		{`sh -c 'echo "out put"; echo err >&2; exit 3'`, 3, "out put\nerr\n"},
		{`echo hello 'big world'`, 0, "hello big world\n"},
	} {
		r := bootExec(t, k, "--exec", tc.cmd)
		if r.status != tc.status || r.stdout != tc.stdout {
			t.Errorf("--exec %s: status %d, stdout %q; want %d, %q\nstderr:\n%s", tc.cmd, r.status, r.stdout, tc.status, tc.stdout, r.stderr)
		}
	}
}

// TestExecWithScheduler: the scheduler attaches before the command runs
// (the command sees it enabled), and its output comes on stderr.
func TestExecWithScheduler(t *testing.T) {
	k, dir := needSched(t)
	r := bootExec(t, k, "--scheduler", filepath.Join(dir, "scx_simple"), "--exec", "cat /sys/kernel/sched_ext/state /sys/kernel/sched_ext/root/ops")
	if r.status != 0 || r.stdout != "enabled\nsimple\n" {
		t.Errorf("status %d, stdout %q; want 0, \"enabled\\nsimple\\n\"\nstderr:\n%s", r.status, r.stdout, r.stderr)
	}
	if !strings.Contains(r.stderr, "EXIT: unregistered from user space") {
		t.Errorf("the scheduler's output is not on stderr:\n%s", r.stderr)
	}
}
