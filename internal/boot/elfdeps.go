package boot

import (
	"debug/elf"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
)

// libDirs are searched for DT_NEEDED libraries after DT_RUNPATH/DT_RPATH,
// in the order Debian's loader uses on x86-64. They are also the only
// host directories (besides the binary's own) whose files are packed.
var libDirs = []string{
	"/lib/x86_64-linux-gnu", "/usr/lib/x86_64-linux-gnu", "/lib64", "/usr/lib64", "/lib", "/usr/lib",
	"/usr/local/lib",
}

// maxDeps bounds how many files one binary may pull in.
const maxDeps = 256

// ErrELFDep is wrapped by every refusal of a binary's run-time
// dependency; the message names the entry.
var ErrELFDep = errors.New("boot: refused ELF dependency")

// Dep is one file a dynamic binary needs at run time: Src on the host
// becomes Dst in the guest.
type Dep struct {
	Src, Dst string
}

// ELFDeps returns what a dynamic ELF binary needs at run time: its
// interpreter and every shared library it loads, recursively, at the
// paths the loader looks them up in the guest, where the binary is
// /ktstr/bin/NAME. A static binary has none.
//
// The binary's metadata is not trusted: PT_INTERP must name a file in one
// of the library directories; a DT_NEEDED entry must be a plain file
// name; DT_RUNPATH/DT_RPATH directories ($ORIGIN expanded) must be library
// directories or lie in the binary's own directory; and every file found
// must be a regular x86-64 ELF shared object. Anything else is an error
// (wrapping ErrELFDep) that names the entry, so no other host file can
// reach the initramfs.
func ELFDeps(bin string) ([]Dep, error) {
	binDir, err := filepath.Abs(filepath.Dir(bin))
	if err != nil {
		return nil, err
	}
	w := &depWalker{binDir: binDir, seen: map[string]bool{}}
	f, err := openELF(bin, elf.ET_EXEC, elf.ET_DYN)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	if err := w.interp(bin, f); err != nil {
		return nil, err
	}
	if err := w.walk(bin, f); err != nil {
		return nil, err
	}
	return w.out, nil
}

type depWalker struct {
	binDir string
	seen   map[string]bool
	out    []Dep
}

// openELF opens path, which must be a regular file (after links), as an
// x86-64 ELF file of one of the given types.
func openELF(path string, types ...elf.Type) (*elf.File, error) {
	st, err := os.Stat(path)
	if err != nil {
		return nil, err
	}
	if !st.Mode().IsRegular() {
		return nil, fmt.Errorf("%s is not a regular file", path)
	}
	f, err := elf.Open(path)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if f.Class != elf.ELFCLASS64 || f.Machine != elf.EM_X86_64 {
		f.Close()
		return nil, fmt.Errorf("%s: not an x86-64 ELF (%v)", path, f.Machine)
	}
	if !slices.Contains(types, f.Type) {
		f.Close()
		return nil, fmt.Errorf("%s: ELF type %v, want %v", path, f.Type, types)
	}
	return f, nil
}

// add records one dependency, once.
func (w *depWalker) add(src, dst string) (bool, error) {
	if w.seen[src] {
		return false, nil
	}
	if len(w.out) >= maxDeps {
		return false, fmt.Errorf("%w: more than %d run-time dependencies", ErrELFDep, maxDeps)
	}
	w.seen[src] = true
	w.out = append(w.out, Dep{Src: src, Dst: dst})
	return true, nil
}

// ptInterp returns f's PT_INTERP string, "" for a static binary.
func ptInterp(f *elf.File) (string, error) {
	for _, p := range f.Progs {
		if p.Type != elf.PT_INTERP {
			continue
		}
		if p.Filesz == 0 || p.Filesz > 4096 {
			return "", fmt.Errorf("PT_INTERP of %d bytes", p.Filesz)
		}
		b := make([]byte, p.Filesz)
		if _, err := p.ReadAt(b, 0); err != nil {
			return "", fmt.Errorf("PT_INTERP: %v", err)
		}
		interp, _, _ := strings.Cut(string(b), "\x00")
		return interp, nil
	}
	return "", nil
}

// interp adds the binary's PT_INTERP loader, which must be a shared
// object in a library directory.
func (w *depWalker) interp(bin string, f *elf.File) error {
	interp, err := ptInterp(f)
	if err != nil {
		return fmt.Errorf("%w: %s: %v", ErrELFDep, bin, err)
	}
	if interp == "" {
		return nil
	}
	if !filepath.IsAbs(interp) || filepath.Clean(interp) != interp || !slices.Contains(libDirs, filepath.Dir(interp)) {
		return fmt.Errorf("%w: %s: PT_INTERP %q is not a file in %s", ErrELFDep, bin, interp, strings.Join(libDirs, ":"))
	}
	lf, err := openELF(interp, elf.ET_DYN)
	if err != nil {
		return fmt.Errorf("%w: %s: PT_INTERP %q: %v", ErrELFDep, bin, interp, err)
	}
	lf.Close()
	_, err = w.add(interp, interp)
	return err
}

// ErrDynamicInit is returned when the binary that would be the guest's
// /init is dynamically linked: the initramfs has no libc or loader for it.
var ErrDynamicInit = errors.New("boot: dynamically linked /init")

// checkStaticInit refuses a dynamically linked self.
func checkStaticInit(self string) error {
	f, err := elf.Open(self)
	if err != nil {
		return fmt.Errorf("/init %s: %w", self, err)
	}
	defer f.Close()
	interp, err := ptInterp(f)
	if err != nil {
		return fmt.Errorf("/init %s: %w", self, err)
	}
	if interp != "" {
		return fmt.Errorf("%w: %s needs the loader %s, which the guest does not have; build ktstr-boot with CGO_ENABLED=0 (make build does)", ErrDynamicInit, self, interp)
	}
	return nil
}

// searchDirs returns where path's DT_NEEDED libraries are looked up: its
// DT_RUNPATH and DT_RPATH directories, each checked, then the library
// directories.
func (w *depWalker) searchDirs(path string, f *elf.File) ([]string, error) {
	var dirs []string
	origin := filepath.Dir(path)
	for _, tag := range []elf.DynTag{elf.DT_RUNPATH, elf.DT_RPATH} {
		vals, _ := f.DynString(tag)
		for _, v := range vals {
			for _, d := range strings.Split(v, ":") {
				if d == "" {
					continue
				}
				x := strings.ReplaceAll(strings.ReplaceAll(d, "${ORIGIN}", origin), "$ORIGIN", origin)
				if strings.Contains(x, "$") || !filepath.IsAbs(x) {
					return nil, fmt.Errorf("%w: %s: %v entry %q: only absolute directories and $ORIGIN are supported", ErrELFDep, path, tag, d)
				}
				x = filepath.Clean(x)
				if !slices.Contains(libDirs, x) && w.rel(x) == "" {
					return nil, fmt.Errorf("%w: %s: %v entry %q is neither a library directory (%s) nor in the binary's directory %s",
						ErrELFDep, path, tag, d, strings.Join(libDirs, ":"), w.binDir)
				}
				dirs = append(dirs, x)
			}
		}
	}
	return append(dirs, libDirs...), nil
}

// rel returns p relative to the binary's directory, or "" when p is not
// in it.
func (w *depWalker) rel(p string) string {
	r, err := filepath.Rel(w.binDir, p)
	if err != nil || r == ".." || strings.HasPrefix(r, "../") {
		return ""
	}
	return r
}

// walk adds the libraries f (at path) needs, recursively.
func (w *depWalker) walk(path string, f *elf.File) error {
	needed, err := f.ImportedLibraries()
	if err != nil {
		if errors.Is(err, elf.ErrNoSymbols) {
			return nil
		}
		return fmt.Errorf("%w: %s: %v", ErrELFDep, path, err)
	}
	if len(needed) == 0 {
		return nil
	}
	search, err := w.searchDirs(path, f)
	if err != nil {
		return err
	}
	for _, lib := range needed {
		if lib == "" || lib == "." || lib == ".." || strings.ContainsRune(lib, '/') {
			return fmt.Errorf("%w: %s: DT_NEEDED %q is not a plain file name", ErrELFDep, path, lib)
		}
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
		dst := found
		if r := w.rel(found); r != "" && !slices.Contains(libDirs, filepath.Dir(found)) {
			// Next to the binary: where $ORIGIN points in the guest.
			dst = "/ktstr/bin/" + r
		}
		added, err := w.add(found, dst)
		if err != nil || !added {
			return err
		}
		lf, err := openELF(found, elf.ET_DYN)
		if err != nil {
			return fmt.Errorf("%w: %s: DT_NEEDED %q: %v", ErrELFDep, path, lib, err)
		}
		err = w.walk(found, lf)
		lf.Close()
		if err != nil {
			return err
		}
	}
	return nil
}
