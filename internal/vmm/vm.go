package vmm

import (
	"errors"
	"fmt"
	"io"
	"os"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ktstr-go/ktstr/internal/cpulist"
	"github.com/ktstr-go/ktstr/internal/kvm"
	"github.com/ktstr-go/ktstr/internal/topology"
	"golang.org/x/sys/unix"
)

// Config describes one VM.
type Config struct {
	// Kernel is the path of a bzImage with a 64-bit entry point (boot
	// protocol 2.12 or later). Exactly one of Kernel and Program is set.
	Kernel string
	// Program is a flat 64-bit program to run instead of a kernel: it is
	// loaded at KernelAddr (1 MiB) and entered there in long mode with
	// the same page tables, GDT, zero page (RSI) and devices a kernel
	// gets, and RSP just below the zero page. For tests and self-checks
	// on backends that cannot boot Linux.
	Program []byte
	// Vmlinux, when set with Kernel, is that bzImage's ELF kernel with a
	// PVH entry note (CONFIG_PVH): its segments are loaded at their
	// physical addresses and the boot vCPU starts at the PVH entry in
	// 32-bit protected mode with an hvm_start_info, so the guest does not
	// decompress itself. Kernel's setup header still gives the version
	// and the command line and initrd limits. The caller checks that both
	// are one build (the boot package's PVHImage).
	Vmlinux string
	// Initrd is the path of an initramfs (optional).
	Initrd string
	// Cmdline is the kernel command line. Start appends " irqaffinity=..."
	// when an APIC id exceeds 254 (see the package documentation) and
	// " KTSTR_SHM_BASE=0x... KTSTR_SHM_SIZE=0x..." when there is a region.
	Cmdline string
	// Topology is the machine shape the guest gets: its vCPUs with their
	// APIC ids and CPUID topology, the ACPI MADT, and with more than one
	// NUMA node the SRAT and SLIT (the zero value: one vCPU).
	Topology topology.Topology
	// MemoryMB is the guest's RAM in MiB (0: DefaultMemoryMB), split over
	// the topology's nodes (Topology.NodeMemory).
	MemoryMB int
	// Region is the shared-region file: RegionSize guest-visible bytes
	// followed by the host-only trailer page, which is never mapped into
	// the guest. Set Region (an open read-write file; Start does not
	// close it) or RegionPath, or neither for no region.
	Region     *os.File
	RegionPath string
	// RegionSize is the guest-visible size: whole pages.
	RegionSize uint64
	// Console receives what the guest writes to COM1 (0x3f8, IRQ 4);
	// COM2 what it writes to COM2 (0x2f8, IRQ 3). Nil discards. Output is
	// buffered by line; a Write that blocks stalls the writing vCPU.
	Console io.Writer
	COM2    io.Writer
}

// DefaultMemoryMB is the RAM a Config with MemoryMB 0 gets.
const DefaultMemoryMB = 256

// ErrConfig is wrapped by every error about a Config.
var ErrConfig = errors.New("vmm: bad configuration")

// Stats counts what the vCPUs did.
type Stats struct {
	Exits        uint64        // exits to user space, all vCPUs
	IOExits      uint64        // KVM_EXIT_IO
	MMIOExits    uint64        // KVM_EXIT_MMIO
	UnknownPorts uint64        // port accesses nothing answered
	Setup        time.Duration // Start: from its call to the vCPUs starting
	FirstExit    time.Duration // from Start's call to vCPU 0's first exit (0: none yet)
}

// VM is a running virtual machine.
type VM struct {
	cfg     Config
	mem     MemoryMap
	cmdline string
	hdr     *SetupHeader
	pvh     bool // the boot vCPU starts at Vmlinux's PVH entry
	t0      time.Time
	setup   time.Duration

	sys    *kvm.System
	vm     *kvm.VM
	ram    []byte
	guest  guestMemory
	region []byte
	vcpus  []*vcpu
	bus    *bus

	stopping atomic.Bool
	stopped  chan struct{} // closed when stopping is set
	endOnce  sync.Once
	kickMu   sync.Mutex // orders immediate_exit changes of end, Freeze and Thaw, and release
	released bool       // under kickMu: the vCPUs' run structures are unmapped

	// Freezing (freeze.go): the round in progress, and memMu, which
	// readers of guest RAM hold so release cannot unmap it under them.
	freezeMu sync.Mutex
	round    atomic.Pointer[freezeRound]
	memMu    sync.RWMutex
	reason   ExitReason
	err      error
	wg       sync.WaitGroup
	done     chan struct{}
	relOnce  sync.Once

	exits, ioExits, mmioExits atomic.Uint64
	firstExit                 atomic.Int64
}

// vcpu is one vCPU and the OS thread that runs it.
type vcpu struct {
	cpu   *kvm.VCPU // KVM's vCPU id is the APIC id
	index int       // the CPU number: the guest's, and the topology's
	mu    sync.Mutex
	tid   int // the running thread, 0 when none
}

// Start creates the VM, loads the kernel (or program), initrd, command
// line, boot_params, ACPI tables, page tables and GDT into its memory,
// maps the region, creates the vCPUs and starts one thread each. On an
// error it releases everything it set up.
func Start(cfg Config) (*VM, error) {
	t0 := time.Now()
	if err := cfg.check(); err != nil {
		return nil, err
	}
	mem, err := PlanMemory(uint64(cfg.MemoryMB)*mib, cfg.RegionSize)
	if err != nil {
		return nil, err
	}
	if cfg.Topology.Nodes > 1 {
		nodes, err := cfg.Topology.NodeMemory(cfg.MemoryMB)
		if err != nil {
			return nil, fmt.Errorf("%w: %v", ErrConfig, err)
		}
		if err := mem.SplitNodes(nodes); err != nil {
			return nil, err
		}
	}
	v := &VM{cfg: cfg, mem: mem, t0: t0, done: make(chan struct{}), stopped: make(chan struct{})}
	ok := false
	defer func() {
		if !ok {
			v.release()
		}
	}()
	if err := v.create(); err != nil {
		return nil, err
	}
	entry, stack, err := v.load()
	if err != nil {
		return nil, err
	}
	if err := v.createVCPUs(entry, stack); err != nil {
		return nil, err
	}
	ok = true
	v.setup = time.Since(t0)
	v.wg.Add(len(v.vcpus))
	for _, c := range v.vcpus {
		go v.run(c)
	}
	go func() {
		v.wg.Wait()
		v.bus.com1.flush()
		v.bus.com2.flush()
		v.release()
		close(v.done)
	}()
	return v, nil
}

// check validates c and fills in the defaults.
func (c *Config) check() error {
	bad := func(format string, a ...any) error {
		return fmt.Errorf("%w: %s", ErrConfig, fmt.Sprintf(format, a...))
	}
	if t := c.Topology; t.Nodes == 0 && t.LLCs == 0 && t.Cores == 0 && t.Threads == 0 {
		c.Topology = topology.Topology{Nodes: 1, LLCs: 1, Cores: 1, Threads: 1}
	}
	if c.MemoryMB == 0 {
		c.MemoryMB = DefaultMemoryMB
	}
	if err := CheckTopology(c.Topology); err != nil {
		return bad("%v", err)
	}
	switch {
	case (c.Kernel == "") == (len(c.Program) == 0):
		return bad("set exactly one of Kernel and Program")
	case c.Vmlinux != "" && c.Kernel == "":
		return bad("Vmlinux needs its bzImage as Kernel")
	case c.MemoryMB < 0:
		return bad("negative memory")
	case c.Region != nil && c.RegionPath != "":
		return bad("set Region or RegionPath, not both")
	case (c.Region != nil || c.RegionPath != "") != (c.RegionSize != 0):
		return bad("a region needs both a file and RegionSize")
	case c.RegionSize%pageSize != 0:
		return bad("RegionSize %#x is not a whole number of pages", c.RegionSize)
	case strings.ContainsRune(c.Cmdline, 0):
		return bad("NUL in the command line")
	}
	return nil
}

// create opens /dev/kvm, creates the VM with its irqchip and PIT, maps
// RAM and the region and registers them as memory slots.
func (v *VM) create() error {
	var err error
	if v.sys, err = kvm.Open(); err != nil {
		return fmt.Errorf("vmm: %w", err)
	}
	if n, err := v.sys.CheckExtension(kvm.CapImmediateExit); err != nil || n == 0 {
		return fmt.Errorf("vmm: KVM lacks KVM_CAP_IMMEDIATE_EXIT (Linux 4.11 or later needed)")
	}
	if v.vm, err = v.sys.CreateVM(); err != nil {
		return err
	}
	for _, step := range []func() error{
		func() error { return v.vm.SetTSSAddr(kvmTSSAddr) },
		func() error { return v.vm.SetIdentityMapAddr(kvmIdentityMapAddr) },
		v.vm.CreateIRQChip,
		func() error { return v.vm.CreatePIT2(kvm.PITSpeakerDummy) },
	} {
		if err := step(); err != nil {
			return err
		}
	}
	total := v.mem.LowRAM + v.mem.HighRAM
	v.ram, err = unix.Mmap(-1, 0, int(total), unix.PROT_READ|unix.PROT_WRITE, unix.MAP_PRIVATE|unix.MAP_ANONYMOUS|unix.MAP_NORESERVE)
	if err != nil {
		return fmt.Errorf("vmm: map %d MiB of guest RAM: %w", total/mib, err)
	}
	_ = unix.Madvise(v.ram, unix.MADV_HUGEPAGE) // fewer EPT/NPT entries; fine without
	v.guest = guestMemory{low: v.ram[:v.mem.LowRAM:v.mem.LowRAM], high: v.ram[v.mem.LowRAM:]}
	if err := v.vm.SetUserMemoryRegion(0, 0, v.guest.low, 0); err != nil {
		return err
	}
	if v.mem.HighRAM > 0 {
		if err := v.vm.SetUserMemoryRegion(1, highRAMStart, v.guest.high, 0); err != nil {
			return err
		}
	}
	if v.mem.RegionSize > 0 {
		if v.region, err = mapRegion(v.cfg.Region, v.cfg.RegionPath, v.mem.RegionSize); err != nil {
			return err
		}
		if err := v.vm.SetUserMemoryRegion(2, v.mem.RegionBase, v.region, 0); err != nil {
			return err
		}
	}
	com2 := newSerial(v.cfg.COM2, v.irq(IRQCOM2))
	v.bus = &bus{com1: newSerial(v.cfg.Console, v.irq(IRQCOM1)), com2: com2, end: func(r ExitReason) { v.end(r, nil) }}
	return nil
}

func (v *VM) irq(line uint32) func(bool) {
	return func(level bool) { _ = v.vm.IRQLine(line, level) }
}

// mapRegion maps the first size bytes of the region file shared, so the
// guest's writes reach the file (and every other mapping of it) at once.
// The host-only trailer page after them stays out of the guest.
func mapRegion(f *os.File, path string, size uint64) ([]byte, error) {
	if f == nil {
		var err error
		if f, err = os.OpenFile(path, os.O_RDWR, 0); err != nil {
			return nil, fmt.Errorf("vmm: region: %w", err)
		}
		defer f.Close()
	}
	st, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("vmm: region: %w", err)
	}
	if !st.Mode().IsRegular() || uint64(st.Size()) < size {
		return nil, fmt.Errorf("%w: region %s is %d bytes, want a regular file of at least %d", ErrConfig, f.Name(), st.Size(), size)
	}
	m, err := unix.Mmap(int(f.Fd()), 0, int(size), unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED)
	runtime.KeepAlive(f)
	if err != nil {
		return nil, fmt.Errorf("vmm: map region %s: %w", f.Name(), err)
	}
	return m, nil
}

// load writes everything the guest finds in memory at entry and returns
// the entry point and stack pointer.
func (v *VM) load() (entry, stack uint64, err error) {
	g := &v.guest
	cmdMax := uint64(cmdlineMax - 1)
	var initrdMax, kernelEnd uint64
	if v.cfg.Kernel != "" {
		if v.cfg.Vmlinux != "" {
			f, hdr, _, err := openBzImage(v.cfg.Kernel)
			if err != nil {
				return 0, 0, err
			}
			f.Close()
			v.hdr = hdr
			if entry, kernelEnd, err = v.loadVmlinux(v.cfg.Vmlinux); err != nil {
				return 0, 0, err
			}
			v.pvh = true
		} else {
			if kernelEnd, err = v.loadKernel(); err != nil {
				return 0, 0, err
			}
			entry = KernelAddr + entry64Offset
		}
		cmdMax = min(cmdMax, uint64(v.hdr.CmdlineSize))
		initrdMax = uint64(v.hdr.InitrdAddrMax)
		if v.hdr.XLoadFlags&xlfAbove4G != 0 {
			initrdMax = ^uint64(0)
		}
	} else {
		if err := g.write(KernelAddr, v.cfg.Program); err != nil {
			return 0, 0, fmt.Errorf("vmm: program of %d bytes does not fit in RAM: %w", len(v.cfg.Program), err)
		}
		kernelEnd = KernelAddr + uint64(len(v.cfg.Program))
		initrdMax = holeStart - 1
		entry, stack = KernelAddr, ZeroPageAddr
	}

	v.cmdline = strings.TrimSpace(v.cfg.Cmdline)
	if a := irqAffinity(v.cfg.Topology); a != "" {
		v.cmdline += " irqaffinity=" + a
	}
	if v.mem.RegionSize > 0 {
		v.cmdline += fmt.Sprintf(" KTSTR_SHM_BASE=%#x KTSTR_SHM_SIZE=%#x", v.mem.RegionBase, v.mem.RegionSize)
	}
	v.cmdline = strings.TrimSpace(v.cmdline)
	if uint64(len(v.cmdline)) > cmdMax {
		return 0, 0, fmt.Errorf("%w: command line of %d bytes, the kernel takes at most %d", ErrConfig, len(v.cmdline), cmdMax)
	}
	if err := g.write(cmdlineAddr, append([]byte(v.cmdline), 0)); err != nil {
		return 0, 0, err
	}

	bi := bootInfo{hdr: v.hdr, cmdlineAddr: cmdlineAddr, e820: v.mem.E820()}
	if v.cfg.Initrd != "" {
		if bi.initrdAddr, bi.initrdSize, err = v.loadInitrd(kernelEnd, initrdMax); err != nil {
			return 0, 0, err
		}
	}
	tables, rsdp, err := acpiTables(acpiAddr, v.cfg.Topology, v.mem.NodeRAM())
	if err != nil {
		return 0, 0, err
	}
	if err := g.write(acpiAddr, tables); err != nil {
		return 0, 0, err
	}
	bi.rsdp = rsdp
	if v.pvh {
		si, err := startInfo(pvhInfoAddr, pvhInfo{cmdlineAddr: cmdlineAddr, initrdAddr: bi.initrdAddr, initrdSize: bi.initrdSize, rsdp: rsdp, e820: bi.e820})
		if err != nil {
			return 0, 0, err
		}
		if err := g.write(pvhInfoAddr, si); err != nil {
			return 0, 0, err
		}
	} else {
		zp, err := zeroPage(bi)
		if err != nil {
			return 0, 0, err
		}
		if err := g.write(ZeroPageAddr, zp); err != nil {
			return 0, 0, err
		}
	}
	if err := writeGDT(g); err != nil {
		return 0, 0, err
	}
	if _, err := writePageTables(g, v.mem); err != nil {
		return 0, 0, err
	}
	return entry, stack, nil
}

// loadKernel parses the bzImage's setup header and copies its
// protected-mode part to KernelAddr. It returns the end of the memory the
// kernel uses while it decompresses itself.
func (v *VM) loadKernel() (uint64, error) {
	f, hdr, fileSize, err := openBzImage(v.cfg.Kernel)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	v.hdr = hdr
	off := v.hdr.KernelOffset()
	if off >= fileSize {
		return 0, &HeaderError{"setup_sects", uint64(v.hdr.SetupSects), fmt.Sprintf("setup (%d bytes) reaches past the end of the %d-byte file", off, fileSize)}
	}
	size := uint64(fileSize - off)
	end := max(KernelAddr+size, max(KernelAddr, v.hdr.PrefAddress)+uint64(v.hdr.InitSize))
	if end > v.mem.LowRAM {
		return 0, fmt.Errorf("%w: the kernel needs RAM up to %d MiB while it decompresses; MemoryMB is %d", ErrConfig, (end+mib-1)/mib, v.cfg.MemoryMB)
	}
	dst, err := v.guest.slice(KernelAddr, size)
	if err != nil {
		return 0, err
	}
	if _, err := f.ReadAt(dst, off); err != nil {
		return 0, fmt.Errorf("vmm: kernel: %w", err)
	}
	return end, nil
}

// loadInitrd copies the initrd as high as it may go in RAM below the 3 GiB
// hole and limit, page-aligned, above lowest.
func (v *VM) loadInitrd(lowest, limit uint64) (uint64, uint64, error) {
	f, err := os.Open(v.cfg.Initrd)
	if err != nil {
		return 0, 0, fmt.Errorf("vmm: initrd: %w", err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return 0, 0, fmt.Errorf("vmm: initrd: %w", err)
	}
	size := uint64(st.Size())
	top := v.mem.LowRAM
	if limit < top {
		top = limit + 1
	}
	if size == 0 || size > top || (top-size)&^(pageSize-1) < alignUp(lowest, pageSize) {
		return 0, 0, fmt.Errorf("%w: initrd of %d bytes does not fit between the kernel (%#x) and %#x; raise MemoryMB", ErrConfig, size, lowest, top)
	}
	addr := (top - size) &^ (pageSize - 1)
	dst, err := v.guest.slice(addr, size)
	if err != nil {
		return 0, 0, err
	}
	if _, err := f.ReadAt(dst, 0); err != nil {
		return 0, 0, fmt.Errorf("vmm: initrd: %w", err)
	}
	return addr, size, nil
}

// createVCPUs creates every vCPU with its APIC id, CPUID, LAPIC, MSRs,
// FPU and XCR0, and puts the boot vCPU (CPU 0, APIC id 0) at entry in
// long mode. The others wait for the guest's INIT/SIPI in the in-kernel
// LAPIC. When an APIC id exceeds 254 every vCPU starts in x2APIC mode,
// as firmware leaves such a machine: Linux ignores the MADT's x2APIC
// entries otherwise.
func (v *VM) createVCPUs(entry, stack uint64) error {
	t := v.cfg.Topology
	if err := v.checkKVMLimits(t); err != nil {
		return err
	}
	size, err := v.sys.VCPUMmapSize()
	if err != nil {
		return err
	}
	base, err := v.sys.SupportedCPUID()
	if err != nil {
		return err
	}
	xcrs, _ := v.sys.CheckExtension(kvm.CapXCRs)
	x2apic := t.MaxAPICID() > maxXAPICID
	for i := range t.CPUs() {
		c, err := v.vm.CreateVCPU(int(t.APICID(i)), size)
		if err != nil {
			return err
		}
		v.vcpus = append(v.vcpus, &vcpu{cpu: c, index: i})
		table := cpuidFor(base, t, i)
		if err := c.SetCPUID2(table); err != nil {
			return err
		}
		l, err := c.GetLAPIC()
		if err != nil {
			return err
		}
		patchLAPIC(l)
		if err := c.SetLAPIC(l); err != nil {
			return err
		}
		// KVM stops at the first MSR it refuses; both are optional.
		if _, err := c.SetMSRs(bootMSRs()); err != nil {
			return err
		}
		if err := c.SetFPU(bootFPU()); err != nil {
			return err
		}
		if mask, ok := xcr0(table); ok && xcrs > 0 {
			if err := c.SetXCRs([]kvm.XCR{{XCR: 0, Value: mask}}); err != nil {
				return err
			}
		}
		if i != 0 && !x2apic {
			continue
		}
		s, err := c.GetSregs()
		if err != nil {
			return err
		}
		if x2apic {
			s.APICBase |= apicBaseEnable | apicBaseX2APIC
		}
		if i == 0 && v.pvh {
			pvhSregs(&s)
		} else if i == 0 {
			longModeSregs(&s, pml4Addr)
		}
		if err := c.SetSregs(s); err != nil {
			return err
		}
		if i != 0 {
			continue
		}
		regs := kvm.Regs{RIP: entry, RSI: ZeroPageAddr, RSP: stack, RFLAGS: rflagsRsv}
		if v.pvh {
			regs = kvm.Regs{RIP: entry, RBX: pvhInfoAddr, RFLAGS: rflagsRsv}
		}
		if err := c.SetRegs(regs); err != nil {
			return err
		}
	}
	return nil
}

// checkKVMLimits checks that KVM takes t's vCPUs and APIC ids (vCPU ids).
func (v *VM) checkKVMLimits(t topology.Topology) error {
	maxVCPUs, err := v.sys.CheckExtension(kvm.CapMaxVCPUs)
	if err != nil {
		return err
	}
	maxID, err := v.sys.CheckExtension(kvm.CapMaxVCPUID)
	if err != nil {
		return err
	}
	if maxID == 0 {
		maxID = maxVCPUs // KVM before KVM_CAP_MAX_VCPU_ID: ids below the vCPU limit
	}
	switch {
	case maxVCPUs > 0 && t.CPUs() > maxVCPUs:
		return fmt.Errorf("%w: %s is %d vCPUs; this host's KVM takes at most %d (KVM_CAP_MAX_VCPUS)", ErrConfig, t, t.CPUs(), maxVCPUs)
	case maxID > 0 && int(t.MaxAPICID()) >= maxID:
		return fmt.Errorf("%w: %s needs APIC ids up to %d; this host's KVM takes vCPU ids below %d (KVM_CAP_MAX_VCPU_ID)", ErrConfig, t, t.MaxAPICID(), maxID)
	}
	return nil
}

// xcr0 is the XCR0 the guest's CPUID table allows (leaf 0xD subleaf 0),
// when it has XSAVE. The VMM sets it as the vCPU's XCR0 before the guest
// runs: it is what Linux writes there with XSETBV, and it keeps KVM's
// view right where the guest's XSETBV never reaches KVM (QEMU 7.2's
// emulated SVM does not intercept XSETBV, so a nested KVM would keep
// XCR0 = 1, restore it at every VM entry, and report the XSAVE size of
// x87 state alone in CPUID 0xD).
func xcr0(table []kvm.CPUIDEntry) (uint64, bool) {
	hasXSAVE := false
	var mask uint64
	for _, e := range table {
		switch {
		case e.Function == 1:
			hasXSAVE = e.ECX&cpuid1ECXXSAVE != 0
		case e.Function == 0xd && e.Index == 0:
			mask = uint64(e.EDX)<<32 | uint64(e.EAX)
		}
	}
	return mask, hasXSAVE && mask&xfeatureFP != 0
}

// irqAffinity is the kernel's irqaffinity= for t: the CPUs whose APIC id
// is at most 254, when some exceed it ("" otherwise). KVM's in-kernel
// I/O APIC addresses 8-bit destinations only, so interrupts from the
// serial ports and the timer must stay on those CPUs.
func irqAffinity(t topology.Topology) string {
	if t.MaxAPICID() <= maxXAPICID {
		return ""
	}
	var cpus []int
	for i := range t.CPUs() {
		if t.APICID(i) <= maxXAPICID {
			cpus = append(cpus, i)
		}
	}
	return cpulist.Format(cpus)
}

// release closes every resource Start set up, in reverse order. It runs
// once, after the vCPU threads have stopped or when Start fails.
func (v *VM) release() {
	v.relOnce.Do(func() {
		v.kickMu.Lock()
		v.released = true
		for _, c := range v.vcpus {
			c.cpu.Close()
		}
		v.kickMu.Unlock()
		if v.vm != nil {
			v.vm.Close()
		}
		if v.region != nil {
			unix.Munmap(v.region)
			v.region = nil
		}
		v.memMu.Lock()
		defer v.memMu.Unlock()
		if v.ram != nil {
			unix.Munmap(v.ram)
			v.ram, v.guest = nil, guestMemory{}
		}
		if v.sys != nil {
			v.sys.Close()
		}
	})
}

// run is one vCPU's thread: KVM_RUN in a loop on a locked OS thread until
// the VM ends. The thread is never unlocked, so it exits with the
// goroutine and no other goroutine ever runs on it.
func (v *VM) run(c *vcpu) {
	defer v.wg.Done()
	runtime.LockOSThread()
	c.mu.Lock()
	c.tid = unix.Gettid()
	c.mu.Unlock()
	defer func() {
		c.mu.Lock()
		c.tid = 0
		c.mu.Unlock()
	}()
	for !v.stopping.Load() {
		err := c.cpu.Run()
		if err == unix.EINTR || err == unix.EAGAIN {
			// A signal, immediate_exit (Kill, Freeze), or the Go
			// runtime's preemption.
			v.park(c)
			continue
		}
		if err != nil {
			v.end(ExitError, &RunError{VCPU: c.index, Err: fmt.Errorf("KVM_RUN: %w", err)})
			return
		}
		v.exits.Add(1)
		if c.index == 0 && v.firstExit.Load() == 0 {
			v.firstExit.Store(int64(time.Since(v.t0)))
		}
		v.handle(c)
	}
}

// handle acts on one exit. Anything that ends the VM goes through end.
func (v *VM) handle(vc *vcpu) {
	c := vc.cpu
	switch r := c.ExitReason(); r {
	case kvm.ExitIO:
		v.ioExits.Add(1)
		io, err := c.IO()
		if err != nil {
			v.fail(vc, r, err)
			return
		}
		sz := int(io.Size)
		for i := 0; i < int(io.Count); i++ {
			d := io.Data[i*sz : (i+1)*sz]
			if io.Dir == kvm.IOOut {
				v.bus.out(io.Port, d)
			} else {
				v.bus.in(io.Port, d)
			}
		}
	case kvm.ExitMMIO:
		// Nothing is mapped outside RAM and the region: reads see all
		// ones, writes are dropped.
		v.mmioExits.Add(1)
		m, err := c.MMIO()
		if err != nil {
			v.fail(vc, r, err)
			return
		}
		if !m.IsWrite {
			fillOnes(m.Data)
		}
	case kvm.ExitHLT:
		regs, err := c.GetRegs()
		if err == nil && vc.index == 0 && regs.RFLAGS&rflagsIF == 0 {
			v.end(ExitHalt, nil)
		}
	case kvm.ExitShutdown:
		v.end(ExitShutdown, nil)
	case kvm.ExitSystemEvent:
		ev := c.SystemEvent()
		switch ev.Type {
		case kvm.SystemEventShutdown:
			v.end(ExitPoweroff, nil)
		case kvm.SystemEventReset:
			v.end(ExitReset, nil)
		case kvm.SystemEventCrash:
			v.end(ExitCrash, nil)
		default:
			v.fail(vc, r, nil)
		}
	case kvm.ExitIntr:
	case kvm.ExitInternalError:
		ie := c.InternalError()
		e := v.exitError(vc, r)
		e.Suberror, e.Data = ie.Suberror, ie.Data
		v.end(ExitError, e)
	case kvm.ExitFailEntry:
		e := v.exitError(vc, r)
		e.Hardware = c.FailEntry().HardwareReason
		v.end(ExitError, e)
	default:
		v.fail(vc, r, nil)
	}
}

func (v *VM) exitError(c *vcpu, r uint32) *RunError {
	e := &RunError{VCPU: c.index, Exit: r}
	if regs, err := c.cpu.GetRegs(); err == nil {
		e.RIP, e.HaveRIP = regs.RIP, true
	}
	return e
}

func (v *VM) fail(c *vcpu, r uint32, err error) {
	e := v.exitError(c, r)
	if err != nil {
		e.Err = fmt.Errorf("%s: %w", kvm.ExitName(r), err)
	}
	v.end(ExitError, e)
}

// end records how the VM ended (the first call wins) and stops every
// vCPU (kick).
func (v *VM) end(r ExitReason, err error) {
	v.endOnce.Do(func() {
		v.reason = r
		if err != nil {
			v.err = err
		}
		v.stopping.Store(true)
		close(v.stopped)
		v.kick()
	})
}

// kick sets immediate_exit on every vCPU, so its next KVM_RUN returns at
// once, and interrupts the KVM_RUN it may be in with a signal (SIGURG,
// which the Go runtime already expects and ignores).
func (v *VM) kick() {
	v.kickMu.Lock()
	defer v.kickMu.Unlock()
	if v.released {
		return
	}
	self := unix.Gettid()
	pid := unix.Getpid()
	for _, c := range v.vcpus {
		c.cpu.SetImmediateExit(true)
		c.mu.Lock()
		if c.tid != 0 && c.tid != self {
			_ = unix.Tgkill(pid, c.tid, unix.SIGURG)
		}
		c.mu.Unlock()
	}
}

// Done is closed when the VM has ended and its resources are released.
func (v *VM) Done() <-chan struct{} { return v.done }

// Exit waits until the VM has ended and returns how. The error is an
// *RunError for ExitError and nil otherwise.
func (v *VM) Exit() (ExitReason, error) {
	<-v.done
	return v.reason, v.err
}

// Kill stops the VM (ExitKilled, unless it already ended) and returns at
// once; Done is closed when the vCPUs have stopped. Safe to call more
// than once and from any goroutine.
func (v *VM) Kill() { v.end(ExitKilled, nil) }

// Close kills the VM and waits until it has released its resources.
func (v *VM) Close() error {
	v.Kill()
	<-v.done
	return nil
}

// Memory returns the guest's physical memory map.
func (v *VM) Memory() MemoryMap { return v.mem }

// Cmdline returns the command line the guest was given, irqaffinity=
// and region parameters included.
func (v *VM) Cmdline() string { return v.cmdline }

// KernelVersion returns the kernel's version string from its setup
// header ("" for a Program or an image without one).
func (v *VM) KernelVersion() string {
	if v.hdr == nil {
		return ""
	}
	return v.hdr.KernelVersion
}

// Stats returns the exit counters so far.
func (v *VM) Stats() Stats {
	return Stats{
		Exits: v.exits.Load(), IOExits: v.ioExits.Load(), MMIOExits: v.mmioExits.Load(),
		UnknownPorts: v.bus.unknown.Load(), Setup: v.setup, FirstExit: time.Duration(v.firstExit.Load()),
	}
}
