package vmm

import (
	"fmt"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/ktstr-go/ktstr/internal/kvm"
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

// hostCPUID is a made-up KVM_GET_SUPPORTED_CPUID answer.
func hostCPUID() []kvm.CPUIDEntry {
	return []kvm.CPUIDEntry{
		{Function: 0, EAX: 0x1f},
		{Function: 1, EAX: 0x906ea, EBX: 0x3f_40_0800, ECX: 0x7ffafbff, EDX: 0xbfebfbff},
		{Function: 4, Index: 0, Flags: 1, EAX: 0x1c004121}, // L1d
		{Function: 4, Index: 3, Flags: 1, EAX: 0x1c03c163}, // L3, 16 sharing, 8 cores
		{Function: 0xb, Index: 0, Flags: 1, EAX: 1, EBX: 2, ECX: 0x100, EDX: 0x3f},
		{Function: 0xb, Index: 1, Flags: 1, EAX: 4, EBX: 16, ECX: 0x201, EDX: 0x3f},
		{Function: 0x1f, Index: 0, Flags: 1, EAX: 1, EBX: 2, ECX: 0x100, EDX: 0x3f},
		{Function: 0x80000008, ECX: 0x700f},
		{Function: 0x8000001e, EAX: 0x3f, EBX: 0x0103, ECX: 0x0101},
	}
}

func TestCPUIDFor(t *testing.T) {
	got := cpuidFor(hostCPUID(), 5, 6)
	find := func(fn, idx uint32) kvm.CPUIDEntry {
		for _, e := range got {
			if e.Function == fn && e.Index == idx {
				return e
			}
		}
		t.Fatalf("no leaf %#x.%d", fn, idx)
		return kvm.CPUIDEntry{}
	}
	l1 := find(1, 0)
	if l1.EBX>>24 != 5 || l1.EBX>>16&0xff != 6 || l1.EBX&0xffff != 0x0800 || l1.EDX&(1<<28) == 0 || l1.ECX&(1<<31) == 0 {
		t.Errorf("leaf 1: EBX %#x EDX %#x ECX %#x; want APIC id 5, 6 logical CPUs, HTT, hypervisor", l1.EBX, l1.EDX, l1.ECX)
	}
	if e := find(4, 0); e.EAX>>26 != 5 || e.EAX>>14&0xfff != 0 || e.EAX&0x3fff != 0x0121 {
		t.Errorf("leaf 4.0 (L1d) EAX %#x: want 6 cores, not shared", e.EAX)
	}
	if e := find(4, 3); e.EAX>>26 != 5 || e.EAX>>14&0xfff != 5 {
		t.Errorf("leaf 4.3 (L3) EAX %#x: want 6 cores sharing it", e.EAX)
	}
	for _, leaf := range []uint32{0xb, 0x1f} {
		var topo []kvm.CPUIDEntry
		for _, e := range got {
			if e.Function == leaf {
				topo = append(topo, e)
			}
		}
		want := []kvm.CPUIDEntry{
			{Function: leaf, Index: 0, Flags: 1, EAX: 0, EBX: 1, ECX: 0x100, EDX: 5},
			{Function: leaf, Index: 1, Flags: 1, EAX: 3, EBX: 6, ECX: 0x201, EDX: 5},
			{Function: leaf, Index: 2, Flags: 1, EAX: 0, EBX: 0, ECX: 0x2, EDX: 5},
		}
		if d := cmp.Diff(want, topo); d != "" {
			t.Errorf("leaf %#x (-want +got):\n%s", leaf, d)
		}
	}
	if e := find(0x80000008, 0); e.ECX != 0x3005 {
		t.Errorf("leaf 0x80000008 ECX = %#x, want 0x3005 (NC 5, APIC id size 3)", e.ECX)
	}
	if e := find(0x8000001e, 0); e.EAX != 5 || e.EBX&0xffff != 5 || e.ECX&0x7ff != 0 {
		t.Errorf("leaf 0x8000001e = %+v, want extended APIC id 5, core 5, node 0", e)
	}
	// One CPU: no HTT, no 0x1f when the host has none.
	base := hostCPUID()
	base[0].EAX = 0xd
	one := cpuidFor(base[:5], 0, 1)
	for _, e := range one {
		if e.Function == 0x1f {
			t.Errorf("leaf 0x1f made up for a host whose maximum leaf is 0xd")
		}
		if e.Function == 1 && e.EDX&(1<<28) != 0 {
			t.Errorf("HTT set for one CPU")
		}
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
