package boot

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/ktstr-go/ktstr/internal/vmm"
)

// KernelConfig finds the build configuration of the kernel image at
// kernel and returns it as the initramfs file /boot/config-RELEASE, where
// libbpf looks first when a scheduler has __kconfig externs (then in
// /proc/config.gz, which needs CONFIG_IKCONFIG_PROC). The release comes
// from the bzImage's setup header. It looks next to the image, and next
// to the file a symbolic link to it names: "config" (scripts/build-kernel's
// cache), "config-RELEASE", "config-X" for an image named "vmlinuz-X"
// (Debian's /boot and scripts/fetch-kernel), then the host's
// /boot/config-RELEASE. ok is false when the release or the file cannot
// be found.
func KernelConfig(kernel string) (f File, ok bool) {
	rel := kernelRelease(kernel)
	if rel == "" {
		return File{}, false
	}
	paths := []string{kernel}
	if p, err := filepath.EvalSymlinks(kernel); err == nil && p != kernel {
		paths = append(paths, p)
	}
	var cands []string
	for _, p := range paths {
		dir, base := filepath.Dir(p), filepath.Base(p)
		cands = append(cands, filepath.Join(dir, "config"), filepath.Join(dir, "config-"+rel))
		if x, ok := strings.CutPrefix(base, "vmlinuz-"); ok {
			cands = append(cands, filepath.Join(dir, "config-"+x))
		}
	}
	cands = append(cands, "/boot/config-"+rel)
	for _, c := range cands {
		if st, err := os.Stat(c); err == nil && st.Mode().IsRegular() {
			return File{Dst: "/boot/config-" + rel, Src: c, Mode: 0o644}, true
		}
	}
	return File{}, false
}

// kernelRelease is what uname -r says in a guest booted from the bzImage
// at path: the first word of the setup header's version string; "" when
// it is not a bzImage or carries no version.
func kernelRelease(path string) string {
	ver, err := kernelVersion(path)
	if err != nil {
		return ""
	}
	rel, _, _ := strings.Cut(ver, " ")
	if rel == "" || strings.ContainsAny(rel, "/\x00") {
		return ""
	}
	return rel
}

// kernelVersion reads a bzImage's version string from its setup header
// ("6.12.117 (user@host) #1 SMP PREEMPT_DYNAMIC ...").
func kernelVersion(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	head := make([]byte, 64<<10)
	n, _ := f.ReadAt(head, 0)
	h, err := vmm.ParseSetupHeader(head[:n])
	if err != nil {
		return "", fmt.Errorf("%s: %w", path, err)
	}
	if h.KernelVersion == "" {
		return "", fmt.Errorf("%s: no version string", path)
	}
	return h.KernelVersion, nil
}
