package boot

import (
	"bytes"
	"debug/elf"
	"encoding/binary"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/ktstr-go/ktstr/internal/cache"
	"github.com/ktstr-go/ktstr/internal/guest"
)

// versionedBzImage writes a file with a bzImage setup header (one that
// vmm.ParseSetupHeader accepts: protocol 2.15, LOADED_HIGH, a 64-bit
// entry) whose version string is ver.
func versionedBzImage(t *testing.T, ver string) string {
	t.Helper()
	b := make([]byte, 0x400)
	binary.LittleEndian.PutUint16(b[0x1fe:], 0xaa55) // boot_flag
	b[0x201] = 0x6a                                  // jump: the header ends at 0x26c
	copy(b[0x202:], "HdrS")                          // header
	binary.LittleEndian.PutUint16(b[0x206:], 0x20f)  // version
	binary.LittleEndian.PutUint16(b[0x20e:], 0x100)  // kernel_version: the string at 0x300
	b[0x211] = 0x01                                  // loadflags: LOADED_HIGH
	binary.LittleEndian.PutUint16(b[0x236:], 0x01)   // xloadflags: XLF_KERNEL_64
	binary.LittleEndian.PutUint32(b[0x238:], 2047)   // cmdline_size
	copy(b[0x300:], ver+"\x00")
	p := filepath.Join(t.TempDir(), "bzImage")
	if err := os.WriteFile(p, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestKernelVersion(t *testing.T) {
	const ver = "6.12.117 (root@host) #1 SMP PREEMPT_DYNAMIC Tue Dec  1 09:20:00 UTC 2026"
	if v, err := kernelVersion(versionedBzImage(t, ver)); err != nil || v != ver {
		t.Errorf("kernelVersion = %q, %v; want %q", v, err, ver)
	}
	notBz := filepath.Join(t.TempDir(), "x")
	os.WriteFile(notBz, bytes.Repeat([]byte{1}, 0x400), 0o644)
	if _, err := kernelVersion(notBz); err == nil || !strings.Contains(err.Error(), "not a Linux boot image") {
		t.Errorf("a file without a setup header: %v", err)
	}
}

// TestPVHImage on the kernel make kernel built (skipped without one):
// its vmlinux is bootable in its place when it has the PVH note, and a
// bzImage of another build (its stamp changed) never gets it.
func TestPVHImage(t *testing.T) {
	c, err := cache.Dir()
	if err != nil {
		t.Skip(err)
	}
	k := filepath.Join(c, "kernel", "bzImage")
	v := DefaultVmlinux(k)
	if v == "" {
		t.Skip("no kernel with a vmlinux in the cache (make kernel)")
	}
	ver, err := kernelVersion(k)
	if err != nil {
		t.Fatal(err)
	}
	got, err := PVHImage(k, v)
	switch {
	case err != nil && strings.Contains(err.Error(), "no PVH entry"):
		t.Logf("the cached kernel predates CONFIG_PVH: %v", err)
	case err != nil || got != v:
		t.Fatalf("PVHImage(%s, %s) = %q, %v; want the vmlinux", k, v, got, err)
	}
	if err == nil {
		other := versionedBzImage(t, strings.Replace(ver, "#", "#9", 1))
		if got, err := PVHImage(other, v); err == nil || !strings.Contains(err.Error(), "not the kernel's build") {
			t.Errorf("another build's bzImage: %q, %v; want refused", got, err)
		}
	}
	if _, err := PVHImage(k, ""); err == nil {
		t.Error("no vmlinux: accepted")
	}
	if _, err := PVHImage(k, k); err == nil {
		t.Error("a bzImage as the vmlinux: accepted")
	}
}

// TestCopyInitDropsWhatOnlyDebuggersRead: /init in the initramfs is this
// test binary without the bytes past its last segment (DWARF, symbols,
// section headers), smaller, still an ELF with the same segments, and it
// runs.
func TestCopyInitDropsWhatOnlyDebuggersRead(t *testing.T) {
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	f, err := os.Create(filepath.Join(dir, "initramfs.cpio"))
	if err != nil {
		t.Fatal(err)
	}
	if err := BuildInitramfs(f, self, guest.Config{}, nil); err != nil {
		t.Fatal(err)
	}
	cpio, _ := os.ReadFile(filepath.Join(dir, "initramfs.cpio"))
	init := extractNewc(t, cpio, initPath)
	st, _ := os.Stat(self)
	if int64(len(init)) >= st.Size() {
		t.Fatalf("/init is %d bytes, the executable %d: nothing dropped", len(init), st.Size())
	}
	orig, err := elf.Open(self)
	if err != nil {
		t.Fatal(err)
	}
	defer orig.Close()
	got, err := elf.NewFile(bytes.NewReader(init))
	if err != nil {
		t.Fatalf("/init is no ELF: %v", err)
	}
	if len(got.Sections) != 0 || len(got.Progs) != len(orig.Progs) {
		t.Errorf("/init: %d sections, %d segments; want 0 and %d", len(got.Sections), len(got.Progs), len(orig.Progs))
	}
	exe := filepath.Join(dir, "init")
	if err := os.WriteFile(exe, init, 0o755); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(exe, "-test.run=^$").CombinedOutput(); err != nil {
		t.Errorf("the stripped /init does not run: %v\n%s", err, out)
	}
}

// extractNewc returns the data of member name in a newc archive.
func extractNewc(t *testing.T, b []byte, name string) []byte {
	t.Helper()
	for len(b) >= 110 && string(b[:6]) == "070701" {
		hex := func(i int) int {
			v, err := strconv.ParseUint(string(b[6+8*i:14+8*i]), 16, 32)
			if err != nil {
				t.Fatalf("newc header: %v", err)
			}
			return int(v)
		}
		size, namesize := hex(6), hex(11)
		n := string(b[110 : 110+namesize-1])
		off := (110 + namesize + 3) &^ 3
		if n == name {
			return b[off : off+size]
		}
		b = b[(off+size+3)&^3:]
	}
	t.Fatalf("no %s in the archive", name)
	return nil
}
