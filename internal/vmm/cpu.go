package vmm

import (
	"fmt"
	"math/bits"

	"github.com/ktstr-go/ktstr/internal/kvm"
	"github.com/ktstr-go/ktstr/internal/topology"
)

// Page-table entry bits.
const (
	ptePresent = 1 << 0
	pteWrite   = 1 << 1
	ptePS      = 1 << 7 // 2 MiB page in a PD entry
)

// Control register and EFER bits.
const (
	cr0PE   = 1 << 0
	cr0ET   = 1 << 4
	cr0NE   = 1 << 5
	cr0PG   = 1 << 31
	cr4PAE  = 1 << 5
	eferLME = 1 << 8
	eferLMA = 1 << 10
	// IA32_APIC_BASE: the APIC globally enabled, and x2APIC mode.
	apicBaseEnable = 1 << 11
	apicBaseX2APIC = 1 << 10
	xfeatureFP     = 1      // XCR0 bit 0: x87 state, always on
	rflagsRsv      = 1 << 1 // bit 1 of RFLAGS is always set
	rflagsIF       = 1 << 9
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
	flatSegments(s, kvm.Segment{Base: 0, Limit: 0xffffffff, Selector: selCode, Type: 0xb, Present: 1, S: 1, L: 1, G: 1})
	s.CR0 = cr0PE | cr0ET | cr0NE | cr0PG
	s.CR3 = cr3
	s.CR4 = cr4PAE
	s.EFER = eferLME | eferLMA
}

// pvhSregs puts the boot vCPU where a PVH entry starts: 32-bit protected
// mode, flat 32-bit code and data segments, paging, PAE and long mode off.
func pvhSregs(s *kvm.Sregs) {
	flatSegments(s, kvm.Segment{Base: 0, Limit: 0xffffffff, Selector: selCode, Type: 0xb, Present: 1, S: 1, DB: 1, G: 1})
	s.CR0 = cr0PE | cr0ET | cr0NE
	s.CR3, s.CR4, s.EFER = 0, 0, 0
}

// flatSegments loads code as CS, flat read/write data segments, the busy
// TSS at tssAddr as TR, no LDT, the GDT at gdtAddr and an empty IDT.
func flatSegments(s *kvm.Sregs, code kvm.Segment) {
	data := kvm.Segment{Base: 0, Limit: 0xffffffff, Selector: selData, Type: 0x3, Present: 1, S: 1, DB: 1, G: 1}
	s.CS = code
	s.DS, s.ES, s.FS, s.GS, s.SS = data, data, data, data, data
	s.TR = kvm.Segment{Base: tssAddr, Limit: tssSize - 1, Selector: selTSS, Type: 0xb, Present: 1}
	s.LDT = kvm.Segment{Unusable: 1}
	s.GDT = kvm.DTable{Base: gdtAddr, Limit: gdtSize - 1}
	s.IDT = kvm.DTable{}
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

// CPU vendors, as leaf 0's vendor string names them. Hygon follows
// AMD's topology and cache leaves.
type cpuVendor int

const (
	vendorOther cpuVendor = iota
	vendorIntel
	vendorAMD
)

func vendorOf(base []kvm.CPUIDEntry) cpuVendor {
	for _, e := range base {
		if e.Function != 0 {
			continue
		}
		var b [12]byte
		le.PutUint32(b[0:], e.EBX)
		le.PutUint32(b[4:], e.EDX)
		le.PutUint32(b[8:], e.ECX)
		switch string(b[:]) {
		case "GenuineIntel":
			return vendorIntel
		case "AuthenticAMD", "HygonGenuine":
			return vendorAMD
		}
	}
	return vendorOther
}

// family is the CPU family leaf 1 EAX encodes (base family, plus the
// extended family when the base is 0xF).
func family(eax uint32) uint32 {
	f := eax >> 8 & 0xf
	if f == 0xf {
		f += eax >> 20 & 0xff
	}
	return f
}

// CPUID bits and leaves the VMM sets.
const (
	cpuid1EDXHTT        = 1 << 28
	cpuid1ECXXSAVE      = 1 << 26
	cpuid1ECXHypervisor = 1 << 31
	extECXTopoExt       = 1 << 22 // 0x80000001 ECX: leaves 0x8000001D and 0x8000001E
	kvmFeatureMSIExtID  = 1 << 15 // 0x40000001 EAX: KVM_FEATURE_MSI_EXT_DEST_ID
	leafKVMFeatures     = 0x40000001
	leafAMDCache        = 0x8000001d
	leafAMDTopology     = 0x8000001e
	leafAMDExtTopology  = 0x80000026
	// amdLLCFromCacheLeaf is the first AMD family whose LLC Linux reads
	// from the cache leaf 0x8000001D; before it the L3 is per node and
	// Linux takes the LLC id from 0x8000001E's node id.
	amdLLCFromCacheLeaf = 0x17
	// maxXAPICID is the largest APIC id an xAPIC (8-bit, 0xFF being the
	// broadcast) can address; above it the vCPUs start in x2APIC mode.
	maxXAPICID = 254
)

// Cache geometry of the cache leaves the VMM makes up (AMD's 0x8000001D
// and 0x80000006 to match, an L3 in Intel's leaf 4 where the host has
// none): 64-byte lines, one partition. Linux derives the LLC only from
// the sharing counts; the sizes are what sysfs shows.
const (
	cacheLine = 64
	l1KiB     = 32
	l1Ways    = 8
	l2KiB     = 512
	l2Ways    = 8
	l3KiB     = 16 << 10
	l3Ways    = 16
	// 0x80000006 associativity code for 8 and 16 ways.
	assoc8, assoc16 = 0x6, 0x8
)

// cpuidFor returns the CPUID table of CPU cpu of machine t: the host's
// supported leaves (base) with the APIC id and the topology rewritten.
// One package holds every LLC; the cache leaves carve the LLCs out of it.
// With s = thread bits, l = s + core bits (an LLC's span of APIC ids)
// and p = the APIC id width of the whole package:
//
//	leaf 1 EBX[31:24]    initial APIC id (low 8 bits); EBX[23:16] 2^p (at most 255); EDX.HTT when there is more than one CPU
//	leaf 1 ECX[31]       hypervisor present
//	leaf 4 (Intel)       EAX[25:14] sharing: L1 and L2 2^s-1, L3 2^l-1; EAX[31:26] 2^(p-s)-1 cores (at most 63);
//	                     an L3 added when the host has none (Linux would take the L2 for the LLC)
//	leaf 0xB, 0x1F       SMT level (shift s, T threads), core level (shift p, every CPU), terminator; EDX the x2APIC id
//	leaf 0x80000008 ECX  NC = CPUs-1 (at most 255), ApicIdCoreIdSize = p
//	AMD 0x80000001 ECX   TopologyExtensions; 0x80000000 EAX raised to 0x8000001E when lower
//	AMD 0x8000001D       L1d, L1i, L2 shared by 2^s, L3 shared by 2^l (the LLC), terminator
//	AMD 0x80000006       L2 and L3 descriptors matching them (Linux sees no L3 when EDX is 0)
//	AMD 0x8000001E       EAX extended APIC id; EBX core id (package-wide) and threads-1; ECX node id and nodes-1:
//	                     the NUMA node, or the LLC on families before 0x17, whose LLC Linux takes from it
//	AMD 0x80000026       dropped (Linux would prefer it to leaf 0xB)
//	leaf 0x40000001 EAX  KVM_FEATURE_MSI_EXT_DEST_ID when an APIC id exceeds 254, so Linux brings those CPUs up
func cpuidFor(base []kvm.CPUIDEntry, t topology.Topology, cpu int) []kvm.CPUIDEntry {
	n := t.CPUs()
	apic := t.APICID(cpu)
	loc := t.Loc(cpu)
	smt := t.ThreadBits()
	llc := smt + t.CoreBits()
	pkg := uint(bits.Len32(t.MaxAPICID()))
	vendor := vendorOf(base)
	maxBasic, maxExt, fam := uint32(0), uint32(0), uint32(0)
	has1F := false
	for _, e := range base {
		switch e.Function {
		case 0:
			maxBasic = e.EAX
		case 1:
			fam = family(e.EAX)
		case 0x80000000:
			maxExt = e.EAX
		case 0x1f:
			has1F = true
		}
	}
	amd := vendor == vendorAMD
	out := make([]kvm.CPUIDEntry, 0, len(base)+12)
	var caches []kvm.CPUIDEntry // Intel's leaf 4, without its terminator
	for _, e := range base {
		switch e.Function {
		case 1:
			e.EBX = e.EBX&0x0000ffff | apic&0xff<<24 | min(uint32(1)<<pkg, 255)<<16
			e.EDX &^= cpuid1EDXHTT
			if n > 1 {
				e.EDX |= cpuid1EDXHTT
			}
			e.ECX |= cpuid1ECXHypervisor
		case 4:
			if vendor == vendorIntel {
				if e.EAX&0x1f != 0 {
					caches = append(caches, e)
				}
				continue // rewritten below
			}
		case 0xb, 0x1f, leafAMDExtTopology:
			continue // rewritten below, or dropped
		case 0x80000000:
			if amd && e.EAX < leafAMDTopology {
				e.EAX = leafAMDTopology
			}
		case 0x80000001:
			if amd {
				e.ECX |= extECXTopoExt
			}
		case 0x80000006:
			if amd {
				e.ECX = l2KiB<<16 | assoc8<<12 | 1<<8 | cacheLine
				e.EDX = l3KiB/512<<18 | assoc16<<12 | 1<<8 | cacheLine
			}
		case 0x80000008:
			e.ECX = e.ECX&^0xf0ff | min(uint32(n-1), 0xff) | uint32(pkg)<<12
		case leafAMDCache, leafAMDTopology:
			if amd {
				continue // made up below
			}
		case leafKVMFeatures:
			if t.MaxAPICID() > maxXAPICID {
				e.EAX |= kvmFeatureMSIExtID
			}
		}
		out = append(out, e)
	}
	topo := func(leaf uint32) {
		sub := func(i, shift, count, typ uint32) kvm.CPUIDEntry {
			return kvm.CPUIDEntry{Function: leaf, Index: i, Flags: kvm.CPUIDFlagSignificantIndx,
				EAX: shift, EBX: count, ECX: typ<<8 | i, EDX: apic}
		}
		out = append(out,
			sub(0, uint32(smt), uint32(t.Threads), 1), // SMT
			sub(1, uint32(pkg), uint32(n), 2),         // core: the whole package
			sub(2, 0, 0, 0),                           // end of levels
		)
	}
	if vendor == vendorIntel && maxBasic >= 4 {
		hasL3 := false
		for _, e := range caches {
			hasL3 = hasL3 || e.EAX>>5&7 == 3
		}
		if !hasL3 { // Linux would take the L2 for the LLC
			caches = append(caches, kvm.CPUIDEntry{Function: 4, Flags: kvm.CPUIDFlagSignificantIndx,
				EAX: 3 | 3<<5 | 1<<8, EBX: cacheLine - 1 | (l3Ways-1)<<22, ECX: l3KiB*1024/(cacheLine*l3Ways) - 1})
		}
		for i, e := range caches {
			share := uint32(1)<<smt - 1
			if e.EAX>>5&7 >= 3 {
				share = uint32(1)<<llc - 1
			}
			e.Index = uint32(i)
			e.EAX = e.EAX&0x3fff | min(share, 0xfff)<<14 | min(uint32(1)<<(pkg-smt)-1, 0x3f)<<26
			out = append(out, e)
		}
		out = append(out, kvm.CPUIDEntry{Function: 4, Index: uint32(len(caches)), Flags: kvm.CPUIDFlagSignificantIndx})
	}
	if maxBasic >= 0xb {
		topo(0xb)
	}
	if maxBasic >= 0x1f && has1F {
		topo(0x1f)
	}
	if amd {
		if maxExt < 0x80000006 {
			out = append(out, kvm.CPUIDEntry{Function: 0x80000006,
				ECX: l2KiB<<16 | assoc8<<12 | 1<<8 | cacheLine, EDX: l3KiB/512<<18 | assoc16<<12 | 1<<8 | cacheLine})
		}
		cache := func(i, typ, level uint32, kib, ways uint32, share uint32) kvm.CPUIDEntry {
			return kvm.CPUIDEntry{Function: leafAMDCache, Index: i, Flags: kvm.CPUIDFlagSignificantIndx,
				EAX: typ | level<<5 | 1<<8 | min(share, 0xfff)<<14, // self-initializing
				EBX: cacheLine - 1 | (ways-1)<<22,
				ECX: kib*1024/(cacheLine*ways) - 1}
		}
		thread, all := uint32(1)<<smt-1, uint32(1)<<llc-1
		out = append(out,
			cache(0, 1, 1, l1KiB, l1Ways, thread),                                                 // L1 data
			cache(1, 2, 1, l1KiB, l1Ways, thread),                                                 // L1 instruction
			cache(2, 3, 2, l2KiB, l2Ways, thread),                                                 // L2
			cache(3, 3, 3, l3KiB, l3Ways, all),                                                    // L3: the LLC
			kvm.CPUIDEntry{Function: leafAMDCache, Index: 4, Flags: kvm.CPUIDFlagSignificantIndx}, // no more caches
		)
		node, nodes := loc.Node, t.Nodes
		if fam < amdLLCFromCacheLeaf {
			node, nodes = loc.LLC, t.LLCs
		}
		out = append(out, kvm.CPUIDEntry{Function: leafAMDTopology,
			EAX: apic,
			EBX: uint32(t.Threads-1)<<8 | uint32(cpu/t.Threads)&0xff,
			ECX: uint32(min(nodes, 8)-1)<<8 | uint32(node)&0xff})
	}
	return out
}
