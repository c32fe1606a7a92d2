package vmm

import (
	"fmt"
	"math/bits"

	"github.com/ktstr-go/ktstr/internal/kvm"
)

// Page-table entry bits.
const (
	ptePresent = 1 << 0
	pteWrite   = 1 << 1
	ptePS      = 1 << 7 // 2 MiB page in a PD entry
)

// Control register and EFER bits.
const (
	cr0PE     = 1 << 0
	cr0ET     = 1 << 4
	cr0NE     = 1 << 5
	cr0PG     = 1 << 31
	cr4PAE    = 1 << 5
	eferLME   = 1 << 8
	eferLMA   = 1 << 10
	rflagsRsv = 1 << 1 // bit 1 of RFLAGS is always set
	rflagsIF  = 1 << 9
)

// GDT selectors, as the 64-bit boot protocol requires: __BOOT_CS 0x10,
// __BOOT_DS 0x18; the TSS descriptor (16 bytes in long mode) at 0x20.
const (
	selCode = 0x10
	selData = 0x18
	selTSS  = 0x20
	gdtSize = 0x30
	tssSize = 0x68
)

// gdtEntries are the descriptors at gdtAddr: null, null, 64-bit code
// (execute/read, accessed, L), data (read/write, accessed, 4 GiB flat),
// and the two words of a busy 64-bit TSS at tssAddr.
func gdtEntries() [6]uint64 {
	tss := uint64(tssAddr)
	lo := uint64(tssSize-1) | (tss&0xffffff)<<16 | 0x8b<<40 | (tss>>24&0xff)<<56
	return [6]uint64{
		0,
		0,
		0x00af9b000000ffff, // code: G, L, P, DPL 0, S, type 0xb
		0x00cf93000000ffff, // data: G, D/B, P, DPL 0, S, type 0x3
		lo,                 // TSS: P, type 0xb (busy 64-bit TSS), limit 0x67
		tss >> 32,
	}
}

// writeGDT writes the GDT and an empty TSS into guest memory.
func writeGDT(g *guestMemory) error {
	var b [gdtSize]byte
	for i, e := range gdtEntries() {
		le.PutUint64(b[8*i:], e)
	}
	if err := g.write(gdtAddr, b[:]); err != nil {
		return err
	}
	return g.write(tssAddr, make([]byte, tssSize))
}

// writePageTables writes identity-mapped page tables with 2 MiB pages for
// the GiB blocks of m.identityBlocks and returns CR3: PML4 at pml4Addr,
// one PDPT, a page directory per block from pdAddr.
func writePageTables(g *guestMemory, m MemoryMap) (uint64, error) {
	blocks := m.identityBlocks()
	if len(blocks) > maxPDs {
		return 0, fmt.Errorf("vmm: %d page directories, room for %d", len(blocks), maxPDs)
	}
	pml4 := make([]byte, pageSize)
	le.PutUint64(pml4, pdptAddr|ptePresent|pteWrite)
	pdpt := make([]byte, pageSize)
	for i, blk := range blocks {
		pd := make([]byte, pageSize)
		for j := range uint64(512) {
			le.PutUint64(pd[8*j:], (blk*gib+j*2*mib)|ptePresent|pteWrite|ptePS)
		}
		a := uint64(pdAddr + i*pageSize)
		if err := g.write(a, pd); err != nil {
			return 0, err
		}
		le.PutUint64(pdpt[8*blk:], a|ptePresent|pteWrite)
	}
	if err := g.write(pml4Addr, pml4); err != nil {
		return 0, err
	}
	if err := g.write(pdptAddr, pdpt); err != nil {
		return 0, err
	}
	return pml4Addr, nil
}

// longModeSregs puts s into 64-bit mode as the boot protocol wants: paging
// with the identity map at cr3, CS = 0x10 (64-bit code), DS = ES = FS = GS
// = SS = 0x18, TR = the busy TSS, no LDT, no IDT.
func longModeSregs(s *kvm.Sregs, cr3 uint64) {
	code := kvm.Segment{Base: 0, Limit: 0xffffffff, Selector: selCode, Type: 0xb, Present: 1, S: 1, L: 1, G: 1}
	data := kvm.Segment{Base: 0, Limit: 0xffffffff, Selector: selData, Type: 0x3, Present: 1, S: 1, DB: 1, G: 1}
	s.CS = code
	s.DS, s.ES, s.FS, s.GS, s.SS = data, data, data, data, data
	s.TR = kvm.Segment{Base: tssAddr, Limit: tssSize - 1, Selector: selTSS, Type: 0xb, Present: 1}
	s.LDT = kvm.Segment{Unusable: 1}
	s.GDT = kvm.DTable{Base: gdtAddr, Limit: gdtSize - 1}
	s.IDT = kvm.DTable{}
	s.CR0 = cr0PE | cr0ET | cr0NE | cr0PG
	s.CR3 = cr3
	s.CR4 = cr4PAE
	s.EFER = eferLME | eferLMA
}

// MSRs set on every vCPU.
const (
	msrMiscEnable  = 0x1a0
	msrMTRRDefType = 0x2ff
	miscFastString = 1
	mtrrEnableWB   = 1<<11 | 6 // MTRRs enabled, default type write-back
)

func bootMSRs() []kvm.MSREntry {
	return []kvm.MSREntry{
		{Index: msrMiscEnable, Data: miscFastString},
		{Index: msrMTRRDefType, Data: mtrrEnableWB},
	}
}

func bootFPU() *kvm.FPU {
	return &kvm.FPU{FCW: 0x37f, MXCSR: 0x1f80}
}

// patchLAPIC sets LINT0 to ExtINT and LINT1 to NMI, as a BIOS does, so
// the PIC's interrupts and NMIs reach the CPU.
func patchLAPIC(l *kvm.LAPICState) {
	const modeMask, extINT, nmi = 0x700, 0x700, 0x400
	v := le.Uint32(l.Regs[kvm.LAPICLVT0:])
	le.PutUint32(l.Regs[kvm.LAPICLVT0:], v&^modeMask|extINT)
	v = le.Uint32(l.Regs[kvm.LAPICLVT1:])
	le.PutUint32(l.Regs[kvm.LAPICLVT1:], v&^modeMask|nmi)
}

// cpuidFor returns the CPUID table for vCPU id of n: the host's supported
// leaves with the APIC id and the topology (n cores of one thread in one
// package) rewritten:
//
//	leaf 1 EBX[31:24]    initial APIC id; EBX[23:16] logical processors; EDX.HTT set when n > 1, clear otherwise
//	leaf 1 ECX[31]       hypervisor present
//	leaf 4 EAX[31:26]    cores per package - 1; EAX[25:14] sharing: L1/L2 1 thread, L3 all
//	leaf 0xB, 0x1F       SMT level (1 thread), core level (n), x2APIC id in EDX
//	leaf 0x80000008 ECX  NC = n-1, ApicIdCoreIdSize
//	leaf 0x8000001D      L3 shared by all n
//	leaf 0x8000001E      extended APIC id, core id = id, node 0
func cpuidFor(base []kvm.CPUIDEntry, id, n int) []kvm.CPUIDEntry {
	shift := uint32(bits.Len(uint(n - 1))) // bits of APIC id that number the cores
	out := make([]kvm.CPUIDEntry, 0, len(base)+4)
	maxBasic := uint32(0)
	has1F := false
	for _, e := range base {
		if e.Function == 0 {
			maxBasic = e.EAX
		}
		if e.Function == 0x1f {
			has1F = true
		}
	}
	for _, e := range base {
		switch e.Function {
		case 1:
			e.EBX = e.EBX&0x0000ffff | uint32(id)<<24 | uint32(min(n, 255))<<16
			e.EDX &^= 1 << 28
			if n > 1 {
				e.EDX |= 1 << 28
			}
			e.ECX |= 1 << 31
		case 4:
			level := (e.EAX >> 5) & 7
			share := uint32(0)
			if level >= 3 {
				share = uint32(n - 1)
			}
			e.EAX = e.EAX&0x3fff | min(share, 0xfff)<<14 | min(uint32(n-1), 0x3f)<<26
		case 0xb, 0x1f:
			continue // rewritten below
		case 0x80000008:
			e.ECX = e.ECX&^0xf0ff | uint32(n-1)&0xff | shift<<12
		case 0x8000001d:
			if (e.EAX>>5)&7 >= 3 {
				e.EAX = e.EAX&^(0xfff<<14) | min(uint32(n-1), 0xfff)<<14
			}
		case 0x8000001e:
			e.EAX = uint32(id)
			e.EBX = e.EBX&^0xffff | uint32(id)&0xff
			e.ECX = e.ECX &^ 0x7ff
		}
		out = append(out, e)
	}
	topo := func(leaf uint32) {
		out = append(out,
			kvm.CPUIDEntry{Function: leaf, Index: 0, Flags: kvm.CPUIDFlagSignificantIndx,
				EAX: 0, EBX: 1, ECX: 1 << 8, EDX: uint32(id)}, // SMT: 1 thread (level 0)
			kvm.CPUIDEntry{Function: leaf, Index: 1, Flags: kvm.CPUIDFlagSignificantIndx,
				EAX: shift, EBX: uint32(n), ECX: 2<<8 | 1, EDX: uint32(id)}, // core: n
			kvm.CPUIDEntry{Function: leaf, Index: 2, Flags: kvm.CPUIDFlagSignificantIndx,
				EAX: 0, EBX: 0, ECX: 2, EDX: uint32(id)}, // end of levels
		)
	}
	if maxBasic >= 0xb {
		topo(0xb)
	}
	if maxBasic >= 0x1f && has1F {
		topo(0x1f)
	}
	return out
}
