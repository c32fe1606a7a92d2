package vmm

import (
	"bytes"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestZeroPage(t *testing.T) {
	img := fakeBzImage()
	h, err := ParseSetupHeader(img)
	if err != nil {
		t.Fatal(err)
	}
	m, err := PlanMemory(512*mib, 16*mib)
	if err != nil {
		t.Fatal(err)
	}
	e820 := m.E820()
	zp, err := zeroPage(bootInfo{hdr: h, cmdlineAddr: cmdlineAddr, initrdAddr: 0x1_2345_6000, initrdSize: 0x1_0000_1000, e820: e820, rsdp: 0xe0000})
	if err != nil {
		t.Fatal(err)
	}
	// The setup header is copied, then the loader's fields are set.
	for _, off := range []int{hdrSetupSects, hdrVersion, hdrXLoadFlags, hdrInitSize, hdrPrefAddress} {
		if zp[off] != img[off] {
			t.Errorf("zero page byte %#x = %#x, want the image's %#x", off, zp[off], img[off])
		}
	}
	for _, c := range []struct {
		name     string
		off, len int
		want     uint64
	}{
		{"type_of_loader", hdrTypeOfLoader, 1, 0xff},
		{"loadflags", hdrLoadFlags, 1, loadedHigh | canUseHeap},
		{"heap_end_ptr", hdrHeapEndPtr, 2, 0xfe00},
		{"cmd_line_ptr", hdrCmdLinePtr, 4, cmdlineAddr},
		{"ext_cmd_line_ptr", bpExtCmdLinePtr, 4, 0},
		{"ramdisk_image", hdrRamdiskImage, 4, 0x2345_6000},
		{"ext_ramdisk_image", bpExtRamdiskImage, 4, 1},
		{"ramdisk_size", hdrRamdiskSize, 4, 0x1000},
		{"ext_ramdisk_size", bpExtRamdiskSize, 4, 1},
		{"acpi_rsdp_addr", bpACPIRSDPAddr, 8, 0xe0000},
		{"e820_entries", bpE820Entries, 1, uint64(len(e820))},
		{"sentinel", 0x1ef, 1, 0},
	} {
		var got uint64
		for i := c.len - 1; i >= 0; i-- {
			got = got<<8 | uint64(zp[c.off+i])
		}
		if got != c.want {
			t.Errorf("%s (%#x) = %#x, want %#x", c.name, c.off, got, c.want)
		}
	}
	var back []E820Entry
	for i := range int(zp[bpE820Entries]) {
		o := bpE820Table + i*e820EntrySize
		back = append(back, E820Entry{le.Uint64(zp[o:]), le.Uint64(zp[o+8:]), le.Uint32(zp[o+16:])})
	}
	if d := cmp.Diff(e820, back); d != "" {
		t.Errorf("E820 table read back (-want +got):\n%s", d)
	}
	if rest := zp[bpE820Table+len(e820)*e820EntrySize:]; !bytes.Equal(rest, make([]byte, len(rest))) {
		t.Errorf("bytes after the E820 table are not zero")
	}
}

func TestZeroPageProgram(t *testing.T) {
	zp, err := zeroPage(bootInfo{cmdlineAddr: cmdlineAddr})
	if err != nil {
		t.Fatal(err)
	}
	if zp[hdrTypeOfLoader] != 0 || le.Uint32(zp[hdrMagic:]) != 0 {
		t.Errorf("a Program's zero page has a setup header")
	}
	if le.Uint32(zp[hdrCmdLinePtr:]) != cmdlineAddr {
		t.Errorf("cmd_line_ptr = %#x, want %#x", le.Uint32(zp[hdrCmdLinePtr:]), cmdlineAddr)
	}
	if _, err := zeroPage(bootInfo{e820: make([]E820Entry, e820Max+1)}); err == nil {
		t.Errorf("zeroPage with %d E820 entries succeeded", e820Max+1)
	}
}
