package boot

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ktstr-go/ktstr/internal/cache"
)

// TestKernelConfig finds the configuration of the cached kernels
// (scripts/build-kernel's and Debian's layouts) under the release the
// guest's uname -r reports.
func TestKernelConfig(t *testing.T) {
	c, err := cache.Dir()
	if err != nil {
		t.Skipf("no cache directory: %v", err)
	}
	tests := []struct {
		kernel, config string
	}{
		{filepath.Join(c, "kernel", "bzImage"), "config"}, // a link to <key>/bzImage, <key>/config next to it
		{filepath.Join(c, "debian", "vmlinuz"), "config-"},
	}
	ran := 0
	for _, tc := range tests {
		if _, err := os.Stat(tc.kernel); err != nil {
			continue
		}
		ran++
		rel := kernelRelease(tc.kernel)
		if rel == "" || !strings.HasPrefix(rel, "6.") {
			t.Errorf("kernelRelease(%s) = %q, want 6.x", tc.kernel, rel)
		}
		f, ok := KernelConfig(tc.kernel)
		if !ok || f.Dst != "/boot/config-"+rel || !strings.HasPrefix(filepath.Base(f.Src), tc.config) {
			t.Errorf("KernelConfig(%s) = %+v, %v; want /boot/config-%s from %s*", tc.kernel, f, ok, rel, tc.config)
			continue
		}
		b, err := os.ReadFile(f.Src)
		if err != nil || !strings.Contains(string(b), "CONFIG_NR_CPUS=") {
			t.Errorf("%s is not a kernel configuration (%v)", f.Src, err)
		}

		// The same image alone in a directory: no configuration.
		lone := filepath.Join(t.TempDir(), "bzImage")
		img, err := os.ReadFile(tc.kernel)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(lone, img, 0o644); err != nil {
			t.Fatal(err)
		}
		if f, ok := KernelConfig(lone); ok && !strings.HasPrefix(f.Src, "/boot/") {
			t.Errorf("KernelConfig of a lone image = %+v, want none (or the host's /boot)", f)
		}
	}
	if ran == 0 {
		t.Skip("no cached kernel (make kernel, or scripts/fetch-kernel)")
	}
	if _, ok := KernelConfig("/nonexistent"); ok {
		t.Error("KernelConfig of a missing file found one")
	}
	if _, ok := KernelConfig("kconfig_test.go"); ok {
		t.Error("KernelConfig of a non-bzImage found one")
	}
}
