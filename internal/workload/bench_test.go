package workload

import (
	"os"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

const exitNowEnv = "KTSTR_WORKLOAD_EXIT_NOW"

// BenchmarkForkExit is one fork_exit iteration as the worker does it: a
// bare clone(SIGCHLD) whose child calls exit_group at once, and wait4.
func BenchmarkForkExit(b *testing.B) {
	for b.Loop() {
		pid, errno := rawFork()
		if errno != 0 {
			b.Fatal(errno)
		}
		var ws unix.WaitStatus
		if _, err := unix.Wait4(pid, &ws, 0, nil); err != nil || ws.ExitStatus() != 0 {
			b.Fatalf("wait4(%d) = %v, status %v", pid, err, ws)
		}
	}
}

// BenchmarkForkExecSelf is the alternative fork_exit did not take:
// re-executing the (Go) binary in an exit-at-once mode.
func BenchmarkForkExecSelf(b *testing.B) {
	attr := &syscall.ProcAttr{Env: append(os.Environ(), exitNowEnv+"=1")}
	for b.Loop() {
		pid, err := syscall.ForkExec("/proc/self/exe", []string{"exit-now"}, attr)
		if err != nil {
			b.Fatal(err)
		}
		var ws unix.WaitStatus
		if _, err := unix.Wait4(pid, &ws, 0, nil); err != nil || ws.ExitStatus() != 0 {
			b.Fatalf("wait4(%d) = %v, status %v", pid, err, ws)
		}
	}
}

// BenchmarkSpawnStop is the cost of starting and stopping one worker.
func BenchmarkSpawnStop(b *testing.B) {
	for b.Loop() {
		g, err := Spawn(SpawnSpec{Work: Work{Type: Yield}, Count: 1})
		if err != nil {
			b.Fatal(err)
		}
		if _, err := g.Stop(10 * time.Second); err != nil {
			b.Fatal(err)
		}
	}
}
