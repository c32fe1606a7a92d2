package guest

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/ktstr-go/ktstr/lib/shm"
	"github.com/ktstr-go/ktstr/lib/wire"
)

// Exit codes of a command the agent could not run, as a shell gives
// them (ktstr-boot --exec returns them like the command's own).
const (
	ExecNotRun   = 125 // the scheduler did not start or attach: the command was not run
	ExecNoStart  = 126 // the command exists but could not be started
	ExecNotFound = 127 // no such command in the guest
)

// commandTTY is the second serial port: the command's output (and, with
// Shell, its terminal).
const commandTTY = "/dev/ttyS1"

// runExec runs the configured command instead of a scenario
// (ktstr-boot --exec, --shell): the scheduler, if any, is started and
// must attach first, as for a scenario; the command runs with COM2 as
// its output (and its terminal with Shell); then the scheduler is
// stopped and the command's exit status goes out as the EXIT frame. The
// scheduler's output is forwarded as always (SCLG), for ktstr-boot to
// show beside the command's.
func (a *agent) runExec() {
	a.send(wire.TypeSysRdy, nil)
	if !a.host {
		if k, ok := kernAddrs(); ok {
			a.send(wire.TypeKernAddrs, wire.AppendKernAddrs(nil, k))
		}
	}
	a.life(wire.PhaseInitStarted, "")
	out, err := os.OpenFile(commandTTY, os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		a.logf("exec: %s: %v", commandTTY, err)
		a.exit(ExecNotRun)
		return
	}
	defer out.Close()
	var sched *scheduler
	if a.cfg.Scheduler != "" {
		if sched, err = a.attachScheduler(); err != nil {
			fmt.Fprintf(out, "ktstr-agent: %v; %s not run\r\n", err, a.cfg.Exec[0])
			a.logf("%v", err)
			a.exit(ExecNotRun)
			return
		}
	}
	a.life(wire.PhasePayloadStarting, "")
	code := runCommand(a.cfg, out)
	if sched != nil {
		sched.stop(3*time.Second, "the command is over")
	}
	a.exit(code)
}

// attachScheduler starts the configured scheduler and waits for it to
// attach; a kernel without sched_ext runs the command beside it.
func (a *agent) attachScheduler() (*scheduler, error) {
	s, err := startScheduler(a.send, a.cfg.Scheduler, a.cfg.SchedArgs)
	if err != nil {
		a.life(wire.PhaseSchedulerDied, err.Error())
		return nil, err
	}
	timeout := time.Duration(a.cfg.AttachTimeoutMS) * time.Millisecond
	if timeout <= 0 {
		timeout, _ = defaultAttachTimeout(a.host)
	}
	_, err = s.waitAttached(scxDir, timeout)
	switch {
	case errors.Is(err, errSchedDied):
		<-s.out.done
		a.life(wire.PhaseSchedulerDied, fmt.Sprintf("exit code %d", s.code))
		return nil, fmt.Errorf("scheduler %s exited with code %d before attaching", s.name, s.code)
	case errors.Is(err, errNoSchedExt):
		a.logf("%v; running the command with %s alive", err, s.name)
	case err != nil:
		a.life(wire.PhaseSchedulerNotAttached, err.Error())
		s.stop(2*time.Second, "not attached in time")
		return nil, err
	}
	return s, nil
}

// runCommand runs cfg.Exec with tty as its output and returns its exit
// status (128+N for signal N, as a shell gives it). A plain command reads
// /dev/null and writes through a tty set not to touch its bytes (no CR
// added before LF), so that ktstr-boot's stdout gets them as they were
// written; a shell gets the tty as its controlling terminal, as it is.
func runCommand(cfg Config, tty *os.File) int {
	cmd := exec.Command(cfg.Exec[0], cfg.Exec[1:]...)
	cmd.Dir = "/"
	cmd.Env = []string{"PATH=/ktstr/bin:/ktstr/include:/bin:/sbin:/usr/bin:/usr/sbin", "HOME=/", "KTSTR_GUEST_EXEC=1"}
	if cfg.Shell {
		term := cfg.Term
		if term == "" {
			term = "vt100"
		}
		cmd.Env = append(cmd.Env, "TERM="+term, "PS1=ktstr# ")
		cmd.Stdin, cmd.Stdout, cmd.Stderr = tty, tty, tty
		cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true, Setctty: true, Ctty: 0}
	} else {
		if t, err := unix.IoctlGetTermios(int(tty.Fd()), unix.TCGETS); err == nil {
			t.Oflag &^= unix.OPOST
			unix.IoctlSetTermios(int(tty.Fd()), unix.TCSETS, t)
		}
		cmd.Stdin, cmd.Stdout, cmd.Stderr = nil, tty, tty
	}
	if err := cmd.Start(); err != nil {
		code := ExecNoStart
		if errors.Is(err, os.ErrNotExist) || errors.Is(err, exec.ErrNotFound) {
			code = ExecNotFound
		}
		fmt.Fprintf(tty, "ktstr-agent: %v\n", err)
		return code
	}
	cmd.Wait() // the status is in ProcessState
	return int(exitCode(cmd.ProcessState))
}

// exit sends the command's exit status as EXIT and ends the run as
// finish does.
func (a *agent) exit(code int) {
	a.send(wire.TypeExit, wire.AppendExitCode(nil, int32(code)))
	if a.region != nil {
		a.region.SetGuestState(shm.GuestDone)
	}
	a.doneOnce.Do(func() { close(a.done) })
	if a.offAtFinish {
		poweroff()
	}
}
