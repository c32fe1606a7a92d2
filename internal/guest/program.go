package guest

import (
	"fmt"
	"os/exec"
	"strings"
	"syscall"
	"time"

	"github.com/ktstr-go/ktstr/internal/scenario"
	"golang.org/x/sys/unix"
)

// maxPayloadOutput bounds what is kept of a payload's output: its tail.
const maxPayloadOutput = 4096

// program is a payload program a scenario runs (run_payload).
type program struct {
	name   string
	cmd    *exec.Cmd
	out    *outTail
	done   chan struct{}
	status string // how it ended, once done
	code   int    // exit status, or 128+signal
	waited bool
}

// outTail keeps the last max bytes written to it.
type outTail struct {
	b   []byte
	max int
}

func (t *outTail) Write(p []byte) (int, error) {
	t.b = append(t.b, p...)
	if len(t.b) > t.max {
		t.b = append(t.b[:0], t.b[len(t.b)-t.max:]...)
	}
	return len(p), nil
}

// runPayload starts the op's program, in its cgroup when it names one.
func (s *scene) runPayload(op scenario.Op) error {
	cmd := exec.Command(op.Path, op.Args...)
	p := &program{name: op.Payload, cmd: cmd, out: &outTail{max: maxPayloadOutput}, done: make(chan struct{})}
	cmd.Stdout, cmd.Stderr = p.out, p.out
	// Its own process group, so that a kill reaches what it started; and
	// a child left holding its output does not hold up the wait.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.WaitDelay = time.Second
	if op.Cgroup != "" {
		c := s.byName[op.Cgroup]
		if c == nil || c.removed {
			return fmt.Errorf("no cgroup %q", op.Cgroup)
		}
		if c.group != nil {
			fd, err := unix.Open(c.group.Dir, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
			if err != nil {
				return fmt.Errorf("cgroup %s: %w", op.Cgroup, err)
			}
			defer unix.Close(fd)
			cmd.SysProcAttr.UseCgroupFD, cmd.SysProcAttr.CgroupFD = true, fd
		}
	}
	if err := cmd.Start(); err != nil {
		return err
	}
	if s.payloads == nil {
		s.payloads = map[string]*program{}
	}
	s.payloads[op.Payload] = p
	go func() {
		err := cmd.Wait()
		p.code, p.status = 0, "exited with status 0"
		if ps := cmd.ProcessState; ps != nil {
			ws, _ := ps.Sys().(syscall.WaitStatus)
			switch {
			case ws.Signaled():
				p.code, p.status = 128+int(ws.Signal()), "killed by "+unix.SignalName(ws.Signal())
			default:
				p.code, p.status = ps.ExitCode(), fmt.Sprintf("exited with status %d", ps.ExitCode())
			}
		} else if err != nil {
			p.code, p.status = -1, err.Error()
		}
		close(p.done)
	}()
	return nil
}

// waitPayload waits for the payload to end; its status and output tail
// become a note. A timeout, or a status other than the expected one,
// is an error.
func (s *scene) waitPayload(op scenario.Op) error {
	p := s.payloads[op.Payload]
	if p == nil {
		return fmt.Errorf("no payload %q", op.Payload)
	}
	d := time.Duration(op.TimeoutMS) * time.Millisecond
	if op.TimeoutMS == 0 {
		d = scenario.DefaultPayloadWaitMS * time.Millisecond
	}
	select {
	case <-p.done:
	case <-time.After(d):
		return fmt.Errorf("still running after %v", d)
	}
	p.waited = true
	s.notes = append(s.notes, p.note())
	if e := op.ExpectExit; e != nil && p.code != *e {
		return fmt.Errorf("%s, want status %d", p.status, *e)
	}
	return nil
}

func (p *program) note() string {
	out := strings.TrimSpace(string(p.out.b))
	if out == "" {
		return fmt.Sprintf("payload %s (%s): %s", p.name, p.cmd.Path, p.status)
	}
	return fmt.Sprintf("payload %s (%s): %s; output: %s", p.name, p.cmd.Path, p.status, out)
}

// killPayload signals the payload (default SIGKILL).
func (s *scene) killPayload(op scenario.Op) error {
	p := s.payloads[op.Payload]
	if p == nil {
		return fmt.Errorf("no payload %q", op.Payload)
	}
	sig := syscall.Signal(op.Signal)
	if sig == 0 {
		sig = syscall.SIGKILL
	}
	select {
	case <-p.done:
		return nil // already ended: nothing to signal
	default:
	}
	return unix.Kill(-p.cmd.Process.Pid, sig) // the payload's process group
}

// endPayloads kills the payloads still running at the scenario's end and
// notes the ones nobody waited for.
func (s *scene) endPayloads() {
	for _, p := range s.payloads {
		select {
		case <-p.done:
		default:
			unix.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
			select {
			case <-p.done:
			case <-time.After(3 * time.Second):
				s.notes = append(s.notes, fmt.Sprintf("payload %s (%s): not reaped 3 s after SIGKILL", p.name, p.cmd.Path))
				continue
			}
		}
		if !p.waited {
			s.notes = append(s.notes, p.note()+" (at the scenario's end)")
		}
	}
}
