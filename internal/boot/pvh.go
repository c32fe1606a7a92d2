package boot

import (
	"bytes"
	"debug/elf"
	"errors"
	"fmt"
)

// xenElfnotePhys32Entry is the ELF note (name "Xen") that holds a
// kernel's PVH entry point, the 32-bit physical address a loader jumps
// to with paging off (CONFIG_PVH). QEMU's -kernel boots such an ELF
// directly, on both its pc and microvm machines.
const xenElfnotePhys32Entry = 18

// PVHImage returns vmlinux when the QEMU backend can boot it in place of
// kernel (a compressed bzImage): an ELF with a PVH entry note, of the
// same build as kernel (the release and the "#1 SMP ..." build stamp in
// its linux_banner are the bzImage's version string's). Booted that way
// the guest does not decompress its kernel: under software emulation
// that is most of the time between QEMU's start and the kernel's first
// message. It returns "" and the reason otherwise.
func PVHImage(kernel, vmlinux string) (string, error) {
	if vmlinux == "" {
		return "", errors.New("no vmlinux")
	}
	ver, err := kernelVersion(kernel)
	if err != nil {
		return "", err
	}
	f, err := elf.Open(vmlinux)
	if err != nil {
		return "", fmt.Errorf("vmlinux: %w", err)
	}
	defer f.Close()
	if f.Machine != elf.EM_X86_64 {
		return "", fmt.Errorf("vmlinux: %v, not x86-64", f.Machine)
	}
	if !hasPVHNote(f) {
		return "", errors.New("vmlinux has no PVH entry (CONFIG_PVH)")
	}
	if err := sameBuild(f, ver); err != nil {
		return "", err
	}
	return vmlinux, nil
}

// hasPVHNote reports whether f carries the Xen PHYS32_ENTRY note.
func hasPVHNote(f *elf.File) bool {
	for _, p := range f.Progs {
		if p.Type != elf.PT_NOTE || p.Filesz > 1<<20 {
			continue
		}
		b := make([]byte, p.Filesz)
		if _, err := p.ReadAt(b, 0); err != nil {
			continue
		}
		for len(b) >= 12 {
			namesz := int(f.ByteOrder.Uint32(b))
			descsz := int(f.ByteOrder.Uint32(b[4:]))
			typ := f.ByteOrder.Uint32(b[8:])
			b = b[12:]
			name := (namesz + 3) &^ 3
			desc := (descsz + 3) &^ 3
			if namesz < 0 || descsz < 0 || name > len(b) || name+desc > len(b) {
				break
			}
			if typ == xenElfnotePhys32Entry && string(bytes.TrimRight(b[:namesz], "\x00")) == "Xen" {
				return true
			}
			b = b[name+desc:]
		}
	}
	return false
}

// sameBuild checks that f's linux_banner, found in .rodata ("Linux
// version REL (user@host) (compiler...) #STAMP\n"), has the release and
// build stamp of the bzImage's version string ver ("REL (user@host)
// #STAMP").
func sameBuild(f *elf.File, ver string) error {
	rel, _, _ := bytes.Cut([]byte(ver), []byte(" "))
	_, stamp, ok := bytes.Cut([]byte(ver), []byte(" #"))
	if !ok {
		return fmt.Errorf("bzImage version %q has no build stamp", ver)
	}
	s := f.Section(".rodata")
	if s == nil || s.Type == elf.SHT_NOBITS {
		return errors.New("vmlinux has no .rodata")
	}
	data, err := s.Data()
	if err != nil {
		return fmt.Errorf("vmlinux .rodata: %w", err)
	}
	prefix := append([]byte("Linux version "), rel...)
	prefix = append(prefix, ' ')
	for rest := data; ; {
		i := bytes.Index(rest, prefix)
		if i < 0 {
			return fmt.Errorf("vmlinux is not the kernel's build (no banner of %s with build stamp #%s)", rel, stamp)
		}
		rest = rest[i:]
		banner, _, _ := bytes.Cut(rest, []byte{0})
		banner = bytes.TrimRight(banner, "\n")
		if bytes.HasSuffix(banner, append([]byte(" #"), stamp...)) {
			return nil
		}
		rest = rest[len(prefix):]
	}
}
