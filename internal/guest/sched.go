package guest

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/ktstr-go/ktstr/lib/wire"
)

// sched_ext's sysfs interface.
const (
	scxState = "/sys/kernel/sched_ext/state"
	scxOps   = "/sys/kernel/sched_ext/root/ops"
)

// scheduler is a scheduler process under test.
type scheduler struct {
	name string
	cmd  *exec.Cmd
	died chan struct{} // closed when the process has exited
	code int32         // exit status, or 128+signal; valid once died is closed
	out  *schedOutput  // its output; out.done is closed when fully forwarded
}

// outputGrace bounds the wait for a scheduler's output to end after the
// process exited (a child it left behind may hold it open).
const outputGrace = 2 * time.Second

// startScheduler starts bin with args, forwarding its stdout (through a
// pseudo-terminal, so that stdio line-buffers it) and stderr (a pipe) as
// labelled, timestamped SCLG lines.
func startScheduler(send func(wire.Type, []byte), bin string, args []string) (*scheduler, error) {
	outR, outW, ptyErr := openPty()
	if ptyErr != nil {
		var err error
		if outR, outW, err = os.Pipe(); err != nil {
			return nil, err
		}
	}
	errR, errW, err := os.Pipe()
	if err != nil {
		outR.Close()
		outW.Close()
		return nil, err
	}
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = outW, errW
	cmd.Dir = "/tmp"
	err = cmd.Start()
	outW.Close()
	errW.Close()
	if err != nil {
		outR.Close()
		errR.Close()
		return nil, fmt.Errorf("start scheduler %s: %w", bin, err)
	}
	s := &scheduler{name: filepath.Base(bin), cmd: cmd, died: make(chan struct{}), out: newSchedOutput(send, nil)}
	if ptyErr != nil {
		s.out.note("stdout is a pipe, not a terminal (%v): stdio may hold its lines back until it flushes", ptyErr)
	}
	s.out.follow(streamStdout, outR)
	s.out.follow(streamStderr, errR)
	go func() {
		cmd.Wait() // the status is in ProcessState
		s.code = exitCode(cmd.ProcessState)
		close(s.died)
		s.out.close(outputGrace)
	}()
	return s, nil
}

// exitCode is the process's exit status, or 128+N when signal N killed
// it (the shell's convention; negative codes stay free for the errno
// values schedulers return).
func exitCode(ps *os.ProcessState) int32 {
	if ps == nil {
		return -1
	}
	if ws, ok := ps.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
		return 128 + int32(ws.Signal())
	}
	return int32(ps.ExitCode())
}

// Errors of waitAttached.
var (
	errSchedDied  = errors.New("scheduler exited before attaching")
	errNoSchedExt = errors.New("kernel has no sched_ext (no " + scxState + ")")
)

// waitAttached waits until sched_ext reports the scheduler enabled, up to
// timeout. On a kernel without sched_ext it settles for a short while and
// returns errNoSchedExt if the process is still alive.
func (s *scheduler) waitAttached(timeout time.Duration) (string, error) {
	deadline := time.Now().Add(timeout)
	pinned := map[int]bool{}
	for {
		pinEnableHelper(pinned)
		select {
		case <-s.died:
			return "", errSchedDied
		default:
		}
		state, err := os.ReadFile(scxState)
		if errors.Is(err, os.ErrNotExist) {
			select {
			case <-s.died:
				return "", errSchedDied
			case <-time.After(500 * time.Millisecond):
				return "", errNoSchedExt
			}
		}
		st := strings.TrimSpace(string(state))
		if st == "enabled" {
			ops, _ := os.ReadFile(scxOps)
			if name := strings.TrimSpace(string(ops)); name != "" {
				return name, nil
			}
		}
		if time.Now().After(deadline) {
			return "", fmt.Errorf("scheduler %s did not attach within %v (sched_ext state %q)", s.name, timeout, st)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// stop asks the scheduler to exit (SIGINT, as a user would), then kills
// it after grace, and waits for its output to be forwarded. why goes
// into its output before the signal, so that nobody reads its answer to
// the harness's signal as a failure of its own.
func (s *scheduler) stop(grace time.Duration, why string) {
	select {
	case <-s.died:
	default:
		s.out.note("sending SIGINT to %s: %s", s.name, why)
		s.cmd.Process.Signal(syscall.SIGINT)
		select {
		case <-s.died:
		case <-time.After(grace):
			s.cmd.Process.Kill()
			<-s.died
		}
	}
	select {
	case <-s.out.done:
	case <-time.After(grace + outputGrace):
	}
}

// kernelLog returns the tail of the kernel ring buffer (at most max bytes).
func kernelLog(max int) []byte {
	n, err := syscall.Klogctl(10, nil) // SYSLOG_ACTION_SIZE_BUFFER
	if err != nil || n <= 0 {
		return nil
	}
	buf := make([]byte, n)
	n, err = syscall.Klogctl(3, buf) // SYSLOG_ACTION_READ_ALL
	if err != nil || n <= 0 {
		return nil
	}
	buf = buf[:n]
	if len(buf) > max {
		buf = buf[len(buf)-max:]
		if i := strings.IndexByte(string(buf), '\n'); i >= 0 {
			buf = buf[i+1:]
		}
	}
	return buf
}

// pinEnableHelper pins sched_ext's enable helper kthread to CPU 0 while a
// scheduler attaches. On 6.12, ops.init() runs on that kthread and
// scx_central's init must run on CPU 0; pinning it made scx_central attach
// every time (sched-ext-notes). It is harmless for other schedulers.
func pinEnableHelper(done map[int]bool) {
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return
	}
	var set unix.CPUSet
	set.Set(0)
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || done[pid] {
			continue
		}
		comm, err := os.ReadFile("/proc/" + e.Name() + "/comm")
		if err != nil || !strings.HasPrefix(string(comm), "scx_ops_enable") {
			continue
		}
		done[pid] = true
		unix.SchedSetaffinity(pid, &set)
	}
}
