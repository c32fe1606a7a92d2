package introspect

import (
	"encoding/binary"
	"fmt"
)

// Paging is an x86-64 page-table hierarchy: the guest-physical address of
// its top table (a CR3 value with the flag bits masked) and its depth, 4
// (PML4) or 5 (PML5, CR4.LA57).
type Paging struct {
	Root   uint64
	Levels int
}

// Page-table entry bits (Intel SDM vol. 3, 4.5).
const (
	ptePresent  = 1 << 0
	ptePageSize = 1 << 7
	// pteAddr keeps bits 12..51: the next table's or the page's frame.
	pteAddr = 0x000F_FFFF_FFFF_F000
	// cr3PTIUser is the bit Linux's page-table isolation sets in CR3 to
	// switch to the user copy of the top table, 4 KiB after the kernel's
	// (PTI_USER_PGTABLE_MASK).
	cr3PTIUser = 1 << 12
	// cr4LA57 is CR4's five-level paging bit; cr0PG is CR0's paging bit.
	cr4LA57 = 1 << 12
	cr0PG   = 1 << 31
	pageSz  = 4096
)

// levelName names a table level in messages.
var levelName = [...]string{1: "PT", 2: "PD", 3: "PDPT", 4: "PML4", 5: "PML5"}

// canonical reports whether va is canonical for the given depth: its bits
// above the top translated bit are all copies of that bit.
func canonical(va uint64, levels int) bool {
	top := uint(12 + 9*levels - 1) // 47 or 56
	hi := int64(va) >> top
	return hi == 0 || hi == -1
}

// Translate walks p for the virtual address va and returns its
// guest-physical address and how many bytes from there on the same page
// are mapped contiguously. Large pages (1 GiB at the PDPT, 2 MiB at the
// PD) end the walk early. Access bits (NX, user, writable) are not
// checked: the host reads what the kernel could.
func (m *PhysMem) Translate(p Paging, va uint64) (pa, contig uint64, err error) {
	if p.Levels != 4 && p.Levels != 5 {
		return 0, 0, fmt.Errorf("introspect: %d paging levels, want 4 or 5", p.Levels)
	}
	fail := func(format string, a ...any) (uint64, uint64, error) {
		return 0, 0, &AddrError{Addr: va, Virt: true, What: fmt.Sprintf(format, a...), Err: ErrNotMapped}
	}
	if !canonical(va, p.Levels) {
		return fail("not canonical for %d-level paging", p.Levels)
	}
	table := p.Root & pteAddr
	var buf [8]byte
	for level := p.Levels; level >= 1; level-- {
		shift := uint(12 + 9*(level-1))
		slot := table + ((va>>shift)&511)*8
		if err := m.ReadAt(buf[:], slot); err != nil {
			return fail("%s entry at %#x is outside guest RAM", levelName[level], slot)
		}
		e := binary.LittleEndian.Uint64(buf[:])
		if e&ptePresent == 0 {
			return fail("%s entry %d not present", levelName[level], (va>>shift)&511)
		}
		if (level == 2 || level == 3) && e&ptePageSize != 0 {
			size := uint64(1) << shift
			off := va & (size - 1)
			return (e & pteAddr &^ (size - 1)) + off, size - off, nil
		}
		table = e & pteAddr
	}
	off := va & (pageSz - 1)
	return table + off, pageSz - off, nil
}
