package drain

import (
	"os"
	"os/exec"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/ktstr-go/ktstr/lib/shm"
)

// TestBootWatchNotFooledByPid: a ktstr-boot that has exited but whose pid
// still resolves (a zombie its parent has not reaped yet, or a new
// process that reused the pid) is gone. kill(pid, 0) says alive for
// both; the watch holds the process itself, not its number.
func TestBootWatchNotFooledByPid(t *testing.T) {
	cmd := exec.Command("sleep", "60")
	if err := cmd.Start(); err != nil {
		t.Skipf("cannot start sleep: %v", err)
	}
	defer cmd.Wait()
	start, err := shm.ProcessStart(cmd.Process.Pid)
	if err != nil {
		t.Fatal(err)
	}
	alive, release := BootWatch(cmd.Process.Pid, start)
	defer release()
	if !alive() {
		t.Fatal("alive() = false for a running process")
	}
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	// Not reaped: the pid still resolves. Wait until the kernel has
	// made it a zombie (waitid with WNOWAIT leaves it one).
	var info unix.Siginfo
	if err := unix.Waitid(unix.P_PID, cmd.Process.Pid, &info, unix.WEXITED|unix.WNOWAIT, nil); err != nil {
		t.Fatalf("waitid: %v", err)
	}
	if syscall.Kill(cmd.Process.Pid, 0) != nil {
		t.Fatal("the zombie's pid does not resolve; the test cannot tell the two checks apart")
	}
	if alive() {
		t.Error("alive() = true for a process that has exited (its pid still resolves)")
	}
}

// TestBootWatchPidReused: the region names its ktstr-boot by pid and start
// time; a live process with that pid but another start time is a new
// process that reused the number, and the ktstr-boot is gone.
func TestBootWatchPidReused(t *testing.T) {
	cmd := exec.Command("sleep", "60")
	if err := cmd.Start(); err != nil {
		t.Skipf("cannot start sleep: %v", err)
	}
	defer func() { cmd.Process.Kill(); cmd.Wait() }()
	start, err := shm.ProcessStart(cmd.Process.Pid)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		start uint64
		alive bool
	}{{start, true}, {0, true}, {start - 1, false}, {start + 1, false}} {
		alive, release := BootWatch(cmd.Process.Pid, tc.start)
		if got := alive(); got != tc.alive {
			t.Errorf("BootWatch(pid, start %d) for a process started at %d: alive() = %v, want %v", tc.start, start, got, tc.alive)
		}
		release()
	}
}

func TestProcessStart(t *testing.T) {
	self, err := shm.ProcessStart(os.Getpid())
	if err != nil || self == 0 {
		t.Fatalf("ProcessStart(self) = %d, %v", self, err)
	}
	cmd := exec.Command("sleep", "60")
	if err := cmd.Start(); err != nil {
		t.Skipf("cannot start sleep: %v", err)
	}
	defer func() { cmd.Process.Kill(); cmd.Wait() }()
	child, err := shm.ProcessStart(cmd.Process.Pid)
	if err != nil || child < self {
		t.Errorf("ProcessStart(child) = %d, %v; want at least the parent's %d", child, err, self)
	}
	if _, err := shm.ProcessStart(-5); err == nil {
		t.Error("ProcessStart(-5): no error")
	}
}
