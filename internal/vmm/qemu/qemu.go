// Package qemu runs a guest under qemu-system-x86_64: the fallback backend
// of ktstr-boot where no hardware KVM exists (software emulation, TCG), or
// where the user asks for it. The shared region is an ivshmem-plain PCI
// device backed by the region file. COM1 and COM2 go through pipes that
// this package reads into the caller's writers (QEMU opens its inherited
// ends as /proc/self/fd/3 and 4), so the caller decides what reaches the
// disk and QEMU never opens a path in the run directory.
package qemu

import (
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/ktstr-go/ktstr/internal/topology"
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
	Topology   topology.Topology
	MemoryMB   int
	Region     string    // region file
	RegionSize uint64    // guest-visible size (a power of two)
	Console    io.Writer // receives COM1's output (nil discards)
	COM2       io.Writer // receives COM2's output (nil discards)
	Stderr     *os.File
}

// The descriptors QEMU inherits for the serial ports' pipes.
const (
	fdCOM1 = 3
	fdCOM2 = 4
)

// Args returns QEMU's command line for c (without the binary).
func (c Config) Args() []string {
	accel, cpu := "tcg,thread=multi", "max"
	if c.KVM {
		accel, cpu = "kvm", "host"
	}
	args := []string{
		"-nodefaults", "-no-user-config", "-display", "none", "-vga", "none", "-no-reboot",
		"-accel", accel, "-M", "pc", "-cpu", cpu,
		// vCPU threads named "CPU N/TCG" or "CPU N/KVM", which ktstr-boot's
		// host-noise measurement looks for (internal/noise).
		"-name", "ktstr,debug-threads=on",
	}
	args = append(args, c.shape()...)
	return append(args,
		"-kernel", c.Kernel, "-initrd", c.Initrd, "-append", c.Cmdline,
		"-chardev", fmt.Sprintf("file,id=com1,path=/proc/self/fd/%d", fdCOM1), "-serial", "chardev:com1",
		"-chardev", fmt.Sprintf("file,id=com2,path=/proc/self/fd/%d", fdCOM2), "-serial", "chardev:com2",
		"-object", fmt.Sprintf("memory-backend-file,id=ktstr,mem-path=%s,share=on,size=%d", optValue(c.Region), c.RegionSize),
		"-device", "ivshmem-plain,memdev=ktstr",
	)
}

// MaxAPICID is the largest APIC id this backend gives a guest: QEMU's pc
// machine has no interrupt remapping, and without it Linux brings up no
// CPU whose APIC id needs x2APIC (above 254).
const MaxAPICID = 254

// CheckTopology says whether t fits this backend.
func CheckTopology(t topology.Topology) error {
	if err := t.Validate(); err != nil {
		return err
	}
	// QEMU's APIC id layout is topology's: thread, core, then socket bits.
	if id := t.MaxAPICID(); id > MaxAPICID {
		return fmt.Errorf("topology %s needs APIC ids up to %d; the QEMU backend brings up CPUs with ids up to %d (no interrupt remapping on -M pc): fewer LLCs or cores per LLC, or the own VMM on hardware KVM", t, id, MaxAPICID)
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
		args = append(args,
			"-object", fmt.Sprintf("memory-backend-ram,id=node%d,size=%dM", n, mem[n]),
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
	var rs, ws [2]*os.File
	for i := range rs {
		if rs[i], ws[i], err = os.Pipe(); err != nil {
			closeAll(rs[:i], ws[:i])
			return nil, fmt.Errorf("qemu: %w", err)
		}
	}
	cmd := exec.Command(path, c.Args()...)
	cmd.Stdin = nil
	cmd.Stdout = c.Stderr // QEMU prints nothing on stdout in this mode; keep ours clean
	cmd.Stderr = c.Stderr
	cmd.ExtraFiles = ws[:] // fdCOM1, fdCOM2
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	err = cmd.Start()
	closeAll(ws[:]) // QEMU holds the write ends now
	if err != nil {
		closeAll(rs[:])
		return nil, fmt.Errorf("qemu: start: %w", err)
	}
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
	vm := &VM{cmd: cmd, done: make(chan struct{})}
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
		close(vm.done)
	}()
	return vm, nil
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
