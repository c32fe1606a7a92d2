package initramfs

import (
	"errors"
	"io"
	"testing"
)

// TestTreeRefusesClashes: every name is taken once, and a directory and a
// file never share one. The writer used to add a directory entry over an
// existing file when a later name lay under it.
func TestTreeRefusesClashes(t *testing.T) {
	for _, tc := range []struct {
		name  string
		first func(w *Writer) error
		then  func(w *Writer) error
	}{
		{"file twice", func(w *Writer) error { return w.File("a", 0o644, nil) }, func(w *Writer) error { return w.File("/a", 0o644, nil) }},
		{"file over a directory", func(w *Writer) error { return w.Dir("d", 0o755) }, func(w *Writer) error { return w.File("d", 0o644, nil) }},
		{"file over an implied directory", func(w *Writer) error { return w.File("d/x", 0o644, nil) }, func(w *Writer) error { return w.File("d", 0o644, nil) }},
		{"file under a file", func(w *Writer) error { return w.File("init", 0o755, nil) }, func(w *Writer) error { return w.File("init/x", 0o644, nil) }},
		{"directory over a file", func(w *Writer) error { return w.File("f", 0o644, nil) }, func(w *Writer) error { return w.Dir("f", 0o755) }},
		{"device over a file", func(w *Writer) error { return w.File("dev/console", 0o644, nil) }, func(w *Writer) error { return w.CharDev("dev/console", 0o600, 5, 1) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w := NewWriter(io.Discard)
			if err := tc.first(w); err != nil {
				t.Fatalf("first member: %v", err)
			}
			if err := tc.then(w); !errors.Is(err, ErrDuplicate) {
				t.Errorf("second member: %v, want ErrDuplicate", err)
			}
		})
	}
	w := NewWriter(io.Discard)
	if err := w.Dir("d", 0o755); err != nil {
		t.Fatal(err)
	}
	if err := w.Dir("d", 0o755); err != nil {
		t.Errorf("the same directory twice: %v, want nil (directories are idempotent)", err)
	}
}
