// Package initramfs writes the initramfs ktstr-boot hands to the kernel:
// an uncompressed newc ("070701") cpio archive. It is written in Go so that
// no external cpio is needed, and left uncompressed because decompression
// is the slowest part of early boot under software emulation.
//
// A newc member is a 110-byte ASCII header (magic and thirteen 8-digit hex
// fields), the NUL-terminated name padded to a multiple of 4 bytes, then
// the data padded to a multiple of 4. The archive ends with a member named
// "TRAILER!!!".
package initramfs

import (
	"errors"
	"fmt"
	"io"
	"path"
	"strings"

	"github.com/ktstr-go/ktstr/internal/regfile"
)

// Mode bits of cpio members.
const (
	ModeDir  = 0o040000
	ModeFile = 0o100000
	ModeLink = 0o120000
	ModeChar = 0o020000
)

// Writer writes a newc archive. Parent directories are created on demand,
// once each; names are relative ("init", "usr/lib/x.so").
type Writer struct {
	w    io.Writer
	n    int64
	ino  uint32
	tree *Tree
	err  error
}

// NewWriter returns a Writer to w.
func NewWriter(w io.Writer) *Writer {
	return &Writer{w: w, ino: 1, tree: NewTree()}
}

// trailer names the end-of-archive member; no other member may take it.
const trailer = "TRAILER!!!"

// ErrDuplicate is returned when a name is added twice.
var ErrDuplicate = errors.New("initramfs: duplicate name")

func clean(name string) (string, error) {
	n := path.Clean(strings.TrimLeft(name, "/"))
	if n == "." || n == ".." || strings.HasPrefix(n, "../") || n == trailer {
		return "", fmt.Errorf("initramfs: bad name %q", name)
	}
	return n, nil
}

// Dir adds a directory (and its parents); an existing directory is not
// added again.
func (w *Writer) Dir(name string, perm uint32) error {
	n, err := clean(name)
	if err != nil {
		return err
	}
	added, err := w.tree.Dir(n)
	if err != nil {
		return err
	}
	for i, d := range added {
		p := uint32(0o755)
		if i == len(added)-1 && d == n {
			p = perm
		}
		if err := w.header(d, ModeDir|p, 0, 0, 0, nil); err != nil {
			return err
		}
	}
	return nil
}

// File adds a regular file with the given contents.
func (w *Writer) File(name string, perm uint32, data []byte) error {
	n, err := w.prepare(name)
	if err != nil {
		return err
	}
	return w.header(n, ModeFile|perm, int64(len(data)), 0, 0, func() error {
		_, err := w.w.Write(data)
		return err
	})
}

// MaxFileSize is the largest member newc can describe (an 8-digit hex
// size).
const MaxFileSize = 1<<32 - 1

// CopyFile adds the host file src as name, streaming its contents. src
// must be a regular file (a FIFO or a device is refused without blocking).
func (w *Writer) CopyFile(name, src string, perm uint32) error {
	f, st, err := regfile.Open(src, MaxFileSize)
	if err != nil {
		return fmt.Errorf("initramfs: %w", err)
	}
	defer f.Close()
	n, err := w.prepare(name)
	if err != nil {
		return err
	}
	return w.header(n, ModeFile|perm, st.Size(), 0, 0, func() error {
		m, err := io.Copy(w.w, io.LimitReader(f, st.Size()))
		if err == nil && m != st.Size() {
			err = fmt.Errorf("initramfs: %s changed size while being copied", src)
		}
		return err
	})
}

// Reader adds a regular file of size bytes read from r.
func (w *Writer) Reader(name string, perm uint32, size int64, r io.Reader) error {
	n, err := w.prepare(name)
	if err != nil {
		return err
	}
	return w.header(n, ModeFile|perm, size, 0, 0, func() error {
		m, err := io.Copy(w.w, io.LimitReader(r, size))
		if err == nil && m != size {
			err = fmt.Errorf("initramfs: %s: %d bytes of %d", name, m, size)
		}
		return err
	})
}

// Symlink adds a symbolic link name -> target.
func (w *Writer) Symlink(name, target string) error {
	n, err := w.prepare(name)
	if err != nil {
		return err
	}
	return w.header(n, ModeLink|0o777, int64(len(target)), 0, 0, func() error {
		_, err := io.WriteString(w.w, target)
		return err
	})
}

// CharDev adds a character device node.
func (w *Writer) CharDev(name string, perm, major, minor uint32) error {
	n, err := w.prepare(name)
	if err != nil {
		return err
	}
	return w.header(n, ModeChar|perm, 0, major, minor, nil)
}

// prepare adds name to the tree and writes the headers of the parent
// directories it needed.
func (w *Writer) prepare(name string) (string, error) {
	n, added, err := w.tree.File(name)
	if err != nil {
		return "", err
	}
	for _, d := range added {
		if err := w.header(d, ModeDir|0o755, 0, 0, 0, nil); err != nil {
			return "", err
		}
	}
	return n, nil
}

func (w *Writer) header(name string, mode uint32, size int64, rmajor, rminor uint32, body func() error) error {
	if w.err != nil {
		return w.err
	}
	if size > 0xFFFFFFFF {
		return fmt.Errorf("initramfs: %s: file too large for newc", name)
	}
	nlink := 1
	if mode&0o170000 == ModeDir {
		nlink = 2
	}
	ino := w.ino
	w.ino++
	h := fmt.Sprintf("070701%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X",
		ino, mode, 0, 0, nlink, 0, size, 0, 0, rmajor, rminor, len(name)+1, 0)
	w.write([]byte(h))
	w.write(append([]byte(name), 0))
	w.pad()
	if body != nil && w.err == nil {
		before := w.n
		cw := &countWriter{w: w.w}
		orig := w.w
		w.w = cw
		w.err = body()
		w.w = orig
		w.n = before + cw.n
		if w.err == nil && cw.n != size {
			w.err = fmt.Errorf("initramfs: %s: wrote %d bytes, header says %d", name, cw.n, size)
		}
	}
	w.pad()
	return w.err
}

type countWriter struct {
	w io.Writer
	n int64
}

func (c *countWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}

func (w *Writer) write(b []byte) {
	if w.err != nil {
		return
	}
	n, err := w.w.Write(b)
	w.n += int64(n)
	w.err = err
}

func (w *Writer) pad() {
	if r := w.n % 4; r != 0 {
		w.write(make([]byte, 4-r))
	}
}

// Close writes the trailer. It does not close the underlying writer.
func (w *Writer) Close() error {
	if w.err != nil {
		return w.err
	}
	w.header(trailer, 0, 0, 0, 0, nil)
	return w.err
}
