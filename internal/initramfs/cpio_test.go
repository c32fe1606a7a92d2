package initramfs

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// member is one entry read back from an archive.
type member struct {
	Name         string
	Mode         uint32
	Data         string
	Major, Minor uint32
}

// readNewc is an independent newc reader used to check the writer: it
// validates the magic, the hex fields, the padding and the trailer.
func readNewc(b []byte) ([]member, error) {
	var out []member
	pos := 0
	for {
		if len(b)-pos < 110 {
			return nil, fmt.Errorf("short header at %d", pos)
		}
		h := b[pos : pos+110]
		if string(h[:6]) != "070701" {
			return nil, fmt.Errorf("bad magic %q at %d", h[:6], pos)
		}
		field := func(i int) (uint32, error) {
			v, err := strconv.ParseUint(string(h[6+8*i:6+8*i+8]), 16, 32)
			return uint32(v), err
		}
		var f [13]uint32
		for i := range f {
			v, err := field(i)
			if err != nil {
				return nil, fmt.Errorf("field %d at %d: %v", i, pos, err)
			}
			f[i] = v
		}
		mode, size, rmaj, rmin, namesize := f[1], f[6], f[9], f[10], f[11]
		pos += 110
		if namesize == 0 || pos+int(namesize) > len(b) || b[pos+int(namesize)-1] != 0 {
			return nil, fmt.Errorf("bad name at %d", pos)
		}
		name := string(b[pos : pos+int(namesize)-1])
		pos += int(namesize)
		if pos%4 != 0 {
			for ; pos%4 != 0; pos++ {
				if b[pos] != 0 {
					return nil, fmt.Errorf("non-zero name padding at %d", pos)
				}
			}
		}
		if pos+int(size) > len(b) {
			return nil, fmt.Errorf("short data for %s", name)
		}
		data := string(b[pos : pos+int(size)])
		pos += int(size)
		for ; pos%4 != 0; pos++ {
			if pos >= len(b) || b[pos] != 0 {
				return nil, fmt.Errorf("bad data padding after %s", name)
			}
		}
		if name == "TRAILER!!!" {
			if pos != len(b) {
				return nil, fmt.Errorf("%d bytes after the trailer", len(b)-pos)
			}
			return out, nil
		}
		out = append(out, member{Name: name, Mode: mode, Data: data, Major: rmaj, Minor: rmin})
	}
}

func TestWriterRoundTrip(t *testing.T) {
	src := filepath.Join(t.TempDir(), "payload")
	if err := os.WriteFile(src, []byte("hello, guest\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	w := NewWriter(&buf)
	steps := []error{
		w.Dir("dev", 0o755),
		w.CharDev("dev/console", 0o600, 5, 1),
		w.File("init", 0o755, []byte("#!/bin/sh\n")),
		w.CopyFile("usr/lib/x86_64-linux-gnu/libfoo.so.1", src, 0o644),
		w.Symlink("lib64", "usr/lib"),
		w.File("empty", 0o644, nil),
		w.Close(),
	}
	for i, err := range steps {
		if err != nil {
			t.Fatalf("step %d: %v", i, err)
		}
	}
	got, err := readNewc(buf.Bytes())
	if err != nil {
		t.Fatalf("readNewc: %v", err)
	}
	want := []member{
		{Name: "dev", Mode: ModeDir | 0o755},
		{Name: "dev/console", Mode: ModeChar | 0o600, Major: 5, Minor: 1},
		{Name: "init", Mode: ModeFile | 0o755, Data: "#!/bin/sh\n"},
		{Name: "usr", Mode: ModeDir | 0o755},
		{Name: "usr/lib", Mode: ModeDir | 0o755},
		{Name: "usr/lib/x86_64-linux-gnu", Mode: ModeDir | 0o755},
		{Name: "usr/lib/x86_64-linux-gnu/libfoo.so.1", Mode: ModeFile | 0o644, Data: "hello, guest\n"},
		{Name: "lib64", Mode: ModeLink | 0o777, Data: "usr/lib"},
		{Name: "empty", Mode: ModeFile | 0o644},
	}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("archive members (-want +got):\n%s", d)
	}
}

func TestWriterRejects(t *testing.T) {
	w := NewWriter(&bytes.Buffer{})
	if err := w.File("a/b", 0o644, []byte("x")); err != nil {
		t.Fatal(err)
	}
	if err := w.File("/a/b", 0o644, nil); !errors.Is(err, ErrDuplicate) {
		t.Errorf("File(/a/b) again = %v, want ErrDuplicate", err)
	}
	for _, bad := range []string{"", "/", "..", "../etc/passwd", "a/../../x"} {
		if err := w.File(bad, 0o644, nil); err == nil {
			t.Errorf("File(%q) = nil, want an error", bad)
		}
	}
	if err := w.CopyFile("dir", t.TempDir(), 0o644); err == nil {
		t.Error("CopyFile of a directory = nil, want an error")
	}
}

type failWriter struct{ n int }

func (f *failWriter) Write(p []byte) (int, error) {
	if f.n <= 0 {
		return 0, errors.New("disk full")
	}
	f.n--
	return len(p), nil
}

func TestWriterStopsAtFirstError(t *testing.T) {
	w := NewWriter(&failWriter{n: 2})
	var err error
	for i := 0; i < 5 && err == nil; i++ {
		err = w.File(fmt.Sprintf("f%d", i), 0o644, []byte("data"))
	}
	if err == nil || err.Error() != "disk full" {
		t.Fatalf("err = %v, want disk full", err)
	}
	if err := w.Close(); err == nil {
		t.Error("Close after a write error = nil, want the error")
	}
}

func FuzzWriterNames(f *testing.F) {
	for _, s := range []string{"init", "a/b/c", "../x", "/abs", "dev/console", "a//b", "TRAILER!!!"} {
		f.Add(s, []byte("data"))
	}
	f.Fuzz(func(t *testing.T, name string, data []byte) {
		var buf bytes.Buffer
		w := NewWriter(&buf)
		err := w.File(name, 0o644, data)
		if cerr := w.Close(); err == nil && cerr != nil {
			t.Fatalf("Close: %v", cerr)
		}
		if err != nil {
			return
		}
		ms, rerr := readNewc(buf.Bytes())
		if rerr != nil {
			t.Fatalf("File(%q) wrote an archive that does not read back: %v", name, rerr)
		}
		last := ms[len(ms)-1]
		if last.Data != string(data) || last.Mode != ModeFile|0o644 {
			t.Fatalf("File(%q): last member %+v, want the file with %d bytes", name, last, len(data))
		}
	})
}
