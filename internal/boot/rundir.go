package boot

import (
	"github.com/ktstr-go/ktstr/internal/noise"

	"errors"
	"fmt"
	"os"
	"path/filepath"

	"golang.org/x/sys/unix"
)

// Paths in a run directory.
const (
	RegionFile  = "region"
	ControlSock = "control.sock"
	InitrdFile  = "initramfs.cpio"
	ConsoleFile = "console.log"
	COM2File    = "com2.log"
	NoiseFile   = noise.File // the host-noise measurement (internal/noise)
)

// maxSockPath is the longest path a Unix socket can be bound to
// (sun_path holds 108 bytes with the terminating NUL).
const maxSockPath = 107

// ErrRunDir is wrapped by every refusal of a run directory.
var ErrRunDir = errors.New("boot: run directory refused")

// CheckRunDirPath refuses a run directory path too long for its control
// socket, before anything is created.
func CheckRunDirPath(dir string) error {
	if p := filepath.Join(dir, ControlSock); len(p) > maxSockPath {
		return fmt.Errorf("%w: %s: the control socket's path would be %d bytes, a Unix socket takes at most %d", ErrRunDir, dir, len(p), maxSockPath)
	}
	return nil
}

// TempRunDir makes a new run directory under $TMPDIR (mode 0700, owned
// by this user). A path too long for the control socket is removed and
// refused (ErrRunDir).
func TempRunDir() (string, error) {
	d, err := os.MkdirTemp("", "ktstr-run-")
	if err != nil {
		return "", err
	}
	if err := CheckRunDirPath(d); err != nil {
		os.Remove(d)
		return "", err
	}
	return d, nil
}

// runDir is an open, trusted run directory: a real directory (not a
// symbolic link) owned by this user, with mode 0700, holding no region.
// Files are created relative to its descriptor, exclusively and without
// following symbolic links, so nothing planted in it can make ktstr-boot
// write elsewhere.
type runDir struct {
	path string
	fd   int
}

// openRunDir creates dir (mode 0700) if needed, opens it and checks it.
func openRunDir(dir string) (*runDir, error) {
	if err := CheckRunDirPath(dir); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	fd, err := unix.Open(dir, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		if errors.Is(err, unix.ELOOP) || errors.Is(err, unix.ENOTDIR) {
			return nil, fmt.Errorf("%w: %s is a symbolic link or not a directory", ErrRunDir, dir)
		}
		return nil, fmt.Errorf("run directory %s: %w", dir, err)
	}
	d := &runDir{path: dir, fd: fd}
	if err := d.check(); err != nil {
		d.Close()
		return nil, err
	}
	return d, nil
}

func (d *runDir) check() error {
	var st unix.Stat_t
	if err := unix.Fstat(d.fd, &st); err != nil {
		return fmt.Errorf("run directory %s: %w", d.path, err)
	}
	if uid := uint32(os.Geteuid()); st.Uid != uid {
		return fmt.Errorf("%w: %s is owned by uid %d, not by this user (uid %d)", ErrRunDir, d.path, st.Uid, uid)
	}
	if perm := os.FileMode(st.Mode & 0o777); perm&0o077 != 0 {
		return fmt.Errorf("%w: %s has mode %v, want 0700", ErrRunDir, d.path, perm)
	}
	var rst unix.Stat_t
	if err := unix.Fstatat(d.fd, RegionFile, &rst, unix.AT_SYMLINK_NOFOLLOW); err == nil {
		return fmt.Errorf("%w: %s already holds a region (one run per directory)", ErrRunDir, d.path)
	}
	return nil
}

// join is the path of name in the directory.
func (d *runDir) join(name string) string { return filepath.Join(d.path, name) }

// create makes the file name in the directory, mode 0600, write-only:
// a stale entry of that name (a previous attempt's file, or a planted
// link) is removed first, and the new file is created exclusively
// without following links.
func (d *runDir) create(name string) (*os.File, error) {
	if err := unix.Unlinkat(d.fd, name, 0); err != nil && !errors.Is(err, unix.ENOENT) {
		return nil, fmt.Errorf("%s: %w", d.join(name), err)
	}
	fd, err := unix.Openat(d.fd, name, unix.O_WRONLY|unix.O_CREAT|unix.O_EXCL|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0o600)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", d.join(name), err)
	}
	return os.NewFile(uintptr(fd), d.join(name)), nil
}

// Close closes the directory's descriptor.
func (d *runDir) Close() error {
	if d.fd < 0 {
		return nil
	}
	err := unix.Close(d.fd)
	d.fd = -1
	return err
}

// PrepareRunDir creates dir (mode 0700) if needed and refuses one that
// is a symbolic link, is not owned by this user, that other users can
// reach, or that already holds a region.
func PrepareRunDir(dir string) error {
	d, err := openRunDir(dir)
	if err != nil {
		return err
	}
	return d.Close()
}

// openConsoles creates the run directory's console files, COM1 and COM2.
func (d *runDir) openConsoles() (con, com2 *os.File, err error) {
	if con, err = d.create(ConsoleFile); err != nil {
		return nil, nil, err
	}
	if com2, err = d.create(COM2File); err != nil {
		con.Close()
		return nil, nil, err
	}
	return con, com2, nil
}
