package boot

import (
	"bytes"
	"debug/elf"
	"errors"
	"fmt"

	"github.com/ktstr-go/ktstr/internal/vmm"
)

// PVHImage returns vmlinux when a VM backend (QEMU's -kernel, or the own
// VMM) can boot it in place of kernel (a compressed bzImage): an ELF with
// a PVH entry note, of the same build as kernel (the release and the
// "#1 SMP ..." build stamp in its linux_banner are the bzImage's version
// string's). Booted that way the guest does not decompress its kernel:
// under software emulation that is most of the time between QEMU's start
// and the kernel's first message; under KVM some tens of milliseconds.
// It returns "" and the reason otherwise.
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
	if _, ok := vmm.PVHEntry(f); !ok {
		return "", errors.New("vmlinux has no PVH entry (CONFIG_PVH)")
	}
	if err := sameBuild(f, ver); err != nil {
		return "", err
	}
	return vmlinux, nil
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
