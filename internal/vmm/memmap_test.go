package vmm

import (
	"errors"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestPlanMemory(t *testing.T) {
	for _, c := range []struct {
		name         string
		ram, region  uint64
		want         MemoryMap
		blocksBeyond []uint64 // identity-mapped GiB blocks past the first four
	}{
		{"256 MiB, 16 MiB region", 256 * mib, 16 * mib, MemoryMap{LowRAM: 256 * mib, RegionBase: 1 * gib, RegionSize: 16 * mib}, nil},
		{"1 GiB ends at the boundary", 1 * gib, 16 * mib, MemoryMap{LowRAM: 1 * gib, RegionBase: 1 * gib, RegionSize: 16 * mib}, nil},
		{"1 GiB + 2 MiB", 1*gib + 2*mib, 2 * gib, MemoryMap{LowRAM: 1*gib + 2*mib, RegionBase: 4 * gib, RegionSize: 2 * gib}, []uint64{4, 5}},
		{"region would reach the hole", 2*gib + 512*mib, 1 * gib, MemoryMap{LowRAM: 2*gib + 512*mib, RegionBase: 4 * gib, RegionSize: 1 * gib}, []uint64{4}},
		{"3 GiB", 3 * gib, 16 * mib, MemoryMap{LowRAM: 3 * gib, RegionBase: 4 * gib, RegionSize: 16 * mib}, []uint64{4}},
		{"3.5 GiB", 3*gib + 512*mib, pageSize, MemoryMap{LowRAM: 3 * gib, HighRAM: 512 * mib, RegionBase: 5 * gib, RegionSize: pageSize}, []uint64{5, 4}},
		{"8 GiB splits around the hole", 8 * gib, 16*mib + pageSize, MemoryMap{LowRAM: 3 * gib, HighRAM: 5 * gib, RegionBase: 9 * gib, RegionSize: 16*mib + pageSize}, []uint64{9, 4, 5, 6, 7, 8}},
		{"high RAM mapped as far as room allows", 64 * gib, 16 * mib, MemoryMap{LowRAM: 3 * gib, HighRAM: 61 * gib, RegionBase: 65 * gib, RegionSize: 16 * mib}, []uint64{65, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14}},
		{"no region", 128 * mib, 0, MemoryMap{LowRAM: 128 * mib}, nil},
		{"region past 512 GiB is not mapped at entry", 600 * gib, 16 * mib, MemoryMap{LowRAM: 3 * gib, HighRAM: 597 * gib, RegionBase: 601 * gib, RegionSize: 16 * mib}, []uint64{4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15}},
	} {
		t.Run(c.name, func(t *testing.T) {
			got, err := PlanMemory(c.ram, c.region)
			if err != nil {
				t.Fatal(err)
			}
			if d := cmp.Diff(c.want, got); d != "" {
				t.Errorf("PlanMemory(%#x, %#x) mismatch (-want +got):\n%s", c.ram, c.region, d)
			}
			if got.LowRAM+got.HighRAM != c.ram {
				t.Errorf("RAM %#x + %#x, want %#x in all", got.LowRAM, got.HighRAM, c.ram)
			}
			if got.RegionSize > 0 {
				if got.RegionBase%gib != 0 || got.RegionBase < got.RAMEnd() {
					t.Errorf("region at %#x: want a GiB boundary at or above the end of RAM %#x", got.RegionBase, got.RAMEnd())
				}
				if got.RegionBase < holeStart && got.RegionBase+got.RegionSize > holeStart {
					t.Errorf("region %#x+%#x overlaps the MMIO hole", got.RegionBase, got.RegionSize)
				}
			}
			if d := cmp.Diff(append([]uint64{0, 1, 2, 3}, c.blocksBeyond...), got.identityBlocks()); d != "" {
				t.Errorf("identityBlocks() mismatch (-want +got):\n%s", d)
			}
		})
	}
}

func TestPlanMemoryErrors(t *testing.T) {
	for _, c := range []struct {
		name        string
		ram, region uint64
	}{
		{"too little RAM", MinMemory - mib, 0},
		{"too much RAM", MaxMemory + mib, 0},
		{"RAM not whole MiB", 64*mib + pageSize, 0},
		{"region not whole pages", 64 * mib, 100},
		{"huge region", 64 * mib, 65 * gib},
	} {
		t.Run(c.name, func(t *testing.T) {
			if m, err := PlanMemory(c.ram, c.region); !errors.Is(err, ErrMemory) {
				t.Errorf("PlanMemory(%#x, %#x) = %+v, %v; want ErrMemory", c.ram, c.region, m, err)
			}
		})
	}
}

// TestE820 checks that the E820 table is sorted, does not overlap, covers
// all RAM but the EBDA and BIOS area, and leaves the region out.
func TestE820(t *testing.T) {
	for _, ram := range []uint64{16 * mib, 256 * mib, 3 * gib, 8 * gib} {
		m, err := PlanMemory(ram, 16*mib)
		if err != nil {
			t.Fatal(err)
		}
		e := m.E820()
		var usable, end uint64
		for i, x := range e {
			if x.Addr < end {
				t.Errorf("RAM %#x: entry %d at %#x overlaps or is out of order", ram, i, x.Addr)
			}
			end = x.Addr + x.Size
			if x.Addr < m.RegionBase+m.RegionSize && m.RegionBase < end {
				t.Errorf("RAM %#x: entry %d %#x+%#x covers the region at %#x", ram, i, x.Addr, x.Size, m.RegionBase)
			}
			if x.Type == E820RAM {
				usable += x.Size
				if x.Addr < holeStart && end > holeStart {
					t.Errorf("RAM %#x: entry %d reaches into the MMIO hole", ram, i)
				}
			}
		}
		if want := ram - (biosEnd - ebdaAddr); usable != want {
			t.Errorf("RAM %#x: E820 gives %#x usable bytes, want %#x", ram, usable, want)
		}
	}
}

// TestNodeRAM checks each NUMA node's RAM: a contiguous run of RAM in
// RAM order, split in two where it crosses the 32-bit hole, and the E820
// entries split where one node's RAM ends.
func TestNodeRAM(t *testing.T) {
	for _, c := range []struct {
		name  string
		ram   uint64
		nodes []int
		want  [][]MemRange
		e820  []E820Entry // RAM entries only
	}{
		{"one node", 256 * mib, nil, [][]MemRange{{{0, 256 * mib}}},
			[]E820Entry{{0, ebdaAddr, E820RAM}, {biosEnd, 255 * mib, E820RAM}}},
		{"two nodes below the hole", 512 * mib, []int{256, 256}, [][]MemRange{{{0, 256 * mib}}, {{256 * mib, 512 * mib}}},
			[]E820Entry{{0, ebdaAddr, E820RAM}, {biosEnd, 255 * mib, E820RAM}, {256 * mib, 256 * mib, E820RAM}}},
		{"a node across the hole", 4500 * mib, []int{1500, 1500, 1500},
			[][]MemRange{{{0, 1500 * mib}}, {{1500 * mib, 3000 * mib}}, {{3000 * mib, holeStart}, {highRAMStart, highRAMStart + 1428*mib}}},
			[]E820Entry{{0, ebdaAddr, E820RAM}, {biosEnd, 1499 * mib, E820RAM}, {1500 * mib, 1500 * mib, E820RAM},
				{3000 * mib, holeStart - 3000*mib, E820RAM}, {highRAMStart, 1428 * mib, E820RAM}}},
		{"a node starting at 4 GiB", 4096 * mib, []int{1024, 1024, 1024, 1024},
			[][]MemRange{{{0, gib}}, {{gib, 2 * gib}}, {{2 * gib, 3 * gib}}, {{highRAMStart, highRAMStart + gib}}},
			[]E820Entry{{0, ebdaAddr, E820RAM}, {biosEnd, gib - biosEnd, E820RAM}, {gib, gib, E820RAM}, {2 * gib, gib, E820RAM},
				{highRAMStart, gib, E820RAM}}},
	} {
		t.Run(c.name, func(t *testing.T) {
			m, err := PlanMemory(c.ram, 16*mib)
			if err != nil {
				t.Fatal(err)
			}
			if c.nodes != nil {
				if err := m.SplitNodes(c.nodes); err != nil {
					t.Fatal(err)
				}
			}
			if d := cmp.Diff(c.want, m.NodeRAM()); d != "" {
				t.Errorf("NodeRAM (-want +got):\n%s", d)
			}
			var ram []E820Entry
			for _, x := range m.E820() {
				if x.Type == E820RAM {
					ram = append(ram, x)
				}
			}
			if d := cmp.Diff(c.e820, ram); d != "" {
				t.Errorf("E820 RAM entries (-want +got):\n%s", d)
			}
		})
	}
	m, _ := PlanMemory(512*mib, 0)
	for _, nodes := range [][]int{{256, 128}, {512, 0}} {
		if err := m.SplitNodes(nodes); !errors.Is(err, ErrMemory) {
			t.Errorf("SplitNodes(%v) of 512 MiB = %v, want ErrMemory", nodes, err)
		}
	}
}

func TestGuestMemorySlice(t *testing.T) {
	g := guestMemory{low: make([]byte, 2*mib), high: make([]byte, 2*mib)}
	for _, c := range []struct {
		gpa, n uint64
		ok     bool
	}{
		{0, 16, true},
		{2*mib - 16, 16, true},
		{2*mib - 16, 17, false},
		{highRAMStart, 2 * mib, true},
		{highRAMStart + 1, 2 * mib, false},
		{3 * mib, 1, false},
		{^uint64(0) - 4, 16, false},
	} {
		_, err := g.slice(c.gpa, c.n)
		if (err == nil) != c.ok {
			t.Errorf("slice(%#x, %#x) error = %v, want ok=%v", c.gpa, c.n, err, c.ok)
		}
	}
}
