// Package boot is the host side of ktstr-boot: it prepares a run
// directory (initramfs, shared region, control socket), picks a backend,
// runs the VM under a watchdog, answers control requests and records how
// the VM ended in the region, where ktstr-drain picks it up.
package boot

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/ktstr-go/ktstr/internal/control"
	"github.com/ktstr-go/ktstr/internal/guest"
	"github.com/ktstr-go/ktstr/internal/initramfs"
	"github.com/ktstr-go/ktstr/internal/record"
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
	// snapshots and kernel ops; "" answers them ERR "no vmlinux".
	Vmlinux string
	// Monitor, when set, runs the host-side monitor with these checks
	// (the scenario opted in).
	Monitor *payload.MonitorThresholds
	// Guest is what the agent runs (scenario, scheduler), written into the
	// initramfs as /ktstr/config.json.
	Guest guest.Config
	// Files are extra files for the initramfs (scheduler binaries and
	// their libraries, payloads).
	Files      []File
	RunDir     string
	Timeout    time.Duration
	CPUs       int
	MemoryMB   int
	VMM        string // "auto", "qemu", "qemu-kvm", "host"
	RegionSize uint64
	Append     string // extra kernel command line
	Verbose    bool   // kernel messages on the console
	Self       string // the binary to use as /init (default: this executable)
	Log        func(format string, args ...any)
}

// Exit statuses of ktstr-boot.
const (
	ExitPoweroff = 0 // the guest agent finished and powered off
	ExitAbnormal = 1 // the VM ended otherwise: timeout, crash, killed
	ExitVMM      = 4 // the VM could not be run
)

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

// Paths in a run directory.
const (
	RegionFile  = "region"
	ControlSock = "control.sock"
	InitrdFile  = "initramfs.cpio"
	ConsoleFile = "console.log"
	COM2File    = "com2.log"
	QMPSock     = "qmp.sock"
	RAMFile     = "guest-ram"
)

// PrepareRunDir creates dir (mode 0700) if needed and refuses one that
// other users can read or that already holds a region.
func PrepareRunDir(dir string) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	st, err := os.Stat(dir)
	if err != nil {
		return err
	}
	if st.Mode().Perm()&0o077 != 0 {
		return fmt.Errorf("run directory %s has mode %v, want 0700", dir, st.Mode().Perm())
	}
	if _, err := os.Stat(filepath.Join(dir, RegionFile)); err == nil {
		return fmt.Errorf("run directory %s already holds a region (one run per directory)", dir)
	}
	return nil
}

// File is one extra file for the initramfs: Src on the host (or Data)
// becomes Dst in the guest.
type File struct {
	Dst  string
	Src  string
	Data []byte
	Mode uint32
}

// BuildInitramfs writes the initramfs: self as /init, the directories and
// device node the kernel needs before devtmpfs is mounted, the agent's
// configuration and the extra files.
func BuildInitramfs(path, self string, cfg guest.Config, files []File) error {
	conf, err := json.Marshal(cfg)
	if err != nil {
		return err
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return err
	}
	bw := bufio.NewWriterSize(f, 1<<20)
	w := initramfs.NewWriter(bw)
	errs := []error{}
	for _, d := range []string{"dev", "proc", "sys", "tmp", "run"} {
		errs = append(errs, w.Dir(d, 0o755))
	}
	errs = append(errs,
		w.CharDev("dev/console", 0o600, 5, 1),
		w.CopyFile("init", self, 0o755),
		w.File(guest.ConfigPath, 0o644, conf),
	)
	for _, fl := range files {
		mode := fl.Mode
		if mode == 0 {
			mode = 0o755
		}
		if w.Has(fl.Dst) {
			continue // a library two binaries share
		}
		if fl.Src != "" {
			errs = append(errs, w.CopyFile(fl.Dst, fl.Src, mode))
		} else {
			errs = append(errs, w.File(fl.Dst, mode, fl.Data))
		}
	}
	errs = append(errs, w.Close(), bw.Flush(), f.Close())
	return errors.Join(errs...)
}

// SchedulerFiles returns the initramfs files for a scheduler binary: the
// binary as /ktstr/bin/NAME and, for a dynamic binary, its loader and
// shared libraries at the paths the loader looks them up. It returns the
// binary's path in the guest.
func SchedulerFiles(bin string) ([]File, string, error) {
	st, err := os.Stat(bin)
	if err != nil {
		return nil, "", err
	}
	if !st.Mode().IsRegular() || st.Mode().Perm()&0o111 == 0 {
		return nil, "", fmt.Errorf("%s is not an executable file", bin)
	}
	deps, err := ELFDeps(bin)
	if err != nil {
		return nil, "", err
	}
	dst := "/ktstr/bin/" + filepath.Base(bin)
	files := []File{{Dst: dst, Src: bin, Mode: 0o755}}
	for _, d := range deps {
		files = append(files, File{Dst: d, Src: d, Mode: 0o755})
	}
	return files, dst, nil
}

// Run performs one run and returns how it ended. Errors before the VM
// starts are returned as errors; everything after is a Result.
func Run(cfg Config) (Result, error) {
	start := time.Now()
	logf := cfg.Log
	if logf == nil {
		logf = func(string, ...any) {}
	}
	if err := PrepareRunDir(cfg.RunDir); err != nil {
		return Result{}, err
	}
	self := cfg.Self
	if self == "" {
		exe, err := os.Executable()
		if err != nil {
			return Result{}, err
		}
		self = exe
	}
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
	initrd := filepath.Join(cfg.RunDir, InitrdFile)
	if cfg.VMM != "host" {
		if err := BuildInitramfs(initrd, self, cfg.Guest, cfg.Files); err != nil {
			return Result{}, fmt.Errorf("initramfs: %w", err)
		}
	}

	// The control socket exists before the region, so a reader that waits
	// for the region can connect at once.
	h := &handler{backend: "qemu", logf: logf, kill: make(chan string, 1), deadline: make(chan time.Time, 16)}
	host, err := createHostFrames(cfg.RunDir)
	if err != nil {
		return Result{}, err
	}
	defer func() {
		if err := host.close(); err != nil {
			logf("%v", err)
		}
	}()
	h.ins = newInspector(cfg.RunDir, cfg.Vmlinux, host, logf, h.reply)
	defer h.ins.close()
	srv, err := control.Listen(filepath.Join(cfg.RunDir, ControlSock), h.handle)
	if err != nil {
		return Result{}, fmt.Errorf("control socket: %w", err)
	}
	defer srv.Close()
	regionPath := filepath.Join(cfg.RunDir, RegionFile)
	region, err := shm.Create(regionPath, layout)
	if err != nil {
		return Result{}, fmt.Errorf("region: %w", err)
	}
	// The control server goes first: its handler writes replies into the
	// region, which must stay mapped until no handler can run.
	defer func() {
		srv.Close()
		region.Close()
	}()
	h.region = region
	h.rx = region.RX().NewProducer(time.Second)

	// nokaslr: the kernel sits where vmlinux says, so the host can read
	// it before any vCPU's CR3 is known (introspect finds the page tables
	// either way).
	cmdline := "console=ttyS0 reboot=t panic=-1 nokaslr rdinit=/init KTSTR_GUEST=1"
	if !cfg.Verbose {
		cmdline += " quiet loglevel=1"
	}
	if cfg.Append != "" {
		cmdline += " " + cfg.Append
	}
	console := filepath.Join(cfg.RunDir, ConsoleFile)
	com2 := filepath.Join(cfg.RunDir, COM2File)
	qc := qemu.Config{
		Kernel: cfg.Kernel, Initrd: initrd, Cmdline: cmdline,
		CPUs: max(cfg.CPUs, 1), MemoryMB: max(cfg.MemoryMB, 128),
		Region: regionPath, RegionSize: layout.Size,
		Console: console, COM2: com2, Stderr: os.Stderr,
		RAMFile: ramFile(cfg.RunDir), QMP: filepath.Join(cfg.RunDir, QMPSock),
	}
	defer os.Remove(qc.RAMFile) // gone already once QEMU has it
	own := false
	switch cfg.VMM {
	case "", "auto":
		b, err := vmm.Probe()
		switch {
		case err == nil && b.CanBootLinux():
			logf("backend: ktstr-boot's own KVM VMM (%v)", b)
			own = true
		case err != nil:
			logf("backend: qemu with software emulation (KVM probe: %v)", err)
		default:
			logf("backend: qemu with software emulation (%v)", b)
		}
	case "own":
		b, _ := vmm.Probe()
		logf("backend: ktstr-boot's own KVM VMM (--vmm own; %v)", b)
		own = true
	case "qemu":
		logf("backend: qemu with software emulation (--vmm qemu)")
	case "qemu-kvm":
		logf("backend: qemu with KVM (--vmm qemu-kvm)")
		qc.KVM = true
	case "host":
		h.backend = "host"
		h.ins.attach("host", nil)
		logf("backend: host (--vmm host: the agent runs the scenario on this machine, no VM)")
		return h.runHost(cfg, region, start)
	default:
		return Result{}, fmt.Errorf("unknown --vmm %q", cfg.VMM)
	}

	var vm machine
	if own {
		h.backend = "own-vmm"
		var o *ownVM
		if o, err = startOwn(cfg, initrd, cmdline, regionPath, layout.Size); err == nil {
			vm = o
			h.ins.attach(h.backend, ownTarget{o.vm})
		}
	} else {
		var q *qemu.VM
		if q, err = qemu.Start(qc); err == nil {
			vm = q
			h.ins.attach(h.backend, qemuTarget{q})
		}
	}
	if err != nil {
		res := Result{Reason: wire.EndVMMError, Detail: err.Error(), Elapsed: time.Since(start)}
		region.MarkClosed(shm.End{Reason: uint32(res.Reason), ExitCode: int32(res.ExitCode()), Elapsed: res.Elapsed})
		return res, err
	}

	if cfg.Monitor != nil {
		h.ins.startMonitor(*cfg.Monitor, start)
	}
	res := h.watch(vm, start, cfg.Timeout)
	h.ins.stopMonitor() // its last samples go out before the region closes
	res.Elapsed = time.Since(start)
	if res.Reason == 0 {
		res.Reason, res.Detail = classify(vm.Err(), region.GuestState(), console)
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

// classify decides how a VM that exited by itself ended.
func classify(qerr error, guestState uint32, console string) (wire.EndReason, string) {
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

// panicLine returns the kernel's "Kernel panic" line from the console log.
func panicLine(path string) string {
	f, err := os.Open(path)
	if err != nil {
		return ""
	}
	defer f.Close()
	sc := bufio.NewScanner(io.LimitReader(f, 64<<20))
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		if i := bytes.Index(sc.Bytes(), []byte("Kernel panic")); i >= 0 {
			return strings.TrimSpace(string(sc.Bytes()[i:]))
		}
	}
	return ""
}

// handler acts on control records from ktstr-dispatch.
type handler struct {
	backend  string
	logf     func(string, ...any)
	region   *shm.Region
	rx       *shm.Producer
	ins      *inspector
	kill     chan string
	deadline chan time.Time
	rxMu     sync.Mutex
}

func (h *handler) handle(r *record.Record) {
	switch r.Effect {
	case record.EffectKill:
		select {
		case h.kill <- fmt.Sprintf("scheduler exited (SCDX exit code %d)", r.ExitCode):
		default:
		}
	case record.EffectWatchdogDeadline:
		// deadline_ns and at_ns share ktstr-dispatch's clock; the
		// remaining budget is their difference.
		rem := time.Duration(int64(r.DeadlineNS) - r.AtNS)
		h.deadline <- time.Now().Add(rem)
	case record.EffectSnapshotRequest:
		h.ins.snapshot(r)
	case record.EffectKernelOpRequest:
		h.ins.kernelOp(r)
	}
}

// reply queues one frame on the host-to-guest ring, header and payload in
// one write, so a reply is never split.
func (h *handler) reply(t wire.Type, p []byte) {
	h.rxMu.Lock()
	defer h.rxMu.Unlock()
	if err := h.rx.Write(wire.AppendFrame(nil, t, p)); err != nil {
		h.logf("reply %v: %v", t, err)
	}
}

// machine is a running VM of either backend.
type machine interface {
	Done() <-chan struct{}
	Kill()
	// Err is the VMM's own failure once Done is closed; nil when the
	// guest ended the VM itself (reboot, poweroff, reset).
	Err() error
}

// watch runs the watchdog until the VM exits, and returns a non-zero
// reason if it had to stop the VM.
func (h *handler) watch(vm machine, start time.Time, timeout time.Duration) Result {
	if timeout <= 0 {
		timeout = 120 * time.Second
	}
	hard := time.NewTimer(timeout)
	defer hard.Stop()
	soft := time.NewTimer(softDelay(timeout))
	defer soft.Stop()
	// An interrupted ktstr-boot stops its VM and still closes the region,
	// so the pipeline ends with a VM end record that says so.
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP)
	defer signal.Stop(sigs)
	for {
		select {
		case <-vm.Done():
			return Result{}
		case sig := <-sigs:
			vm.Kill()
			<-vm.Done()
			return Result{Reason: wire.EndKilled, Detail: fmt.Sprintf("ktstr-boot interrupted by %v", sig)}
		case why := <-h.kill:
			dump := h.ins.failureDump(why)
			t0 := time.Now()
			vm.Kill()
			<-vm.Done()
			return Result{Reason: wire.EndKilled, Detail: fmt.Sprintf("%s; VM stopped %v after the kill request%s", why, time.Since(t0).Round(time.Microsecond), dump)}
		case d := <-h.deadline:
			rem := time.Until(d)
			hard.Reset(max(rem, 0))
			soft.Reset(softDelay(rem))
			h.logf("watchdog: deadline in %v", rem.Round(time.Millisecond))
		case <-soft.C:
			h.region.SetControl(shm.CtlShutdown, 0xD3)
		case <-hard.C:
			why := fmt.Sprintf("watchdog deadline passed after %v", time.Since(start).Round(time.Millisecond))
			dump := h.ins.failureDump(why)
			vm.Kill()
			<-vm.Done()
			return Result{Reason: wire.EndTimeout, Detail: why + dump}
		}
	}
}

// softDelay is when to ask the guest to shut down gracefully: 3 s before
// the hard deadline when the budget is over 5 s (ktstr's rule), else never
// (a timer that does not fire within the run).
func softDelay(budget time.Duration) time.Duration {
	if budget > 5*time.Second {
		return budget - 3*time.Second
	}
	return 24 * time.Hour
}

// runHost runs the agent in this process against the region (--vmm host),
// under the same watchdog: a run past its deadline is recorded as a
// timeout and its workers are left to the agent's cgroup cleanup.
func (h *handler) runHost(cfg Config, region *shm.Region, start time.Time) (Result, error) {
	// The agent's console and COM2 lines go where a VM's serial ports
	// would, so the run directory looks the same.
	con, com2, err := openConsoles(cfg.RunDir)
	if err != nil {
		return Result{}, err
	}
	defer con.Close()
	defer com2.Close()
	done := make(chan error, 1)
	go func() { done <- guest.RunHost(region, cfg.Guest, con, com2) }()
	timeout := cfg.Timeout
	if timeout <= 0 {
		timeout = 120 * time.Second
	}
	var res Result
	select {
	case err := <-done:
		switch {
		case err != nil:
			res = Result{Reason: wire.EndCrash, Detail: err.Error()}
		case region.GuestState() == shm.GuestDone:
			res = Result{Reason: wire.EndPoweroff}
		default:
			res = Result{Reason: wire.EndCrash, Detail: "the agent returned without finishing"}
		}
	case <-time.After(timeout):
		res = Result{Reason: wire.EndTimeout, Detail: fmt.Sprintf("watchdog deadline passed after %v", timeout)}
	case why := <-h.kill:
		res = Result{Reason: wire.EndKilled, Detail: why}
	}
	res.Elapsed = time.Since(start)
	region.MarkClosed(shm.End{Reason: uint32(res.Reason), ExitCode: int32(res.ExitCode()), Elapsed: res.Elapsed})
	h.logf("run ended: %v%s after %v", res.Reason, detail(res.Detail), res.Elapsed.Round(time.Millisecond))
	return res, nil
}

// openConsoles creates the run directory's console files, COM1 and COM2,
// for a backend that writes them itself (the own VMM, host mode).
func openConsoles(dir string) (con, com2 *os.File, err error) {
	if con, err = os.OpenFile(filepath.Join(dir, ConsoleFile), os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600); err != nil {
		return nil, nil, err
	}
	if com2, err = os.OpenFile(filepath.Join(dir, COM2File), os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600); err != nil {
		con.Close()
		return nil, nil, err
	}
	return con, com2, nil
}
