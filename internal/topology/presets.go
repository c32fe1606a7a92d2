package topology

import "strings"

// Named is a preset machine shape.
type Named struct {
	Name        string
	Description string
	Topology    Topology
	// MemoryMB is the VM memory the preset runs with unless --memory
	// says otherwise (ktstr's preset memory).
	MemoryMB int
}

// presets are ktstr's x86-64 gauntlet presets, with its names, shapes
// and memory. The -nosmt variants keep the CPU count of their SMT twin
// (twice the cores, one thread each), as ktstr's do.
var presets = []Named{
	{"tiny-1llc", "4 CPUs, 1 LLC", Topology{Nodes: 1, LLCs: 1, Cores: 4, Threads: 1}, 2048},
	{"tiny-2llc", "4 CPUs, 2 LLCs", Topology{Nodes: 1, LLCs: 2, Cores: 2, Threads: 1}, 2048},
	{"odd-3llc", "9 CPUs, 3 LLCs (odd)", Topology{Nodes: 1, LLCs: 3, Cores: 3, Threads: 1}, 2048},
	{"odd-5llc", "15 CPUs, 5 LLCs (prime)", Topology{Nodes: 1, LLCs: 5, Cores: 3, Threads: 1}, 2048},
	{"odd-7llc", "14 CPUs, 7 LLCs (prime)", Topology{Nodes: 1, LLCs: 7, Cores: 2, Threads: 1}, 2048},
	{"smt-2llc", "8 CPUs, 2 LLCs with SMT", Topology{Nodes: 1, LLCs: 2, Cores: 2, Threads: 2}, 2048},
	{"smt-3llc", "12 CPUs, 3 LLCs with SMT", Topology{Nodes: 1, LLCs: 3, Cores: 2, Threads: 2}, 2048},
	{"medium-4llc", "32 CPUs, 4 LLCs", Topology{Nodes: 1, LLCs: 4, Cores: 4, Threads: 2}, 2048},
	{"medium-8llc", "64 CPUs, 8 LLCs", Topology{Nodes: 1, LLCs: 8, Cores: 4, Threads: 2}, 2048},
	{"large-4llc", "128 CPUs, 4 LLCs", Topology{Nodes: 1, LLCs: 4, Cores: 16, Threads: 2}, 2048},
	{"large-8llc", "128 CPUs, 8 LLCs", Topology{Nodes: 1, LLCs: 8, Cores: 8, Threads: 2}, 2048},
	{"near-max-llc", "240 CPUs, 15 LLCs (near max)", Topology{Nodes: 1, LLCs: 15, Cores: 8, Threads: 2}, 2048},
	{"max-cpu", "252 CPUs, 14 LLCs (near the KVM vCPU limit)", Topology{Nodes: 1, LLCs: 14, Cores: 9, Threads: 2}, 4096},
	{"medium-4llc-nosmt", "32 CPUs, 4 LLCs (no SMT)", Topology{Nodes: 1, LLCs: 4, Cores: 8, Threads: 1}, 2048},
	{"medium-8llc-nosmt", "64 CPUs, 8 LLCs (no SMT)", Topology{Nodes: 1, LLCs: 8, Cores: 8, Threads: 1}, 2048},
	{"large-4llc-nosmt", "128 CPUs, 4 LLCs (no SMT)", Topology{Nodes: 1, LLCs: 4, Cores: 32, Threads: 1}, 2048},
	{"large-8llc-nosmt", "128 CPUs, 8 LLCs (no SMT)", Topology{Nodes: 1, LLCs: 8, Cores: 16, Threads: 1}, 2048},
	{"near-max-llc-nosmt", "240 CPUs, 15 LLCs (no SMT)", Topology{Nodes: 1, LLCs: 15, Cores: 16, Threads: 1}, 2048},
	{"max-cpu-nosmt", "252 CPUs, 14 LLCs (no SMT, near the KVM vCPU limit)", Topology{Nodes: 1, LLCs: 14, Cores: 18, Threads: 1}, 4096},
	{"numa2-4llc", "16 CPUs, 2 NUMA nodes, 4 LLCs", Topology{Nodes: 2, LLCs: 4, Cores: 4, Threads: 1}, 2048},
	{"numa2-8llc", "128 CPUs, 2 NUMA nodes, 8 LLCs", Topology{Nodes: 2, LLCs: 8, Cores: 8, Threads: 2}, 2048},
	{"numa2-8llc-nosmt", "128 CPUs, 2 NUMA nodes, 8 LLCs (no SMT)", Topology{Nodes: 2, LLCs: 8, Cores: 16, Threads: 1}, 2048},
	{"numa4-8llc", "32 CPUs, 4 NUMA nodes, 8 LLCs", Topology{Nodes: 4, LLCs: 8, Cores: 4, Threads: 1}, 2048},
	{"numa4-12llc", "192 CPUs, 4 NUMA nodes, 12 LLCs", Topology{Nodes: 4, LLCs: 12, Cores: 8, Threads: 2}, 4096},
}

// Presets returns the named shapes, in ktstr's order.
func Presets() []Named { return append([]Named(nil), presets...) }

// Preset looks up a named shape.
func Preset(name string) (Named, bool) {
	for _, p := range presets {
		if p.Name == name {
			return p, true
		}
	}
	return Named{}, false
}

// Closest returns the preset name nearest to s by edit distance.
func Closest(s string) string {
	best, bestD := "", 1<<30
	for _, p := range presets {
		if d := editDistance(strings.ToLower(s), p.Name); d < bestD {
			best, bestD = p.Name, d
		}
	}
	return best
}

// editDistance is the Levenshtein distance between a and b (bytes).
func editDistance(a, b string) int {
	if len(a) > 64 {
		a = a[:64]
	}
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}
