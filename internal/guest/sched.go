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

	"github.com/ktstr-go/ktstr/internal/schedlog"
	"github.com/ktstr-go/ktstr/lib/wire"
)

// scheduler is a scheduler process under test.
type scheduler struct {
	name string
	cmd  *exec.Cmd
	died chan struct{} // closed when the process has exited
	code int32         // exit status, or 128+signal; valid once died is closed
	out  *schedOutput  // its output; out.done is closed when fully forwarded
	// seqBefore is sched_ext's enable_seq read before the process
	// started (-1: not known, or the kernel has none): waitAttached takes
	// an attach for this scheduler's only once enable_seq has moved past
	// it.
	seqBefore int64
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
	seqBefore := int64(-1) // sched_ext's enable_seq before it starts (waitAttached)
	if snap, err := scxFS(scxDir).read(); err == nil {
		seqBefore = snap.Seq
	}
	err = cmd.Start()
	outW.Close()
	errW.Close()
	if err != nil {
		outR.Close()
		errR.Close()
		return nil, fmt.Errorf("start scheduler %s: %w", bin, err)
	}
	s := &scheduler{name: filepath.Base(bin), cmd: cmd, died: make(chan struct{}), out: newSchedOutput(send, nil), seqBefore: seqBefore}
	if ptyErr != nil {
		s.out.note("stdout is a pipe, not a terminal (%v): stdio may hold its lines back until it flushes", ptyErr)
	}
	s.out.follow(schedlog.Stdout, outR)
	s.out.follow(schedlog.Stderr, errR)
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
	errNoSchedExt = errors.New("kernel has no sched_ext (no " + scxDir + "/state)")
)

// notAttachedError is a scheduler that is alive but did not attach in
// time: still initialising, as far as anyone can tell (scx_pair needs
// about a minute under software emulation).
type notAttachedError struct {
	name    string
	timeout time.Duration
	state   string   // sched_ext's state at the deadline
	last    []string // its last output lines
}

func (e *notAttachedError) Error() string {
	out := "no output yet"
	if len(e.last) > 0 {
		q := make([]string, len(e.last))
		for i, l := range e.last {
			if len(l) > 200 {
				l = strings.ToValidUTF8(l[:200], "") + "..."
			}
			q[i] = strconv.Quote(l)
		}
		out = "its last output: " + strings.Join(q, " ")
	}
	return fmt.Sprintf("scheduler %s: not attached within %v, still initialising (%s; sched_ext state %s); raise --attach-timeout",
		e.name, e.timeout, out, e.state)
}

// pollEvery is how often the agent reads sched_ext's state.
const pollEvery = 20 * time.Millisecond

// waitAttached waits until sched_ext reports a scheduler attached, up to
// timeout, and returns the reading that says so. On a kernel without
// sched_ext it settles for a short while and returns errNoSchedExt if
// the process is still alive; past the timeout, a *notAttachedError.
func (s *scheduler) waitAttached(fs scxFS, timeout time.Duration) (scxSnap, error) {
	deadline := time.Now().Add(timeout)
	pinned := map[int]bool{}
	for {
		if fs == scxDir {
			pinEnableHelper(pinned)
		}
		select {
		case <-s.died:
			return scxSnap{}, errSchedDied
		default:
		}
		snap, err := fs.read()
		if errors.Is(err, os.ErrNotExist) {
			select {
			case <-s.died:
				return scxSnap{}, errSchedDied
			case <-time.After(500 * time.Millisecond):
				return scxSnap{}, errNoSchedExt
			}
		}
		if snap.attached() {
			switch {
			case s.seqBefore >= 0 && snap.Seq >= 0:
				// The kernel bumps enable_seq last, after the state turned
				// enabled and the "enabled" line was logged: under
				// emulation that can be tens of milliseconds later. The
				// attach is this scheduler's once the number moved.
				if snap.Seq > s.seqBefore {
					return snap, nil
				}
			default:
				// No number to wait for: read again one poll later.
				time.Sleep(pollEvery)
				if again, _ := fs.read(); again.attached() && again.Ops == snap.Ops {
					return again, nil
				}
				continue
			}
		}
		if time.Now().After(deadline) {
			return scxSnap{}, &notAttachedError{name: s.name, timeout: timeout, state: snap.State, last: s.out.recentOutput()}
		}
		time.Sleep(pollEvery)
	}
}

// Default attach timeouts: on hardware virtualisation (and the host),
// and under software emulation, where loading a scheduler (the BPF
// verifier above all) is tens of times slower: scx_pair took 59 s under
// QEMU's TCG. 90 s leaves a canned scenario room within ktstr-boot's
// default 120 s watchdog.
const (
	attachTimeoutHW        = 30 * time.Second
	attachTimeoutEmulation = 90 * time.Second
)

// defaultAttachTimeout picks the attach timeout when none is configured,
// and says why.
func defaultAttachTimeout(host bool) (time.Duration, string) {
	switch {
	case host:
		return attachTimeoutHW, "on the host"
	case hardwareVirt():
		return attachTimeoutHW, "hardware virtualisation (KVM)"
	}
	return attachTimeoutEmulation, "software emulation"
}

// hardwareVirt reports whether this guest runs under KVM: the kernel
// found KVM's CPUID signature (it logs "Hypervisor detected: KVM" and
// offers kvm-clock). QEMU's software emulation has no such signature.
func hardwareVirt() bool {
	b, _ := os.ReadFile("/sys/devices/system/clocksource/clocksource0/available_clocksource")
	return strings.Contains(string(b), "kvm-clock") || strings.Contains(string(kernelLog(1<<20)), "Hypervisor detected: KVM")
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
