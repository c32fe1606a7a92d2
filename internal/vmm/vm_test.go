package vmm

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ktstr-go/ktstr/internal/topology"
	"github.com/ktstr-go/ktstr/lib/shm"
	"github.com/ktstr-go/ktstr/lib/wire"
)

// syncBuffer is a bytes.Buffer safe to write from a vCPU thread.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// waitExit waits for the VM to end, killing it after d.
func waitExit(t *testing.T, vm *VM, d time.Duration) (ExitReason, error) {
	t.Helper()
	select {
	case <-vm.Done():
	case <-time.After(d):
		vm.Kill()
		<-vm.Done()
		t.Errorf("VM still running after %v: killed", d)
	}
	return vm.Exit()
}

// TestProgramWritesRegion runs a tiny guest through the same memory,
// vCPU and region code a kernel gets. It publishes one wire frame on the
// region's TX ring at the region's guest-physical address, sets the
// guest state, writes just past the region (where the host-only trailer
// page would be, if it were mapped), says "ok" on COM2 and resets through
// the i8042. The host then reads the frame through its own mapping of the
// region file.
func TestProgramWritesRegion(t *testing.T) {
	requireKVM(t)
	r, path := newRegion(t)
	layout := r.Layout()
	r.Close()
	before, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	const memMB = 64
	mm, err := PlanMemory(memMB*mib, layout.Size)
	if err != nil {
		t.Fatal(err)
	}
	payload := []byte("hello from a 64-bit guest program")
	frame := wire.AppendFrame(nil, wire.TypeStdout, payload)
	var a asm
	a.copyTo(mm.RegionBase+layout.TxOff, frame)
	a.movRDI(mm.RegionBase + shm.Line).movRAX(uint64(len(frame))).storeRAX()    // TX write position
	a.movRDI(mm.RegionBase + 6*shm.Line).movRAX(shm.GuestDone).storeEAX()       // guest state
	a.movRDI(mm.RegionBase + layout.Size).movRAX(0xdeadbeefdeadbeef).storeRAX() // past the region: MMIO
	a.writeCOM2("ok\n").reset()

	var com2 syncBuffer
	vm, err := Start(Config{Program: a.b, MemoryMB: memMB, RegionPath: path, RegionSize: layout.Size, COM2: &com2})
	if err != nil {
		t.Fatal(err)
	}
	reason, err := waitExit(t, vm, 60*time.Second)
	if reason != ExitReset || err != nil {
		t.Fatalf("Exit() = %v, %v; want reset, nil", reason, err)
	}
	if got := com2.String(); got != "ok\n" {
		t.Errorf("COM2 = %q, want %q", got, "ok\n")
	}
	st := vm.Stats()
	if st.IOExits < 4 {
		t.Errorf("Stats().IOExits = %d, want at least 4 (3 COM2 bytes and the reset)", st.IOExits)
	}
	if st.MMIOExits != 1 {
		t.Errorf("Stats().MMIOExits = %d, want 1 (the write past the region)", st.MMIOExits)
	}
	if want := " KTSTR_SHM_BASE=0x40000000 KTSTR_SHM_SIZE=0x100000"; !strings.HasSuffix(" "+vm.Cmdline(), want) {
		t.Errorf("Cmdline() = %q, want it to end with %q", vm.Cmdline(), want)
	}

	after, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(after[layout.Size:], before[layout.Size:]) {
		t.Errorf("the host-only trailer page changed")
	}
	hr, err := shm.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer hr.Close()
	if s := hr.GuestState(); s != shm.GuestDone {
		t.Errorf("GuestState() = %d, want %d", s, shm.GuestDone)
	}
	p1, p2, err := hr.TX().NewConsumer().Peek()
	if err != nil {
		t.Fatal(err)
	}
	frames, events := wire.ParseStream(append(p1, p2...), 0)
	if len(frames) != 1 || len(events) != 0 {
		t.Fatalf("ParseStream(TX ring) = %d frames, events %v; want 1 frame, no events", len(frames), events)
	}
	if f := frames[0]; f.Type != wire.TypeStdout || !f.CRCOK || string(f.Payload) != string(payload) {
		t.Errorf("frame = %v %q crc_ok=%v, want %v %q crc_ok=true", f.Type, f.Payload, f.CRCOK, wire.TypeStdout, payload)
	}
}

// TestProgramHighMemory runs with RAM above 4 GiB (memory slot 1) and the
// region above that: the program stores a value in high RAM, loads it
// back and stores it in the region. Were high RAM not mapped, the load
// would read all ones from an MMIO exit.
func TestProgramHighMemory(t *testing.T) {
	requireKVM(t)
	const memMB = 3*1024 + 512
	mm, err := PlanMemory(memMB*mib, pageSize)
	if err != nil {
		t.Fatal(err)
	}
	if mm.HighRAM != 512*mib || mm.RegionBase != 5*gib {
		t.Fatalf("PlanMemory = %+v, want 512 MiB above 4 GiB and the region at 5 GiB", mm)
	}
	path := filepath.Join(t.TempDir(), "region")
	if err := os.WriteFile(path, make([]byte, 2*pageSize), 0o600); err != nil {
		t.Fatal(err)
	}
	const value = 0x1122334455667788
	var a asm
	a.movRDI(highRAMStart + mm.HighRAM - 8).movRAX(value).storeRAX()
	a.movRAX(0).loadRAX()
	a.movRDI(mm.RegionBase + 8).storeRAX().reset()
	vm, err := Start(Config{Program: a.b, MemoryMB: memMB, RegionPath: path, RegionSize: pageSize})
	if err != nil {
		t.Fatal(err)
	}
	if reason, err := waitExit(t, vm, 60*time.Second); reason != ExitReset || err != nil {
		t.Fatalf("Exit() = %v, %v; want reset, nil", reason, err)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if got := le.Uint64(b[8:]); got != value {
		t.Errorf("region word 1 = %#x, want %#x (stored to and loaded from high RAM)", got, uint64(value))
	}
	if st := vm.Stats(); st.MMIOExits != 0 {
		t.Errorf("%d MMIO exits, want 0", st.MMIOExits)
	}
}

// TestProgramKill kills a guest that spins, with a second vCPU waiting for
// a SIPI that never comes: both threads must leave KVM_RUN.
func TestProgramKill(t *testing.T) {
	requireKVM(t)
	var a asm
	a.jmpSelf()
	vm, err := Start(Config{Program: a.b, MemoryMB: 32, Topology: cores(2)})
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(50 * time.Millisecond)
	vm.Kill()
	vm.Kill()
	reason, err := waitExit(t, vm, 30*time.Second)
	if reason != ExitKilled || err != nil {
		t.Errorf("Exit() = %v, %v; want killed, nil", reason, err)
	}
	if err := vm.Close(); err != nil {
		t.Errorf("Close() after the end = %v", err)
	}
}

// TestProgramExits checks the ways a guest program can end the VM.
func TestProgramExits(t *testing.T) {
	b := requireKVM(t)
	for _, c := range []struct {
		name string
		prog *asm
		want ExitReason
		hw   bool // only asserted on hardware KVM
	}{
		{"i8042 reset", new(asm).reset(), ExitReset, false},
		{"reset control register", new(asm).movAL(0x06).movDX(PortResetControl).outDX().jmpSelf(), ExitReset, false},
		{"ACPI sleep S5", new(asm).movAL(5<<2 | slpEnable).movDX(PortSleepControl).outDX().jmpSelf(), ExitPoweroff, false},
		{"triple fault", new(asm).lidtZero().ud2(), ExitShutdown, true},
	} {
		t.Run(c.name, func(t *testing.T) {
			vm, err := Start(Config{Program: c.prog.b, MemoryMB: 32})
			if err != nil {
				t.Fatal(err)
			}
			reason, err := waitExit(t, vm, 60*time.Second)
			if c.hw && !b.CanBootLinux() && reason != c.want {
				t.Skipf("%v ended it as %v, %v (software KVM emulates exceptions its own way)", b, reason, err)
			}
			if reason != c.want || err != nil {
				t.Errorf("Exit() = %v, %v; want %v, nil", reason, err, c.want)
			}
		})
	}
}

// TestStartUnwinds checks that a Start that fails part-way closes every
// descriptor and mapping it made.
func TestStartUnwinds(t *testing.T) {
	requireKVM(t)
	count := func() (int, int) {
		fds, _ := os.ReadDir("/proc/self/fd")
		maps, _ := os.ReadFile("/proc/self/maps")
		return len(fds), bytes.Count(maps, []byte("\n"))
	}
	dir := t.TempDir()
	region := filepath.Join(dir, "region")
	if err := os.WriteFile(region, make([]byte, 2*pageSize), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name string
		cfg  Config
	}{
		{"missing initrd", Config{Program: []byte{0xf4}, Initrd: filepath.Join(dir, "none"), RegionPath: region, RegionSize: pageSize}},
		{"region too small", Config{Program: []byte{0xf4}, RegionPath: region, RegionSize: 4 * pageSize}},
		{"not a kernel", Config{Kernel: region}},
	} {
		t.Run(c.name, func(t *testing.T) {
			f0, m0 := count()
			vm, err := Start(c.cfg)
			if err == nil {
				vm.Close()
				t.Fatal("Start succeeded")
			}
			f1, m1 := count()
			if f1 != f0 || m1 != m0 {
				t.Errorf("after Start failed (%v): %d fds and %d mappings, want %d and %d", err, f1, m1, f0, m0)
			}
		})
	}
}

func TestConfigErrors(t *testing.T) {
	for _, c := range []struct {
		name string
		cfg  Config
	}{
		{"neither kernel nor program", Config{}},
		{"both kernel and program", Config{Kernel: "k", Program: []byte{1}}},
		{"too many cpus", Config{Program: []byte{1}, Topology: cores(MaxCPUs + 1)}},
		{"zero threads", Config{Program: []byte{1}, Topology: topology.Topology{Nodes: 1, LLCs: 1, Cores: 1}}},
		{"node memory not adding up", Config{Program: []byte{1}, MemoryMB: 256,
			Topology: topology.Topology{Nodes: 2, LLCs: 2, Cores: 1, Threads: 1, NodeMemoryMB: []int{64, 64}}}},
		{"region without size", Config{Program: []byte{1}, RegionPath: "r"}},
		{"size without region", Config{Program: []byte{1}, RegionSize: pageSize}},
		{"two regions", Config{Program: []byte{1}, RegionPath: "r", Region: os.Stdin, RegionSize: pageSize}},
		{"unaligned region", Config{Program: []byte{1}, RegionPath: "r", RegionSize: 100}},
		{"NUL in cmdline", Config{Program: []byte{1}, Cmdline: "a\x00b"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			if _, err := Start(c.cfg); !errors.Is(err, ErrConfig) {
				t.Errorf("Start(%+v) error = %v, want ErrConfig", c.cfg, err)
			}
		})
	}
}

// TestProgramXCR0 checks the guest's XSAVE state: at entry XCR0 already
// holds every feature leaf 0xD allows (what Linux writes with XSETBV),
// and after the guest sets XCR0 itself and exits to KVM (CPUID), XCR0 is
// still that and CPUID 0xD's size of the enabled state (EBX) is the size
// of all of it (ECX). Under QEMU 7.2's emulated SVM the guest's XSETBV
// never reaches a nested KVM, which then restored XCR0 = 1 at every entry
// and reported 576 bytes in EBX: Linux warned in
// fpu__init_system_xstate.
func TestProgramXCR0(t *testing.T) {
	requireHardwareKVM(t)
	b, reason, err := runProgram(t, cores(1), func(at uint64) *asm {
		var a asm
		a.enableOSXSAVE().movRDI(at)
		a.xorECX().xgetbv().storeEAXNext()                           // XCR0 at entry
		a.movEAX(0xd).xorECX().cpuid().storeEAXNext().storeECXNext() // the allowed mask (low half), the size of all of it
		a.movEAX(0xd).xorECX().cpuid().xorECX().xsetbv()             // XCR0 = the allowed mask, as Linux does
		a.movEAX(0xd).xorECX().cpuid().storeEBXNext()                // an exit to KVM; the size of what is enabled
		a.xorECX().xgetbv().storeEAXNext()                           // XCR0 after the exit
		return a.reset()
	})
	if reason != ExitReset || err != nil {
		t.Fatalf("Exit() = %v, %v; want reset", reason, err)
	}
	atEntry, mask, all, size, after := le.Uint32(b), le.Uint32(b[4:]), le.Uint32(b[8:]), le.Uint32(b[12:]), le.Uint32(b[16:])
	t.Logf("XCR0 at entry %#x; CPUID 0xD: mask %#x, %d bytes for all; after XSETBV and an exit: %d bytes enabled, XCR0 %#x", atEntry, mask, all, size, after)
	if atEntry != mask || after != mask || size != all {
		t.Errorf("XCR0 %#x at entry and %#x after the guest set %#x; %d bytes enabled, want %d", atEntry, after, mask, size, all)
	}
}

// TestProgramX2APIC checks the vCPUs' APIC mode: xAPIC for a machine
// whose APIC ids fit 8 bits, x2APIC from the start for max-cpu (ids up to
// 433, 252 vCPUs with those ids created), where the boot vCPU reads its
// x2APIC id 0 from MSR 0x802.
func TestProgramX2APIC(t *testing.T) {
	requireHardwareKVM(t)
	maxCPU, _ := topology.Preset("max-cpu")
	for _, c := range []struct {
		topo   topology.Topology
		x2apic bool
	}{{topology.Topology{Nodes: 1, LLCs: 2, Cores: 2, Threads: 2}, false}, {maxCPU.Topology, true}} {
		t.Run(c.topo.String(), func(t *testing.T) {
			b, reason, err := runProgram(t, c.topo, func(at uint64) *asm {
				var a asm
				a.movRDI(at).movECX(0x1b).rdmsr().storeEAXNext() // IA32_APIC_BASE
				if c.x2apic {
					a.movECX(0x802).rdmsr().storeEAXNext() // x2APIC id
				}
				return a.reset()
			})
			if reason != ExitReset || err != nil {
				t.Fatalf("Exit() = %v, %v; want reset", reason, err)
			}
			base := le.Uint32(b)
			if on := base&apicBaseX2APIC != 0; on != c.x2apic || base&apicBaseEnable == 0 {
				t.Errorf("IA32_APIC_BASE = %#x: want the APIC enabled, x2APIC mode %v", base, c.x2apic)
			}
			if c.x2apic && le.Uint32(b[4:]) != 0 {
				t.Errorf("x2APIC id of the boot vCPU = %d, want 0", le.Uint32(b[4:]))
			}
		})
	}
}

// TestIRQAffinity checks the CPUs device interrupts are kept on when APIC
// ids exceed 254: those whose ids the 8-bit I/O APIC reaches.
func TestIRQAffinity(t *testing.T) {
	maxCPU, _ := topology.Preset("max-cpu")
	for _, c := range []struct {
		topo topology.Topology
		want string
	}{
		{topology.Topology{Nodes: 1, LLCs: 2, Cores: 2, Threads: 2}, ""},
		{maxCPU.Topology, "0-143"},                                             // LLCs 0-7: ids up to 7<<5 | 8<<1 | 1 = 241
		{topology.Topology{Nodes: 1, LLCs: 2, Cores: 127, Threads: 1}, ""},     // LLC 1: ids 128-254, all in reach
		{topology.Topology{Nodes: 1, LLCs: 3, Cores: 65, Threads: 1}, "0-129"}, // LLC 2: ids 256-320
	} {
		if got := irqAffinity(c.topo); got != c.want {
			t.Errorf("irqAffinity(%s) = %q, want %q", c.topo, got, c.want)
		}
	}
}
