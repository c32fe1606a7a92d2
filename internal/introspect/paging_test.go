package introspect

import (
	"errors"
	"testing"
)

func TestTranslate(t *testing.T) {
	for _, levels := range []int{4, 5} {
		im := newImage(t, levels)
		p := Paging{Root: im.top, Levels: levels}
		for _, c := range []struct {
			name       string
			va         uint64
			pa, contig uint64
		}{
			{"text start, 2 MiB page", kText, 0x1000000, 2 << 20},
			{"text inside", kText + 0x1234, 0x1001234, 2<<20 - 0x1234},
			{"data", kJiffies, kJiffies - startKernelMap, 2<<20 - (kJiffies - kData)},
			{"direct map, 1 GiB page", directMap + 0x5008, 0x5008, 1<<30 - 0x5008},
			{"per-CPU area, 4 KiB page", pcpuBase + 0x10000 + 0x18, 0x410018, 4096 - 0x18},
			{"per-CPU area in high RAM", pcpuBase + 0x30000 + 0xff8, imgHighGPA + 0xff8, 8},
		} {
			pa, contig, err := im.mem.Translate(p, c.va)
			if err != nil || pa != c.pa || contig != c.contig {
				t.Errorf("%d levels, %s: Translate(%#x) = %#x, %#x, %v; want %#x, %#x", levels, c.name, c.va, pa, contig, err, c.pa, c.contig)
			}
		}
		for _, c := range []struct {
			name string
			va   uint64
		}{
			{"unmapped PT entry", pcpuBase + 0x1000},
			{"unmapped top entry", 0xffff800000000000},
			{"non-canonical", 0x0000900000000000 << (levels - 4) * 9},
			{"user half, nothing mapped", 0x400000},
		} {
			if _, _, err := im.mem.Translate(p, c.va); !errors.Is(err, ErrNotMapped) {
				t.Errorf("%d levels, %s: Translate(%#x) error %v, want ErrNotMapped", levels, c.name, c.va, err)
			}
		}
	}
}

func TestTranslateHostileTables(t *testing.T) {
	im := newImage(t, 4)
	p := Paging{Root: im.top, Levels: 4}
	// A PML4 entry that points outside guest RAM: the walk stops there.
	va := uint64(0xffff900000000000)
	im.put64(kTopPgt+((va>>39)&511)*8, 0x7_0000_0000|ptePresent)
	if _, _, err := im.mem.Translate(p, va); !errors.Is(err, ErrNotMapped) {
		t.Errorf("table outside RAM: error %v, want ErrNotMapped", err)
	}
	// A root outside RAM.
	if _, _, err := im.mem.Translate(Paging{Root: 0x9_0000_0000, Levels: 4}, kText); !errors.Is(err, ErrNotMapped) {
		t.Errorf("root outside RAM: error %v, want ErrNotMapped", err)
	}
	if _, _, err := im.mem.Translate(Paging{Root: im.top, Levels: 3}, kText); err == nil {
		t.Error("3 levels: no error")
	}
	// A leaf that maps a page outside RAM translates (the walk does not
	// read it) but the Guest's reads refuse it.
	im.mapPage(pcpuBase+0x2000, 0x8_0000_0000, 4096)
	g := im.guest()
	var b [8]byte
	if err := g.Read(pcpuBase+0x2000, b[:]); !errors.Is(err, ErrNotMapped) {
		t.Errorf("page outside RAM: Read error %v, want ErrNotMapped", err)
	}
}

func TestPhysMem(t *testing.T) {
	low, high := make([]byte, 8192), make([]byte, 4096)
	m, err := NewPhysMem(Range{GPA: 1 << 32, Mem: high}, Range{GPA: 0, Mem: low})
	if err != nil {
		t.Fatal(err)
	}
	if m.Size() != 12288 || m.Ranges()[0].GPA != 0 {
		t.Errorf("Size %d, first range at %#x; want 12288 at 0", m.Size(), m.Ranges()[0].GPA)
	}
	for _, c := range []struct {
		gpa, n uint64
		ok     bool
	}{{0, 8192, true}, {8191, 1, true}, {8191, 2, false}, {8192, 1, false}, {1 << 32, 4096, true}, {1<<32 + 1, 4096, false}, {^uint64(0), 1, false}} {
		_, err := m.Slice(c.gpa, c.n)
		if (err == nil) != c.ok {
			t.Errorf("Slice(%#x, %d) error %v, want ok %v", c.gpa, c.n, err, c.ok)
		}
	}
	if _, err := NewPhysMem(Range{GPA: 0, Mem: low}, Range{GPA: 4096, Mem: high}); err == nil {
		t.Error("overlapping ranges: no error")
	}
	if _, err := NewPhysMem(Range{GPA: ^uint64(0) - 10, Mem: high}); err == nil {
		t.Error("wrapping range: no error")
	}
}
