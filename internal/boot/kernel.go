package boot

import (
	"errors"
	"os"
	"path/filepath"
)

// CacheDir is where ktstr keeps kernels: $KTSTR_CACHE, else
// $XDG_CACHE_HOME/ktstr, else ~/.cache/ktstr.
func CacheDir() string {
	if d := os.Getenv("KTSTR_CACHE"); d != "" {
		return d
	}
	if d := os.Getenv("XDG_CACHE_HOME"); d != "" {
		return filepath.Join(d, "ktstr")
	}
	home, err := os.UserHomeDir()
	if err != nil {
		return filepath.Join(os.TempDir(), "ktstr-cache")
	}
	return filepath.Join(home, ".cache", "ktstr")
}

// DefaultKernel picks the kernel when --kernel is not given: $KTSTR_KERNEL,
// else the project's sched_ext kernel built by `make kernel`, else
// Debian's cloud kernel fetched by `make demo` (scripts/fetch-kernel).
func DefaultKernel() (string, error) {
	if k := os.Getenv("KTSTR_KERNEL"); k != "" {
		return k, nil
	}
	c := CacheDir()
	for _, k := range []string{filepath.Join(c, "kernel", "bzImage"), filepath.Join(c, "debian", "vmlinuz")} {
		if st, err := os.Stat(k); err == nil && st.Mode().IsRegular() {
			return k, nil
		}
	}
	return "", errors.New("no kernel: pass --kernel, set KTSTR_KERNEL, or run `make kernel` or scripts/fetch-kernel")
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
