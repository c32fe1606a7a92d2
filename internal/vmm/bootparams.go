package vmm

import (
	"encoding/binary"
	"fmt"
)

var le = binary.LittleEndian

// Offsets in boot_params (the zero page) outside the setup header.
const (
	bpACPIRSDPAddr    = 0x070 // u64, protocol 2.14
	bpExtRamdiskImage = 0x0c0 // u32: bits 32-63 of ramdisk_image
	bpExtRamdiskSize  = 0x0c4
	bpExtCmdLinePtr   = 0x0c8
	bpE820Entries     = 0x1e8 // u8
	bpE820Table       = 0x2d0 // 128 × {addr u64, size u64, type u32}
	e820EntrySize     = 20
	e820Max           = 128
	zeroPageSize      = 4096
)

// bootInfo is what the zero page tells the kernel.
type bootInfo struct {
	hdr         *SetupHeader // nil for a Program: no setup header
	cmdlineAddr uint64
	initrdAddr  uint64
	initrdSize  uint64
	e820        []E820Entry
	rsdp        uint64
}

// zeroPage builds boot_params: the kernel's setup header copied from
// 0x1f1, with the fields a boot loader fills (type_of_loader, loadflags,
// heap_end_ptr, cmd_line_ptr, ramdisk_image and ramdisk_size), the E820
// table and the ACPI RSDP address.
func zeroPage(b bootInfo) ([]byte, error) {
	if len(b.e820) > e820Max {
		return nil, fmt.Errorf("vmm: %d E820 entries, at most %d", len(b.e820), e820Max)
	}
	zp := make([]byte, zeroPageSize)
	if b.hdr != nil {
		copy(zp[hdrStart:hdrMaxEnd], b.hdr.Raw)
		zp[hdrTypeOfLoader] = loaderUnknown
		zp[hdrLoadFlags] |= loadedHigh | canUseHeap
		le.PutUint16(zp[hdrHeapEndPtr:], 0xfe00)
	}
	le.PutUint32(zp[hdrCmdLinePtr:], uint32(b.cmdlineAddr))
	le.PutUint32(zp[bpExtCmdLinePtr:], uint32(b.cmdlineAddr>>32))
	le.PutUint32(zp[hdrRamdiskImage:], uint32(b.initrdAddr))
	le.PutUint32(zp[bpExtRamdiskImage:], uint32(b.initrdAddr>>32))
	le.PutUint32(zp[hdrRamdiskSize:], uint32(b.initrdSize))
	le.PutUint32(zp[bpExtRamdiskSize:], uint32(b.initrdSize>>32))
	le.PutUint64(zp[bpACPIRSDPAddr:], b.rsdp)
	zp[bpE820Entries] = byte(len(b.e820))
	for i, e := range b.e820 {
		o := bpE820Table + i*e820EntrySize
		le.PutUint64(zp[o:], e.Addr)
		le.PutUint64(zp[o+8:], e.Size)
		le.PutUint32(zp[o+16:], e.Type)
	}
	return zp, nil
}
