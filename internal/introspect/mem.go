package introspect

import (
	"errors"
	"fmt"
	"sort"
)

// Range is one piece of guest physical memory: Mem holds the bytes of the
// guest-physical addresses [GPA, GPA+len(Mem)), as the host maps them
// (the own VMM's RAM slices, or QEMU's RAM backend files).
type Range struct {
	GPA uint64
	Mem []byte
}

// PhysMem is the guest's physical memory as the host sees it: ranges in
// guest-physical order that do not overlap. Reads and writes go straight
// to the host mappings, so they see (and change) what the guest sees while
// its vCPUs run; the page holes between ranges (MMIO, the 32-bit hole)
// read as ErrNotMapped.
type PhysMem struct {
	ranges []Range
}

// ErrNotMapped is wrapped by every error about an address that no range
// (or no page-table entry) maps.
var ErrNotMapped = errors.New("introspect: address not mapped")

// AddrError says which address failed and why.
type AddrError struct {
	Addr uint64 // the address asked for (guest physical or kernel virtual)
	Len  uint64
	Virt bool   // Addr is a kernel virtual address
	What string // what is wrong ("not in guest RAM", "PTE not present at level 2")
	Err  error  // ErrNotMapped or ErrReadOnly
}

func (e *AddrError) Error() string {
	kind := "guest physical"
	if e.Virt {
		kind = "kernel virtual"
	}
	return fmt.Sprintf("%s address %#x (%d bytes): %s", kind, e.Addr, e.Len, e.What)
}

func (e *AddrError) Unwrap() error { return e.Err }

// NewPhysMem checks that the ranges do not overlap or wrap and returns
// them sorted.
func NewPhysMem(ranges ...Range) (*PhysMem, error) {
	rs := make([]Range, 0, len(ranges))
	for _, r := range ranges {
		if len(r.Mem) == 0 {
			continue
		}
		if r.GPA+uint64(len(r.Mem)) < r.GPA {
			return nil, fmt.Errorf("introspect: range at %#x of %d bytes wraps", r.GPA, len(r.Mem))
		}
		rs = append(rs, r)
	}
	sort.Slice(rs, func(i, j int) bool { return rs[i].GPA < rs[j].GPA })
	for i := 1; i < len(rs); i++ {
		if prev := rs[i-1]; prev.GPA+uint64(len(prev.Mem)) > rs[i].GPA {
			return nil, fmt.Errorf("introspect: ranges at %#x and %#x overlap", prev.GPA, rs[i].GPA)
		}
	}
	return &PhysMem{ranges: rs}, nil
}

// Ranges returns the ranges in guest-physical order (shared, not copied).
func (m *PhysMem) Ranges() []Range { return m.ranges }

// Size is the number of bytes the ranges hold.
func (m *PhysMem) Size() uint64 {
	var n uint64
	for _, r := range m.ranges {
		n += uint64(len(r.Mem))
	}
	return n
}

// Slice returns the host bytes of [gpa, gpa+n) when one range holds all of
// them; the slice aliases guest memory.
func (m *PhysMem) Slice(gpa, n uint64) ([]byte, error) {
	i := sort.Search(len(m.ranges), func(i int) bool {
		r := m.ranges[i]
		return r.GPA+uint64(len(r.Mem)) > gpa
	})
	if i < len(m.ranges) {
		r := m.ranges[i]
		if gpa >= r.GPA {
			off := gpa - r.GPA
			if n <= uint64(len(r.Mem))-off {
				return r.Mem[off : off+n : off+n], nil
			}
		}
	}
	return nil, &AddrError{Addr: gpa, Len: n, What: "not in guest RAM", Err: ErrNotMapped}
}

// ReadAt copies len(b) bytes from guest-physical gpa.
func (m *PhysMem) ReadAt(b []byte, gpa uint64) error {
	s, err := m.Slice(gpa, uint64(len(b)))
	if err != nil {
		return err
	}
	copy(b, s)
	return nil
}

// WriteAt copies b to guest-physical gpa.
func (m *PhysMem) WriteAt(b []byte, gpa uint64) error {
	s, err := m.Slice(gpa, uint64(len(b)))
	if err != nil {
		return err
	}
	copy(s, b)
	return nil
}
