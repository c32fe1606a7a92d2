package regfile

import (
	"errors"
	"os"
	"path/filepath"
	"syscall"
	"testing"
)

func TestReadFile(t *testing.T) {
	dir := t.TempDir()
	small := filepath.Join(dir, "small")
	os.WriteFile(small, []byte("hello"), 0o644)
	big := filepath.Join(dir, "big")
	os.WriteFile(big, make([]byte, 100), 0o644)
	fifo := filepath.Join(dir, "fifo")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		path string
		want error
	}{
		{small, nil},
		{big, ErrTooLarge},
		{fifo, ErrNotRegular}, // would block a plain open
		{dir, ErrNotRegular},
		{"/dev/zero", ErrNotRegular}, // would never end a plain read
		{filepath.Join(dir, "missing"), os.ErrNotExist},
	} {
		b, err := ReadFile(tc.path, 10)
		if !errors.Is(err, tc.want) {
			t.Errorf("ReadFile(%s, 10) = %q, %v; want %v", tc.path, b, err, tc.want)
		}
		if err == nil && string(b) != "hello" {
			t.Errorf("ReadFile(%s) = %q, want hello", tc.path, b)
		}
	}
	if err := Check(big, 100); err != nil {
		t.Errorf("Check(100-byte file, 100) = %v, want nil", err)
	}
}
