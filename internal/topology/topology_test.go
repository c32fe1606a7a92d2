package topology

import (
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestParse(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want Topology
		cpus int
	}{
		{"1,2,4,2", Topology{Nodes: 1, LLCs: 2, Cores: 4, Threads: 2}, 16},
		{" 2, 4, 4, 1 ", Topology{Nodes: 2, LLCs: 4, Cores: 4, Threads: 1}, 16},
		{"1,1,1,1", Topology{Nodes: 1, LLCs: 1, Cores: 1, Threads: 1}, 1},
		{"smt-2llc", Topology{Nodes: 1, LLCs: 2, Cores: 2, Threads: 2}, 8},
		{"max-cpu", Topology{Nodes: 1, LLCs: 14, Cores: 9, Threads: 2}, 252},
		{"numa4-12llc", Topology{Nodes: 4, LLCs: 12, Cores: 8, Threads: 2}, 192},
	} {
		got, err := Parse(tc.in)
		if err != nil {
			t.Errorf("Parse(%q): %v", tc.in, err)
			continue
		}
		if d := cmp.Diff(tc.want, got); d != "" {
			t.Errorf("Parse(%q) (-want +got):\n%s", tc.in, d)
		}
		if got.CPUs() != tc.cpus {
			t.Errorf("Parse(%q).CPUs() = %d, want %d", tc.in, got.CPUs(), tc.cpus)
		}
	}
}

func TestParseRefuses(t *testing.T) {
	for _, tc := range []struct{ in, err string }{
		{"0,1,1,1", "NUMA nodes = 0"},
		{"1,0,1,1", "LLCs = 0"},
		{"1,1,-2,1", "cores per LLC = -2"},
		{"1,1,1,0", "threads per core = 0"},
		{"2,3,2,1", "do not split evenly over 2 NUMA nodes"},
		{"1,16,16,1", "256 vCPUs, at most 254"},
		{"1,1000000,1000000,1000000", "at most 254"},
		{"1,2,3", "want N,L,C,T"},
		{"1,2,3,x", "want N,L,C,T"},
		{"", "want N,L,C,T"},
		{"smt2llc", `unknown preset "smt2llc" (did you mean smt-2llc?`},
		{"numa2-4lc", "did you mean numa2-4llc?"},
		{"tiny", "did you mean tiny-1llc?"},
	} {
		_, err := Parse(tc.in)
		if err == nil || !strings.Contains(err.Error(), tc.err) {
			t.Errorf("Parse(%q) = %v, want an error with %q", tc.in, err, tc.err)
		}
	}
	if _, err := Parse("1,1,0,1"); !errors.Is(err, ErrInvalid) {
		t.Errorf("Parse(1,1,0,1) = %v, want ErrInvalid", err)
	}
}

// TestPresets pins ktstr's 24 x86-64 presets: names, vCPUs, LLCs, nodes.
func TestPresets(t *testing.T) {
	want := []struct {
		name             string
		cpus, llcs, node int
	}{
		{"tiny-1llc", 4, 1, 1}, {"tiny-2llc", 4, 2, 1}, {"odd-3llc", 9, 3, 1}, {"odd-5llc", 15, 5, 1},
		{"odd-7llc", 14, 7, 1}, {"smt-2llc", 8, 2, 1}, {"smt-3llc", 12, 3, 1}, {"medium-4llc", 32, 4, 1},
		{"medium-8llc", 64, 8, 1}, {"large-4llc", 128, 4, 1}, {"large-8llc", 128, 8, 1},
		{"near-max-llc", 240, 15, 1}, {"max-cpu", 252, 14, 1}, {"medium-4llc-nosmt", 32, 4, 1},
		{"medium-8llc-nosmt", 64, 8, 1}, {"large-4llc-nosmt", 128, 4, 1}, {"large-8llc-nosmt", 128, 8, 1},
		{"near-max-llc-nosmt", 240, 15, 1}, {"max-cpu-nosmt", 252, 14, 1}, {"numa2-4llc", 16, 4, 2},
		{"numa2-8llc", 128, 8, 2}, {"numa2-8llc-nosmt", 128, 8, 2}, {"numa4-8llc", 32, 8, 4},
		{"numa4-12llc", 192, 12, 4},
	}
	ps := Presets()
	if len(ps) != len(want) {
		t.Fatalf("%d presets, want %d", len(ps), len(want))
	}
	for i, w := range want {
		p := ps[i]
		if p.Name != w.name || p.Topology.CPUs() != w.cpus || p.Topology.LLCs != w.llcs || p.Topology.Nodes != w.node {
			t.Errorf("preset %d = %s %s (%d vCPUs), want %s with %d vCPUs, %d LLCs, %d nodes",
				i, p.Name, p.Topology, p.Topology.CPUs(), w.name, w.cpus, w.llcs, w.node)
		}
		if err := p.Topology.Validate(); err != nil {
			t.Errorf("preset %s: %v", p.Name, err)
		}
		if strings.HasSuffix(p.Name, "-nosmt") && p.Topology.Threads != 1 {
			t.Errorf("preset %s has %d threads per core", p.Name, p.Topology.Threads)
		}
		if !strings.HasPrefix(p.Description, itoa(p.Topology.CPUs())+" CPUs") {
			t.Errorf("preset %s: description %q does not say its %d CPUs", p.Name, p.Description, p.Topology.CPUs())
		}
		if mem, err := p.Topology.NodeMemory(p.MemoryMB); err != nil || len(mem) != p.Topology.Nodes {
			t.Errorf("preset %s: its %d MiB over %d nodes: %v, %v", p.Name, p.MemoryMB, p.Topology.Nodes, mem, err)
		}
	}
}

func itoa(n int) string { return strconv.Itoa(n) }

func TestLocAndGroups(t *testing.T) {
	tp := Topology{Nodes: 2, LLCs: 4, Cores: 3, Threads: 2} // 24 vCPUs, 6 per LLC, 12 per node
	for _, tc := range []struct {
		cpu  int
		want Loc
	}{
		{0, Loc{0, 0, 0, 0}}, {1, Loc{0, 0, 0, 1}}, {2, Loc{0, 0, 1, 0}}, {5, Loc{0, 0, 2, 1}},
		{6, Loc{0, 1, 0, 0}}, {11, Loc{0, 1, 2, 1}}, {12, Loc{1, 2, 0, 0}}, {23, Loc{1, 3, 2, 1}},
	} {
		if got := tp.Loc(tc.cpu); got != tc.want {
			t.Errorf("Loc(%d) = %+v, want %+v", tc.cpu, got, tc.want)
		}
	}
	if d := cmp.Diff([]int{12, 13, 14, 15, 16, 17}, tp.LLCCPUs(2)); d != "" {
		t.Errorf("LLCCPUs(2): %s", d)
	}
	if d := cmp.Diff([]int{12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23}, tp.NodeCPUs(1)); d != "" {
		t.Errorf("NodeCPUs(1): %s", d)
	}
	if d := cmp.Diff([]int{6, 7}, tp.CoreCPUs(3)); d != "" {
		t.Errorf("CoreCPUs(3): %s", d)
	}
}

func TestAPICIDs(t *testing.T) {
	for _, tc := range []struct {
		topo Topology
		want []uint32
	}{
		// 3 cores need 2 bits: ids skip 3 within each LLC.
		{Topology{Nodes: 1, LLCs: 2, Cores: 3, Threads: 1}, []uint32{0, 1, 2, 4, 5, 6}},
		// SMT: thread bit lowest.
		{Topology{Nodes: 1, LLCs: 2, Cores: 2, Threads: 2}, []uint32{0, 1, 2, 3, 4, 5, 6, 7}},
		{Topology{Nodes: 1, LLCs: 1, Cores: 1, Threads: 1}, []uint32{0}},
	} {
		var got []uint32
		for c := range tc.topo.CPUs() {
			got = append(got, tc.topo.APICID(c))
		}
		if d := cmp.Diff(tc.want, got); d != "" {
			t.Errorf("%s APIC ids (-want +got):\n%s", tc.topo, d)
		}
	}
	// max-cpu: 14 LLCs of 9 two-thread cores: 4 core bits, 1 thread bit,
	// so LLC 13's last CPU is 13<<5 | 8<<1 | 1 = 433, beyond 8 bits.
	p, _ := Preset("max-cpu")
	if got := p.Topology.MaxAPICID(); got != 433 {
		t.Errorf("max-cpu MaxAPICID = %d, want 433", got)
	}
	// Every CPU's id is distinct and decodes back to its place.
	for _, p := range Presets() {
		tp := p.Topology
		seen := map[uint32]bool{}
		for c := range tp.CPUs() {
			id := tp.APICID(c)
			if seen[id] {
				t.Fatalf("%s: APIC id %d twice", p.Name, id)
			}
			seen[id] = true
			l := tp.Loc(c)
			if int(id&(1<<tp.ThreadBits()-1)) != l.Thread || int(id>>tp.ThreadBits()&(1<<tp.CoreBits()-1)) != l.Core ||
				int(id>>(tp.ThreadBits()+tp.CoreBits())) != l.LLC {
				t.Fatalf("%s: CPU %d APIC id %#x does not decode to %+v", p.Name, c, id, l)
			}
		}
	}
}

func TestNodeMemory(t *testing.T) {
	tp := Topology{Nodes: 3, LLCs: 3, Cores: 1, Threads: 1}
	got, err := tp.NodeMemory(1000)
	if err != nil || !cmp.Equal(got, []int{334, 333, 333}) {
		t.Errorf("NodeMemory(1000) = %v, %v; want [334 333 333]", got, err)
	}
	if _, err := tp.NodeMemory(150); err == nil || !strings.Contains(err.Error(), "50 MiB per node, below the minimum of 64") {
		t.Errorf("NodeMemory(150) = %v, want the per-node minimum refused", err)
	}
	tp.NodeMemoryMB = []int{512, 128, 128}
	if got, err := tp.NodeMemory(768); err != nil || !cmp.Equal(got, []int{512, 128, 128}) {
		t.Errorf("NodeMemory(768) with per-node memory = %v, %v", got, err)
	}
	if _, err := tp.NodeMemory(1024); err == nil {
		t.Error("NodeMemory(1024) with per-node memory adding to 768: no error")
	}
	if m := (Topology{Nodes: 1, LLCs: 1, Cores: 2, Threads: 1}).DefaultMemoryMB(); m != DefaultMemoryMB {
		t.Errorf("DefaultMemoryMB for 2 vCPUs = %d, want %d", m, DefaultMemoryMB)
	}
	if m := (Topology{Nodes: 4, LLCs: 8, Cores: 8, Threads: 2}).DefaultMemoryMB(); m != 1024 {
		t.Errorf("DefaultMemoryMB for 128 vCPUs = %d, want 1024 (8 MiB each)", m)
	}
}

func TestDistances(t *testing.T) {
	d, err := ParseDistances("10,20;20,10", 2)
	if err != nil || !cmp.Equal(d, [][]int{{10, 20}, {20, 10}}) {
		t.Fatalf("ParseDistances = %v, %v", d, err)
	}
	d, err = ParseDistances("10,15,30, 15,10,25, 30,25,10", 3)
	if err != nil || d[0][2] != 30 || d[2][1] != 25 {
		t.Fatalf("ParseDistances flat = %v, %v", d, err)
	}
	tp := Topology{Nodes: 3, LLCs: 3, Cores: 1, Threads: 1, Distances: d}
	if tp.Distance(1, 2) != 25 || tp.Distance(2, 2) != 10 {
		t.Errorf("Distance = %d, %d; want 25, 10", tp.Distance(1, 2), tp.Distance(2, 2))
	}
	tp.Distances = nil
	if tp.Distance(0, 1) != 20 || tp.Distance(1, 1) != 10 {
		t.Errorf("default Distance = %d, %d; want 20, 10", tp.Distance(0, 1), tp.Distance(1, 1))
	}
	for _, tc := range []struct {
		in  string
		n   int
		err string
	}{
		{"10,20,20", 2, "3 distances for 2 nodes"},
		{"12,20;20,10", 2, "distance to itself is 10"},
		{"10,9;9,10", 2, "want 11 to 254"},
		{"10,255;255,10", 2, "want 11 to 254"},
		{"10,20;30,10", 2, "symmetric"},
		{"10,x;20,10", 2, "not a number"},
	} {
		if _, err := ParseDistances(tc.in, tc.n); err == nil || !strings.Contains(err.Error(), tc.err) {
			t.Errorf("ParseDistances(%q) = %v, want an error with %q", tc.in, err, tc.err)
		}
	}
}

// writeSysfs lays out the sysfs files Read looks at for o.
func writeSysfs(t *testing.T, o Observed, cacheLevel int) string {
	t.Helper()
	root := t.TempDir()
	sys := filepath.Join(root, "sys/devices/system")
	put := func(p, s string) {
		t.Helper()
		p = filepath.Join(sys, p)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(s+"\n"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	put("cpu/online", format(o.CPUs))
	for _, g := range o.LLCs {
		for _, c := range g {
			put(filepath.Join("cpu", "cpu"+itoa(c), "cache/index0/level"), "1")
			put(filepath.Join("cpu", "cpu"+itoa(c), "cache/index0/shared_cpu_list"), itoa(c))
			if cacheLevel > 0 {
				put(filepath.Join("cpu", "cpu"+itoa(c), "cache/index3/level"), itoa(cacheLevel))
				put(filepath.Join("cpu", "cpu"+itoa(c), "cache/index3/shared_cpu_list"), format(g))
			}
		}
	}
	for _, g := range o.Cores {
		for _, c := range g {
			put(filepath.Join("cpu", "cpu"+itoa(c), "topology/thread_siblings_list"), format(g))
		}
	}
	if o.NUMA {
		for _, n := range o.Nodes {
			d := filepath.Join("node", "node"+itoa(n.ID))
			put(filepath.Join(d, "cpulist"), format(n.CPUs))
			put(filepath.Join(d, "meminfo"), "Node "+itoa(n.ID)+" MemTotal:       "+itoa(n.MemoryMB*1024)+" kB\nNode "+itoa(n.ID)+" MemFree: 1 kB")
		}
	}
	return root
}

func format(cpus []int) string {
	var parts []string
	for _, c := range cpus {
		parts = append(parts, itoa(c))
	}
	return strings.Join(parts, ",")
}

func TestReadAndCheck(t *testing.T) {
	for _, p := range Presets() {
		tp := p.Topology
		if tp.CPUs() > 16 {
			continue
		}
		want := tp.Ideal(p.MemoryMB)
		got, err := Read(writeSysfs(t, want, 3))
		if err != nil {
			t.Fatalf("%s: Read: %v", p.Name, err)
		}
		if d := cmp.Diff(want, got); d != "" {
			t.Errorf("%s: Read (-want +got):\n%s", p.Name, d)
		}
		if err := got.Check(tp, p.MemoryMB); err != nil {
			t.Errorf("%s: Check of its own shape: %v", p.Name, err)
		}
		if s, ok := got.Shape(); !ok || s.String() != tp.String() {
			t.Errorf("%s: Shape = %s, %v; want %s", p.Name, s, ok, tp)
		}
	}
}

func TestCheckNamesTheDifference(t *testing.T) {
	smt := Topology{Nodes: 1, LLCs: 2, Cores: 2, Threads: 2}
	numa := Topology{Nodes: 2, LLCs: 2, Cores: 2, Threads: 1}
	oneLLC := Topology{Nodes: 1, LLCs: 1, Cores: 8, Threads: 1}
	noSMT := Topology{Nodes: 1, LLCs: 2, Cores: 4, Threads: 1}
	for _, tc := range []struct {
		name string
		got  Observed
		ask  Topology
		mem  int
		err  string
	}{
		{"fewer CPUs", Topology{Nodes: 1, LLCs: 1, Cores: 4, Threads: 1}.Ideal(512), smt, 512, "8 vCPUs), the guest has CPUs 0-3"},
		{"one LLC instead of two", oneLLC.Ideal(512), smt, 512, "want 2 LLC groups, the guest has 1 (0-7)"},
		{"no SMT", noSMT.Ideal(512), smt, 512, "want 4 core (SMT siblings) groups, the guest has 8"},
		{"no NUMA in the kernel", func() Observed {
			o := Topology{Nodes: 1, LLCs: 2, Cores: 2, Threads: 1}.Ideal(512)
			o.NUMA = false
			return o
		}(), numa, 512, "the kernel reports no NUMA nodes"},
		{"one node", func() Observed {
			o := Topology{Nodes: 1, LLCs: 2, Cores: 2, Threads: 1}.Ideal(512)
			o.NUMA = true
			return o
		}(), numa, 512, "want 2 NUMA node groups, the guest has 1"},
		{"node memory missing", func() Observed {
			o := numa.Ideal(512)
			o.Nodes[1].MemoryMB = 0
			return o
		}(), numa, 512, "256 MiB on node 1: the guest's node 1 has 0 MiB"},
	} {
		err := tc.got.Check(tc.ask, tc.mem)
		if err == nil || !strings.Contains(err.Error(), tc.err) {
			t.Errorf("%s: Check = %v, want an error with %q", tc.name, err, tc.err)
		}
	}
	// A kernel without cache information: each CPU is its own LLC group.
	o, err := Read(writeSysfs(t, oneLLC.Ideal(512), 0))
	if err != nil {
		t.Fatal(err)
	}
	if len(o.LLCs) != 1 && len(o.LLCs) != 8 {
		t.Errorf("LLCs without an index3 = %v", o.LLCs)
	}
}
