package vmm

import (
	"fmt"
	"math/bits"
	"testing"

	"github.com/ktstr-go/ktstr/internal/kvm"
	"github.com/ktstr-go/ktstr/internal/topology"
)

// walk translates a virtual address through the page tables at cr3 in g,
// as the CPU does in 4-level paging (2 MiB and 4 KiB pages).
func walk(g *guestMemory, cr3, va uint64) (uint64, error) {
	read := func(table uint64, idx uint64) (uint64, error) {
		b, err := g.slice(table+8*idx, 8)
		if err != nil {
			return 0, err
		}
		e := le.Uint64(b)
		if e&ptePresent == 0 {
			return 0, fmt.Errorf("va %#x: not present (table %#x index %d)", va, table, idx)
		}
		return e, nil
	}
	const addrMask = 0x000ffffffffff000
	e, err := read(cr3&addrMask, va>>39&511)
	if err != nil {
		return 0, err
	}
	e, err = read(e&addrMask, va>>30&511)
	if err != nil {
		return 0, err
	}
	if e&ptePS != 0 {
		return e&addrMask&^(gib-1) | va&(gib-1), nil
	}
	e, err = read(e&addrMask, va>>21&511)
	if err != nil {
		return 0, err
	}
	if e&ptePS != 0 {
		return e&addrMask&^(2*mib-1) | va&(2*mib-1), nil
	}
	e, err = read(e&addrMask, va>>12&511)
	if err != nil {
		return 0, err
	}
	return e&addrMask | va&0xfff, nil
}

func TestPageTables(t *testing.T) {
	m, err := PlanMemory(8*gib, 16*mib)
	if err != nil {
		t.Fatal(err)
	}
	g := &guestMemory{low: make([]byte, 1*mib)}
	cr3, err := writePageTables(g, m)
	if err != nil {
		t.Fatal(err)
	}
	for _, va := range []uint64{0, ZeroPageAddr, KernelAddr + entry64Offset, 0x1000000 + 0x3000000 - 1, 3*gib - 1, 4*gib - 1, 4 * gib, 9*gib - 1,
		m.RegionBase, m.RegionBase + m.RegionSize - 1, m.RegionBase + gib - 1} {
		pa, err := walk(g, cr3, va)
		if err != nil {
			t.Errorf("walk(%#x): %v", va, err)
		} else if pa != va {
			t.Errorf("walk(%#x) = %#x, want the identity", va, pa)
		}
	}
	for _, va := range []uint64{m.RegionBase + gib, 512 * gib} {
		if pa, err := walk(g, cr3, va); err == nil {
			t.Errorf("walk(%#x) = %#x, want unmapped", va, pa)
		}
	}
	// The tables stay below the command line.
	if end := pdAddr + len(m.identityBlocks())*pageSize; end > cmdlineAddr {
		t.Errorf("page directories end at %#x, past the command line at %#x", end, cmdlineAddr)
	}
}

func TestGDT(t *testing.T) {
	g := &guestMemory{low: make([]byte, 1*mib)}
	if err := writeGDT(g); err != nil {
		t.Fatal(err)
	}
	b, _ := g.slice(gdtAddr, gdtSize)
	desc := func(sel int) (base, limit uint64, access, flags byte) {
		d := le.Uint64(b[sel:])
		base = d>>16&0xffffff | d>>56<<24
		limit = d&0xffff | d>>48&0xf<<16
		return base, limit, byte(d >> 40), byte(d >> 52 & 0xf)
	}
	for _, c := range []struct {
		name          string
		sel           int
		base, limit   uint64
		access, flags byte
	}{
		{"code64", selCode, 0, 0xfffff, 0x9b, 0xa}, // P S type 0xb; G L
		{"data", selData, 0, 0xfffff, 0x93, 0xc},   // P S type 0x3; G D/B
		{"tss", selTSS, tssAddr, tssSize - 1, 0x8b, 0},
	} {
		base, limit, access, flags := desc(c.sel)
		if base != c.base || limit != c.limit || access != c.access || flags != c.flags {
			t.Errorf("%s descriptor: base %#x limit %#x access %#x flags %#x, want %#x %#x %#x %#x",
				c.name, base, limit, access, flags, c.base, c.limit, c.access, c.flags)
		}
	}
	if hi := le.Uint64(b[selTSS+8:]); hi != 0 {
		t.Errorf("TSS descriptor high word = %#x, want 0 (TSS below 4 GiB)", hi)
	}
	var s kvm.Sregs
	longModeSregs(&s, pml4Addr)
	if s.CS.Selector != selCode || s.CS.L != 1 || s.CS.DB != 0 || s.DS.Selector != selData || s.SS.Selector != selData {
		t.Errorf("segments: CS %+v DS %+v", s.CS, s.DS)
	}
	if s.CR0&(cr0PE|cr0PG) != cr0PE|cr0PG || s.CR4&cr4PAE == 0 || s.EFER != eferLME|eferLMA || s.CR3 != pml4Addr {
		t.Errorf("CR0 %#x CR4 %#x EFER %#x CR3 %#x: want long mode with paging", s.CR0, s.CR4, s.EFER, s.CR3)
	}
	if s.GDT.Base != gdtAddr || s.GDT.Limit != gdtSize-1 || s.TR.Selector != selTSS || s.TR.Type != 0xb {
		t.Errorf("GDTR %+v TR %+v", s.GDT, s.TR)
	}
}

// Vendor strings as leaf 0 returns them: EBX, ECX, EDX.
var (
	intelVendor = [3]uint32{0x756e6547, 0x6c65746e, 0x49656e69} // "Genu" "ntel" "ineI"
	amdVendor   = [3]uint32{0x68747541, 0x444d4163, 0x69746e65} // "Auth" "cAMD" "enti"
)

// intelHost is a made-up KVM_GET_SUPPORTED_CPUID answer of an Intel host
// with leaf 0x1F, and leaves that must be rewritten.
func intelHost() []kvm.CPUIDEntry {
	return []kvm.CPUIDEntry{
		{Function: 0, EAX: 0x1f, EBX: intelVendor[0], ECX: intelVendor[1], EDX: intelVendor[2]},
		{Function: 1, EAX: 0x906ea, EBX: 0x3f_40_0800, ECX: 0x7ffafbff, EDX: 0xbfebfbff},
		{Function: 4, Index: 0, Flags: 1, EAX: 0x1c004121}, // L1d
		{Function: 4, Index: 1, Flags: 1, EAX: 0x1c004122}, // L1i
		{Function: 4, Index: 2, Flags: 1, EAX: 0x1c004143}, // L2
		{Function: 4, Index: 3, Flags: 1, EAX: 0x1c03c163}, // L3, 16 sharing, 8 cores
		{Function: 4, Index: 4, Flags: 1},                  // no more caches
		{Function: 0xb, Index: 0, Flags: 1, EAX: 1, EBX: 2, ECX: 0x100, EDX: 0x3f},
		{Function: 0xb, Index: 1, Flags: 1, EAX: 4, EBX: 16, ECX: 0x201, EDX: 0x3f},
		{Function: 0x1f, Index: 0, Flags: 1, EAX: 1, EBX: 2, ECX: 0x100, EDX: 0x3f},
		{Function: 0x40000000, EAX: 0x40000001, EBX: 0x4b4d564b, ECX: 0x564b4d56, EDX: 0x4d},
		{Function: 0x40000001, EAX: 0x01007efb},
		{Function: 0x80000000, EAX: 0x80000008},
		{Function: 0x80000008, ECX: 0x700f},
	}
}

// intelHostNoL3 is an Intel host whose caches end at a shared L2 (Atom
// servers): the VMM adds the L3 the LLCs need.
func intelHostNoL3() []kvm.CPUIDEntry {
	var out []kvm.CPUIDEntry
	for _, e := range intelHost() {
		switch {
		case e.Function == 4 && e.Index == 2:
			e.EAX = 0x04004143 // L2 shared by 2
		case e.Function == 4 && e.Index == 3:
			continue
		case e.Function == 4 && e.Index == 4:
			e.Index = 3
		}
		out = append(out, e)
	}
	return out
}

// amdHost is a made-up answer of an AMD host of family fam: family 0x19
// (Zen 3) has the topology and cache leaves; family 0xF is what QEMU's
// software-emulated "max" CPU reports (the nested test set-up), without
// them.
func amdHost(fam uint32) []kvm.CPUIDEntry {
	eax1 := uint32(0x00a00f11) // family 0xF + 0xA, model 1
	ext := []kvm.CPUIDEntry{
		{Function: 0x80000000, EAX: 0x80000026},
		{Function: 0x80000001, EAX: eax1, ECX: 0x75f3},
		{Function: 0x80000006, ECX: 0x02006140, EDX: 0x08009140},
		{Function: 0x80000008, ECX: 0x700f},
		{Function: 0x8000001d, Index: 0, Flags: 1, EAX: 0x4121}, // host L1d, 2 sharing
		{Function: 0x8000001d, Index: 1, Flags: 1, EAX: 0x4163}, // host L3 at index 1
		{Function: 0x8000001d, Index: 2, Flags: 1},
		{Function: 0x8000001e, EAX: 0x3f, EBX: 0x0103, ECX: 0x0101},
		{Function: 0x80000026, Index: 0, Flags: 1, EAX: 1, EBX: 2, ECX: 0x100, EDX: 0x3f},
		{Function: 0x80000026, Index: 1, Flags: 1, EAX: 7, EBX: 128, ECX: 0x201, EDX: 0x3f},
	}
	if fam == 0xf {
		eax1 = 0x00060fb1
		ext = []kvm.CPUIDEntry{
			{Function: 0x80000000, EAX: 0x8000000a},
			{Function: 0x80000001, EAX: eax1, ECX: 0x75},
			{Function: 0x80000006, EBX: 0x42004200, ECX: 0x02008140, EDX: 0x00808140},
			{Function: 0x80000008, ECX: 0},
		}
	}
	return append([]kvm.CPUIDEntry{
		{Function: 0, EAX: 0xd, EBX: amdVendor[0], ECX: amdVendor[1], EDX: amdVendor[2]},
		{Function: 1, EAX: eax1, EBX: 0x800, ECX: 0x76f83203, EDX: 0x0f8bfbfd},
		{Function: 0xb, Index: 0, Flags: 1},
		{Function: 0xd, Index: 0, Flags: 1, EAX: 0x207, EBX: 0xa88, ECX: 0xa88},
		{Function: 0x40000000, EAX: 0x40000001, EBX: 0x4b4d564b, ECX: 0x564b4d56, EDX: 0x4d},
		{Function: 0x40000001, EAX: 0x01007efb},
	}, ext...)
}

// cpuidTable answers CPUID from a KVM table as KVM does: the entry with
// the function (and the index, when significant), else zeros.
type cpuidTable []kvm.CPUIDEntry

func (c cpuidTable) get(fn, idx uint32) kvm.CPUIDEntry {
	for _, e := range c {
		if e.Function == fn && (e.Index == idx || e.Flags&kvm.CPUIDFlagSignificantIndx == 0) {
			return e
		}
	}
	return kvm.CPUIDEntry{Function: fn, Index: idx}
}

// decodeCPUID places a CPU from its CPUID table the way Linux 6.12 does
// (arch/x86/kernel/cpu/topology*.c, cacheinfo.c): the APIC id and SMT
// and package shifts from leaf 0xB (0x1F first when the maximum basic
// leaf reaches it); the LLC id from the highest cache leaf's sharing
// count (leaf 4 on Intel, 0x8000001D on AMD from family 0x17) or from
// 0x8000001E's node id (AMD before family 0x17); the node from
// 0x8000001E on AMD from family 0x17 (-1 where CPUID does not say).
// LLC, core within the LLC, and thread are numbers within their parent.
type decoded struct {
	APIC                    uint32
	Package, LLCID          uint32
	Node, LLC, Core, Thread int
}

func decodeCPUID(t *testing.T, c cpuidTable) decoded {
	t.Helper()
	leaf := uint32(0xb)
	if c.get(0, 0).EAX >= 0x1f && c.get(0x1f, 1).EBX != 0 {
		leaf = 0x1f
	}
	smtL, coreL := c.get(leaf, 0), c.get(leaf, 1)
	if smtL.ECX>>8&0xff != 1 || coreL.ECX>>8&0xff != 2 || c.get(leaf, 2).ECX>>8&0xff != 0 {
		t.Fatalf("leaf %#x levels: types %d, %d, %d; want SMT, core, end", leaf, smtL.ECX>>8&0xff, coreL.ECX>>8&0xff, c.get(leaf, 2).ECX>>8&0xff)
	}
	if ext := c.get(0x80000000, 0).EAX; ext >= 0x80000026 && c.get(0x80000026, 0).EBX != 0 {
		t.Fatalf("leaf 0x80000026 present: Linux would read the host's topology from it")
	}
	d := decoded{APIC: smtL.EDX, Node: -1}
	if coreL.EDX != d.APIC || c.get(1, 0).EBX>>24 != d.APIC&0xff {
		t.Fatalf("APIC ids disagree: leaf %#x.1 %d, leaf 1 %d, leaf %#x.0 %d", leaf, coreL.EDX, c.get(1, 0).EBX>>24, leaf, d.APIC)
	}
	smt, pkg := smtL.EAX&0x1f, coreL.EAX&0x1f
	d.Package = d.APIC >> pkg
	vendor := vendorOf(c)
	fam := family(c.get(1, 0).EAX)
	order := func(sharing uint32) uint32 { return uint32(bits.Len32(sharing)) } // get_count_order(sharing+1) for sharing+1 a power of two
	var llcShift uint32
	switch {
	case vendor == vendorIntel:
		var l3 kvm.CPUIDEntry
		for i := uint32(0); c.get(4, i).EAX&0x1f != 0; i++ {
			if e := c.get(4, i); e.EAX>>5&7 == 3 {
				l3 = e
			}
		}
		llcShift = order(l3.EAX >> 14 & 0xfff)
		d.LLCID = d.APIC >> llcShift
	case vendor == vendorAMD:
		if c.get(0x80000001, 0).ECX&extECXTopoExt == 0 || c.get(0x80000000, 0).EAX < 0x8000001e || c.get(0x80000006, 0).EDX == 0 {
			t.Fatalf("AMD without TopologyExtensions, leaf 0x8000001E or an L3 in 0x80000006")
		}
		n := uint32(0)
		for c.get(0x8000001d, n).EAX&0x1f != 0 {
			n++
		}
		llc := c.get(0x8000001d, n-1)
		if llc.EAX>>5&7 != 3 {
			t.Fatalf("the last cache leaf is level %d, not the L3", llc.EAX>>5&7)
		}
		llcShift = order(llc.EAX >> 14 & 0xfff)
		e := c.get(0x8000001e, 0)
		if e.EAX != d.APIC {
			t.Fatalf("leaf 0x8000001E = %+v for APIC id %d", e, d.APIC)
		}
		if fam < 0x17 {
			d.LLCID = e.ECX & 0xff
		} else {
			d.LLCID = d.APIC >> llcShift
			d.Node = int(e.ECX & 0xff)
		}
	default:
		t.Fatalf("vendor %v", vendor)
	}
	d.Thread = int(d.APIC & (1<<smt - 1))
	d.Core = int(d.APIC & (1<<llcShift - 1) >> smt)
	d.LLC = int(d.APIC >> llcShift)
	return d
}

// TestCPUIDTopology generates every CPU's CPUID table for every test
// shape on an Intel host, a Zen 3 host and the nested set-up's emulated
// AMD CPU, decodes each back into its place the way Linux does and
// compares with the topology.
func TestCPUIDTopology(t *testing.T) {
	hosts := []struct {
		name string
		base []kvm.CPUIDEntry
	}{{"intel", intelHost()}, {"intel-no-l3", intelHostNoL3()}, {"amd-zen3", amdHost(0x19)}, {"amd-fam0f", amdHost(0xf)}}
	for _, s := range testShapes() {
		tp := s.Topology
		for _, h := range hosts {
			t.Run(s.Name+"/"+h.name, func(t *testing.T) {
				llcIDs := map[uint32]int{}
				for cpu := range tp.CPUs() {
					c := cpuidTable(cpuidFor(h.base, tp, cpu))
					d := decodeCPUID(t, c)
					loc := tp.Loc(cpu)
					if d.APIC != tp.APICID(cpu) || d.Package != 0 || d.LLC != loc.LLC || d.Core != loc.Core || d.Thread != loc.Thread {
						t.Fatalf("CPU %d decodes to %+v, want APIC id %d, package 0, %+v", cpu, d, tp.APICID(cpu), loc)
					}
					if d.Node >= 0 && d.Node != loc.Node {
						t.Fatalf("CPU %d: node %d in leaf 0x8000001E, want %d", cpu, d.Node, loc.Node)
					}
					// Linux groups the LLC by its id: one id per LLC.
					if k, ok := llcIDs[d.LLCID]; ok && k != loc.LLC {
						t.Fatalf("CPU %d (LLC %d) has LLC %d's id %d", cpu, loc.LLC, k, d.LLCID)
					}
					llcIDs[d.LLCID] = loc.LLC
					checkCPUIDFields(t, c, tp)
				}
				if len(llcIDs) != tp.LLCs {
					t.Errorf("%d LLC ids, want %d", len(llcIDs), tp.LLCs)
				}
			})
		}
	}
}

// checkCPUIDFields checks the counts and flags that go with the topology.
func checkCPUIDFields(t *testing.T, c cpuidTable, tp topology.Topology) {
	t.Helper()
	n := uint32(tp.CPUs())
	pkg := uint32(bits.Len32(tp.MaxAPICID()))
	l1 := c.get(1, 0)
	if htt := l1.EDX&cpuid1EDXHTT != 0; htt != (n > 1) || l1.ECX&cpuid1ECXHypervisor == 0 || l1.EBX>>16&0xff != min(uint32(1)<<pkg, 255) {
		t.Fatalf("leaf 1 EBX %#x ECX %#x EDX %#x: want HTT %v, hypervisor, 2^%d addressable ids", l1.EBX, l1.ECX, l1.EDX, n > 1, pkg)
	}
	if e := c.get(0x80000008, 0); e.ECX&0xff != min(n-1, 255) || e.ECX>>12&0xf != pkg {
		t.Fatalf("leaf 0x80000008 ECX %#x: want NC %d, APIC id size %d", e.ECX, min(n-1, 255), pkg)
	}
	if c.get(0xb, 1).EBX != n || c.get(0xb, 0).EBX != uint32(tp.Threads) {
		t.Fatalf("leaf 0xB counts %d threads, %d CPUs; want %d, %d", c.get(0xb, 0).EBX, c.get(0xb, 1).EBX, tp.Threads, n)
	}
	if ext := c.get(0x40000001, 0).EAX&kvmFeatureMSIExtID != 0; ext != (tp.MaxAPICID() > 254) {
		t.Fatalf("KVM_FEATURE_MSI_EXT_DEST_ID %v with APIC ids up to %d", ext, tp.MaxAPICID())
	}
	if vendorOf(c) == vendorAMD {
		if e := c.get(0x8000001e, 0); e.EBX>>8&0xff != uint32(tp.Threads-1) {
			t.Fatalf("leaf 0x8000001E EBX %#x: want %d threads per core", e.EBX, tp.Threads)
		}
	}
	if vendorOf(c) == vendorIntel {
		for i := uint32(0); c.get(4, i).EAX&0x1f != 0; i++ {
			if cores := c.get(4, i).EAX>>26 + 1; cores != min(uint32(1)<<(pkg-uint32(tp.ThreadBits())), 64) {
				t.Fatalf("leaf 4.%d: %d cores per package", i, cores)
			}
		}
	}
}

func TestCPUIDKeepsTheRest(t *testing.T) {
	// One CPU: no HTT; no leaf 0x1F when the host has none; leaves
	// the VMM does not own pass through.
	base := intelHost()
	base[0].EAX = 0xd
	var noLeaf1F []kvm.CPUIDEntry
	for _, e := range base {
		if e.Function != 0x1f {
			noLeaf1F = append(noLeaf1F, e)
		}
	}
	got := cpuidTable(cpuidFor(noLeaf1F, cores(1), 0))
	for _, e := range got {
		if e.Function == 0x1f {
			t.Errorf("leaf 0x1f made up for a host without it")
		}
	}
	if l1 := got.get(1, 0); l1.EDX&cpuid1EDXHTT != 0 || l1.EAX != 0x906ea || l1.EBX&0xffff != 0x0800 {
		t.Errorf("leaf 1 = %+v: want HTT clear, EAX and the CLFLUSH size kept", l1)
	}
	if e := got.get(0x40000000, 0); e.EBX != 0x4b4d564b {
		t.Errorf("leaf 0x40000000 not passed through: %+v", e)
	}
	// The Intel table gets no AMD leaves, the AMD one no leaf 4 changes.
	if e := cpuidTable(cpuidFor(intelHost(), cores(4), 1)).get(0x8000001e, 0); e.EAX != 0 {
		t.Errorf("Intel host got leaf 0x8000001E %+v", e)
	}
}

func TestPatchLAPIC(t *testing.T) {
	var l kvm.LAPICState
	le.PutUint32(l.Regs[kvm.LAPICLVT0:], 0x10000|0x200) // masked, SMI
	le.PutUint32(l.Regs[kvm.LAPICLVT1:], 0x10000)
	patchLAPIC(&l)
	if v := le.Uint32(l.Regs[kvm.LAPICLVT0:]); v != 0x10700 {
		t.Errorf("LVT0 = %#x, want ExtINT with the mask kept (0x10700)", v)
	}
	if v := le.Uint32(l.Regs[kvm.LAPICLVT1:]); v != 0x10400 {
		t.Errorf("LVT1 = %#x, want NMI with the mask kept (0x10400)", v)
	}
}
