package boot

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/ktstr-go/ktstr/internal/cache"
	"github.com/ktstr-go/ktstr/internal/control"
	"github.com/ktstr-go/ktstr/internal/drain"
	"github.com/ktstr-go/ktstr/internal/guest"
	"github.com/ktstr-go/ktstr/internal/sanitize"
	"github.com/ktstr-go/ktstr/internal/topology"
	"github.com/ktstr-go/ktstr/internal/tsc"
	"github.com/ktstr-go/ktstr/internal/vmm"
	"github.com/ktstr-go/ktstr/internal/vmm/qemu"
	"github.com/ktstr-go/ktstr/lib/shm"
	"github.com/ktstr-go/ktstr/lib/wire"
	"github.com/ktstr-go/ktstr/lib/wire/payload"
)

// Config is one run.
type Config struct {
	Kernel string
	// Vmlinux is the kernel's vmlinux (ELF symbols and BTF) for
	// snapshots, kernel ops, failure dumps and the monitor; "" answers
	// what needs names ERR "no vmlinux".
	Vmlinux string
	// Monitor, when set, runs the host-side monitor with these checks
	// (the scenario opted in).
	Monitor *payload.MonitorThresholds
	// Guest is what the agent runs (scenario, scheduler), written into the
	// initramfs as /ktstr/config.json.
	Guest guest.Config
	// Files are extra files for the initramfs (scheduler binaries and
	// their libraries, payloads).
	Files   []File
	RunDir  string
	Timeout time.Duration // the watchdog's absolute ceiling (0: DefaultTimeout)
	// Topology is the machine shape (validated by the caller); MemoryMB
	// the guest's RAM, split over its NUMA nodes.
	Topology topology.Topology
	MemoryMB int
	// Machine is the QEMU backend's machine type ("": qemu.MachineFor's
	// pick for the topology).
	Machine    qemu.Machine
	VMM        string // "auto", "qemu", "qemu-kvm", "host"
	RegionSize uint64
	Append     string // extra kernel command line
	Verbose    bool   // kernel messages on the console
	Self       string // the binary to use as /init (default: this executable)
	Log        func(format string, args ...any)

	// A run ktstr-boot watches itself (--exec, --shell). COM2Out also
	// gets COM2's output (the command's). Shell makes COM2 the terminal
	// of ktstr-boot's own stdin and stdout instead (QEMU backends only).
	// Frames, when set, gets the region's frames: Run drains the region
	// itself while the VM runs, and returns once the drain has read the
	// last frame, so no other reader may drain it.
	COM2Out io.Writer
	Shell   bool
	Frames  io.Writer
}

// Bounds of the numbers on ktstr-boot's command line.
const (
	MinMemoryMB = 128
	MaxMemoryMB = vmm.MaxMemory >> 20
	MaxTimeout  = 24 * time.Hour // --timeout and --attach-timeout
)

// Exit statuses of ktstr-boot.
const (
	ExitPoweroff = 0 // the guest agent finished and powered off
	ExitAbnormal = 1 // the VM ended otherwise: timeout, crash, killed
	ExitVMM      = 4 // the VM could not be run
)

// ErrOwnVMMSoftware refuses --vmm own where /dev/kvm cannot boot a stock
// kernel (a software KVM such as PVM, or none).
var ErrOwnVMMSoftware = errors.New("boot: the own VMM cannot boot a stock kernel here")

// CheckOwnVMM says whether --vmm own can boot a kernel on this host: it
// needs hardware KVM. allowSoftware (--allow-software-kvm) lets it run
// anyway, for a guest program that the software backend can run.
func CheckOwnVMM(allowSoftware bool) error {
	b, err := vmm.Probe()
	if allowSoftware || (err == nil && b.CanBootLinux()) {
		return nil
	}
	why := b.String()
	if err != nil {
		why = err.Error()
	}
	return fmt.Errorf("%w (%s): use --vmm qemu, or --allow-software-kvm for a guest program rather than a kernel", ErrOwnVMMSoftware, why)
}

// CheckTopology says whether the backend --vmm names (auto: the one Run
// would pick) can give a guest the shape t.
func CheckTopology(vmmName string, t topology.Topology) error {
	switch vmmName {
	case "host":
		return nil // the host is whatever it is; the agent does not check it
	case "own":
		return vmm.CheckTopology(t)
	case "", "auto":
		if b, err := vmm.Probe(); err == nil && b.CanBootLinux() {
			return vmm.CheckTopology(t)
		}
	}
	return qemu.CheckTopology(t)
}

// TSCSpan is how long Run measures the host's TSC against its clock for a
// guest under software emulation (alongside the initramfs's writing).
const TSCSpan = 20 * time.Millisecond

// ParseMachine reads --machine: "auto" (the zero Machine: the QEMU
// backend picks by topology), "microvm" or "pc", checked against t.
func ParseMachine(name string, t topology.Topology) (qemu.Machine, error) {
	switch name {
	case "auto", "":
		return "", nil
	case string(qemu.MachinePC), string(qemu.MachineMicrovm):
		m := qemu.Machine(name)
		return m, qemu.CheckMachine(m, t)
	}
	return "", fmt.Errorf("%q: want auto, microvm or pc", name)
}

// Result is how a run ended.
type Result struct {
	Reason  wire.EndReason
	Detail  string
	Elapsed time.Duration
}

// ExitCode maps a result to ktstr-boot's exit status.
func (r Result) ExitCode() int {
	switch r.Reason {
	case wire.EndPoweroff:
		return ExitPoweroff
	case wire.EndVMMError:
		return ExitVMM
	}
	return ExitAbnormal
}

// DefaultTimeout is the watchdog's deadline when Config.Timeout is 0.
const DefaultTimeout = 120 * time.Second

// Run performs one run and returns how it ended. Errors before the VM
// starts are returned as errors; everything after is a Result.
func Run(cfg Config) (Result, error) {
	start := time.Now()
	if cfg.Timeout <= 0 {
		cfg.Timeout = DefaultTimeout
	}
	logf := cfg.Log
	if logf == nil {
		logf = func(string, ...any) {}
	}
	// The host's TSC frequency for a guest under software emulation,
	// measured while the initramfs is written (see package tsc; not where
	// --vmm rules out QEMU's software emulation), and the vmlinux either
	// VM backend can boot in place of the bzImage, looked for alongside.
	mayTCG := cfg.VMM == "" || cfg.VMM == "auto" || cfg.VMM == "qemu"
	type khz struct {
		v   uint64
		err error
	}
	tscKHz := make(chan khz, 1)
	go func() {
		if !mayTCG {
			tscKHz <- khz{err: fmt.Errorf("not measured for --vmm %s", cfg.VMM)}
			return
		}
		// Measured once per boot of the host, kept in the cache.
		file := ""
		if dir, err := cache.Dir(); err == nil {
			file = filepath.Join(dir, "tsc")
		}
		v, _, err := tsc.CachedKHz(file, TSCSpan)
		tscKHz <- khz{v, err}
	}()
	type image struct {
		path string
		err  error
	}
	pvh := make(chan image, 1)
	go func() {
		if cfg.VMM == "host" {
			pvh <- image{err: errors.New("no kernel with --vmm host")}
			return
		}
		p, err := PVHImage(cfg.Kernel, cfg.Vmlinux)
		pvh <- image{p, err}
	}()
	self := cfg.Self
	if self == "" {
		exe, err := os.Executable()
		if err != nil {
			return Result{}, err
		}
		self = exe
	}
	if cfg.VMM != "host" {
		if err := checkStaticInit(self); err != nil {
			return Result{}, err
		}
	}
	rd, err := openRunDir(cfg.RunDir)
	if err != nil {
		return Result{}, err
	}
	defer rd.Close()
	if cfg.VMM != "host" {
		if _, err := os.Stat(cfg.Kernel); err != nil {
			return Result{}, fmt.Errorf("kernel: %w", err)
		}
	}
	size := cfg.RegionSize
	if size == 0 {
		size = shm.DefaultSize
	}
	layout, err := shm.DefaultLayout(size)
	if err != nil {
		return Result{}, err
	}
	initrd := rd.join(InitrdFile)
	if cfg.VMM != "host" {
		files := cfg.Files
		// The kernel's build configuration, for schedulers with __kconfig
		// externs, unless the user packed one at that path already.
		if kc, ok := KernelConfig(cfg.Kernel); ok && !slices.ContainsFunc(files, func(f File) bool { return f.Dst == kc.Dst }) {
			files = append(files[:len(files):len(files)], kc)
		}
		f, err := rd.create(InitrdFile)
		if err == nil {
			err = BuildInitramfs(f, self, cfg.Guest, files)
		}
		if err != nil {
			return Result{}, fmt.Errorf("initramfs: %w", err)
		}
	}

	// nokaslr: the kernel sits where vmlinux says, so the host can read
	// it before any vCPU's CR3 is known (introspect finds the page tables
	// either way). no_timer_check: the kernel's check that the timer
	// interrupt arrives through the I/O APIC in time panics ("IO-APIC +
	// timer doesn't work!") when a loaded host starves an emulated vCPU
	// (seen at load 20 on 2 cores); the VMMs' timer routing is known good.
	// pty.legacy_count=0: no BSD ptys (the agent uses /dev/ptmx); a
	// kernel with LEGACY_PTYS makes 256 pairs of device nodes at boot,
	// 100 to 150 ms of an emulated guest's boot (initcall_debug); a dotted
	// parameter no kernel knows is ignored, not passed to /init.
	cmdline := "console=ttyS0 reboot=t panic=-1 nokaslr rdinit=/init KTSTR_GUEST=1 no_timer_check pty.legacy_count=0"
	if !cfg.Verbose {
		cmdline += " quiet loglevel=1"
	}
	if cfg.Append != "" {
		cmdline += " " + cfg.Append
	}
	console, regionPath := rd.join(ConsoleFile), rd.join(RegionFile)
	qc := qemu.Config{
		Kernel: cfg.Kernel, Initrd: initrd, Cmdline: cmdline,
		Topology: cfg.Topology, Machine: cfg.Machine, MemoryMB: max(cfg.MemoryMB, 128),
		Region: regionPath, RegionSize: layout.Size, Stderr: os.Stderr,
		Introspect: true,
	}
	backend := "qemu"
	switch cfg.VMM {
	case "", "auto":
		b, err := vmm.Probe()
		switch {
		case err == nil && b.CanBootLinux():
			logf("backend: ktstr-boot's own KVM VMM (%v)", b)
			backend = "own-vmm"
		case err != nil:
			logf("backend: qemu with software emulation (KVM probe: %v)", err)
		default:
			logf("backend: qemu with software emulation (%v)", b)
		}
	case "own":
		b, _ := vmm.Probe()
		logf("backend: ktstr-boot's own KVM VMM (--vmm own; %v)", b)
		backend = "own-vmm"
	case "qemu":
		logf("backend: qemu with software emulation (--vmm qemu)")
	case "qemu-kvm":
		logf("backend: qemu with KVM (--vmm qemu-kvm)")
		qc.KVM = true
	case "host":
		logf("backend: host (--vmm host: the agent runs the scenario on this machine, no VM)")
		backend = "host"
	default:
		return Result{}, fmt.Errorf("unknown --vmm %q", cfg.VMM)
	}

	if cfg.Shell && backend != "qemu" {
		if cfg.VMM != "auto" && cfg.VMM != "" {
			return Result{}, fmt.Errorf("--shell needs a QEMU backend (--vmm qemu or qemu-kvm), not %s", backend)
		}
		backend, qc.KVM = "qemu", true // the own VMM has no serial input: QEMU with KVM
		logf("backend: qemu with KVM (--shell: the own VMM takes no terminal input)")
	}
	qc.COM2Stdio = cfg.Shell
	// Both VM backends boot the vmlinux through its PVH entry when it is
	// the bzImage's build.
	var pvhImage string // for the own VMM; QEMU's -kernel takes it instead
	if backend == "qemu" || backend == "own-vmm" {
		if r := <-pvh; r.err == nil {
			pvhImage = r.path
			logf("kernel: %s, its PVH entry (no decompression in the guest)", r.path)
			if backend == "qemu" {
				qc.Kernel = r.path
			}
		}
	}
	if backend == "qemu" && !qc.KVM {
		// Under KVM the guest has kvmclock. Under TCG its TSC is the
		// host's constant counter, which it would calibrate against
		// emulated timers (microvm has only the PIT, which a loaded host
		// makes fail) and then watch against the jiffies, whose ticks a
		// loaded host delays (the watchdog then marks the TSC unstable
		// and the guest's clock falls back to jiffies). Both are wrong
		// about this counter: it is given, and reliable.
		if r := <-tscKHz; r.err == nil {
			qc.Cmdline += fmt.Sprintf(" tsc_early_khz=%d tsc=reliable", r.v)
		} else if qc.Machine == "" {
			// microvm has only the PIT to calibrate against, which a
			// loaded host makes fail (the guest hung): pc has an HPET.
			qc.Machine = qemu.MachinePC
			logf("the guest calibrates its own TSC (%v): machine pc, for its HPET", r.err)
		} else {
			logf("the guest calibrates its own TSC: %v", r.err)
		}
	}

	// The control socket exists before the region, so a reader that waits
	// for the region can connect at once; replies wait in the handler's
	// queue until the region exists.
	h := newHandler(backend, logf)
	hf, err := rd.create(drain.HostFramesFile)
	if err != nil {
		return Result{}, fmt.Errorf("host frames: %w", err)
	}
	host := &hostFrames{f: hf}
	defer func() {
		if err := host.close(); err != nil {
			logf("%v", err)
		}
	}()
	h.ins.configure(rd.path, cfg.Vmlinux, host)
	srv, err := control.Listen(rd.join(ControlSock), h.handle)
	if err != nil {
		return Result{}, fmt.Errorf("control socket: %w", err)
	}
	defer srv.Close()
	region, err := shm.Create(regionPath, layout)
	if err != nil {
		return Result{}, fmt.Errorf("region: %w", err)
	}
	h.attach(region)
	// The control server stops first, then the reply writer: both write
	// into the region, which must stay mapped until neither can run.
	defer func() {
		srv.Close()
		h.Close()
		region.Close()
	}()

	// The console files are made here for every backend, QEMU's
	// included (through pipes), so that no backend opens a path in the
	// run directory that something planted there could redirect, and
	// every console log is capped (see capLog).
	conf, comf, err := rd.openConsoles()
	if err != nil {
		return Result{}, err
	}
	con, com := newCapLog(conf, ConsoleHead, ConsoleTail), newCapLog(comf, ConsoleHead, ConsoleTail)
	defer con.Close()
	defer com.Close()
	var com2 io.Writer = com
	if cfg.COM2Out != nil {
		com2 = io.MultiWriter(com, cfg.COM2Out)
	}
	var vm machine
	switch backend {
	case "host":
		vm, err = startHost(cfg.Guest, region, regionPath, con, com2)
		h.ins.attach(backend, nil)
	case "own-vmm":
		var o *ownVM
		if o, err = startOwn(cfg, pvhImage, initrd, cmdline, regionPath, layout.Size, con, com2); err == nil {
			vm = o
			h.ins.attach(backend, ownTarget{o.vm})
		}
	default:
		qc.Console, qc.COM2 = con, com2
		var q *qemu.VM
		if q, err = qemu.Start(qc); err == nil {
			vm = q
			h.ins.attach(backend, qemuTarget{q})
		}
	}
	if err != nil {
		res := Result{Reason: wire.EndVMMError, Detail: err.Error(), Elapsed: time.Since(start)}
		region.MarkClosed(shm.End{Reason: uint32(res.Reason), ExitCode: int32(res.ExitCode()), Elapsed: res.Elapsed})
		return res, err
	}

	if cfg.Frames != nil {
		drained := make(chan struct{})
		go func() {
			defer close(drained)
			if _, err := drain.Run(region, cfg.Frames, drain.Options{Follow: true}); err != nil {
				logf("reading the region: %v", err)
			}
		}()
		// After MarkClosed (deferred calls run last first): the drain
		// reads to the end, then the region is unmapped.
		defer func() { <-drained }()
	}
	sampler := startNoise(backend, vm)
	if cfg.Monitor != nil {
		h.ins.startMonitor(*cfg.Monitor, start)
	}
	res := h.watch(vm, start, cfg.Timeout)
	h.ins.stopMonitor() // its last samples go out before the region closes
	res.Elapsed = time.Since(start)
	// The guest has stopped writing (an abandoned host-mode agent's
	// later lines are dropped): the logs get their tails before they are
	// read.
	for _, l := range []*capLog{con, com} {
		if err := l.Close(); err != nil {
			logf("console log: %v", err)
		}
	}
	if res.Reason == 0 {
		res.Reason, res.Detail = classify(vm.Err(), region.GuestState(), console)
	}
	if sampler != nil {
		// Written before the region closes, so that whoever waits for the
		// close finds it.
		if err := writeNoise(rd, sampler.Stop()); err != nil {
			logf("host noise: %v", err)
		}
	}
	region.MarkClosed(shm.End{Reason: uint32(res.Reason), ExitCode: int32(res.ExitCode()), Elapsed: res.Elapsed})
	logf("vm ended: %v%s after %v", res.Reason, detail(res.Detail), res.Elapsed.Round(time.Millisecond))
	return res, nil
}

func detail(s string) string {
	if s == "" {
		return ""
	}
	return " (" + s + ")"
}

// classify decides how a guest that ended by itself ended.
func classify(qerr error, guestState uint32, console string) (wire.EndReason, string) {
	var crash *crashError
	if errors.As(qerr, &crash) {
		return wire.EndCrash, crash.msg
	}
	if qerr != nil {
		return wire.EndVMMError, qerr.Error()
	}
	if guestState == shm.GuestDone {
		return wire.EndPoweroff, ""
	}
	if line := panicLine(console); line != "" {
		return wire.EndCrash, line
	}
	return wire.EndCrash, "guest reset before the agent finished"
}

// maxPanicLine bounds the panic line taken from the console log.
const maxPanicLine = 512

// panicLine returns the kernel's "Kernel panic" line from the console log
// (capped, so it is read whole): from those words to the end of the line,
// at most maxPanicLine bytes. Lines of any length before it do not hide
// it. It is sanitised: the guest wrote it, and it goes to ktstr-boot's
// stderr.
func panicLine(path string) string {
	f, err := os.Open(path)
	if err != nil {
		return ""
	}
	defer f.Close()
	b, _ := io.ReadAll(io.LimitReader(f, ConsoleHead+ConsoleTail+4096))
	i := bytes.Index(b, []byte("Kernel panic"))
	if i < 0 {
		return ""
	}
	line, _, _ := bytes.Cut(b[i:], []byte("\n"))
	return sanitize.String(strings.TrimSpace(string(line[:min(len(line), maxPanicLine)])))
}
