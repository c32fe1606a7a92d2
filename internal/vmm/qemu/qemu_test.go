package qemu

import (
	"strings"
	"testing"

	"github.com/ktstr-go/ktstr/internal/topology"
)

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
