// Package guest is the guest agent: ktstr-boot running as /init inside the
// VM. It mounts the pseudo-filesystems, maps the shared region, runs the
// scenario and reports through frames, then powers the VM off.
package guest

import (
	"fmt"
	"os"
	"runtime/debug"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/ktstr-go/ktstr/lib/shm"
	"github.com/ktstr-go/ktstr/lib/wire"
	"github.com/ktstr-go/ktstr/lib/wire/payload"
)

// IsGuest reports whether this process is the guest's init: pid 1 with
// KTSTR_GUEST=1 on the kernel command line.
func IsGuest() bool {
	if os.Getpid() != 1 {
		return false
	}
	b, err := os.ReadFile("/proc/cmdline")
	if err != nil {
		// /proc is not mounted yet: being pid 1 in our own initramfs is
		// enough; Main checks the command line once /proc is up.
		return true
	}
	_, ok := parseCmdline(string(b))["KTSTR_GUEST"]
	return ok
}

// Main is the agent. It never returns: it powers the VM off.
func Main() {
	a := &agent{start: time.Now()}
	defer func() {
		if r := recover(); r != nil {
			a.crash(fmt.Sprintf("%v\n%s", r, debug.Stack()))
		}
		a.poweroff()
	}()
	a.run()
}

type agent struct {
	start   time.Time
	cmdline map[string]string
	region  *shm.Region
	ch      *Channel
	console *os.File
	com2    *os.File
}

// logf writes a line to the kernel console (COM1), prefixed.
func (a *agent) logf(format string, args ...any) {
	if a.console != nil {
		fmt.Fprintf(a.console, "ktstr-agent: "+format+"\n", args...)
	}
}

func (a *agent) run() {
	mountAll()
	a.console, _ = os.OpenFile("/dev/console", os.O_WRONLY, 0)
	a.com2, _ = os.OpenFile("/dev/ttyS1", os.O_WRONLY|unix.O_NOCTTY, 0)
	b, _ := os.ReadFile("/proc/cmdline")
	a.cmdline = parseCmdline(string(b))

	mem, where, err := mapRegion(a.cmdline)
	if err != nil {
		a.logf("no shared region: %v", err)
		return
	}
	r, err := shm.OpenGuest(mem)
	if err != nil {
		a.logf("shared region %s: %v", where, err)
		return
	}
	a.region = r
	r.SetGuestState(shm.GuestRunning)
	a.ch = NewChannel(r)
	a.send(wire.TypeSysRdy, nil)
	a.send(wire.TypeLifecycle, wire.AppendLifecycle(nil, wire.Lifecycle{Phase: wire.PhaseInitStarted}))

	name := a.cmdline["ktstr.scenario"]
	if name == "" {
		name = "steady"
	}
	sc, err := Builtin(name)
	if err != nil {
		a.finish(&payload.AssertResult{Scenario: name, Outcomes: []payload.Outcome{{Verdict: payload.Fail, Kind: payload.KindOther, Message: err.Error()}}}, 1)
		return
	}
	a.send(wire.TypeLifecycle, wire.AppendLifecycle(nil, wire.Lifecycle{Phase: wire.PhasePayloadStarting}))
	res := a.runScenario(sc)
	code := int32(0)
	if res.Verdict() == payload.Fail {
		code = 1
	}
	a.finish(res, code)
}

func (a *agent) send(t wire.Type, p []byte) {
	if a.ch == nil {
		return
	}
	if err := a.ch.Send(t, p); err != nil {
		a.logf("send %v (%d bytes): %v", t, len(p), err)
	}
}

// finish sends the result and the exit code, and marks the agent done.
func (a *agent) finish(res *payload.AssertResult, code int32) {
	p, err := payload.MarshalAssertResult(res)
	if err != nil {
		a.logf("encode result: %v", err)
		code = 1
	} else {
		a.send(wire.TypeTestResult, p)
	}
	a.send(wire.TypeExit, wire.AppendExitCode(nil, code))
	if a.region != nil {
		a.region.SetGuestState(shm.GuestDone)
	}
}

// crash reports a Go panic in the agent: CRSH with the text, and
// "PANIC: ..." on COM2, as ktstr's panic hook does.
func (a *agent) crash(msg string) {
	a.send(wire.TypeCrash, []byte(msg))
	if a.com2 != nil {
		fmt.Fprintf(a.com2, "PANIC: %s\n", strings.ReplaceAll(msg, "\n", "\n  "))
	}
	a.logf("PANIC: %s", msg)
}

// poweroff ends the VM. ktstr-boot runs QEMU with -no-reboot and the
// kernel with reboot=t, so a restart ends the VM on every backend.
func (a *agent) poweroff() {
	unix.Sync()
	unix.Reboot(unix.LINUX_REBOOT_CMD_RESTART)
	for {
		time.Sleep(time.Hour)
	}
}

func mountAll() {
	for _, m := range []struct{ src, dst, typ string }{
		{"proc", "/proc", "proc"},
		{"sysfs", "/sys", "sysfs"},
		{"devtmpfs", "/dev", "devtmpfs"},
		{"tmpfs", "/tmp", "tmpfs"},
	} {
		os.MkdirAll(m.dst, 0o755)
		unix.Mount(m.src, m.dst, m.typ, 0, "")
	}
}
