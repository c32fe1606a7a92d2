// Package qemu runs a guest under qemu-system-x86_64: the fallback backend
// of ktstr-boot where no hardware KVM exists (software emulation, TCG), or
// where the user asks for it. The shared region is an ivshmem-plain PCI
// device backed by the region file; COM1 and COM2 go to files.
//
// For looking into the guest (package introspect), the guest's RAM can be
// a file the host maps too (memory-backend-file,share=on, on tmpfs), and a
// QMP client on a private socket stops, resumes and reads the registers
// of the vCPUs.
package qemu

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"sync"
	"syscall"
	"time"

	"github.com/ktstr-go/ktstr/internal/introspect"
	"golang.org/x/sys/unix"
)

// Config describes one VM.
type Config struct {
	Binary     string // default "qemu-system-x86_64"
	KVM        bool   // use -accel kvm instead of TCG
	Kernel     string
	Initrd     string
	Cmdline    string
	CPUs       int
	MemoryMB   int
	Region     string // region file
	RegionSize uint64 // guest-visible size (a power of two)
	Console    string // COM1 output file
	COM2       string // COM2 output file
	Stderr     *os.File
	// RAMFile, when set, backs the guest's RAM: Start creates it (it
	// must not exist; put it on tmpfs), maps it shared and, once QEMU
	// has opened it, removes its name. QMP, when set, is the path of
	// QEMU's QMP socket, which Start connects to.
	RAMFile string
	QMP     string
}

// QMPTimeout bounds QEMU's creation of its QMP socket at start.
const QMPTimeout = 10 * time.Second

// Args returns QEMU's command line for c (without the binary).
func (c Config) Args() []string {
	accel, cpu := "tcg,thread=multi", "max"
	if c.KVM {
		accel, cpu = "kvm", "host"
	}
	machine := "pc"
	var extra []string
	if c.RAMFile != "" {
		machine += ",memory-backend=ram"
		extra = append(extra, "-object", fmt.Sprintf("memory-backend-file,id=ram,mem-path=%s,share=on,size=%dM", c.RAMFile, c.MemoryMB))
	}
	if c.QMP != "" {
		extra = append(extra, "-qmp", "unix:"+c.QMP+",server=on,wait=off")
	}
	return append([]string{
		"-nodefaults", "-no-user-config", "-display", "none", "-vga", "none", "-no-reboot",
		"-accel", accel, "-M", machine, "-cpu", cpu,
		"-smp", strconv.Itoa(c.CPUs), "-m", strconv.Itoa(c.MemoryMB),
		"-kernel", c.Kernel, "-initrd", c.Initrd, "-append", c.Cmdline,
		"-chardev", "file,id=com1,path=" + c.Console, "-serial", "chardev:com1",
		"-chardev", "file,id=com2,path=" + c.COM2, "-serial", "chardev:com2",
		"-object", fmt.Sprintf("memory-backend-file,id=ktstr,mem-path=%s,share=on,size=%d", c.Region, c.RegionSize),
		"-device", "ivshmem-plain,memdev=ktstr",
	}, extra...)
}

// PCLayout is where QEMU's pc machine puts ram bytes of RAM: all below
// 4 GiB when it is under 3.5 GiB, else the first 3 GiB there and the rest
// from 4 GiB (gigabyte-aligned, pc-i440fx 1.7 and later). The RAM file
// holds the same bytes in that order.
func PCLayout(ram uint64) (low, high uint64) {
	if ram < 0xe0000000 {
		return ram, 0
	}
	return 0xc0000000, ram - 0xc0000000
}

// VM is a running QEMU.
type VM struct {
	cmd  *exec.Cmd
	done chan struct{}
	err  error

	qmp   *QMP
	memMu sync.RWMutex
	ram   []byte // the RAM file's mapping, nil once released
	low   uint64
}

// ErrReleased: QEMU has exited; the guest's memory is gone.
var ErrReleased = errors.New("qemu: the VM has ended; its memory is released")

// Start launches QEMU.
func Start(c Config) (*VM, error) {
	bin := c.Binary
	if bin == "" {
		bin = "qemu-system-x86_64"
	}
	path, err := exec.LookPath(bin)
	if err != nil {
		return nil, fmt.Errorf("qemu: %s not found (install Debian's qemu-system-x86): %w", bin, err)
	}
	vm := &VM{done: make(chan struct{})}
	if c.RAMFile != "" {
		if vm.ram, err = mapRAM(c.RAMFile, uint64(c.MemoryMB)<<20); err != nil {
			return nil, err
		}
		vm.low, _ = PCLayout(uint64(len(vm.ram)))
	}
	cmd := exec.Command(path, c.Args()...)
	cmd.Stdin = nil
	cmd.Stdout = c.Stderr // QEMU prints nothing on stdout in this mode; keep ours clean
	cmd.Stderr = c.Stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		vm.release()
		return nil, fmt.Errorf("qemu: start: %w", err)
	}
	vm.cmd = cmd
	go func() {
		vm.err = cmd.Wait()
		vm.release()
		close(vm.done)
	}()
	if c.QMP != "" {
		if vm.qmp, err = DialQMP(c.QMP, QMPTimeout); err != nil {
			vm.Kill()
			<-vm.done
			return nil, err
		}
		if c.RAMFile != "" {
			// QEMU has its RAM once the backend is listed; the name can go.
			if _, err := vm.qmp.Execute("query-memdev", nil, QMPTimeout); err == nil {
				os.Remove(c.RAMFile)
			}
		}
	}
	return vm, nil
}

// mapRAM creates the RAM file with size bytes and maps it shared.
func mapRAM(path string, size uint64) ([]byte, error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return nil, fmt.Errorf("qemu: RAM file: %w", err)
	}
	defer f.Close()
	if err := f.Truncate(int64(size)); err != nil {
		os.Remove(path)
		return nil, fmt.Errorf("qemu: RAM file: %w", err)
	}
	m, err := unix.Mmap(int(f.Fd()), 0, int(size), unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED)
	if err != nil {
		os.Remove(path)
		return nil, fmt.Errorf("qemu: map RAM file %s: %w", path, err)
	}
	return m, nil
}

// release unmaps the RAM once no WithRAM call holds it, and closes QMP.
func (vm *VM) release() {
	vm.memMu.Lock()
	defer vm.memMu.Unlock()
	if vm.ram != nil {
		unix.Munmap(vm.ram)
		vm.ram = nil
	}
	if vm.qmp != nil {
		vm.qmp.Close()
	}
}

// WithRAM calls fn with the guest's RAM, as guest-physical ranges, while
// it stays mapped. Without a RAM file, or after QEMU exited, it returns an
// error without calling fn.
func (vm *VM) WithRAM(fn func([]introspect.Range) error) error {
	vm.memMu.RLock()
	defer vm.memMu.RUnlock()
	if vm.ram == nil {
		return ErrReleased
	}
	rs := []introspect.Range{{GPA: 0, Mem: vm.ram[:vm.low:vm.low]}}
	if uint64(len(vm.ram)) > vm.low {
		rs = append(rs, introspect.Range{GPA: 1 << 32, Mem: vm.ram[vm.low:]})
	}
	return fn(rs)
}

// ErrNoQMP: the VM was started without a QMP socket.
var ErrNoQMP = errors.New("qemu: no QMP socket")

// Freeze stops every vCPU ("stop", which returns once they have all
// paused) and returns their registers. Call Thaw afterwards, whatever
// Freeze returned.
func (vm *VM) Freeze(timeout time.Duration) ([]introspect.Regs, error) {
	if vm.qmp == nil {
		return nil, ErrNoQMP
	}
	if _, err := vm.qmp.Execute("stop", nil, timeout); err != nil {
		return nil, err
	}
	return vm.qmp.Registers(timeout)
}

// Thaw resumes the vCPUs ("cont").
func (vm *VM) Thaw(timeout time.Duration) error {
	if vm.qmp == nil {
		return ErrNoQMP
	}
	_, err := vm.qmp.Execute("cont", nil, timeout)
	return err
}

// Registers reads the vCPUs' registers without stopping the guest.
func (vm *VM) Registers(timeout time.Duration) ([]introspect.Regs, error) {
	if vm.qmp == nil {
		return nil, ErrNoQMP
	}
	return vm.qmp.Registers(timeout)
}

// Done is closed when QEMU has exited and its RAM is unmapped.
func (vm *VM) Done() <-chan struct{} { return vm.done }

// Err is QEMU's exit error once Done is closed (nil for status 0).
func (vm *VM) Err() error { return vm.err }

// Kill stops QEMU at once.
func (vm *VM) Kill() {
	select {
	case <-vm.done:
	default:
		vm.cmd.Process.Signal(syscall.SIGKILL)
	}
}

// Wait waits for QEMU to exit, at most d.
func (vm *VM) Wait(d time.Duration) bool {
	select {
	case <-vm.done:
		return true
	case <-time.After(d):
		return false
	}
}
