package vmm

import (
	"bytes"
	"errors"
	"fmt"
	"os"
)

// Offsets in a bzImage's first sectors (and in boot_params, which embeds
// the setup header at the same offsets). From the kernel's
// Documentation/arch/x86/boot.rst.
const (
	hdrStart           = 0x1f1
	hdrSetupSects      = 0x1f1 // u8; 0 means 4
	hdrBootFlag        = 0x1fe // u16 0xAA55
	hdrJump            = 0x200 // 2 bytes: jmp short; the second byte gives the header's end
	hdrMagic           = 0x202 // u32 "HdrS"
	hdrVersion         = 0x206 // u16
	hdrKernelVersion   = 0x20e // u16: offset - 0x200 of the version string
	hdrTypeOfLoader    = 0x210 // u8
	hdrLoadFlags       = 0x211 // u8
	hdrRamdiskImage    = 0x218 // u32
	hdrRamdiskSize     = 0x21c // u32
	hdrHeapEndPtr      = 0x224 // u16
	hdrCmdLinePtr      = 0x228 // u32
	hdrInitrdAddrMax   = 0x22c // u32
	hdrKernelAlignment = 0x230 // u32
	hdrRelocatable     = 0x234 // u8
	hdrXLoadFlags      = 0x236 // u16
	hdrCmdlineSize     = 0x238 // u32
	hdrPrefAddress     = 0x258 // u64
	hdrInitSize        = 0x260 // u32
	hdrEnd             = 0x264 // the header must reach at least here (init_size, protocol 2.10)
	hdrMaxEnd          = 0x290 // end of the setup header area in boot_params

	bootFlag      = 0xAA55
	hdrSMagic     = 0x53726448 // "HdrS"
	minVersion    = 0x020c     // 2.12: xloadflags
	loadedHigh    = 0x01       // loadflags: protected-mode code at 1 MiB
	canUseHeap    = 0x80       // loadflags: heap_end_ptr is valid
	xlfKernel64   = 0x01       // xloadflags: 64-bit entry at +0x200
	xlfAbove4G    = 0x02       // xloadflags: kernel/boot_params/cmdline/ramdisk may be above 4 GiB
	loaderUnknown = 0xff       // type_of_loader: a boot loader without an assigned id
	entry64Offset = 0x200      // 64-bit entry point relative to the load address
	sectorSize    = 512
)

// ErrBadKernel is wrapped by every error about a kernel image.
var ErrBadKernel = errors.New("vmm: unusable kernel image")

// HeaderError says which setup-header field made an image unusable.
type HeaderError struct {
	Field string
	Value uint64
	Why   string
}

func (e *HeaderError) Error() string {
	return fmt.Sprintf("vmm: unusable kernel image: setup header %s = %#x: %s", e.Field, e.Value, e.Why)
}

func (e *HeaderError) Unwrap() error { return ErrBadKernel }

// SetupHeader is the part of a bzImage's setup header the loader uses.
// Raw keeps the header's bytes (from 0x1f1 to its end) for copying into
// the zero page.
type SetupHeader struct {
	SetupSects      uint8 // 512-byte sectors of real-mode setup after the boot sector
	Version         uint16
	LoadFlags       uint8
	XLoadFlags      uint16
	InitrdAddrMax   uint32 // highest address the initrd may occupy
	KernelAlignment uint32
	Relocatable     bool
	CmdlineSize     uint32 // longest command line, without the NUL
	PrefAddress     uint64
	InitSize        uint32 // bytes the kernel needs from its load address while it decompresses
	KernelVersion   string // e.g. "6.12.117+deb12-cloud-amd64 (debian-kernel@...) #1 SMP ..."
	Raw             []byte
}

// ParseSetupHeader reads the setup header from the start of a bzImage (b
// holds at least the first two sectors; more lets it find the version
// string). It accepts only images the VMM can start: boot protocol 2.12
// or later with a 64-bit entry point.
func ParseSetupHeader(b []byte) (*SetupHeader, error) {
	if len(b) < hdrEnd {
		return nil, &HeaderError{"length", uint64(len(b)), fmt.Sprintf("image shorter than the setup header (%d bytes)", hdrEnd)}
	}
	if v := le.Uint16(b[hdrBootFlag:]); v != bootFlag {
		return nil, &HeaderError{"boot_flag", uint64(v), "not 0xaa55: not a Linux boot image"}
	}
	if v := le.Uint32(b[hdrMagic:]); v != hdrSMagic {
		return nil, &HeaderError{"header", uint64(v), `not "HdrS": not a bzImage`}
	}
	h := &SetupHeader{
		SetupSects:      b[hdrSetupSects],
		Version:         le.Uint16(b[hdrVersion:]),
		LoadFlags:       b[hdrLoadFlags],
		XLoadFlags:      le.Uint16(b[hdrXLoadFlags:]),
		InitrdAddrMax:   le.Uint32(b[hdrInitrdAddrMax:]),
		KernelAlignment: le.Uint32(b[hdrKernelAlignment:]),
		Relocatable:     b[hdrRelocatable] != 0,
		CmdlineSize:     le.Uint32(b[hdrCmdlineSize:]),
		PrefAddress:     le.Uint64(b[hdrPrefAddress:]),
		InitSize:        le.Uint32(b[hdrInitSize:]),
	}
	if h.Version < minVersion {
		return nil, &HeaderError{"version", uint64(h.Version), "boot protocol before 2.12 has no 64-bit entry"}
	}
	end := hdrMagic + int(b[hdrJump+1])
	if end < hdrEnd {
		return nil, &HeaderError{"jump", uint64(b[hdrJump+1]), "header ends before init_size"}
	}
	end = min(end, hdrMaxEnd, len(b))
	if h.SetupSects == 0 {
		h.SetupSects = 4
	}
	if h.LoadFlags&loadedHigh == 0 {
		return nil, &HeaderError{"loadflags", uint64(h.LoadFlags), "not LOADED_HIGH: a zImage"}
	}
	if h.XLoadFlags&xlfKernel64 == 0 {
		return nil, &HeaderError{"xloadflags", uint64(h.XLoadFlags), "no 64-bit entry point (XLF_KERNEL_64)"}
	}
	if h.CmdlineSize == 0 {
		return nil, &HeaderError{"cmdline_size", 0, "zero"}
	}
	h.Raw = append([]byte(nil), b[hdrStart:end]...)
	if off := le.Uint16(b[hdrKernelVersion:]); off != 0 {
		s := int(off) + 0x200
		if s < len(b) {
			v := b[s:min(len(b), s+256)]
			if i := bytes.IndexByte(v, 0); i >= 0 {
				h.KernelVersion = string(v[:i])
			}
		}
	}
	return h, nil
}

// KernelOffset is where the protected-mode kernel starts in the file.
func (h *SetupHeader) KernelOffset() int64 { return (int64(h.SetupSects) + 1) * sectorSize }

// openBzImage opens the bzImage at path and parses its setup header; it
// returns the open file (the caller closes it) and the file's size.
func openBzImage(path string) (f *os.File, h *SetupHeader, size int64, err error) {
	if f, err = os.Open(path); err != nil {
		return nil, nil, 0, fmt.Errorf("vmm: kernel: %w", err)
	}
	fail := func(err error) (*os.File, *SetupHeader, int64, error) {
		f.Close()
		return nil, nil, 0, err
	}
	st, err := f.Stat()
	if err != nil {
		return fail(fmt.Errorf("vmm: kernel: %w", err))
	}
	head := make([]byte, min(st.Size(), 64<<10))
	if _, err := f.ReadAt(head, 0); err != nil {
		return fail(fmt.Errorf("vmm: kernel: %w", err))
	}
	if h, err = ParseSetupHeader(head); err != nil {
		return fail(fmt.Errorf("%s: %w", path, err))
	}
	return f, h, st.Size(), nil
}
