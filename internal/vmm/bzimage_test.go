package vmm

import (
	"errors"
	"os"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
)

// fakeBzImage returns the first sectors of a bzImage with a valid
// protocol 2.15 header for a 64-bit relocatable kernel.
func fakeBzImage() []byte {
	b := make([]byte, 5*sectorSize)
	b[hdrSetupSects] = 4
	le.PutUint16(b[hdrBootFlag:], bootFlag)
	b[hdrJump], b[hdrJump+1] = 0xeb, 0x6a // header ends at 0x26c
	le.PutUint32(b[hdrMagic:], hdrSMagic)
	le.PutUint16(b[hdrVersion:], 0x020f)
	le.PutUint16(b[hdrKernelVersion:], 0x400-0x200)
	copy(b[0x400:], "6.99.0-test (builder@host) #1 SMP\x00")
	b[hdrLoadFlags] = loadedHigh
	le.PutUint32(b[hdrInitrdAddrMax:], 0x7fffffff)
	le.PutUint32(b[hdrKernelAlignment:], 0x200000)
	b[hdrRelocatable] = 1
	le.PutUint16(b[hdrXLoadFlags:], xlfKernel64|xlfAbove4G)
	le.PutUint32(b[hdrCmdlineSize:], 2047)
	le.PutUint64(b[hdrPrefAddress:], 0x1000000)
	le.PutUint32(b[hdrInitSize:], 0x3000000)
	return b
}

func TestParseSetupHeader(t *testing.T) {
	h, err := ParseSetupHeader(fakeBzImage())
	if err != nil {
		t.Fatal(err)
	}
	want := SetupHeader{SetupSects: 4, Version: 0x020f, LoadFlags: loadedHigh, XLoadFlags: xlfKernel64 | xlfAbove4G,
		InitrdAddrMax: 0x7fffffff, KernelAlignment: 0x200000, Relocatable: true, CmdlineSize: 2047,
		PrefAddress: 0x1000000, InitSize: 0x3000000, KernelVersion: "6.99.0-test (builder@host) #1 SMP"}
	if d := cmp.Diff(want, *h, cmpopts.IgnoreFields(SetupHeader{}, "Raw")); d != "" {
		t.Errorf("ParseSetupHeader mismatch (-want +got):\n%s", d)
	}
	if len(h.Raw) != 0x26c-hdrStart {
		t.Errorf("len(Raw) = %#x, want %#x (0x1f1 to the end the jump gives)", len(h.Raw), 0x26c-hdrStart)
	}
	if h.KernelOffset() != 5*sectorSize {
		t.Errorf("KernelOffset() = %d, want %d", h.KernelOffset(), 5*sectorSize)
	}
}

func TestParseSetupHeaderRejects(t *testing.T) {
	for _, c := range []struct {
		field string
		edit  func(b []byte) []byte
	}{
		{"length", func(b []byte) []byte { return b[:hdrEnd-1] }},
		{"boot_flag", func(b []byte) []byte { b[hdrBootFlag] = 0; return b }},
		{"header", func(b []byte) []byte { copy(b[hdrMagic:], "HdrX"); return b }},
		{"version", func(b []byte) []byte { le.PutUint16(b[hdrVersion:], 0x020b); return b }},
		{"jump", func(b []byte) []byte { b[hdrJump+1] = 0x10; return b }},
		{"loadflags", func(b []byte) []byte { b[hdrLoadFlags] = 0; return b }},
		{"xloadflags", func(b []byte) []byte { le.PutUint16(b[hdrXLoadFlags:], xlfAbove4G); return b }},
		{"cmdline_size", func(b []byte) []byte { le.PutUint32(b[hdrCmdlineSize:], 0); return b }},
	} {
		t.Run(c.field, func(t *testing.T) {
			_, err := ParseSetupHeader(c.edit(fakeBzImage()))
			var he *HeaderError
			if !errors.As(err, &he) || he.Field != c.field || !errors.Is(err, ErrBadKernel) {
				t.Errorf("ParseSetupHeader error = %v, want a *HeaderError on %s wrapping ErrBadKernel", err, c.field)
			}
		})
	}
}

func TestParseSetupHeaderDefaults(t *testing.T) {
	b := fakeBzImage()
	b[hdrSetupSects] = 0 // means 4
	le.PutUint16(b[hdrKernelVersion:], 0xffff)
	h, err := ParseSetupHeader(b)
	if err != nil {
		t.Fatal(err)
	}
	if h.SetupSects != 4 || h.KernelVersion != "" {
		t.Errorf("setup_sects 0, version offset past the buffer: got %d sectors, version %q; want 4, \"\"", h.SetupSects, h.KernelVersion)
	}
}

// TestParseDebianKernel reads the setup header of a real bzImage.
func TestParseDebianKernel(t *testing.T) {
	k := testKernel(t)
	b, err := os.ReadFile(k)
	if err != nil {
		t.Fatal(err)
	}
	h, err := ParseSetupHeader(b[:min(len(b), 64<<10)])
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%s: protocol %d.%02d, setup %d sectors, init_size %d MiB, pref_address %#x, xloadflags %#x, %q",
		k, h.Version>>8, h.Version&0xff, h.SetupSects, h.InitSize>>20, h.PrefAddress, h.XLoadFlags, h.KernelVersion)
	if h.KernelOffset() >= int64(len(b)) {
		t.Errorf("KernelOffset() = %d beyond the %d-byte file", h.KernelOffset(), len(b))
	}
	if h.InitSize == 0 || h.KernelAlignment == 0 || h.KernelAlignment&(h.KernelAlignment-1) != 0 {
		t.Errorf("init_size %#x, kernel_alignment %#x: want non-zero and a power of two", h.InitSize, h.KernelAlignment)
	}
	if f := strings.Fields(h.KernelVersion); len(f) == 0 || !strings.Contains(f[0], ".") {
		t.Errorf("KernelVersion = %q, want it to start with a release like 6.12.0", h.KernelVersion)
	}
}

func FuzzParseSetupHeader(f *testing.F) {
	f.Add(fakeBzImage())
	b := fakeBzImage()
	b[hdrJump+1] = 0xff
	f.Add(b)
	f.Add(b[:hdrEnd])
	f.Fuzz(func(t *testing.T, b []byte) {
		h, err := ParseSetupHeader(b)
		if err != nil {
			if !errors.Is(err, ErrBadKernel) {
				t.Fatalf("error %v does not wrap ErrBadKernel", err)
			}
			return
		}
		if len(h.Raw) < hdrEnd-hdrStart || hdrStart+len(h.Raw) > hdrMaxEnd {
			t.Fatalf("Raw has %d bytes, want %d to %d", len(h.Raw), hdrEnd-hdrStart, hdrMaxEnd-hdrStart)
		}
		if h.XLoadFlags&xlfKernel64 == 0 || h.SetupSects == 0 || h.Version < minVersion {
			t.Fatalf("accepted %+v", h)
		}
	})
}
