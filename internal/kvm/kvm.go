package kvm

import (
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"sync"

	"golang.org/x/sys/unix"
)

// DevicePath is the KVM device.
const DevicePath = "/dev/kvm"

// Errors.
var (
	// ErrAPIVersion: /dev/kvm answers an API version other than 12.
	ErrAPIVersion = errors.New("kvm: unsupported API version")
	// ErrClosed: the resource was closed.
	ErrClosed = errors.New("kvm: closed")
	// ErrBadExit: kvm_run holds an exit this package cannot decode
	// (an offset or count outside the mapping).
	ErrBadExit = errors.New("kvm: malformed exit data")
)

// le is the byte order of every KVM structure on x86-64.
var le = binary.LittleEndian

// fd is one owned file descriptor with an idempotent Close.
type fd struct {
	n    int
	once sync.Once
	err  error
}

func (f *fd) close() error {
	f.once.Do(func() {
		f.err = unix.Close(f.n)
		f.n = -1
	})
	return f.err
}

// ioctlInt issues an ioctl whose argument is an integer.
func ioctlInt(n int, req, arg uintptr) (uintptr, error) {
	for {
		r, _, e := unix.Syscall(unix.SYS_IOCTL, uintptr(n), req, arg)
		if e == unix.EINTR && req != reqRun {
			continue
		}
		if e != 0 {
			return r, e
		}
		return r, nil
	}
}

// System is an open /dev/kvm.
type System struct {
	fd fd
}

// Open opens /dev/kvm and checks the API version.
func Open() (*System, error) {
	return OpenPath(DevicePath)
}

// OpenPath opens a KVM device node at path and checks the API version.
func OpenPath(path string) (*System, error) {
	n, err := unix.Open(path, unix.O_RDWR|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, &os.PathError{Op: "open", Path: path, Err: err}
	}
	s := &System{fd: fd{n: n}}
	v, err := ioctlInt(n, reqGetAPIVersion, 0)
	if err != nil {
		s.Close()
		return nil, fmt.Errorf("kvm: KVM_GET_API_VERSION: %w", err)
	}
	if v != APIVersion {
		s.Close()
		return nil, fmt.Errorf("%w %d (want %d)", ErrAPIVersion, v, APIVersion)
	}
	return s, nil
}

// Close closes /dev/kvm. It may be called more than once.
func (s *System) Close() error { return s.fd.close() }

// CheckExtension returns KVM_CHECK_EXTENSION's answer for a capability
// (0: not supported).
func (s *System) CheckExtension(capability uintptr) (int, error) {
	r, err := ioctlInt(s.fd.n, reqCheckExtension, capability)
	if err != nil {
		return 0, fmt.Errorf("kvm: KVM_CHECK_EXTENSION %d: %w", capability, err)
	}
	return int(r), nil
}

// VCPUMmapSize is the size of each vCPU's kvm_run mapping.
func (s *System) VCPUMmapSize() (int, error) {
	r, err := ioctlInt(s.fd.n, reqGetVCPUMmapSize, 0)
	if err != nil {
		return 0, fmt.Errorf("kvm: KVM_GET_VCPU_MMAP_SIZE: %w", err)
	}
	if int(r) < RunMinSize {
		return 0, fmt.Errorf("kvm: KVM_GET_VCPU_MMAP_SIZE = %d, want at least %d", r, RunMinSize)
	}
	return int(r), nil
}

// CreateVM creates a virtual machine (machine type 0).
func (s *System) CreateVM() (*VM, error) {
	r, err := ioctlInt(s.fd.n, reqCreateVM, 0)
	if err != nil {
		return nil, fmt.Errorf("kvm: KVM_CREATE_VM: %w", err)
	}
	unix.CloseOnExec(int(r))
	return &VM{fd: fd{n: int(r)}}, nil
}

// VM is a virtual machine file descriptor.
type VM struct {
	fd fd
}

// Close closes the VM. It may be called more than once; vCPUs and memory
// mappings are closed by their own owners.
func (v *VM) Close() error { return v.fd.close() }

// SetTSSAddr sets the three pages KVM uses for real-mode emulation on
// Intel (KVM_SET_TSS_ADDR); they must not overlap RAM or MMIO.
func (v *VM) SetTSSAddr(addr uint64) error {
	if _, err := ioctlInt(v.fd.n, reqSetTSSAddr, uintptr(addr)); err != nil {
		return fmt.Errorf("kvm: KVM_SET_TSS_ADDR %#x: %w", addr, err)
	}
	return nil
}

// CreateIRQChip creates the in-kernel PIC, IOAPIC and local APICs.
func (v *VM) CreateIRQChip() error {
	if _, err := ioctlInt(v.fd.n, reqCreateIRQChip, 0); err != nil {
		return fmt.Errorf("kvm: KVM_CREATE_IRQCHIP: %w", err)
	}
	return nil
}

// CreateVCPU creates vCPU id and maps its kvm_run page of mmapSize bytes
// (System.VCPUMmapSize).
func (v *VM) CreateVCPU(id int, mmapSize int) (*VCPU, error) {
	r, err := ioctlInt(v.fd.n, reqCreateVCPU, uintptr(id))
	if err != nil {
		return nil, fmt.Errorf("kvm: KVM_CREATE_VCPU %d: %w", id, err)
	}
	unix.CloseOnExec(int(r))
	c := &VCPU{fd: fd{n: int(r)}, ID: id}
	run, err := unix.Mmap(int(r), 0, mmapSize, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED)
	if err != nil {
		c.fd.close()
		return nil, fmt.Errorf("kvm: map kvm_run of vcpu %d: %w", id, err)
	}
	c.run = run
	return c, nil
}

// VCPU is one virtual CPU: its file descriptor and kvm_run mapping. All
// methods but SetImmediateExit and Close must be called from the thread
// that runs it.
type VCPU struct {
	ID   int
	fd   fd
	run  []byte
	once sync.Once
	err  error
}

// Close unmaps kvm_run and closes the vCPU. It may be called more than
// once, but not while Run is in progress.
func (c *VCPU) Close() error {
	c.once.Do(func() {
		var e1 error
		if c.run != nil {
			e1 = unix.Munmap(c.run)
			c.run = nil
		}
		c.err = errors.Join(e1, c.fd.close())
	})
	return c.err
}

// Run enters the guest (KVM_RUN) and returns at the next exit to user
// space. It returns unix.EINTR when a signal or immediate_exit ended the
// call before or instead of an exit; callers retry.
func (c *VCPU) Run() error {
	_, err := ioctlInt(c.fd.n, reqRun, 0)
	return err
}

// ExitReason is kvm_run.exit_reason after Run.
func (c *VCPU) ExitReason() uint32 { return le.Uint32(c.run[runExitReason:]) }

// SetImmediateExit sets kvm_run.immediate_exit: while it is set, KVM_RUN
// returns EINTR at once instead of entering the guest. Safe to call from
// any goroutine.
func (c *VCPU) SetImmediateExit(on bool) {
	var b byte
	if on {
		b = 1
	}
	storeByte(c.run, runImmediateExit, b)
}

// IO is a decoded KVM_EXIT_IO. Data aliases kvm_run: Size*Count bytes,
// to be filled for IOIn, valid until the next Run.
type IO struct {
	Dir   uint8
	Size  uint8
	Port  uint16
	Count uint32
	Data  []byte
}

// IO decodes the exit data of a KVM_EXIT_IO.
func (c *VCPU) IO() (IO, error) {
	u := c.run[runUnion:]
	io := IO{Dir: u[0], Size: u[1], Port: le.Uint16(u[2:]), Count: le.Uint32(u[4:])}
	off := le.Uint64(u[8:])
	n := uint64(io.Size) * uint64(io.Count)
	if io.Size == 0 || off > uint64(len(c.run)) || n > uint64(len(c.run))-off {
		return IO{}, fmt.Errorf("%w: io size %d count %d at offset %d", ErrBadExit, io.Size, io.Count, off)
	}
	io.Data = c.run[off : off+n : off+n]
	return io, nil
}

// MMIO is a decoded KVM_EXIT_MMIO. Data aliases kvm_run (Len bytes, to
// be filled for a read), valid until the next Run.
type MMIO struct {
	Addr    uint64
	Data    []byte
	IsWrite bool
}

// MMIO decodes the exit data of a KVM_EXIT_MMIO.
func (c *VCPU) MMIO() (MMIO, error) {
	u := c.run[runUnion:]
	n := le.Uint32(u[16:])
	if n > 8 {
		return MMIO{}, fmt.Errorf("%w: mmio length %d", ErrBadExit, n)
	}
	return MMIO{Addr: le.Uint64(u), Data: u[8 : 8+n : 8+n], IsWrite: u[20] != 0}, nil
}

// InternalError is a decoded KVM_EXIT_INTERNAL_ERROR.
type InternalError struct {
	Suberror uint32
	Data     []uint64
}

// InternalError decodes the exit data of a KVM_EXIT_INTERNAL_ERROR.
func (c *VCPU) InternalError() InternalError {
	u := c.run[runUnion:]
	e := InternalError{Suberror: le.Uint32(u)}
	e.Data = words(u[8:], le.Uint32(u[4:]))
	return e
}

// FailEntry is a decoded KVM_EXIT_FAIL_ENTRY.
type FailEntry struct {
	HardwareReason uint64
	CPU            uint32
}

// FailEntry decodes the exit data of a KVM_EXIT_FAIL_ENTRY.
func (c *VCPU) FailEntry() FailEntry {
	u := c.run[runUnion:]
	return FailEntry{HardwareReason: le.Uint64(u), CPU: le.Uint32(u[8:])}
}

// SystemEvent is a decoded KVM_EXIT_SYSTEM_EVENT.
type SystemEvent struct {
	Type uint32
	Data []uint64
}

// SystemEvent decodes the exit data of a KVM_EXIT_SYSTEM_EVENT.
func (c *VCPU) SystemEvent() SystemEvent {
	u := c.run[runUnion:]
	return SystemEvent{Type: le.Uint32(u), Data: words(u[8:], le.Uint32(u[4:]))}
}

// words reads n (at most 16) little-endian u64 from b.
func words(b []byte, n uint32) []uint64 {
	n = min(n, 16, uint32(len(b)/8))
	w := make([]uint64, n)
	for i := range w {
		w[i] = le.Uint64(b[8*i:])
	}
	return w
}

// Usable reports why /dev/kvm cannot be used here, or nil when it can:
// it opens the device, checks the API version and closes it again. Tests
// skip with this error's text.
func Usable() error {
	s, err := Open()
	if err != nil {
		return err
	}
	return s.Close()
}
