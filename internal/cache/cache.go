package cache

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"syscall"
)

// ErrNoCache is returned when no cache directory can be named.
var ErrNoCache = errors.New("cache: no cache directory: set KTSTR_CACHE, XDG_CACHE_HOME or HOME")

// Dir returns the cache directory (which may not exist yet). An existing
// one that another user owns or can write to is refused: what it holds is
// booted and run.
func Dir() (string, error) {
	d := ""
	switch x := os.Getenv("XDG_CACHE_HOME"); {
	case os.Getenv("KTSTR_CACHE") != "":
		d = os.Getenv("KTSTR_CACHE")
	case filepath.IsAbs(x):
		d = filepath.Join(x, "ktstr")
	case os.Getenv("HOME") != "":
		d = filepath.Join(os.Getenv("HOME"), ".cache", "ktstr")
	default:
		return "", ErrNoCache
	}
	st, err := os.Stat(d)
	if err != nil {
		return d, nil // made when something is first cached
	}
	if perm := st.Mode().Perm(); perm&0o022 != 0 {
		return "", fmt.Errorf("cache: %s is writable by other users (mode %v): not used", d, perm)
	}
	if sys, ok := st.Sys().(*syscall.Stat_t); ok && int(sys.Uid) != os.Geteuid() {
		return "", fmt.Errorf("cache: %s belongs to uid %d, not to this user: not used", d, sys.Uid)
	}
	return d, nil
}
