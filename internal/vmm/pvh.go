package vmm

import (
	"bytes"
	"debug/elf"
	"encoding/binary"
	"fmt"
	"os"
)

// xenElfnotePhys32Entry is the ELF note (name "Xen") that holds a
// kernel's PVH entry point, the 32-bit physical address a loader jumps
// to with paging off (CONFIG_PVH).
const xenElfnotePhys32Entry = 18

// PVHEntry returns the PVH entry point of the ELF kernel f (its Xen
// PHYS32_ENTRY note), and false where it has none.
func PVHEntry(f *elf.File) (uint64, bool) {
	for _, p := range f.Progs {
		if p.Type != elf.PT_NOTE || p.Filesz > 1<<20 {
			continue
		}
		b := make([]byte, p.Filesz)
		if _, err := p.ReadAt(b, 0); err != nil {
			continue
		}
		for len(b) >= 12 {
			namesz := uint64(f.ByteOrder.Uint32(b))
			descsz := uint64(f.ByteOrder.Uint32(b[4:]))
			typ := f.ByteOrder.Uint32(b[8:])
			b = b[12:]
			name, desc := (namesz+3)&^3, (descsz+3)&^3
			if name > uint64(len(b)) || desc > uint64(len(b))-name {
				break
			}
			if typ == xenElfnotePhys32Entry && string(bytes.TrimRight(b[:namesz], "\x00")) == "Xen" {
				d := b[name : name+descsz]
				switch len(d) {
				case 4:
					return uint64(f.ByteOrder.Uint32(d)), true
				case 8:
					return f.ByteOrder.Uint64(d), true
				}
				return 0, false
			}
			b = b[name+desc:]
		}
	}
	return 0, false
}

// The PVH start of day (xen/include/public/arch-x86/hvm/start_info.h):
// the entry runs in 32-bit protected mode, paging off, with EBX holding
// the physical address of an hvm_start_info.
const (
	pvhStartMagic   = 0x336ec578
	pvhStartVersion = 1 // has the memory map
	pvhStartInfoLen = 56
	pvhModuleLen    = 32 // hvm_modlist_entry
	pvhMemmapLen    = 24 // hvm_memmap_table_entry
	// pvhInfoAddr is where the start info, its module list and memory
	// map go: between the page directories and the command line.
	pvhInfoAddr = pdAddr + maxPDs*pageSize
	pvhInfoMax  = cmdlineAddr - pvhInfoAddr
)

// pvhInfo is what the start info tells the kernel.
type pvhInfo struct {
	cmdlineAddr            uint64
	initrdAddr, initrdSize uint64 // no module when initrdSize is 0
	rsdp                   uint64
	e820                   []E820Entry
}

// startInfo lays out the hvm_start_info for at, followed by its module
// list (the initrd) and memory map.
func startInfo(at uint64, in pvhInfo) ([]byte, error) {
	mods := 0
	if in.initrdSize > 0 {
		mods = 1
	}
	n := pvhStartInfoLen + mods*pvhModuleLen + len(in.e820)*pvhMemmapLen
	if n > pvhInfoMax {
		return nil, fmt.Errorf("vmm: PVH start info of %d bytes (%d memory map entries), room for %d", n, len(in.e820), pvhInfoMax)
	}
	b := make([]byte, n)
	le := binary.LittleEndian
	le.PutUint32(b[0:], pvhStartMagic)
	le.PutUint32(b[4:], pvhStartVersion)
	// flags (8) stay 0
	le.PutUint32(b[12:], uint32(mods))
	modAt := at + pvhStartInfoLen
	if mods > 0 {
		le.PutUint64(b[16:], modAt) // modlist_paddr
	}
	le.PutUint64(b[24:], in.cmdlineAddr)
	le.PutUint64(b[32:], in.rsdp)
	mapAt := modAt + uint64(mods*pvhModuleLen)
	le.PutUint64(b[40:], mapAt) // memmap_paddr
	le.PutUint32(b[48:], uint32(len(in.e820)))
	if mods > 0 {
		m := b[pvhStartInfoLen:]
		le.PutUint64(m[0:], in.initrdAddr)
		le.PutUint64(m[8:], in.initrdSize)
	}
	for i, e := range in.e820 {
		m := b[mapAt-at+uint64(i*pvhMemmapLen):]
		le.PutUint64(m[0:], e.Addr)
		le.PutUint64(m[8:], e.Size)
		le.PutUint32(m[16:], e.Type)
	}
	return b, nil
}

// loadVmlinux copies the PT_LOAD segments of the ELF kernel at path to
// their physical addresses and returns its PVH entry and the end of what
// it occupies (its bss included).
func (v *VM) loadVmlinux(path string) (entry, end uint64, err error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, 0, fmt.Errorf("vmm: vmlinux: %w", err)
	}
	defer f.Close()
	ef, err := elf.NewFile(f)
	if err != nil {
		return 0, 0, fmt.Errorf("vmm: vmlinux %s: %w", path, err)
	}
	if ef.Class != elf.ELFCLASS64 || ef.Machine != elf.EM_X86_64 {
		return 0, 0, fmt.Errorf("%w: vmlinux %s is not an x86-64 ELF", ErrBadKernel, path)
	}
	entry, ok := PVHEntry(ef)
	if !ok {
		return 0, 0, fmt.Errorf("%w: vmlinux %s has no PVH entry note (CONFIG_PVH)", ErrBadKernel, path)
	}
	for _, p := range ef.Progs {
		if p.Type != elf.PT_LOAD || p.Memsz == 0 {
			continue
		}
		if p.Filesz > p.Memsz || p.Paddr < biosEnd || p.Paddr+p.Memsz < p.Paddr || p.Paddr+p.Memsz > v.mem.LowRAM {
			return 0, 0, fmt.Errorf("%w: vmlinux segment at %#x, %d bytes, is not within low RAM [%#x, %#x)", ErrConfig, p.Paddr, p.Memsz, uint64(biosEnd), v.mem.LowRAM)
		}
		dst, err := v.guest.slice(p.Paddr, p.Filesz)
		if err != nil {
			return 0, 0, err
		}
		if _, err := p.ReadAt(dst, 0); err != nil {
			return 0, 0, fmt.Errorf("vmm: vmlinux %s: %w", path, err)
		}
		end = max(end, p.Paddr+p.Memsz)
	}
	if end == 0 || entry < biosEnd || entry >= end {
		return 0, 0, fmt.Errorf("%w: vmlinux %s: PVH entry %#x outside its segments", ErrBadKernel, path, entry)
	}
	return entry, end, nil
}
