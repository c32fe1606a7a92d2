// Package qemu runs a guest under qemu-system-x86_64: the fallback backend
// of ktstr-boot where no hardware KVM exists (software emulation, TCG), or
// where the user asks for it. The shared region is an ivshmem-plain PCI
// device backed by the region file; COM1 and COM2 go to files.
package qemu

import (
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"time"
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
}

// Args returns QEMU's command line for c (without the binary).
func (c Config) Args() []string {
	accel, cpu := "tcg,thread=multi", "max"
	if c.KVM {
		accel, cpu = "kvm", "host"
	}
	return []string{
		"-nodefaults", "-no-user-config", "-display", "none", "-vga", "none", "-no-reboot",
		"-accel", accel, "-M", "pc", "-cpu", cpu,
		"-smp", strconv.Itoa(c.CPUs), "-m", strconv.Itoa(c.MemoryMB),
		"-kernel", c.Kernel, "-initrd", c.Initrd, "-append", c.Cmdline,
		"-chardev", "file,id=com1,path=" + optValue(c.Console), "-serial", "chardev:com1",
		"-chardev", "file,id=com2,path=" + optValue(c.COM2), "-serial", "chardev:com2",
		"-object", fmt.Sprintf("memory-backend-file,id=ktstr,mem-path=%s,share=on,size=%d", optValue(c.Region), c.RegionSize),
		"-device", "ivshmem-plain,memdev=ktstr",
	}
}

// optValue escapes s for a value in a QEMU option list
// ("key=value,key=value"), where a comma is written twice. The values of
// -kernel, -initrd and -append are taken whole and need no escaping.
func optValue(s string) string { return strings.ReplaceAll(s, ",", ",,") }

// VM is a running QEMU.
type VM struct {
	cmd  *exec.Cmd
	done chan struct{}
	err  error
}

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
	cmd := exec.Command(path, c.Args()...)
	cmd.Stdin = nil
	cmd.Stdout = c.Stderr // QEMU prints nothing on stdout in this mode; keep ours clean
	cmd.Stderr = c.Stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("qemu: start: %w", err)
	}
	vm := &VM{cmd: cmd, done: make(chan struct{})}
	go func() {
		vm.err = cmd.Wait()
		close(vm.done)
	}()
	return vm, nil
}

// Done is closed when QEMU has exited.
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
