package e2e

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// lockedBuffer is a bytes.Buffer a command writes while the test reads.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

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

// TestShell: ktstr-boot --shell gives a shell on the second serial port
// through QEMU's stdio: what is typed runs in the guest (busybox's
// applets installed when the host has busybox), and the shell's exit
// status is ktstr-boot's. Here the "terminal" is a pipe, which QEMU
// reads the same way.
func TestShell(t *testing.T) {
	k := needVM(t)
	cmd := exec.Command(filepath.Join(binDir, "ktstr-boot"), "--vmm", "qemu", "--kernel", k, "--shell")
	cmd.Env = append(os.Environ(), "TMPDIR="+t.TempDir())
	pr, pw, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stdin = pr
	var out lockedBuffer
	var errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	pr.Close()
	// Typed once the shell is up: what comes before, the tty echoes and
	// the shell never reads.
	for deadline := time.Now().Add(3 * time.Minute); !strings.Contains(out.String(), "ktstr# ") && time.Now().Before(deadline); {
		time.Sleep(50 * time.Millisecond)
	}
	pw.WriteString("echo answer=$((6*7)); cat /sys/kernel/sched_ext/state; exit 7\n")
	status := exitStatus(t, cmd.Wait())
	pw.Close()
	if status != 7 || !strings.Contains(out.String(), "answer=42") {
		t.Errorf("status %d, want 7 and answer=42 in the output\nstdout:\n%s\nstderr:\n%s", status, out.String(), errb.String())
	}
}

// TestExecMachines: --machine picks QEMU's machine type, and the agent
// finds the shared region on each (the command's output comes back
// through it): microvm's PCIe host bridge (1b36:0008, a GPEX behind ECAM)
// by default for one node, the i440FX host bridge (8086:1237) with
// --machine pc, and pc for two NUMA nodes under auto, whose guest sees
// both nodes (microvm has no SRAT).
func TestExecMachines(t *testing.T) {
	k := needVM(t)
	// Shell builtins only: the guest has sh (packed as the command) and
	// no cat.
	bridges := `for d in /sys/bus/pci/devices/*; do read v < $d/vendor; read i < $d/device; echo $v:$i; done; read n < /sys/devices/system/node/online; echo $n`
	for _, tc := range []struct {
		name  string
		args  []string
		want  string // the first PCI devices
		nodes string // the nodes online, the last line
	}{
		{"auto, one node", nil, "0x1b36:0x0008\n0x1af4:0x1110\n", "0"},
		{"pc, one node", []string{"--machine", "pc"}, "0x8086:0x1237\n", "0"},
		{"auto, two nodes", []string{"--topology", "2,2,1,1"}, "0x8086:0x1237\n", "0-1"},
	} {
		r := bootExec(t, k, append(tc.args, "--exec", "sh -c '"+bridges+"'")...)
		if r.status != 0 || !strings.HasPrefix(r.stdout, tc.want) || !strings.HasSuffix(r.stdout, "\n"+tc.nodes+"\n") {
			t.Errorf("%s: status %d, stdout %q; want 0, output starting %q and ending with nodes %s\nstderr:\n%s", tc.name, r.status, r.stdout, tc.want, tc.nodes, r.stderr)
		}
	}
}
