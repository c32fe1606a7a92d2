package vmm

import (
	"encoding/binary"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/ktstr-go/ktstr/internal/cache"
	"github.com/ktstr-go/ktstr/internal/topology"
	"github.com/ktstr-go/ktstr/lib/shm"
)

// cores is the topology of n one-thread cores on one LLC and node.
func cores(n int) topology.Topology {
	return topology.Topology{Nodes: 1, LLCs: 1, Cores: n, Threads: 1}
}

// asm assembles the few x86-64 instructions the test guests use, by hand.
type asm struct{ b []byte }

func (a *asm) emit(b ...byte) *asm { a.b = append(a.b, b...); return a }

func (a *asm) imm64(v uint64) *asm { return a.emit(binary.LittleEndian.AppendUint64(nil, v)...) }
func (a *asm) imm32(v uint32) *asm { return a.emit(binary.LittleEndian.AppendUint32(nil, v)...) }

func (a *asm) movRDI(v uint64) *asm { return a.emit(0x48, 0xbf).imm64(v) } // mov rdi, imm64
func (a *asm) movRSI(v uint64) *asm { return a.emit(0x48, 0xbe).imm64(v) } // mov rsi, imm64
func (a *asm) movRAX(v uint64) *asm { return a.emit(0x48, 0xb8).imm64(v) } // mov rax, imm64
func (a *asm) movECX(v uint32) *asm { return a.emit(0xb9).imm32(v) }       // mov ecx, imm32
func (a *asm) repMovsb() *asm       { return a.emit(0xf3, 0xa4) }          // rep movsb [rdi], [rsi]
func (a *asm) storeRAX() *asm       { return a.emit(0x48, 0x89, 0x07) }    // mov [rdi], rax
func (a *asm) loadRAX() *asm        { return a.emit(0x48, 0x8b, 0x07) }    // mov rax, [rdi]
func (a *asm) storeEAX() *asm       { return a.emit(0x89, 0x07) }          // mov [rdi], eax
func (a *asm) movAL(v byte) *asm    { return a.emit(0xb0, v) }             // mov al, imm8
func (a *asm) movDX(p uint16) *asm  { return a.emit(0x66, 0xba, byte(p), byte(p>>8)) }
func (a *asm) outDX() *asm          { return a.emit(0xee) }            // out dx, al
func (a *asm) out(p byte) *asm      { return a.emit(0xe6, p) }         // out imm8, al
func (a *asm) jmpSelf() *asm        { return a.emit(0xeb, 0xfe) }      // jmp $
func (a *asm) decECX() *asm         { return a.emit(0xff, 0xc9) }      // dec ecx
func (a *asm) jnz(rel int8) *asm    { return a.emit(0x75, byte(rel)) } // jnz rel8
func (a *asm) lidtZero() *asm {
	// lidt [rip+2]; jmp over a 10-byte zero IDTR.
	return a.emit(0x0f, 0x01, 0x1d).imm32(2).emit(0xeb, 10).emit(make([]byte, 10)...)
}
func (a *asm) ud2() *asm { return a.emit(0x0f, 0x0b) }

// copyTo emits code that copies data (placed after the code, jumped over)
// to guest-physical dst.
func (a *asm) copyTo(dst uint64, data []byte) *asm {
	// jmp over the data; its address is KernelAddr + the offset after the jmp.
	if len(data) > 127 {
		a.emit(0xe9).imm32(uint32(len(data)))
	} else {
		a.emit(0xeb, byte(len(data)))
	}
	at := KernelAddr + uint64(len(a.b))
	a.emit(data...)
	return a.movRDI(dst).movRSI(at).movECX(uint32(len(data))).repMovsb()
}

// writeCOM2 emits code that writes s to COM2's THR.
func (a *asm) writeCOM2(s string) *asm {
	a.movDX(PortCOM2)
	for i := 0; i < len(s); i++ {
		a.movAL(s[i]).outDX()
	}
	return a
}

// reset emits the i8042 reset: out 0x64, 0xfe; then spins.
func (a *asm) reset() *asm { return a.movAL(kbdReset).out(portKBDCmd).jmpSelf() }

// requireKVM skips unless /dev/kvm can run a guest program.
func requireKVM(t testing.TB) Backend {
	t.Helper()
	b, err := Probe()
	if err != nil {
		t.Skipf("needs /dev/kvm: %v", err)
	}
	return b
}

// requireHardwareKVM skips unless the host has hardware KVM.
func requireHardwareKVM(t testing.TB) {
	t.Helper()
	if b := requireKVM(t); !b.CanBootLinux() {
		t.Skipf("needs hardware KVM (kvm_intel or kvm_amd); this host has %v", b)
	}
}

// testKernel returns a bzImage to test with: $KTSTR_KERNEL, else the
// Debian kernel scripts/fetch-kernel puts in ktstr's cache, else skips.
func testKernel(t testing.TB) string {
	t.Helper()
	if k := os.Getenv("KTSTR_KERNEL"); k != "" {
		return k
	}
	dir, err := cache.Dir()
	if err != nil {
		t.Skipf("no kernel image: set KTSTR_KERNEL (%v)", err)
	}
	k := filepath.Join(dir, "debian", "vmlinuz")
	if _, err := os.Stat(k); err != nil {
		t.Skipf("no kernel image: set KTSTR_KERNEL or run scripts/fetch-kernel (%v)", err)
	}
	return k
}

// runProgram runs the program build makes on machine t, with a one-page
// scratch region at the guest-physical address build is given, and
// returns that page after the VM ended (the program's stores there) and
// how it ended.
func runProgram(tb testing.TB, t topology.Topology, build func(scratch uint64) *asm) ([]byte, ExitReason, error) {
	tb.Helper()
	path := filepath.Join(tb.TempDir(), "scratch")
	if err := os.WriteFile(path, make([]byte, 2*pageSize), 0o600); err != nil {
		tb.Fatal(err)
	}
	const memMB = 64
	mm, err := PlanMemory(memMB*mib, pageSize)
	if err != nil {
		tb.Fatal(err)
	}
	vm, err := Start(Config{Program: build(mm.RegionBase).b, MemoryMB: memMB, Topology: t, RegionPath: path, RegionSize: pageSize})
	if err != nil {
		tb.Fatal(err)
	}
	select {
	case <-vm.Done():
	case <-time.After(time.Minute):
		vm.Kill()
		tb.Errorf("program still running after a minute: killed")
	}
	reason, runErr := vm.Exit()
	b, err := os.ReadFile(path)
	if err != nil {
		tb.Fatal(err)
	}
	return b[:pageSize], reason, runErr
}

// newRegion creates a 1 MiB region file in a test directory; the test's
// cleanup unmaps it.
func newRegion(t testing.TB) (*shm.Region, string) {
	t.Helper()
	layout, err := shm.DefaultLayout(1 << 20)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "region")
	r, err := shm.Create(path, layout)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	return r, path
}

func (a *asm) enableOSXSAVE() *asm { // mov rax, cr4; or eax, 1<<18; mov cr4, rax
	return a.emit(0x0f, 0x20, 0xe0, 0x0d).imm32(1<<18).emit(0x0f, 0x22, 0xe0)
}
func (a *asm) movEAX(v uint32) *asm { return a.emit(0xb8).imm32(v) } // mov eax, imm32
func (a *asm) xorECX() *asm         { return a.emit(0x31, 0xc9) }    // xor ecx, ecx
func (a *asm) cpuid() *asm          { return a.emit(0x0f, 0xa2) }    // cpuid
func (a *asm) xgetbv() *asm         { return a.emit(0x0f, 0x01, 0xd0) }
func (a *asm) xsetbv() *asm         { return a.emit(0x0f, 0x01, 0xd1) }
func (a *asm) rdmsr() *asm          { return a.emit(0x0f, 0x32) }
func (a *asm) storeEAXNext() *asm   { return a.emit(0x89, 0x07, 0x48, 0x83, 0xc7, 0x04) } // mov [rdi], eax; add rdi, 4
func (a *asm) storeEBXNext() *asm   { return a.emit(0x89, 0x1f, 0x48, 0x83, 0xc7, 0x04) } // mov [rdi], ebx; add rdi, 4
func (a *asm) storeECXNext() *asm   { return a.emit(0x89, 0x0f, 0x48, 0x83, 0xc7, 0x04) } // mov [rdi], ecx; add rdi, 4
