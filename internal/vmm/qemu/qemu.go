// Package qemu runs a guest under qemu-system-x86_64: the fallback backend
// of ktstr-boot where no hardware KVM exists (software emulation, TCG), or
// where the user asks for it. The shared region is an ivshmem-plain PCI
// device backed by the region file.
//
// Two machine types: microvm (pcie=on, acpi=on), the fastest to boot (no
// firmware PCI scan, no legacy devices beyond two UARTs), for one NUMA
// node; and pc, whose ACPI tables carry the SRAT and SLIT that NUMA needs
// (microvm builds neither). MachineFor picks. COM1 and COM2 go through pipes that
// this package reads into the caller's writers (QEMU opens its inherited
// ends as /proc/self/fd/3 and 4), so the caller decides what reaches the
// disk and QEMU never opens a path in the run directory.
//
// For looking into the guest (package introspect), its RAM can be memory
// the host maps too: one memfd per RAM backend (one per NUMA node), which
// QEMU opens as memory-backend-file,share=on through /proc/self/fd. A QMP
// client on an inherited socketpair stops and resumes the vCPUs and reads
// their registers. Neither needs a file anywhere.
package qemu

import (
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/ktstr-go/ktstr/internal/introspect"
	"github.com/ktstr-go/ktstr/internal/topology"
	"golang.org/x/sys/unix"
)

// Config describes one VM.
type Config struct {
	Binary  string // default "qemu-system-x86_64"
	KVM     bool   // use -accel kvm instead of TCG
	Kernel  string
	Initrd  string
	Cmdline string
	// Topology is the machine shape (the zero value: one vCPU). An LLC
	// is a QEMU socket: QEMU 7.2 gives each socket its own L3, while
	// dies= does not split it (measured). NUMA nodes get a RAM backend
	// each and the SLIT distances.
	Topology topology.Topology
	// Machine is QEMU's machine type (the zero value: MachineFor's pick).
	Machine    Machine
	MemoryMB   int
	Region     string    // region file
	RegionSize uint64    // guest-visible size (a power of two)
	Console    io.Writer // receives COM1's output (nil discards)
	COM2       io.Writer // receives COM2's output (nil discards)
	// COM2Stdio makes COM2 QEMU's standard input and output, this
	// process's own (a terminal: QEMU sets it raw and back), for an
	// interactive guest (ktstr-boot --shell); COM2 then gets nothing. Its
	// escape is QEMU's mux: Ctrl-A x ends the VM.
	COM2Stdio bool
	Stderr    *os.File
	// Introspect backs the guest's RAM with memfds this package maps
	// (WithRAM) and drives QEMU over QMP (Freeze, Thaw, Registers).
	Introspect bool
}

// The descriptors QEMU inherits: the serial ports' pipes, the QMP socket
// and, from fdRAM on, one memfd per RAM backend.
const (
	fdCOM1 = 3
	fdCOM2 = 4
	fdQMP  = 5
	fdRAM  = 6
)

// Machine is a QEMU machine type this backend drives.
type Machine string

const (
	MachinePC      Machine = "pc"
	MachineMicrovm Machine = "microvm"
)

// MachineFor is the machine type for topology t: microvm for one NUMA
// node, pc for more (microvm has no SRAT or SLIT, so its guest would see
// one node whatever -numa says; measured with QEMU 7.2).
func MachineFor(t topology.Topology) Machine {
	if t.Nodes > 1 {
		return MachinePC
	}
	return MachineMicrovm
}

// CheckMachine says whether m can give topology t its shape.
func CheckMachine(m Machine, t topology.Topology) error {
	switch m {
	case MachinePC:
		return nil
	case MachineMicrovm:
		if t.Nodes > 1 {
			return fmt.Errorf("machine microvm cannot give the guest %d NUMA nodes (QEMU builds no SRAT or SLIT for it): use --machine pc or auto", t.Nodes)
		}
		return nil
	}
	return fmt.Errorf("unknown machine %q (want pc or microvm)", string(m))
}

func (c Config) machine() Machine {
	if c.Machine == "" {
		return MachineFor(c.Topology)
	}
	return c.Machine
}

// QMPTimeout bounds QEMU's greeting on the QMP socket at start.
const QMPTimeout = 10 * time.Second

// com2 is COM2's -chardev: a pipe to this process, or QEMU's stdio.
func (c Config) com2() string {
	if c.COM2Stdio {
		return "stdio,id=com2,mux=on,signal=off"
	}
	return fmt.Sprintf("file,id=com2,path=/proc/self/fd/%d", fdCOM2)
}

// Args returns QEMU's command line for c (without the binary).
func (c Config) Args() []string {
	accel, cpu := "tcg,thread=multi", "max"
	if c.KVM {
		accel, cpu = "kvm", "host"
	}
	m := c.machine()
	machine := string(m)
	// COM2: -serial on pc; on microvm, which makes one ISA UART of its
	// own, a second one added as a device (the next index: I/O 0x2f8,
	// IRQ 3, in the DSDT as the pc machine's).
	com2Flag, com2Arg := "-serial", "chardev:com2"
	if m == MachineMicrovm {
		// pcie=on for the ivshmem device (a GPEX host bridge, config space
		// through ECAM: CONFIG_PCI_MMCONFIG), acpi=on for the MADT that
		// brings up the APs and for poweroff.
		machine += ",pcie=on,acpi=on"
		com2Flag, com2Arg = "-device", "isa-serial,chardev=com2"
	}
	if c.Introspect && c.nodes() == 1 {
		machine += ",memory-backend=ram"
	}
	args := []string{
		"-nodefaults", "-no-user-config", "-display", "none", "-vga", "none", "-no-reboot",
		"-accel", accel, "-M", machine, "-cpu", cpu,
		// vCPU threads named "CPU N/TCG" or "CPU N/KVM", which ktstr-boot's
		// host-noise measurement looks for (internal/noise).
		"-name", "ktstr,debug-threads=on",
	}
	args = append(args, c.shape()...)
	if c.Introspect {
		args = append(args, "-chardev", fmt.Sprintf("socket,id=qmp,fd=%d", fdQMP), "-mon", "chardev=qmp,mode=control")
		if c.nodes() == 1 {
			args = append(args, "-object", fmt.Sprintf("memory-backend-file,id=ram,mem-path=/proc/self/fd/%d,share=on,size=%dM", fdRAM, c.MemoryMB))
		}
	}
	return append(args,
		"-kernel", c.Kernel, "-initrd", c.Initrd, "-append", c.Cmdline,
		"-chardev", fmt.Sprintf("file,id=com1,path=/proc/self/fd/%d", fdCOM1), "-serial", "chardev:com1",
		"-chardev", c.com2(), com2Flag, com2Arg,
		"-object", fmt.Sprintf("memory-backend-file,id=ktstr,mem-path=%s,share=on,size=%d", optValue(c.Region), c.RegionSize),
		"-device", "ivshmem-plain,memdev=ktstr",
	)
}

// MaxAPICID is the largest APIC id this backend gives a guest: QEMU's pc
// and microvm machines have no interrupt remapping, and without it Linux brings up no
// CPU whose APIC id needs x2APIC (above 254).
const MaxAPICID = 254

// CheckTopology says whether t fits this backend.
func CheckTopology(t topology.Topology) error {
	if err := t.Validate(); err != nil {
		return err
	}
	// QEMU's APIC id layout is topology's: thread, core, then socket bits.
	if id := t.MaxAPICID(); id > MaxAPICID {
		return fmt.Errorf("topology %s needs APIC ids up to %d; the QEMU backend brings up CPUs with ids up to %d (no interrupt remapping on its pc and microvm machines): fewer LLCs or cores per LLC, or the own VMM on hardware KVM", t, id, MaxAPICID)
	}
	return nil
}

// shape is -smp, -m and, for more than one node, -numa.
func (c Config) shape() []string {
	t := c.Topology
	if t.CPUs() == 0 {
		t = topology.Topology{Nodes: 1, LLCs: 1, Cores: 1, Threads: 1}
	}
	args := []string{
		"-smp", fmt.Sprintf("cpus=%d,sockets=%d,cores=%d,threads=%d", t.CPUs(), t.LLCs, t.Cores, t.Threads),
		"-m", strconv.Itoa(c.MemoryMB),
	}
	if t.Nodes == 1 {
		return args
	}
	mem, err := t.NodeMemory(c.MemoryMB)
	if err != nil {
		return args // Start refuses it first (CheckTopology, NodeMemory)
	}
	for n := range t.Nodes {
		cpus := t.NodeCPUs(n)
		backend := fmt.Sprintf("memory-backend-ram,id=node%d,size=%dM", n, mem[n])
		if c.Introspect {
			backend = fmt.Sprintf("memory-backend-file,id=node%d,mem-path=/proc/self/fd/%d,share=on,size=%dM", n, fdRAM+n, mem[n])
		}
		args = append(args,
			"-object", backend,
			"-numa", fmt.Sprintf("node,nodeid=%d,cpus=%d-%d,memdev=node%d", n, cpus[0], cpus[len(cpus)-1], n))
	}
	for i := range t.Nodes {
		for j := range t.Nodes {
			if i != j {
				args = append(args, "-numa", fmt.Sprintf("dist,src=%d,dst=%d,val=%d", i, j, t.Distance(i, j)))
			}
		}
	}
	return args
}

// nodes is the number of NUMA nodes, each with its own RAM backend.
func (c Config) nodes() int { return max(c.Topology.Nodes, 1) }

// ramSizes are the RAM backends' sizes in MiB, in node order: the order
// in which QEMU lays them out in guest-physical memory.
func (c Config) ramSizes() ([]int, error) {
	if c.nodes() == 1 {
		return []int{c.MemoryMB}, nil
	}
	return c.Topology.NodeMemory(c.MemoryMB)
}

// Layout is where machine m puts ram bytes of RAM: below 4 GiB (low)
// and from 4 GiB on (high). The backends' bytes, concatenated in node
// order, fill those two ranges in order.
//   - pc: all below 4 GiB when it is under 3.5 GiB, else the first 3 GiB
//     there and the rest from 4 GiB (gigabyte-aligned, pc-i440fx 1.7 and
//     later);
//   - microvm: up to 3 GiB below 4 GiB, the rest from 4 GiB (its 32-bit
//     PCIe MMIO window and ECAM take 3 GiB to 4 GiB; measured from the
//     guest's E820 map with 3.25 and 4 GiB).
func Layout(m Machine, ram uint64) (low, high uint64) {
	const split = 0xc0000000 // 3 GiB: the low part when RAM is split
	allLow := ram < 0xe0000000
	if m == MachineMicrovm {
		allLow = ram <= split
	}
	if allLow {
		return ram, 0
	}
	return split, ram - split
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

	qmp    *QMP
	qmpErr error // why qmp is nil when Introspect asked for it
	memMu  sync.RWMutex
	ram    [][]byte           // the RAM backends' mappings, nil once released
	ranges []introspect.Range // their bytes at their guest-physical addresses
}

// ErrReleased: QEMU has exited; the guest's memory is gone.
var ErrReleased = errors.New("qemu: the VM has ended; its memory is released")

// drainWait bounds how long Done waits, after QEMU exited, for the serial
// pipes to reach EOF (only a process that inherited their write ends
// could hold them open).
const drainWait = 2 * time.Second

// Start launches QEMU.
func Start(c Config) (*VM, error) {
	bin := c.Binary
	if bin == "" {
		bin = "qemu-system-x86_64"
	}
	if c.Topology.CPUs() != 0 {
		if err := CheckTopology(c.Topology); err != nil {
			return nil, fmt.Errorf("qemu: %w", err)
		}
		if _, err := c.Topology.NodeMemory(c.MemoryMB); err != nil {
			return nil, fmt.Errorf("qemu: %w", err)
		}
	}
	path, err := exec.LookPath(bin)
	if err != nil {
		return nil, fmt.Errorf("qemu: %s not found (install Debian's qemu-system-x86): %w", bin, err)
	}
	vm := &VM{done: make(chan struct{})}
	var inherit []*os.File // QEMU's fdQMP and fdRAM...; ours are closed after the start
	var qconn *os.File
	if c.Introspect {
		if inherit, qconn, err = vm.prepare(c); err != nil {
			return nil, err
		}
	}
	var rs, ws [2]*os.File
	for i := range rs {
		if rs[i], ws[i], err = os.Pipe(); err != nil {
			closeAll(rs[:i], ws[:i], inherit)
			vm.release()
			return nil, fmt.Errorf("qemu: %w", err)
		}
	}
	cmd := exec.Command(path, c.Args()...)
	cmd.Stdin = nil
	cmd.Stdout = c.Stderr // QEMU prints nothing on stdout in this mode; keep ours clean
	if c.COM2Stdio {
		cmd.Stdin, cmd.Stdout = os.Stdin, os.Stdout
	}
	cmd.Stderr = c.Stderr
	cmd.ExtraFiles = append(ws[:], inherit...) // fdCOM1, fdCOM2, fdQMP, fdRAM...
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	err = cmd.Start()
	closeAll(ws[:], inherit) // QEMU holds the write ends, its QMP end and the memfds now
	if err != nil {
		closeAll(rs[:])
		if qconn != nil {
			qconn.Close()
		}
		vm.release()
		return nil, fmt.Errorf("qemu: start: %w", err)
	}
	vm.cmd = cmd
	var copies sync.WaitGroup
	for i, w := range []io.Writer{c.Console, c.COM2} {
		if w == nil {
			w = io.Discard
		}
		copies.Add(1)
		go func() {
			defer copies.Done()
			io.Copy(w, rs[i])
		}()
	}
	if qconn != nil {
		// Before the waiter starts (it closes vm.qmp). A QEMU that does
		// not speak QMP still runs; looking into it answers why not.
		if vm.qmp, err = newQMP(qconn, QMPTimeout); err != nil {
			vm.qmpErr = err
		}
	}
	go func() {
		vm.err = cmd.Wait()
		copied := make(chan struct{})
		go func() { copies.Wait(); close(copied) }()
		select {
		case <-copied:
		case <-time.After(drainWait):
		}
		closeAll(rs[:]) // ends a copy still waiting
		<-copied
		// Done before the RAM is unmapped: freeing the guest's pages
		// takes milliseconds that the end of the run need not wait for,
		// and nothing can reach them once retire returns.
		ram := vm.retire()
		close(vm.done)
		unmap(ram)
	}()
	return vm, nil
}

// prepare creates and maps one memfd per RAM backend and the QMP
// socketpair; it returns the files QEMU inherits (its QMP end, then the
// memfds) and this side's QMP connection.
func (vm *VM) prepare(c Config) (inherit []*os.File, conn *os.File, err error) {
	sizes, err := c.ramSizes()
	if err != nil {
		return nil, nil, fmt.Errorf("qemu: %w", err)
	}
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, nil, fmt.Errorf("qemu: QMP socketpair: %w", err)
	}
	inherit = []*os.File{os.NewFile(uintptr(fds[1]), "qmp-qemu")}
	// Non-blocking, so the runtime's poller serves it and deadlines work.
	if err := unix.SetNonblock(fds[0], true); err != nil {
		unix.Close(fds[0])
		closeAll(inherit)
		return nil, nil, fmt.Errorf("qemu: QMP socket: %w", err)
	}
	conn = os.NewFile(uintptr(fds[0]), "qmp")
	var total uint64
	for i, mb := range sizes {
		f, m, err := memfd(fmt.Sprintf("ktstr-ram%d", i), uint64(mb)<<20)
		if err != nil {
			closeAll(inherit)
			conn.Close()
			vm.release()
			return nil, nil, err
		}
		inherit = append(inherit, f)
		vm.ram = append(vm.ram, m)
		total += uint64(len(m))
	}
	// The backends fill [0, low) and then [4 GiB, 4 GiB+high), in order.
	low, _ := Layout(c.machine(), total)
	var off uint64
	for _, m := range vm.ram {
		for len(m) > 0 {
			gpa, room := off, low-off
			if off >= low {
				gpa, room = 1<<32+off-low, uint64(len(m))
			}
			n := min(room, uint64(len(m)))
			vm.ranges = append(vm.ranges, introspect.Range{GPA: gpa, Mem: m[:n:n]})
			m, off = m[n:], off+n
		}
	}
	return inherit, conn, nil
}

// memfd creates an anonymous memory file of size bytes and maps it
// shared.
func memfd(name string, size uint64) (*os.File, []byte, error) {
	fd, err := unix.MemfdCreate(name, unix.MFD_CLOEXEC)
	if err != nil {
		return nil, nil, fmt.Errorf("qemu: memfd for guest RAM: %w", err)
	}
	f := os.NewFile(uintptr(fd), name)
	if err := f.Truncate(int64(size)); err != nil {
		f.Close()
		return nil, nil, fmt.Errorf("qemu: guest RAM of %d MiB: %w", size>>20, err)
	}
	m, err := unix.Mmap(fd, 0, int(size), unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED)
	if err != nil {
		f.Close()
		return nil, nil, fmt.Errorf("qemu: map guest RAM: %w", err)
	}
	return f, m, nil
}

// release unmaps the RAM once no WithRAM call holds it, and closes QMP.
func (vm *VM) release() { unmap(vm.retire()) }

// retire makes the guest's RAM unreachable (WithRAM answers ErrReleased
// from now on) and closes QMP; it returns the mappings, for unmap.
func (vm *VM) retire() [][]byte {
	vm.memMu.Lock()
	defer vm.memMu.Unlock()
	ram := vm.ram
	vm.ram, vm.ranges = nil, nil
	if vm.qmp != nil {
		vm.qmp.Close()
	}
	return ram
}

func unmap(ram [][]byte) {
	for _, m := range ram {
		unix.Munmap(m)
	}
}

// WithRAM calls fn with the guest's RAM, as guest-physical ranges, while
// it stays mapped. Without Introspect, or after QEMU exited, it returns an
// error without calling fn.
func (vm *VM) WithRAM(fn func([]introspect.Range) error) error {
	vm.memMu.RLock()
	defer vm.memMu.RUnlock()
	if vm.ranges == nil {
		return ErrReleased
	}
	return fn(vm.ranges)
}

// ErrNoQMP: the VM was started without Introspect.
var ErrNoQMP = errors.New("qemu: no QMP connection")

// noQMP says why there is no QMP connection.
func (vm *VM) noQMP() error {
	if vm.qmpErr != nil {
		return vm.qmpErr
	}
	return ErrNoQMP
}

// Freeze stops every vCPU ("stop", which returns once they have all
// paused) and returns their registers. Call Thaw afterwards, whatever
// Freeze returned.
func (vm *VM) Freeze(timeout time.Duration) ([]introspect.Regs, error) {
	if vm.qmp == nil {
		return nil, vm.noQMP()
	}
	if _, err := vm.qmp.Execute("stop", nil, timeout); err != nil {
		return nil, err
	}
	return vm.qmp.Registers(timeout)
}

// Thaw resumes the vCPUs ("cont").
func (vm *VM) Thaw(timeout time.Duration) error {
	if vm.qmp == nil {
		return vm.noQMP()
	}
	_, err := vm.qmp.Execute("cont", nil, timeout)
	return err
}

// Registers reads the vCPUs' registers without stopping the guest.
func (vm *VM) Registers(timeout time.Duration) ([]introspect.Regs, error) {
	if vm.qmp == nil {
		return nil, vm.noQMP()
	}
	return vm.qmp.Registers(timeout)
}

func closeAll(fs ...[]*os.File) {
	for _, l := range fs {
		for _, f := range l {
			f.Close()
		}
	}
}

// Done is closed when QEMU has exited and its serial output was copied.
func (vm *VM) Done() <-chan struct{} { return vm.done }

// Err is QEMU's exit error once Done is closed (nil for status 0).
func (vm *VM) Err() error { return vm.err }

// Pid is the QEMU process's id (for measuring its vCPU threads).
func (vm *VM) Pid() int { return vm.cmd.Process.Pid }

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
