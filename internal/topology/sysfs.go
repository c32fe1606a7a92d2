package topology

import (
	"bufio"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/ktstr-go/ktstr/internal/cpulist"
)

// Observed is the machine shape a kernel reports in sysfs: what the guest
// really got, whatever was asked for.
type Observed struct {
	CPUs []int `json:"cpus"` // online CPUs, sorted
	// LLCs are the groups of CPUs sharing their highest-level cache
	// (cache/index*/shared_cpu_list), ordered by first CPU. A CPU without
	// cache information forms a group of its own.
	LLCs [][]int `json:"llcs"`
	// Cores are the SMT sibling groups (topology/thread_siblings_list),
	// ordered by first CPU.
	Cores [][]int `json:"cores"`
	// Nodes are the NUMA nodes with CPUs or memory; one node holding
	// every CPU when the kernel has no NUMA (no /sys/devices/system/node).
	Nodes []Node `json:"nodes"`
	// NUMA is false when the kernel reports no NUMA nodes at all.
	NUMA bool `json:"numa"`
}

// Node is one NUMA node as the kernel reports it.
type Node struct {
	ID       int   `json:"id"`
	CPUs     []int `json:"cpus"`
	MemoryMB int   `json:"memory_mb"` // MemTotal of the node
}

// Read reads the machine shape under root ("/" normally).
func Read(root string) (Observed, error) {
	sys := filepath.Join(root, "sys/devices/system")
	b, err := os.ReadFile(filepath.Join(sys, "cpu/online"))
	if err != nil {
		return Observed{}, err
	}
	cpus, err := cpulist.Parse(string(b))
	if err != nil || len(cpus) == 0 {
		return Observed{}, fmt.Errorf("online CPUs %q: %v", strings.TrimSpace(string(b)), err)
	}
	o := Observed{CPUs: cpus}
	o.LLCs = groupBy(cpus, func(c int) string { return llcKey(sys, c) })
	o.Cores = groupBy(cpus, func(c int) string {
		s, err := os.ReadFile(filepath.Join(sys, fmt.Sprintf("cpu/cpu%d/topology/thread_siblings_list", c)))
		if err != nil {
			return fmt.Sprintf("cpu%d", c)
		}
		return strings.TrimSpace(string(s))
	})
	nodes, _ := filepath.Glob(filepath.Join(sys, "node/node[0-9]*"))
	for _, d := range nodes {
		id, err := strconv.Atoi(strings.TrimPrefix(filepath.Base(d), "node"))
		if err != nil {
			continue
		}
		n := Node{ID: id}
		if s, err := os.ReadFile(filepath.Join(d, "cpulist")); err == nil {
			n.CPUs, _ = cpulist.Parse(string(s))
		}
		n.MemoryMB = nodeMemTotalMB(filepath.Join(d, "meminfo"))
		o.Nodes = append(o.Nodes, n)
	}
	o.NUMA = len(o.Nodes) > 0
	if !o.NUMA {
		o.Nodes = []Node{{ID: 0, CPUs: append([]int(nil), cpus...)}}
	}
	slices.SortFunc(o.Nodes, func(a, b Node) int { return a.ID - b.ID })
	return o, nil
}

// llcKey names CPU c's highest-level cache by its shared_cpu_list.
func llcKey(sys string, c int) string {
	key := fmt.Sprintf("cpu%d", c)
	ents, _ := filepath.Glob(filepath.Join(sys, fmt.Sprintf("cpu/cpu%d/cache/index[0-9]*", c)))
	best := -1
	for _, e := range ents {
		lb, err := os.ReadFile(filepath.Join(e, "level"))
		if err != nil {
			continue
		}
		lvl, _ := strconv.Atoi(strings.TrimSpace(string(lb)))
		if lvl > best {
			if sb, err := os.ReadFile(filepath.Join(e, "shared_cpu_list")); err == nil {
				best, key = lvl, "L"+strconv.Itoa(lvl)+":"+strings.TrimSpace(string(sb))
			}
		}
	}
	return key
}

// groupBy groups cpus by key, groups ordered by their first CPU.
func groupBy(cpus []int, key func(int) string) [][]int {
	idx := map[string]int{}
	var out [][]int
	for _, c := range cpus {
		k := key(c)
		i, ok := idx[k]
		if !ok {
			i = len(out)
			idx[k] = i
			out = append(out, nil)
		}
		out[i] = append(out[i], c)
	}
	slices.SortFunc(out, func(a, b []int) int { return a[0] - b[0] })
	return out
}

// nodeMemTotalMB reads "Node N MemTotal: X kB" from a node's meminfo.
func nodeMemTotalMB(path string) int {
	f, err := os.Open(path)
	if err != nil {
		return 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		// Node 0 MemTotal:       245420 kB
		if len(fields) >= 4 && fields[2] == "MemTotal:" {
			kb, _ := strconv.Atoi(fields[3])
			return kb / 1024
		}
	}
	return 0
}

// SMT reports whether any core has more than one thread.
func (o Observed) SMT() bool {
	for _, c := range o.Cores {
		if len(c) > 1 {
			return true
		}
	}
	return false
}

// Shape is the observed machine as N,L,C,T when it is uniform (every LLC
// the same size, every core the same number of threads, nodes holding
// equal whole LLCs), else ok is false.
func (o Observed) Shape() (t Topology, ok bool) {
	if len(o.LLCs) == 0 || len(o.Cores) == 0 {
		return Topology{}, false
	}
	threads := len(o.Cores[0])
	per := len(o.LLCs[0])
	for _, c := range o.Cores {
		if len(c) != threads {
			return Topology{}, false
		}
	}
	for _, l := range o.LLCs {
		if len(l) != per {
			return Topology{}, false
		}
	}
	if per%threads != 0 {
		return Topology{}, false
	}
	nodes := 0
	for _, n := range o.Nodes {
		if len(n.CPUs) > 0 {
			nodes++
		}
	}
	return Topology{Nodes: max(nodes, 1), LLCs: len(o.LLCs), Cores: per / threads, Threads: threads}, true
}

// Check compares what the kernel reports with the topology that was
// asked for: the CPUs, each LLC's CPUs, each core's SMT siblings and each
// node's CPUs must be exactly the topology's, and each node must have
// memory, at most what it was given. It returns nil when they agree, else
// an error naming the first difference.
func (o Observed) Check(t Topology, memoryMB int) error {
	want := span(0, t.CPUs())
	if !slices.Equal(o.CPUs, want) {
		return fmt.Errorf("asked for %s (%d vCPUs), the guest has CPUs %s", t, len(want), cpulist.Format(o.CPUs))
	}
	if err := sameGroups("LLC", o.LLCs, t.LLCs, t.LLCCPUs); err != nil {
		return fmt.Errorf("asked for %s: %v", t, err)
	}
	if err := sameGroups("core (SMT siblings)", o.Cores, t.LLCs*t.Cores, t.CoreCPUs); err != nil {
		return fmt.Errorf("asked for %s: %v", t, err)
	}
	if t.Nodes == 1 {
		return nil
	}
	if !o.NUMA {
		return fmt.Errorf("asked for %s: the kernel reports no NUMA nodes (no /sys/devices/system/node; CONFIG_NUMA?)", t)
	}
	var withCPUs [][]int
	for _, n := range o.Nodes {
		if len(n.CPUs) > 0 {
			withCPUs = append(withCPUs, n.CPUs)
		}
	}
	if err := sameGroups("NUMA node", withCPUs, t.Nodes, t.NodeCPUs); err != nil {
		return fmt.Errorf("asked for %s: %v", t, err)
	}
	mem, err := t.NodeMemory(memoryMB)
	if err != nil {
		return err
	}
	for i, n := range o.Nodes {
		if i >= len(mem) {
			return fmt.Errorf("asked for %s: the guest has node %d beyond the %d asked for", t, n.ID, t.Nodes)
		}
		if n.ID != i || n.MemoryMB <= 0 || n.MemoryMB > mem[i] {
			return fmt.Errorf("asked for %s with %d MiB on node %d: the guest's node %d has %d MiB", t, mem[i], i, n.ID, n.MemoryMB)
		}
	}
	return nil
}

func sameGroups(what string, got [][]int, n int, want func(int) []int) error {
	if len(got) != n {
		return fmt.Errorf("want %d %s groups, the guest has %d (%s)", n, what, len(got), formatGroups(got))
	}
	for i, g := range got {
		if w := want(i); !slices.Equal(g, w) {
			return fmt.Errorf("%s %d: want CPUs %s, the guest has %s", what, i, cpulist.Format(w), cpulist.Format(g))
		}
	}
	return nil
}

func formatGroups(gs [][]int) string {
	parts := make([]string, 0, min(len(gs), 9))
	for i, g := range gs {
		if i == 8 {
			parts = append(parts, fmt.Sprintf("and %d more", len(gs)-8))
			break
		}
		parts = append(parts, cpulist.Format(g))
	}
	return strings.Join(parts, " | ")
}

// Ideal is what a NUMA-aware kernel booted on t with memoryMB of RAM
// reports when it sees exactly t (node memory as given; a real kernel
// reports a little less).
func (t Topology) Ideal(memoryMB int) Observed {
	o := Observed{CPUs: span(0, t.CPUs()), NUMA: true}
	for k := range t.LLCs {
		o.LLCs = append(o.LLCs, t.LLCCPUs(k))
	}
	for c := range t.LLCs * t.Cores {
		o.Cores = append(o.Cores, t.CoreCPUs(c))
	}
	mem, err := t.NodeMemory(memoryMB)
	for k := range t.Nodes {
		n := Node{ID: k, CPUs: t.NodeCPUs(k)}
		if err == nil {
			n.MemoryMB = mem[k]
		}
		o.Nodes = append(o.Nodes, n)
	}
	return o
}

// Domains maps each CPU (the index, up to the highest online CPU) to its
// LLC group and NUMA node index; -1 for a CPU that is not online.
func (o Observed) Domains() (llc, node []int) {
	n := 0
	if len(o.CPUs) > 0 {
		n = o.CPUs[len(o.CPUs)-1] + 1
	}
	llc, node = make([]int, n), make([]int, n)
	for i := range llc {
		llc[i], node[i] = -1, -1
	}
	for k, g := range o.LLCs {
		for _, c := range g {
			llc[c] = k
		}
	}
	for _, nd := range o.Nodes {
		for _, c := range nd.CPUs {
			if c < n {
				node[c] = nd.ID
			}
		}
	}
	return llc, node
}
