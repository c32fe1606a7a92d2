package vmm

import (
	"errors"
	"fmt"
)

// Guest physical addresses of what the VMM places in low memory. See the
// package documentation for the whole map.
const (
	gdtAddr      = 0x0500 // GDT: null, null, code64 (0x10), data (0x18), TSS (0x20, 16 bytes)
	tssAddr      = 0x0580 // 104-byte 64-bit TSS the TR descriptor points at
	ZeroPageAddr = 0x7000 // boot_params ("zero page"); RSI at entry
	pml4Addr     = 0x9000 // page map level 4
	pdptAddr     = 0xA000 // one page-directory-pointer table: the first 512 GiB
	pdAddr       = 0xB000 // page directories, one per GiB mapped, 2 MiB pages
	maxPDs       = 16     // page directories between pdAddr and cmdlineAddr
	cmdlineAddr  = 0x20000
	cmdlineMax   = 0x10000 // bytes reserved for the command line, NUL included
	ebdaAddr     = 0x9FC00 // extended BIOS data area: reserved, empty
	biosAddr     = 0xE0000 // BIOS area: reserved; the ACPI tables start here
	acpiAddr     = biosAddr
	biosEnd      = 0x100000
	// KernelAddr is where the protected-mode kernel (or a Program) is
	// loaded: 1 MiB. A bzImage's 64-bit entry is KernelAddr + 0x200.
	KernelAddr = 0x100000

	holeStart    = 0xC0000000 // 32-bit MMIO hole: 3 GiB to 4 GiB
	highRAMStart = 1 << 32
	ioapicAddr   = 0xFEC00000
	lapicAddr    = 0xFEE00000
	// KVM's private pages for real mode on Intel: three pages of TSS and
	// one identity-map page, in the hole below the BIOS ROM.
	kvmTSSAddr         = 0xFFFBD000
	kvmIdentityMapAddr = 0xFFFBC000

	regionAlign = 1 << 30 // the region starts at a GiB boundary
	pageSize    = 4096
	mib         = 1 << 20
	gib         = 1 << 30
	// identityLimit is what one PDPT maps: the region is identity-mapped
	// at entry only if it ends below this.
	identityLimit = 512 * gib
	// MinMemory and MaxMemory bound the guest's RAM.
	MinMemory = 16 * mib
	MaxMemory = 1 << 40
)

// E820 entry types.
const (
	E820RAM      = 1
	E820Reserved = 2
	E820ACPI     = 3
)

// E820Entry is one range of the BIOS memory map in boot_params.
type E820Entry struct {
	Addr uint64
	Size uint64
	Type uint32
}

// MemoryMap is the guest's physical memory: RAM below the 32-bit MMIO
// hole, RAM above 4 GiB when there is more than fits below it, and the
// shared region in its own slot in a gap above RAM.
type MemoryMap struct {
	LowRAM     uint64 // RAM at [0, LowRAM)
	HighRAM    uint64 // RAM at [4 GiB, 4 GiB+HighRAM)
	RegionBase uint64 // guest-physical base of the region (0 when RegionSize is 0)
	RegionSize uint64
	// Nodes is the RAM of each NUMA node in bytes, adding up to
	// LowRAM+HighRAM; nil for one node. Node k owns the k-th run of RAM
	// in RAM order: low RAM first, then RAM above 4 GiB.
	Nodes []uint64
}

// MemRange is the guest-physical range [Start, End).
type MemRange struct{ Start, End uint64 }

// ram is the map's RAM in RAM order.
func (m MemoryMap) ram() []MemRange {
	r := []MemRange{{0, m.LowRAM}}
	if m.HighRAM > 0 {
		r = append(r, MemRange{highRAMStart, highRAMStart + m.HighRAM})
	}
	return r
}

// SplitNodes sets Nodes to mb MiB per node (one entry per node). They
// must add up to the map's RAM.
func (m *MemoryMap) SplitNodes(mb []int) error {
	var sum uint64
	nodes := make([]uint64, len(mb))
	for i, v := range mb {
		if v <= 0 {
			return fmt.Errorf("%w: node %d has %d MiB", ErrMemory, i, v)
		}
		nodes[i] = uint64(v) * mib
		sum += nodes[i]
	}
	if sum != m.LowRAM+m.HighRAM {
		return fmt.Errorf("%w: node memory adds up to %d MiB, RAM is %d MiB", ErrMemory, sum/mib, (m.LowRAM+m.HighRAM)/mib)
	}
	m.Nodes = nodes
	return nil
}

// NodeRAM returns each node's guest-physical RAM ranges: one range, or
// two when the node's run crosses the 32-bit hole. With one node it is
// all RAM.
func (m MemoryMap) NodeRAM() [][]MemRange {
	sizes := m.Nodes
	if len(sizes) == 0 {
		sizes = []uint64{m.LowRAM + m.HighRAM}
	}
	ram := m.ram()
	out := make([][]MemRange, len(sizes))
	i, at := 0, ram[0].Start // the RAM range and the address the next node starts at
	for k, size := range sizes {
		for size > 0 && i < len(ram) {
			n := min(size, ram[i].End-at)
			out[k] = append(out[k], MemRange{at, at + n})
			size -= n
			at += n
			if at == ram[i].End && i+1 < len(ram) {
				i++
				at = ram[i].Start
			}
		}
	}
	return out
}

// ErrMemory reports a memory size or region that does not fit the map.
var ErrMemory = errors.New("vmm: memory layout")

// PlanMemory lays out ram bytes of RAM and a region of regionSize bytes
// (0: none). RAM fills [0, 3 GiB) and continues at 4 GiB; the region goes
// at the next GiB boundary above the RAM below the hole when it fits
// there, else at the next GiB boundary above all RAM.
func PlanMemory(ram, regionSize uint64) (MemoryMap, error) {
	if ram < MinMemory || ram > MaxMemory || ram%mib != 0 {
		return MemoryMap{}, fmt.Errorf("%w: %d bytes of RAM: want whole MiB from %d MiB to %d GiB", ErrMemory, ram, MinMemory/mib, MaxMemory/gib)
	}
	if regionSize%pageSize != 0 || regionSize > 64*gib {
		return MemoryMap{}, fmt.Errorf("%w: region of %#x bytes: want whole pages, at most 64 GiB", ErrMemory, regionSize)
	}
	m := MemoryMap{LowRAM: min(ram, holeStart), RegionSize: regionSize}
	m.HighRAM = ram - m.LowRAM
	if regionSize == 0 {
		return m, nil
	}
	base := alignUp(m.LowRAM, regionAlign)
	if m.HighRAM > 0 || base+regionSize > holeStart {
		base = alignUp(highRAMStart+m.HighRAM, regionAlign)
	}
	m.RegionBase = base
	return m, nil
}

// RAMEnd is one past the highest RAM address.
func (m MemoryMap) RAMEnd() uint64 {
	if m.HighRAM > 0 {
		return highRAMStart + m.HighRAM
	}
	return m.LowRAM
}

// E820 is the memory map the guest is told: usable RAM below the EBDA,
// the EBDA and BIOS area reserved (the ACPI tables live there), RAM from
// 1 MiB, RAM above 4 GiB; RAM entries are split where one NUMA node's
// memory ends and the next one's begins. The region is not in it: the
// guest kernel does not use it as RAM, and the agent maps it through
// /dev/mem.
func (m MemoryMap) E820() []E820Entry {
	e := []E820Entry{
		{0, ebdaAddr, E820RAM},
		{ebdaAddr, 0xA0000 - ebdaAddr, E820Reserved},
		{biosAddr, biosEnd - biosAddr, E820Reserved},
		{biosEnd, m.LowRAM - biosEnd, E820RAM},
	}
	if m.HighRAM > 0 {
		e = append(e, E820Entry{highRAMStart, m.HighRAM, E820RAM})
	}
	var cuts []uint64 // where a node's RAM starts, after node 0
	for _, rs := range m.NodeRAM()[1:] {
		cuts = append(cuts, rs[0].Start)
	}
	var out []E820Entry
	for _, x := range e {
		for _, c := range cuts {
			if x.Type == E820RAM && c > x.Addr && c < x.Addr+x.Size {
				out = append(out, E820Entry{x.Addr, c - x.Addr, x.Type})
				x = E820Entry{c, x.Addr + x.Size - c, x.Type}
			}
		}
		out = append(out, x)
	}
	return out
}

// identityBlocks returns the GiB blocks (indexes into the PDPT) mapped
// at entry: the first 4 GiB, the region's when it lies below 512 GiB, and
// RAM above 4 GiB from its start as far as maxPDs page directories go.
// Linux needs only its image, boot_params and command line mapped; the
// rest is for Programs.
func (m MemoryMap) identityBlocks() []uint64 {
	b := []uint64{0, 1, 2, 3}
	if m.RegionSize > 0 && m.RegionBase+m.RegionSize <= identityLimit {
		for g := m.RegionBase / gib; g*gib < m.RegionBase+m.RegionSize; g++ {
			if g >= 4 {
				b = append(b, g)
			}
		}
	}
	for g := uint64(4); g*gib < highRAMStart+m.HighRAM && len(b) < maxPDs && g < identityLimit/gib; g++ {
		b = append(b, g)
	}
	return b
}

func alignUp(v, a uint64) uint64 { return (v + a - 1) &^ (a - 1) }

// guestMemory is the RAM of a guest as host memory: low is guest-physical
// [0, len(low)), high is [4 GiB, 4 GiB+len(high)).
type guestMemory struct {
	low, high []byte
}

// slice returns n bytes of RAM at guest-physical address gpa, or an
// error if the range is not all RAM of one part.
func (g *guestMemory) slice(gpa, n uint64) ([]byte, error) {
	if gpa+n >= gpa {
		if gpa+n <= uint64(len(g.low)) {
			return g.low[gpa : gpa+n : gpa+n], nil
		}
		if gpa >= highRAMStart && gpa-highRAMStart+n <= uint64(len(g.high)) {
			o := gpa - highRAMStart
			return g.high[o : o+n : o+n], nil
		}
	}
	return nil, fmt.Errorf("%w: guest range %#x+%#x is not RAM", ErrMemory, gpa, n)
}

// write copies b into RAM at gpa.
func (g *guestMemory) write(gpa uint64, b []byte) error {
	s, err := g.slice(gpa, uint64(len(b)))
	if err != nil {
		return err
	}
	copy(s, b)
	return nil
}
