package topology

import (
	"errors"
	"fmt"
	"math/bits"
	"strconv"
	"strings"
)

// Bounds on a topology. MaxCPUs is ktstr's largest preset (max-cpu, 252
// vCPUs) rounded up to what one x86 machine's 8-bit APIC broadcast id
// leaves (0 to 254), and what the project kernel's NR_CPUS (256) holds.
const (
	MaxCPUs  = 254
	MaxNodes = 64 // SLIT holds up to 255; 64 is far beyond any preset
	// Distances are ACPI SLIT's: 10 is local; 11 to 254 are remote, 255
	// means unreachable and is refused.
	LocalDistance     = 10
	DefaultRemote     = 20
	maxDistance       = 254
	MinNodeMemoryMB   = 64 // Linux drops nodes of a few MiB; 64 MiB leaves room to run
	DefaultMemoryMB   = 512
	memoryPerCPUMB    = 8   // default memory grows with the vCPU count
	memoryPerNodeMB   = 256 // and with the node count
	maxMemoryMB       = 1 << 20
	maxTopologyString = 4096
)

// Topology is a machine shape in ktstr's order: NUMA nodes, LLCs in all,
// cores per LLC, threads per core. Nodes own equal, contiguous runs of
// LLCs; CPUs are numbered thread first, then core, then LLC, so CPU i is
// thread i%T of core (i/T)%C of LLC i/(C*T), on node LLC/(L/N).
//
// MemoryMB and Distances are optional: memory is split evenly over the
// nodes and distances are 10 local, 20 remote, unless given.
type Topology struct {
	Nodes   int `json:"nodes"`
	LLCs    int `json:"llcs"`
	Cores   int `json:"cores"`   // per LLC
	Threads int `json:"threads"` // per core
	// NodeMemoryMB is the memory of each node in MiB (len Nodes), or nil
	// for an even split of the VM's memory.
	NodeMemoryMB []int `json:"node_memory_mb,omitempty"`
	// Distances is the Nodes×Nodes SLIT matrix, or nil for 10/20.
	Distances [][]int `json:"distances,omitempty"`
}

// Errors.
var (
	ErrSyntax  = errors.New("topology: want N,L,C,T (NUMA nodes, LLCs in all, cores per LLC, threads per core) or a preset name")
	ErrInvalid = errors.New("topology: invalid")
)

// New returns the uniform topology N,L,C,T, validated.
func New(nodes, llcs, cores, threads int) (Topology, error) {
	t := Topology{Nodes: nodes, LLCs: llcs, Cores: cores, Threads: threads}
	return t, t.Validate()
}

// CPUs returns the topology's vCPU count (0 for an invalid shape that
// would overflow).
func (t Topology) CPUs() int {
	if t.LLCs <= 0 || t.Cores <= 0 || t.Threads <= 0 {
		return 0
	}
	hi, n := bits.Mul64(uint64(t.LLCs), uint64(t.Cores))
	if hi != 0 || n > 1<<20 {
		return 0
	}
	hi, n = bits.Mul64(n, uint64(t.Threads))
	if hi != 0 || n > 1<<20 {
		return 0
	}
	return int(n)
}

// String is the shape as --topology takes it: "N,L,C,T".
func (t Topology) String() string {
	return fmt.Sprintf("%d,%d,%d,%d", t.Nodes, t.LLCs, t.Cores, t.Threads)
}

// Validate checks every part of t. Errors wrap ErrInvalid.
func (t Topology) Validate() error {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w: %s", ErrInvalid, fmt.Sprintf(format, args...))
	}
	for _, p := range []struct {
		name string
		v    int
	}{{"NUMA nodes", t.Nodes}, {"LLCs", t.LLCs}, {"cores per LLC", t.Cores}, {"threads per core", t.Threads}} {
		if p.v < 1 {
			return bad("%s = %d, want at least 1", p.name, p.v)
		}
	}
	if t.Nodes > MaxNodes {
		return bad("%d NUMA nodes, at most %d", t.Nodes, MaxNodes)
	}
	if t.LLCs%t.Nodes != 0 {
		return bad("%d LLCs do not split evenly over %d NUMA nodes (LLCs counts them all, not per node)", t.LLCs, t.Nodes)
	}
	if n := t.CPUs(); n == 0 || n > MaxCPUs {
		return bad("%s is %d vCPUs, at most %d", t, int64(t.LLCs)*int64(t.Cores)*int64(t.Threads), MaxCPUs)
	}
	if t.NodeMemoryMB != nil {
		if len(t.NodeMemoryMB) != t.Nodes {
			return bad("memory given for %d nodes, the topology has %d", len(t.NodeMemoryMB), t.Nodes)
		}
		for i, m := range t.NodeMemoryMB {
			if m < MinNodeMemoryMB || m > maxMemoryMB {
				return bad("node %d memory %d MiB: want %d to %d", i, m, MinNodeMemoryMB, maxMemoryMB)
			}
		}
	}
	if t.Distances != nil {
		if err := validDistances(t.Distances, t.Nodes); err != nil {
			return bad("%v", err)
		}
	}
	return nil
}

func validDistances(d [][]int, n int) error {
	if len(d) != n {
		return fmt.Errorf("distance matrix has %d rows, want %d (one per node)", len(d), n)
	}
	for i, row := range d {
		if len(row) != n {
			return fmt.Errorf("distance row %d has %d entries, want %d", i, len(row), n)
		}
		for j, v := range row {
			switch {
			case i == j && v != LocalDistance:
				return fmt.Errorf("distance[%d][%d] = %d: a node's distance to itself is %d", i, j, v, LocalDistance)
			case i != j && (v <= LocalDistance || v > maxDistance):
				return fmt.Errorf("distance[%d][%d] = %d: want %d to %d", i, j, v, LocalDistance+1, maxDistance)
			case d[j][i] != v:
				return fmt.Errorf("distance[%d][%d] = %d but distance[%d][%d] = %d: the matrix must be symmetric", i, j, v, j, i, d[j][i])
			}
		}
	}
	return nil
}

// Parse reads "N,L,C,T" or a preset name (see Presets). An unknown name
// gets the closest preset name suggested.
func Parse(s string) (Topology, error) {
	s = strings.TrimSpace(s)
	if len(s) > maxTopologyString {
		return Topology{}, ErrSyntax
	}
	if p, ok := Preset(s); ok {
		return p.Topology, nil
	}
	parts := strings.Split(s, ",")
	if len(parts) != 4 {
		if len(parts) == 1 && s != "" && (s[0] < '0' || s[0] > '9') && s[0] != '-' {
			return Topology{}, fmt.Errorf("topology: unknown preset %q (did you mean %s? --list-topologies prints them all)", s, Closest(s))
		}
		return Topology{}, fmt.Errorf("%w, got %q", ErrSyntax, s)
	}
	var v [4]int
	for i, p := range parts {
		n, err := strconv.Atoi(strings.TrimSpace(p))
		if err != nil {
			return Topology{}, fmt.Errorf("%w, got %q", ErrSyntax, s)
		}
		v[i] = n
	}
	return New(v[0], v[1], v[2], v[3])
}

// ParseDistances reads a SLIT matrix for n nodes: rows separated by ';',
// entries by ',' ("10,20;20,10"), or all n*n entries row by row
// ("10,20,20,10").
func ParseDistances(s string, n int) ([][]int, error) {
	s = strings.TrimSpace(s)
	if len(s) > maxTopologyString {
		return nil, errors.New("topology: distance matrix too long")
	}
	var vals []int
	rows := 0
	for _, row := range strings.Split(s, ";") {
		rows++
		for _, f := range strings.Split(row, ",") {
			v, err := strconv.Atoi(strings.TrimSpace(f))
			if err != nil {
				return nil, fmt.Errorf("topology: distance %q is not a number", f)
			}
			vals = append(vals, v)
		}
	}
	if len(vals) != n*n {
		return nil, fmt.Errorf("topology: %d distances for %d nodes, want %d (an %d×%d matrix)", len(vals), n, n*n, n, n)
	}
	if rows != 1 && rows != n {
		return nil, fmt.Errorf("topology: %d distance rows for %d nodes", rows, n)
	}
	d := make([][]int, n)
	for i := range d {
		d[i] = vals[i*n : (i+1)*n : (i+1)*n]
	}
	if err := validDistances(d, n); err != nil {
		return nil, fmt.Errorf("topology: %v", err)
	}
	return d, nil
}

// ParseNodeMemory reads per-node memory in MiB ("256,256").
func ParseNodeMemory(s string, n int) ([]int, error) {
	f := strings.Split(strings.TrimSpace(s), ",")
	if len(f) != n {
		return nil, fmt.Errorf("topology: memory for %d nodes given, the topology has %d", len(f), n)
	}
	out := make([]int, n)
	for i, x := range f {
		v, err := strconv.Atoi(strings.TrimSpace(x))
		if err != nil || v < MinNodeMemoryMB || v > maxMemoryMB {
			return nil, fmt.Errorf("topology: node %d memory %q: want %d to %d MiB", i, x, MinNodeMemoryMB, maxMemoryMB)
		}
		out[i] = v
	}
	return out, nil
}

// Loc is where one CPU sits.
type Loc struct {
	Node, LLC, Core, Thread int
}

// Loc places CPU cpu (0 <= cpu < CPUs()).
func (t Topology) Loc(cpu int) Loc {
	l := Loc{Thread: cpu % t.Threads, Core: cpu / t.Threads % t.Cores, LLC: cpu / (t.Threads * t.Cores)}
	l.Node = l.LLC / (t.LLCs / t.Nodes)
	return l
}

// LLCCPUs returns the CPUs of LLC k.
func (t Topology) LLCCPUs(k int) []int {
	n := t.Cores * t.Threads
	return span(k*n, n)
}

// NodeCPUs returns the CPUs of node k.
func (t Topology) NodeCPUs(k int) []int {
	n := t.CPUs() / t.Nodes
	return span(k*n, n)
}

// CoreCPUs returns the CPUs of core c of the machine (cores numbered
// across LLCs): its SMT siblings.
func (t Topology) CoreCPUs(c int) []int { return span(c*t.Threads, t.Threads) }

func span(lo, n int) []int {
	out := make([]int, n)
	for i := range out {
		out[i] = lo + i
	}
	return out
}

// Distance is the SLIT distance from node i to node j.
func (t Topology) Distance(i, j int) int {
	if t.Distances != nil {
		return t.Distances[i][j]
	}
	if i == j {
		return LocalDistance
	}
	return DefaultRemote
}

// DefaultMemoryMB is the VM memory for t when the user gives none: 512
// MiB, more for many vCPUs or nodes.
func (t Topology) DefaultMemoryMB() int {
	if t.NodeMemoryMB != nil {
		s := 0
		for _, m := range t.NodeMemoryMB {
			s += m
		}
		return s
	}
	return max(DefaultMemoryMB, memoryPerCPUMB*t.CPUs(), memoryPerNodeMB*t.Nodes)
}

// NodeMemory splits totalMB over the nodes: NodeMemoryMB when given (it
// must add up to totalMB), else evenly, the first nodes taking the
// remainder's MiBs. Each node gets at least MinNodeMemoryMB.
func (t Topology) NodeMemory(totalMB int) ([]int, error) {
	if t.NodeMemoryMB != nil {
		s := 0
		for _, m := range t.NodeMemoryMB {
			s += m
		}
		if s != totalMB {
			return nil, fmt.Errorf("%w: node memory adds up to %d MiB, the VM has %d", ErrInvalid, s, totalMB)
		}
		return append([]int(nil), t.NodeMemoryMB...), nil
	}
	per, rem := totalMB/t.Nodes, totalMB%t.Nodes
	if per < MinNodeMemoryMB {
		return nil, fmt.Errorf("%w: %d MiB over %d NUMA nodes is %d MiB per node, below the minimum of %d", ErrInvalid, totalMB, t.Nodes, per, MinNodeMemoryMB)
	}
	out := make([]int, t.Nodes)
	for i := range out {
		out[i] = per
		if i < rem {
			out[i]++
		}
	}
	return out, nil
}

// APIC ids: the layout ktstr's VMM uses, thread bits lowest, then core
// bits, then the LLC number (one package holds every LLC; the cache
// leaves carve the LLCs).
//
//	apic id = llc << (coreBits+threadBits) | core << threadBits | thread
//
// with coreBits = ceil(log2(C)) and threadBits = ceil(log2(T)).

// ThreadBits is the width of the thread field of an APIC id.
func (t Topology) ThreadBits() uint { return bitsFor(t.Threads) }

// CoreBits is the width of the core field of an APIC id.
func (t Topology) CoreBits() uint { return bitsFor(t.Cores) }

// APICID is CPU cpu's APIC id.
func (t Topology) APICID(cpu int) uint32 {
	l := t.Loc(cpu)
	return uint32(l.LLC)<<(t.CoreBits()+t.ThreadBits()) | uint32(l.Core)<<t.ThreadBits() | uint32(l.Thread)
}

// MaxAPICID is the largest APIC id of t.
func (t Topology) MaxAPICID() uint32 { return t.APICID(t.CPUs() - 1) }

func bitsFor(n int) uint {
	if n <= 1 {
		return 0
	}
	return uint(bits.Len(uint(n - 1)))
}
