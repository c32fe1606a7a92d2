package vmm

import (
	"debug/elf"
	"encoding/binary"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/ktstr-go/ktstr/internal/cache"
)

// testPVHKernel returns a bzImage and its vmlinux with a PVH entry:
// $KTSTR_PVH_KERNEL and $KTSTR_PVH_VMLINUX, else the project kernel make
// kernel puts in the cache (with the vmlinux kept next to it), else skips.
func testPVHKernel(t testing.TB) (kernel, vmlinux string) {
	t.Helper()
	if k, v := os.Getenv("KTSTR_PVH_KERNEL"), os.Getenv("KTSTR_PVH_VMLINUX"); k != "" && v != "" {
		return k, v
	}
	dir, err := cache.Dir()
	if err != nil {
		t.Skipf("no PVH kernel: set KTSTR_PVH_KERNEL and KTSTR_PVH_VMLINUX (%v)", err)
	}
	k, err := filepath.EvalSymlinks(filepath.Join(dir, "kernel", "bzImage"))
	if err != nil {
		t.Skipf("no PVH kernel: run make kernel (%v)", err)
	}
	v := filepath.Join(filepath.Dir(k), "vmlinux")
	if _, err := os.Stat(v); err != nil {
		t.Skipf("no vmlinux next to %s: %v", k, err)
	}
	return k, v
}

// openPVHVmlinux opens testPVHKernel's vmlinux and returns its path,
// the open ELF (closed when the test ends) and its PVH entry; it skips
// where the vmlinux has no PVH note.
func openPVHVmlinux(t *testing.T) (string, *elf.File, uint64) {
	t.Helper()
	_, v := testPVHKernel(t)
	f, err := elf.Open(v)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	entry, ok := PVHEntry(f)
	if !ok {
		t.Skipf("%s has no PVH note (a kernel without CONFIG_PVH)", v)
	}
	return v, f, entry
}

// TestPVHEntry: the entry the note gives is pvh_start_xen's physical
// address (its link address less the kernel's mapping base).
func TestPVHEntry(t *testing.T) {
	v, f, entry := openPVHVmlinux(t)
	syms, err := f.Symbols()
	if err != nil {
		t.Fatal(err)
	}
	const startKernelMap = 0xffffffff80000000
	for _, s := range syms {
		if s.Name == "pvh_start_xen" {
			if want := s.Value - startKernelMap; entry != want {
				t.Errorf("PVHEntry = %#x, want pvh_start_xen at %#x", entry, want)
			}
			return
		}
	}
	t.Errorf("no pvh_start_xen symbol in %s", v)
}

// TestStartInfo decodes the hvm_start_info, module list and memory map
// startInfo lays out, by the offsets of Xen's start_info.h.
func TestStartInfo(t *testing.T) {
	const at = 0x1c000
	e820 := []E820Entry{{0, 0x9fc00, 1}, {0x100000, 0x7ff00000, 1}, {0xfec00000, 0x1000, 2}}
	b, err := startInfo(at, pvhInfo{cmdlineAddr: 0x20000, initrdAddr: 0x7000000, initrdSize: 12345, rsdp: 0xe0000, e820: e820})
	if err != nil {
		t.Fatal(err)
	}
	le := binary.LittleEndian
	u32 := func(o uint64) uint32 { return le.Uint32(b[o:]) }
	u64 := func(o uint64) uint64 { return le.Uint64(b[o:]) }
	if u32(0) != 0x336ec578 || u32(4) != 1 || u32(8) != 0 || u32(12) != 1 {
		t.Fatalf("magic %#x version %d flags %d modules %d", u32(0), u32(4), u32(8), u32(12))
	}
	if u64(24) != 0x20000 || u64(32) != 0xe0000 || u32(48) != 3 {
		t.Errorf("cmdline %#x rsdp %#x memmap entries %d", u64(24), u64(32), u32(48))
	}
	mod := u64(16) - at
	if u64(mod) != 0x7000000 || u64(mod+8) != 12345 || u64(mod+16) != 0 {
		t.Errorf("module: %#x+%d, cmdline %#x", u64(mod), u64(mod+8), u64(mod+16))
	}
	mm := u64(40) - at
	if mm+3*24 != uint64(len(b)) {
		t.Fatalf("memory map at %#x, %d bytes in all", mm, len(b))
	}
	for i, e := range e820 {
		o := mm + uint64(i)*24
		if got := (E820Entry{u64(o), u64(o + 8), u32(o + 16)}); got != e {
			t.Errorf("memory map %d: %+v, want %+v", i, got, e)
		}
	}
	b, err = startInfo(at, pvhInfo{cmdlineAddr: 0x20000, e820: e820[:1]})
	if err != nil || u32(12) != 0 || u64(16) != 0 || u64(40) != at+56 {
		t.Errorf("no initrd: modules %d at %#x, memmap at %#x, %v", u32(12), u64(16), u64(40), err)
	}
	if _, err := startInfo(at, pvhInfo{e820: make([]E820Entry, pvhInfoMax/24)}); err == nil {
		t.Error("a memory map larger than its room: accepted")
	}
}

// TestLoadVmlinux: each loadable segment lands at its physical address
// with the file's bytes; RAM too small for the kernel is a configuration
// error, not a write past the guest's memory.
func TestLoadVmlinux(t *testing.T) {
	path, f, want := openPVHVmlinux(t)
	mem, err := PlanMemory(256*mib, 0)
	if err != nil {
		t.Fatal(err)
	}
	v := &VM{mem: mem, guest: guestMemory{low: make([]byte, mem.LowRAM)}}
	entry, end, err := v.loadVmlinux(path)
	if err != nil {
		t.Fatal(err)
	}
	if entry != want || end <= entry {
		t.Errorf("entry %#x (want %#x), end %#x", entry, want, end)
	}
	n := 0
	for _, p := range f.Progs {
		if p.Type != elf.PT_LOAD || p.Filesz == 0 {
			continue
		}
		want := make([]byte, min(p.Filesz, 4096))
		if _, err := p.ReadAt(want, 0); err != nil {
			t.Fatal(err)
		}
		got, _ := v.guest.slice(p.Paddr, uint64(len(want)))
		if string(got) != string(want) {
			t.Errorf("segment at %#x: guest memory differs from the file", p.Paddr)
		}
		n++
	}
	if n == 0 {
		t.Fatal("no loadable segment")
	}
	small, _ := PlanMemory(16*mib, 0)
	v = &VM{mem: small, guest: guestMemory{low: make([]byte, small.LowRAM)}}
	if _, _, err := v.loadVmlinux(path); !errors.Is(err, ErrConfig) {
		t.Errorf("16 MiB of RAM: %v, want ErrConfig", err)
	}
	if _, _, err := v.loadVmlinux(os.Args[0]); !errors.Is(err, ErrBadKernel) {
		t.Errorf("an ELF without a PVH note: %v, want ErrBadKernel", err)
	}
}
