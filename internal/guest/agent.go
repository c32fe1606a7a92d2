// Package guest is the guest agent: ktstr-boot running as /init inside the
// VM (or directly on the host with --vmm host). It mounts the
// pseudo-filesystems, maps the shared region, starts the scheduler under
// test, runs the scenario's workers in their cgroups and reports every
// step through frames, then powers the VM off.
//
// The scheduler's stdout (a pseudo-terminal, so stdio line-buffers it)
// and stderr (a pipe) go out as SCLG lines labelled with their stream and
// the guest's CLOCK_MONOTONIC time (sched_output.go), within a budget.
//
// Frames, in the order a host expects them: SRDY, KADR, LIFE
// init_started, (scheduler: SCLG output; LIFE scheduler_died or
// scheduler_not_attached on failure), LIFE payload_starting, SCST, STIM and
// STEN per step (step 0 is the baseline settle window), SCEN, TEST, DMSG
// (the kernel log), SCDX when the scheduler died (its exit status, or
// 128+N when signal N killed it), EXIT. The host stops the VM on SCDX, so
// it follows the result; if the result is late it comes on its own.
// A Go panic in the agent gives CRSH and "PANIC: ..." on COM2.
//
// From its attach to the end of the scenario the scheduler is watched
// (sched_watch.go): sched_ext's state, root/ops and enable_seq, the kernel
// log's "disabled" lines, its process. Its loss stops the scenario at
// once; the checks judge the time before, the time after is measured
// apart (TEST's stats_after_detach), and a scheduler that left while its
// process lived fails the run with an outcome of kind scheduler_detached.
//
// STIM and STEN carry total_iterations: what every worker completed so
// far (workers publish their progress in a shared page while they run),
// so a verdict can compare the steps' rates; SCEN carries the run's total.
package guest

import (
	"bufio"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"runtime/debug"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/ktstr-go/ktstr/internal/scenario"
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
		// enough.
		return true
	}
	_, ok := parseCmdline(string(b))["KTSTR_GUEST"]
	return ok
}

type agent struct {
	host    bool
	cfg     Config
	region  *shm.Region
	ch      *Channel
	log     io.Writer // kernel console (guest) or stderr (host)
	com2    io.Writer
	spawn   spawnFunc
	logMu   sync.Mutex
	dmesgOK bool // the kernel log is the guest's own (not the host's)
	dmesgMu sync.Mutex
	dmesgAt int // bytes of the kernel log already sent

	scdxOnce sync.Once
	sentSCDX atomic.Bool   // an SCDX went out: no done mark (finish)
	done     chan struct{} // closed when the result and the exit code went out
	doneOnce sync.Once
	// offAtFinish: the agent is the VM's init, and powers it off as soon
	// as the exit code is out. Nothing after it reaches the host, and the
	// clean-up a host-mode agent owes its host (cgroups removed, processes
	// waited for) only delays the end of the run in a VM that is about to
	// stop.
	offAtFinish bool
}

func (a *agent) logf(format string, args ...any) {
	if a.log == nil {
		return
	}
	a.logMu.Lock()
	defer a.logMu.Unlock()
	fmt.Fprintf(a.log, "ktstr-agent: "+format+"\n", args...)
}

// Main is the agent as the guest's /init. It never returns: it powers the
// VM off.
func Main() {
	a := &agent{spawn: spawnWorkload, done: make(chan struct{}), offAtFinish: true}
	defer func() {
		if r := recover(); r != nil {
			a.crash(fmt.Sprintf("%v\n%s", r, debug.Stack()))
		}
		poweroff()
	}()
	// The configuration is decoded on another CPU while this one mounts
	// and maps the region: the first decode of the JSON is tens of
	// milliseconds under software emulation, and neither needs the other.
	type configResult struct {
		cfg Config
		err error
	}
	config := make(chan configResult, 1)
	go func() {
		// A panic here would end pid 1 without the crash report Main's
		// recover gives: it becomes the configuration's error instead.
		var c configResult
		defer func() {
			if r := recover(); r != nil {
				c = configResult{err: fmt.Errorf("panic: %v\n%s", r, debug.Stack())}
			}
			config <- c
		}()
		c.cfg, c.err = ReadConfig(ConfigPath)
	}()
	mountAll()
	kmsgNote("up")
	if f, err := os.OpenFile("/dev/console", os.O_WRONLY, 0); err == nil {
		a.log = f
	}
	if f, err := os.OpenFile("/dev/ttyS1", os.O_WRONLY|unix.O_NOCTTY, 0); err == nil {
		a.com2 = f
	}
	b, _ := os.ReadFile("/proc/cmdline")
	mem, where, err := mapRegion(parseCmdline(string(b)))
	if err != nil {
		a.logf("no shared region: %v", err)
		return
	}
	r, err := shm.OpenGuest(mem)
	if err != nil {
		a.logf("shared region %s: %v", where, err)
		return
	}
	a.attach(r)
	c := <-config
	if c.err != nil {
		a.fatal("read configuration: %v", c.err)
		return
	}
	a.cfg = c.cfg
	a.dmesgOK = true
	a.run()
}

// RunHost runs the agent on the host, in this process, writing into the
// region ktstr-boot created (ktstr-boot --vmm host). Workers are this
// executable re-executed, in a cgroup of their own when the host has
// cgroup v2. log takes the agent's console lines and com2 its PANIC
// lines, as the serial ports do in a VM.
func RunHost(r *shm.Region, cfg Config, log, com2 io.Writer) (err error) {
	g, err := shm.OpenGuest(r.Mem())
	if err != nil {
		return err
	}
	a := &agent{host: true, cfg: cfg, log: log, com2: com2, spawn: spawnWorkload, done: make(chan struct{})}
	a.attach(g)
	defer func() {
		if r := recover(); r != nil {
			a.crash(fmt.Sprintf("%v\n%s", r, debug.Stack()))
			err = fmt.Errorf("agent panic: %v", r)
		}
	}()
	a.run()
	return nil
}

func (a *agent) attach(r *shm.Region) {
	a.region = r
	r.SetGuestState(shm.GuestRunning)
	a.ch = NewChannel(r)
}

func (a *agent) send(t wire.Type, p []byte) {
	if a.ch == nil {
		return
	}
	if err := a.ch.Send(t, p); err != nil {
		a.logf("send %v (%d bytes): %v", t, len(p), err)
	}
}

func (a *agent) life(p wire.Phase, reason string) {
	a.send(wire.TypeLifecycle, wire.AppendLifecycle(nil, wire.Lifecycle{Phase: p, Reason: reason}))
}

// fatal reports a setup failure as a failing result and ends the run.
func (a *agent) fatal(format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	a.logf("%s", msg)
	a.finish(&payload.AssertResult{Outcomes: []payload.Outcome{{Verdict: payload.Fail, Kind: payload.KindOther, Message: msg}}}, nil)
}

func (a *agent) run() {
	if len(a.cfg.Hostile) > 0 {
		a.runHostile()
		return
	}
	if len(a.cfg.Exec) > 0 {
		a.runExec()
		return
	}
	a.send(wire.TypeSysRdy, nil)
	if !a.host {
		kmsgNote("SRDY sent")
		if k, ok := kernAddrs(); ok {
			a.send(wire.TypeKernAddrs, wire.AppendKernAddrs(nil, k))
		}
	}
	a.life(wire.PhaseInitStarted, "")

	sc, err := a.loadScenario()
	if err != nil {
		a.fatal("%v", err)
		return
	}
	topo, stopRes := machineResult("/", a.cfg.Topology, a.cfg.MemoryMB, sc)
	if stopRes != nil {
		a.finish(stopRes, nil)
		return
	}
	sc = sc.Bind(topo)

	stop := make(chan struct{})
	var stopOnce sync.Once
	var stopWhy string
	stopScenario := func(why string) {
		stopOnce.Do(func() {
			stopWhy = why
			a.logf("stopping the scenario: %s", why)
			close(stop)
		})
	}
	var sched *scheduler
	var watch *schedWatch
	var info *payload.SchedulerInfo
	var base scxSnap
	var k kmsgSource
	var timeout time.Duration
	// The scenario's detach_scheduler and attach_scheduler ops change the
	// scheduler under test; those it stopped on purpose are not losses.
	var schedMu sync.Mutex
	intended := map[*scheduler]bool{}
	// watchDeath: a death stops the scenario; its SCDX follows the
	// result (so that the host, which stops the VM on SCDX, has the
	// measurements), or comes on its own if the result is late.
	watchDeath := func(s *scheduler) {
		go func() {
			select {
			case <-s.died:
			case <-a.done:
				return
			}
			schedMu.Lock()
			onPurpose := intended[s]
			schedMu.Unlock()
			if onPurpose {
				return
			}
			stopScenario(fmt.Sprintf("scheduler %s exited with code %d", s.name, s.code))
			select {
			case <-a.done:
			case <-time.After(schedExitWait):
				a.sendSchedExit(s)
			}
		}()
	}
	if a.cfg.Scheduler != "" {
		t0 := time.Now()
		sched, err = startScheduler(a.send, a.cfg.Scheduler, a.cfg.SchedArgs)
		if err != nil {
			a.life(wire.PhaseSchedulerDied, err.Error())
			a.fatal("%v", err)
			return
		}
		timeout = time.Duration(a.cfg.AttachTimeoutMS) * time.Millisecond
		if timeout <= 0 {
			var why string
			timeout, why = defaultAttachTimeout(a.host)
			a.logf("attach timeout %v (%s)", timeout, why)
		}
		base, err = sched.waitAttached(scxDir, timeout)
		switch {
		case errors.Is(err, errSchedDied):
			<-sched.out.done
			a.life(wire.PhaseSchedulerDied, fmt.Sprintf("exit code %d", sched.code))
			a.finish(&payload.AssertResult{Scenario: sc.Name, Outcomes: []payload.Outcome{{Verdict: payload.Fail,
				Kind: payload.KindSchedulerDied, Message: fmt.Sprintf("scheduler %s exited with code %d before attaching", sched.name, sched.code)}}},
				sched)
			return
		case errors.Is(err, errNoSchedExt):
			a.logf("%v; running the scenario with %s alive", err, sched.name)
		case err != nil:
			a.life(wire.PhaseSchedulerNotAttached, err.Error())
			sched.stop(2*time.Second, fmt.Sprintf("not attached within %v (the harness ends the run; what it prints now answers this signal)", timeout))
			a.finish(&payload.AssertResult{Scenario: sc.Name, Outcomes: []payload.Outcome{{Verdict: payload.Fail,
				Kind: payload.KindNotAttached, Message: err.Error()}}}, nil)
			return
		default:
			info = &payload.SchedulerInfo{Binary: sched.name, Ops: base.Ops, EnableSeq: base.Seq,
				AttachMS: float64(time.Since(t0).Microseconds()) / 1000}
			a.logf("scheduler %s attached (sched_ext ops %q, enable_seq %d) %.1f ms after it started", sched.name, base.Ops, base.Seq, info.AttachMS)
			// From here on sched_ext's state, the kernel log and the
			// process are watched until the scenario ends: losing the
			// scheduler stops the scenario at once.
			if a.dmesgOK {
				if km, err := openKmsg(); err != nil {
					a.logf("kernel log: %v (watching sysfs only)", err)
				} else {
					defer km.close()
					k = km
				}
			}
			watch = newSchedWatch(scxDir, base, k, sched.died, stopScenario)
			watch.start()
		}
		watchDeath(sched)
	}

	a.life(wire.PhasePayloadStarting, "")
	root, ctl, why, cleanup := setupCgroups(a.host, a.logf)
	defer cleanup()
	var scenStart, scenEnd time.Time
	env := runEnv{
		topo: topo, cgroupRoot: root, controllers: ctl, cgroupSkip: why,
		spawn: a.spawn, region: a.region, send: a.send, logf: a.logf,
		stop: stop, stopWhy: func() string { return stopWhy },
		span: func(start, end time.Time) { scenStart, scenEnd = start, end },
	}
	if sched != nil {
		env.killScheduler = func(sig int) error {
			schedMu.Lock()
			defer schedMu.Unlock()
			if sched == nil {
				return errors.New("no scheduler attached (detached by the scenario)")
			}
			return sched.cmd.Process.Signal(syscall.Signal(sig))
		}
		env.detachScheduler = func() (string, error) {
			schedMu.Lock()
			defer schedMu.Unlock()
			if sched == nil {
				return "", errors.New("no scheduler attached")
			}
			if watch != nil {
				if loss := watch.stop(); loss != nil {
					return "", errors.New(loss.summary())
				}
				watch = nil
			}
			s := sched
			intended[s] = true
			sched = nil
			s.stop(3*time.Second, "detached by the scenario (detach_scheduler)")
			return fmt.Sprintf("scheduler %s detached by the scenario (exit code %d)", s.name, s.code), nil
		}
		// The binary attach_scheduler starts: --scheduler, or the
		// replacement once replace_scheduler put it in place.
		bin, args := a.cfg.Scheduler, a.cfg.SchedArgs
		env.replaceScheduler = func() (string, error) {
			if a.cfg.Replacement == "" {
				return "", errors.New("no replacement scheduler (ktstr-boot --replacement)")
			}
			note, err := env.detachScheduler()
			if err != nil {
				return "", err
			}
			bin, args = a.cfg.Replacement, a.cfg.ReplacementArgs
			more, err := env.attachScheduler()
			return note + "; " + more, err
		}
		env.attachScheduler = func() (string, error) {
			schedMu.Lock()
			defer schedMu.Unlock()
			if sched != nil {
				return "", errors.New("a scheduler is attached: detach it first")
			}
			t0 := time.Now()
			s, err := startScheduler(a.send, bin, args)
			if err != nil {
				return "", err
			}
			b, err := s.waitAttached(scxDir, timeout)
			if err != nil {
				intended[s] = true
				s.stop(2*time.Second, "did not attach again (attach_scheduler)")
				return "", fmt.Errorf("attach again: %v", err)
			}
			if k != nil {
				k.read() // the detach's and this attach's own lines
			}
			sched, base = s, b
			watch = newSchedWatch(scxDir, b, k, s.died, stopScenario)
			watch.start()
			watchDeath(s)
			return fmt.Sprintf("scheduler %s attached %.1f ms after it started (sched_ext ops %q, enable_seq %d)",
				s.name, float64(time.Since(t0).Microseconds())/1000, b.Ops, b.Seq), nil
		}
	}
	rep := newReplies(a.region, a.logf)
	env.snapshot = func(tag string) (string, error) {
		t0 := time.Now()
		r, err := rep.snapshot(a.send, wire.SnapshotCapture, tag, 10*time.Second)
		if err != nil {
			return "", err
		}
		if r.Status == wire.SnapshotOK {
			return fmt.Sprintf("captured in %v", time.Since(t0).Round(time.Microsecond)), nil
		}
		return "host answered ERR: " + r.Reason, nil
	}
	env.kernelOp = func(req *payload.KernelOpRequest) (*payload.KernelOpReply, error) {
		return rep.kernelOp(a.send, req, kernelOpTimeout)
	}
	hadSched := sched != nil
	res := runScenario(sc, env)
	res.Machine = machineOf(topo)
	schedMu.Lock() // the ops are over: sched is the one attached at the end
	final := sched
	schedMu.Unlock()
	sched = final
	if !hadSched {
		a.finish(res, nil)
		return
	}
	if sched == nil { // detached by the scenario and not attached again
		info.SHA256 = fileSHA256(a.cfg.Scheduler)
		res.Scheduler = info
		a.finish(res, nil)
		return
	}
	if info != nil {
		res.Measurements["sched_attach_ms"] = info.AttachMS
		info.SHA256 = fileSHA256(a.cfg.Scheduler)
		res.Scheduler = info
	}
	if watch != nil {
		if loss := watch.stop(); loss != nil {
			info.Detached = loss.detach(scenStart, scenEnd)
			if loss.alive {
				res.Outcomes = append(res.Outcomes, loss.outcome(sched.name, base, info.Detached))
			}
		}
	}
	select {
	case <-sched.died: // during the run
		select {
		case <-sched.out.done:
		case <-time.After(outputGrace):
		}
		res.Outcomes = append(res.Outcomes, payload.Outcome{Verdict: payload.Fail, Kind: payload.KindSchedulerDied,
			Message: fmt.Sprintf("scheduler %s exited with code %d", sched.name, sched.code)})
		a.finish(res, sched)
	default:
		stopScenario("the run is over")
		sched.stop(3*time.Second, "the run is over")
		a.finish(res, nil)
	}
}

// schedExitWait bounds how long a scheduler's death waits for the result
// to go out before SCDX is sent on its own.
const schedExitWait = 10 * time.Second

// sendSchedExit sends the kernel log and SCDX with the dead scheduler's
// exit status, once.
func (a *agent) sendSchedExit(s *scheduler) {
	a.scdxOnce.Do(func() {
		a.sendKernelLog()
		a.send(wire.TypeSchedExit, wire.AppendExitCode(nil, s.code))
		a.sentSCDX.Store(true)
	})
}

// fileSHA256 is the hex SHA-256 of a file, "" when it cannot be read.
func fileSHA256(path string) string {
	f, err := os.Open(path)
	if err != nil {
		return ""
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return ""
	}
	return hex.EncodeToString(h.Sum(nil))
}

// loadScenario returns the configured scenario: the file content given by
// ktstr-boot, else a canned name (scenario.Default when none).
func (a *agent) loadScenario() (*scenario.Scenario, error) {
	if len(a.cfg.ScenarioJSON) > 0 {
		return scenario.Parse(a.cfg.ScenarioJSON)
	}
	if scenario.IsFile(a.cfg.Scenario) {
		return nil, fmt.Errorf("scenario %q: a file is sent as its content, not its name", a.cfg.Scenario)
	}
	s, _, err := scenario.Load(a.cfg.Scenario)
	return s, err
}

// finish sends the result, the kernel log, SCDX when dead (the
// scheduler under test, which died) is set, and the exit code, and marks
// the agent done.
func (a *agent) finish(res *payload.AssertResult, dead *scheduler) {
	code := int32(0)
	if res.Verdict() == payload.Fail {
		code = 1
	}
	p, err := payload.MarshalAssertResult(res)
	if err != nil {
		a.logf("encode result: %v", err)
		code = 1
	} else {
		if len(p) > wire.MaxPayload {
			p, _ = payload.MarshalAssertResult(&payload.AssertResult{Scenario: res.Scenario, Outcomes: []payload.Outcome{{
				Verdict: payload.Fail, Kind: payload.KindOther,
				Message: fmt.Sprintf("AssertResult size %d exceeded the frame limit %d; original details dropped", len(p), wire.MaxPayload)}}})
		}
		a.send(wire.TypeTestResult, p)
	}
	a.sendKernelLog()
	if dead != nil {
		a.sendSchedExit(dead)
	}
	a.send(wire.TypeExit, wire.AppendExitCode(nil, code))
	// The done mark lets ktstr-boot end the VM at once. Not after an
	// SCDX: the host's early kill, which that SCDX asks for, ends this VM
	// (with its failure dump) unless the poweroff comes first.
	if a.region != nil && !a.sentSCDX.Load() {
		a.region.SetGuestState(shm.GuestDone)
	}
	a.doneOnce.Do(func() { close(a.done) })
	if a.offAtFinish {
		poweroff()
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
func poweroff() {
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
		{"devpts", "/dev/pts", "devpts"}, // the scheduler's stdout is a pseudo-terminal
		{"tmpfs", "/tmp", "tmpfs"},
		{"debugfs", "/sys/kernel/debug", "debugfs"},
	} {
		os.MkdirAll(m.dst, 0o755)
		unix.Mount(m.src, m.dst, m.typ, 0, "")
	}
}

// kernAddrs reads the kernel's physical load address from /proc/iomem
// ("Kernel code") and the runtime addresses of _text and
// page_offset_base from /proc/kallsyms.
func kernAddrs() (wire.KernAddrs, bool) {
	var k wire.KernAddrs
	if f, err := os.Open("/proc/iomem"); err == nil {
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			line := strings.TrimSpace(sc.Text())
			if strings.HasSuffix(line, ": Kernel code") {
				lo, _, _ := strings.Cut(line, "-")
				if v, err := strconv.ParseUint(lo, 16, 64); err == nil {
					k.PhysBase, k.HasPhysBase = v, true
				}
				break
			}
		}
		f.Close()
	}
	if f, err := os.Open("/proc/kallsyms"); err == nil {
		sc := bufio.NewScanner(f)
		for sc.Scan() && (!k.HasText || k.PageOffsetBase == 0) {
			fs := strings.Fields(sc.Text())
			if len(fs) < 3 {
				continue
			}
			v, err := strconv.ParseUint(fs[0], 16, 64)
			if err != nil || v == 0 {
				continue
			}
			switch fs[2] {
			case "_text":
				k.Text, k.HasText = v, true
			case "page_offset_base":
				k.PageOffsetBase = v
			}
		}
		f.Close()
	}
	return k, k.HasPhysBase || k.HasText
}

// sendKernelLog sends the kernel log as DMSG (the tail, at most 256 KiB),
// once; a later call sends only what was logged since.
func (a *agent) sendKernelLog() {
	if !a.dmesgOK {
		return
	}
	a.dmesgMu.Lock()
	defer a.dmesgMu.Unlock()
	log := kernelLog(256 << 10)
	if a.dmesgAt > 0 && a.dmesgAt <= len(log) {
		log = log[a.dmesgAt:]
		a.dmesgAt += len(log)
	} else {
		a.dmesgAt = len(log)
	}
	if len(log) > 0 {
		a.send(wire.TypeDmesg, log)
	}
}
