package boot

import (
	"bufio"
	"bytes"
	"debug/elf"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/ktstr-go/ktstr/internal/guest"
	"github.com/ktstr-go/ktstr/internal/initramfs"
	"github.com/ktstr-go/ktstr/internal/regfile"
)

// File is one extra file for the initramfs: Src on the host (or Data)
// becomes Dst in the guest.
type File struct {
	Dst  string
	Src  string
	Data []byte
	Mode uint32
}

// What every initramfs holds besides the configuration and extra files.
var baseDirs = []string{"dev", "proc", "sys", "tmp", "run"}

const (
	consolePath = "dev/console"
	initPath    = "init"
)

// Layout checks where extra files go in the initramfs before any is
// read: each must take a name of its own, not one of ktstr-boot's members
// (/init, /ktstr/config.json, /dev/console, ...) nor another file's, nor
// a directory's, nor one under a file.
type Layout struct {
	tree *initramfs.Tree
	src  map[string]string // each extra file's source, by name
}

// NewLayout returns a layout holding ktstr-boot's own members.
func NewLayout() *Layout {
	t := initramfs.NewTree()
	for _, d := range baseDirs {
		t.Dir(d)
	}
	for _, f := range []string{consolePath, initPath, guest.ConfigPath} {
		t.File(f)
	}
	return &Layout{tree: t, src: map[string]string{}}
}

// Add takes the name f.Dst, or says why it cannot.
func (l *Layout) Add(f File) error {
	if _, _, err := l.tree.File(f.Dst); err != nil {
		return fmt.Errorf("%s: %w", f.Dst, err)
	}
	l.src[f.Dst] = f.Src
	return nil
}

// AddShared is Add for a library two binaries share: the same source
// under the same name is taken once (it reports false the second time),
// a different one is refused as Add refuses it.
func (l *Layout) AddShared(f File) (bool, error) {
	if src, ok := l.src[f.Dst]; ok && src == f.Src {
		return false, nil
	}
	return true, l.Add(f)
}

// BuildInitramfs writes the initramfs to f: self as /init, the
// directories and device node the kernel needs before devtmpfs is
// mounted, the agent's configuration and the extra files. It closes f.
func BuildInitramfs(f *os.File, self string, cfg guest.Config, files []File) error {
	conf, err := json.Marshal(cfg)
	if err != nil {
		f.Close()
		return err
	}
	bw := bufio.NewWriterSize(f, 1<<20)
	w := initramfs.NewWriter(bw)
	errs := []error{}
	for _, d := range baseDirs {
		errs = append(errs, w.Dir(d, 0o755))
	}
	errs = append(errs,
		w.CharDev(consolePath, 0o600, 5, 1),
		copyInit(w, self),
		w.File(guest.ConfigPath, 0o644, conf),
	)
	for _, fl := range files {
		mode := fl.Mode
		if mode == 0 {
			mode = 0o755
		}
		if fl.Src != "" {
			errs = append(errs, w.CopyFile(fl.Dst, fl.Src, mode))
		} else {
			errs = append(errs, w.File(fl.Dst, mode, fl.Data))
		}
	}
	errs = append(errs, w.Close(), bw.Flush(), f.Close())
	return errors.Join(errs...)
}

// Size limits of the files named on ktstr-boot's command line. Each is
// checked before anything is created.
const (
	MaxFileSize   = 256 << 20 // --include, --scheduler
	MaxKernelSize = 256 << 20 // --kernel
)

// IncludeFile parses an --include argument, SRC or SRC:DST (default
// destination /ktstr/include/BASENAME), and checks that SRC is a regular
// file of at most MaxFileSize bytes.
func IncludeFile(arg string) (File, error) {
	src, dst, ok := strings.Cut(arg, ":")
	if !ok {
		dst = "/ktstr/include/" + filepath.Base(src)
	}
	if err := regfile.Check(src, MaxFileSize); err != nil {
		return File{}, err
	}
	return File{Dst: dst, Src: src}, nil
}

// CheckKernel checks that path is a regular file of at most
// MaxKernelSize bytes.
func CheckKernel(path string) error {
	return regfile.Check(path, MaxKernelSize)
}

// SchedulerFiles returns the initramfs files for a scheduler binary: the
// binary as /ktstr/bin/NAME and, for a dynamic binary, its loader and
// shared libraries at the paths the loader looks them up. It returns the
// binary's path in the guest.
func SchedulerFiles(bin string) ([]File, string, error) {
	f, st, err := regfile.Open(bin, MaxFileSize)
	if err != nil {
		return nil, "", err
	}
	f.Close()
	if st.Mode().Perm()&0o111 == 0 {
		return nil, "", fmt.Errorf("%s is not executable", bin)
	}
	deps, err := ELFDeps(bin)
	if err != nil {
		return nil, "", err
	}
	dst := "/ktstr/bin/" + filepath.Base(bin)
	files := []File{{Dst: dst, Src: bin, Mode: 0o755}}
	for _, d := range deps {
		files = append(files, File{Dst: d.Dst, Src: d.Src, Mode: 0o755})
	}
	return files, dst, nil
}

// copyInit adds self as /init without what only a debugger or a
// disassembler reads: for an ELF64 little-endian executable, the bytes
// past the end of its last segment (DWARF, the symbol table, the section
// headers: about 30% of a Go binary), with the section header fields
// cleared, which the kernel's loader never reads. A smaller initramfs is
// faster to load and unpack in an emulated guest (start -> SRDY 100-170 ms
// shorter, measured). Anything else goes in whole.
func copyInit(w *initramfs.Writer, self string) error {
	f, st, err := regfile.Open(self, initramfs.MaxFileSize)
	if err != nil {
		return fmt.Errorf("initramfs: %w", err)
	}
	defer f.Close()
	hdr, end, ok := loadedPart(f, st.Size())
	if !ok {
		return w.Reader(initPath, 0o755, st.Size(), io.NewSectionReader(f, 0, st.Size()))
	}
	return w.Reader(initPath, 0o755, end, io.MultiReader(bytes.NewReader(hdr), io.NewSectionReader(f, int64(len(hdr)), end-int64(len(hdr)))))
}

// loadedPart returns an ELF64 little-endian executable's header with the
// section header table's fields zeroed, and the end of its last segment
// in the file; ok is false for anything else.
func loadedPart(f *os.File, size int64) (hdr []byte, end int64, ok bool) {
	ef, err := elf.NewFile(f)
	if err != nil || ef.Class != elf.ELFCLASS64 || ef.Data != elf.ELFDATA2LSB || len(ef.Progs) == 0 {
		return nil, 0, false
	}
	const ehsize = 64
	end = ehsize
	for _, p := range ef.Progs {
		e := int64(p.Off) + int64(p.Filesz)
		if p.Off > uint64(size) || e > size || e < 0 {
			return nil, 0, false
		}
		end = max(end, e)
	}
	hdr = make([]byte, ehsize)
	if _, err := f.ReadAt(hdr, 0); err != nil {
		return nil, 0, false
	}
	phoff := binary.LittleEndian.Uint64(hdr[0x20:])
	phentsize, phnum := binary.LittleEndian.Uint16(hdr[0x36:]), binary.LittleEndian.Uint16(hdr[0x38:])
	if int64(phoff)+int64(phentsize)*int64(phnum) > end {
		return nil, 0, false // the program headers must stay
	}
	binary.LittleEndian.PutUint64(hdr[0x28:], 0) // e_shoff
	binary.LittleEndian.PutUint16(hdr[0x3c:], 0) // e_shnum
	binary.LittleEndian.PutUint16(hdr[0x3e:], 0) // e_shstrndx
	return hdr, end, true
}
