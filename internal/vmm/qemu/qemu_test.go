package qemu

import (
	"bytes"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/ktstr-go/ktstr/internal/topology"
)

// TestArgsEscapeCommas: a run directory with a comma in its path must not
// split QEMU's option lists; every path inside one has its commas doubled.
func TestArgsEscapeCommas(t *testing.T) {
	c := Config{Kernel: "/r,d/k", Initrd: "/r,d/initramfs.cpio", Cmdline: "a,b", MemoryMB: 128,
		Region: "/r,d/region", RegionSize: 1 << 20}
	args := c.Args()
	for _, want := range []string{
		"memory-backend-file,id=ktstr,mem-path=/r,,d/region,share=on,size=1048576",
		"file,id=com1,path=/proc/self/fd/3", "file,id=com2,path=/proc/self/fd/4",
		"/r,d/k", "/r,d/initramfs.cpio", "a,b", // taken whole by QEMU
		"ktstr,debug-threads=on", // vCPU threads named for the host-noise measurement
	} {
		if !slices.Contains(args, want) {
			t.Errorf("Args() = %q, want it to contain %q", args, want)
		}
	}
}

// TestSerialPipes runs a stand-in for QEMU that writes to the serial
// ports' paths as QEMU does: everything reaches the writers, in order,
// before Done closes.
func TestSerialPipes(t *testing.T) {
	fake := filepath.Join(t.TempDir(), "fake-qemu")
	script := `#!/bin/sh
for a; do
	case $a in
	file,id=com1,path=*) con=${a#*path=} ;;
	file,id=com2,path=*) com2=${a#*path=} ;;
	esac
done
i=0
while [ $i -lt 2000 ]; do echo "console line $i"; i=$((i+1)); done > "$con"
echo "com2 line" > "$com2"
`
	if err := os.WriteFile(fake, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	var con, com2 bytes.Buffer
	vm, err := Start(Config{Binary: fake, Console: &con, COM2: &com2, Stderr: os.Stderr})
	if err != nil {
		t.Fatal(err)
	}
	<-vm.Done()
	if vm.Err() != nil {
		t.Fatalf("fake QEMU: %v", vm.Err())
	}
	lines := strings.Split(strings.TrimSuffix(con.String(), "\n"), "\n")
	if len(lines) != 2000 || lines[0] != "console line 0" || lines[1999] != "console line 1999" {
		t.Errorf("console: %d lines (%q ... %q), want 2000 in order", len(lines), lines[0], lines[len(lines)-1])
	}
	if com2.String() != "com2 line\n" {
		t.Errorf("com2 = %q", com2.String())
	}
}

func TestShapeArgs(t *testing.T) {
	for _, tc := range []struct {
		topo string
		mem  int
		want string
	}{
		{"1,1,2,1", 512, "-smp cpus=2,sockets=1,cores=2,threads=1 -m 512"},
		{"1,2,2,2", 512, "-smp cpus=8,sockets=2,cores=2,threads=2 -m 512"},
		{"2,2,2,1", 512, "-smp cpus=4,sockets=2,cores=2,threads=1 -m 512 " +
			"-object memory-backend-ram,id=node0,size=256M -numa node,nodeid=0,cpus=0-1,memdev=node0 " +
			"-object memory-backend-ram,id=node1,size=256M -numa node,nodeid=1,cpus=2-3,memdev=node1 " +
			"-numa dist,src=0,dst=1,val=20 -numa dist,src=1,dst=0,val=20"},
		{"2,4,1,1", 257, "-object memory-backend-ram,id=node0,size=129M -numa node,nodeid=0,cpus=0-1,memdev=node0 " +
			"-object memory-backend-ram,id=node1,size=128M -numa node,nodeid=1,cpus=2-3,memdev=node1"},
	} {
		tp, err := topology.Parse(tc.topo)
		if err != nil {
			t.Fatal(err)
		}
		got := strings.Join(Config{Topology: tp, MemoryMB: tc.mem}.Args(), " ")
		if !strings.Contains(got, tc.want) {
			t.Errorf("%s: Args = %s\nwant it to contain %s", tc.topo, got, tc.want)
		}
	}
	tp, _ := topology.Parse("3,3,1,1")
	tp.Distances = [][]int{{10, 15, 30}, {15, 10, 25}, {30, 25, 10}}
	got := strings.Join(Config{Topology: tp, MemoryMB: 768}.Args(), " ")
	for _, w := range []string{"dist,src=0,dst=2,val=30", "dist,src=2,dst=1,val=25", "dist,src=1,dst=0,val=15"} {
		if !strings.Contains(got, w) {
			t.Errorf("Args with distances = %s\nwant %s", got, w)
		}
	}
	if strings.Contains(got, "val=10") {
		t.Errorf("Args with distances gives a node's distance to itself: %s", got)
	}
}

// TestMachineArgs: one node boots on microvm with PCIe (for ivshmem) and
// COM2 as a second ISA UART; more nodes, or --machine pc, on pc with COM2
// as -serial; microvm refuses NUMA.
func TestMachineArgs(t *testing.T) {
	one, _ := topology.Parse("1,2,2,2")
	two, _ := topology.Parse("2,2,2,1")
	for _, c := range []struct {
		name      string
		c         Config
		want, not string
	}{
		{"one node", Config{Topology: one, MemoryMB: 512}, "-M microvm,pcie=on,acpi=on ", "-serial chardev:com2"},
		{"one node COM2", Config{Topology: one, MemoryMB: 512}, "-serial chardev:com1 -chardev file,id=com2,path=/proc/self/fd/4 -device isa-serial,chardev=com2", "-M pc"},
		{"two nodes", Config{Topology: two, MemoryMB: 512}, "-M pc ", "microvm"},
		{"two nodes COM2", Config{Topology: two, MemoryMB: 512}, "-serial chardev:com2", "isa-serial"},
		{"forced pc", Config{Topology: one, MemoryMB: 512, Machine: MachinePC}, "-M pc ", "microvm"},
	} {
		got := strings.Join(c.c.Args(), " ")
		if !strings.Contains(got, c.want) || strings.Contains(got, c.not) {
			t.Errorf("%s: Args = %s\nwant %q, not %q", c.name, got, c.want, c.not)
		}
	}
	if err := CheckMachine(MachineMicrovm, two); err == nil || !strings.Contains(err.Error(), "2 NUMA nodes") {
		t.Errorf("CheckMachine(microvm, 2 nodes) = %v", err)
	}
	if err := CheckMachine("q35", one); err == nil {
		t.Error("CheckMachine(q35) accepted")
	}
	for _, m := range []Machine{MachinePC, MachineMicrovm} {
		if err := CheckMachine(m, one); err != nil {
			t.Errorf("CheckMachine(%s, one node) = %v", m, err)
		}
	}
}

func TestCheckTopology(t *testing.T) {
	for _, name := range []string{"tiny-1llc", "smt-2llc", "odd-7llc", "near-max-llc", "numa4-12llc", "near-max-llc-nosmt"} {
		p, _ := topology.Preset(name)
		if err := CheckTopology(p.Topology); err != nil {
			t.Errorf("CheckTopology(%s): %v", name, err)
		}
	}
	for _, name := range []string{"max-cpu", "max-cpu-nosmt"} {
		p, _ := topology.Preset(name)
		err := CheckTopology(p.Topology)
		if err == nil || !strings.Contains(err.Error(), "needs APIC ids up to") {
			t.Errorf("CheckTopology(%s) = %v, want the APIC id limit named", name, err)
		}
	}
	if _, err := Start(Config{Binary: "/nonexistent", Topology: topology.Topology{Nodes: 2, LLCs: 2, Cores: 1, Threads: 1}, MemoryMB: 100}); err == nil || !strings.Contains(err.Error(), "below the minimum") {
		t.Errorf("Start with 50 MiB per node = %v, want the node memory refused before QEMU starts", err)
	}
}
