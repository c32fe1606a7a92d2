package boot

import (
	"errors"
	"os"
	"path/filepath"

	"github.com/ktstr-go/ktstr/internal/cache"
)

// DefaultKernel picks the kernel when --kernel is not given: $KTSTR_KERNEL,
// else the project's sched_ext kernel built by make kernel, else
// Debian's cloud kernel fetched by make demo (scripts/fetch-kernel), both
// in the cache (internal/cache).
func DefaultKernel() (string, error) {
	if k := os.Getenv("KTSTR_KERNEL"); k != "" {
		return k, nil
	}
	c, err := cache.Dir()
	if err != nil {
		return "", err
	}
	for _, k := range []string{filepath.Join(c, "kernel", "bzImage"), filepath.Join(c, "debian", "vmlinuz")} {
		if st, err := os.Stat(k); err == nil && st.Mode().IsRegular() {
			return k, nil
		}
	}
	return "", errors.New("no kernel: pass --kernel, set KTSTR_KERNEL, or run make kernel or scripts/fetch-kernel")
}

// DefaultVmlinux is the vmlinux next to kernel (after following symbolic
// links: scripts/build-kernel keeps one beside each bzImage it builds), or
// "" when there is none.
func DefaultVmlinux(kernel string) string {
	real, err := filepath.EvalSymlinks(kernel)
	if err != nil {
		return ""
	}
	v := filepath.Join(filepath.Dir(real), "vmlinux")
	if st, err := os.Stat(v); err != nil || !st.Mode().IsRegular() {
		return ""
	}
	return v
}
