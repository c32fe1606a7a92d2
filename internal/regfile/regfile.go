package regfile

import (
	"errors"
	"fmt"
	"io"
	"os"
	"syscall"
)

// Errors wrapped by Open and ReadFile.
var (
	ErrNotRegular = errors.New("regfile: not a regular file")
	ErrTooLarge   = errors.New("regfile: file too large")
)

// Open opens path read-only if it is a regular file of at most max bytes.
// Symbolic links are followed (the user named the path).
func Open(path string, max int64) (*os.File, os.FileInfo, error) {
	f, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NONBLOCK, 0)
	if err != nil {
		return nil, nil, err
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, nil, err
	}
	if !st.Mode().IsRegular() {
		f.Close()
		return nil, nil, fmt.Errorf("%w: %s is a %s", ErrNotRegular, path, kind(st.Mode()))
	}
	if st.Size() > max {
		f.Close()
		return nil, nil, fmt.Errorf("%w: %s has %d bytes, at most %d are taken", ErrTooLarge, path, st.Size(), max)
	}
	return f, st, nil
}

// Check reports whether Open would succeed.
func Check(path string, max int64) error {
	f, _, err := Open(path, max)
	if err == nil {
		f.Close()
	}
	return err
}

// ReadFile reads path if it is a regular file of at most max bytes; a
// file that grows past max while it is read is refused too.
func ReadFile(path string, max int64) ([]byte, error) {
	f, _, err := Open(path, max)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, max+1))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if int64(len(b)) > max {
		return nil, fmt.Errorf("%w: %s grew past %d bytes while being read", ErrTooLarge, path, max)
	}
	return b, nil
}

func kind(m os.FileMode) string {
	switch {
	case m.IsDir():
		return "directory"
	case m&os.ModeNamedPipe != 0:
		return "named pipe"
	case m&os.ModeSocket != 0:
		return "socket"
	case m&os.ModeCharDevice != 0:
		return "character device"
	case m&os.ModeDevice != 0:
		return "block device"
	}
	return "special file"
}
