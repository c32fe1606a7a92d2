package boot

import (
	"debug/elf"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// libDirs are searched for DT_NEEDED libraries after DT_RUNPATH/DT_RPATH,
// in the order Debian's loader uses on x86-64.
var libDirs = []string{
	"/lib/x86_64-linux-gnu", "/usr/lib/x86_64-linux-gnu", "/lib64", "/usr/lib64", "/lib", "/usr/lib",
	"/usr/local/lib",
}

// ELFDeps returns what a dynamic ELF binary needs at run time: its
// interpreter and every shared library it loads, recursively, as absolute
// paths as the loader will look them up in the guest. A static binary has
// none. Libraries are found through DT_RUNPATH/DT_RPATH ($ORIGIN
// expanded) and the standard directories.
func ELFDeps(bin string) ([]string, error) {
	seen := map[string]bool{}
	var out []string
	var walk func(path string, top bool) error
	walk = func(path string, top bool) error {
		f, err := elf.Open(path)
		if err != nil {
			return fmt.Errorf("%s: %w", path, err)
		}
		defer f.Close()
		if f.Machine != elf.EM_X86_64 {
			return fmt.Errorf("%s: not an x86-64 ELF (%v)", path, f.Machine)
		}
		if top {
			for _, p := range f.Progs {
				if p.Type == elf.PT_INTERP {
					b := make([]byte, p.Filesz)
					if _, err := p.ReadAt(b, 0); err != nil {
						return fmt.Errorf("%s: interpreter: %w", path, err)
					}
					interp := strings.TrimRight(string(b), "\x00")
					if !seen[interp] {
						seen[interp] = true
						out = append(out, interp)
					}
				}
			}
		}
		needed, err := f.ImportedLibraries()
		if err != nil {
			if errors.Is(err, elf.ErrNoSymbols) {
				return nil
			}
			return fmt.Errorf("%s: %w", path, err)
		}
		var search []string
		for _, tag := range []elf.DynTag{elf.DT_RUNPATH, elf.DT_RPATH} {
			vals, _ := f.DynString(tag)
			for _, v := range vals {
				for _, d := range strings.Split(v, ":") {
					search = append(search, strings.ReplaceAll(d, "$ORIGIN", filepath.Dir(path)))
				}
			}
		}
		search = append(search, libDirs...)
		for _, lib := range needed {
			found := ""
			for _, d := range search {
				p := filepath.Join(d, lib)
				if st, err := os.Stat(p); err == nil && st.Mode().IsRegular() {
					found = p
					break
				}
			}
			if found == "" {
				return fmt.Errorf("%s needs %s, not found in %s", path, lib, strings.Join(search, ":"))
			}
			if seen[found] {
				continue
			}
			seen[found] = true
			out = append(out, found)
			if err := walk(found, false); err != nil {
				return err
			}
		}
		return nil
	}
	if err := walk(bin, true); err != nil {
		return nil, err
	}
	return out, nil
}
