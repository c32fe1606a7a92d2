package scenario

import (
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
)

// CpusetSpec is a parsed cpuset specification.
type CpusetSpec struct {
	Kind  string // "", "all", "list", "split", "overlap", "llc"
	List  []int  // for "list"
	Index int    // slice index or LLC index
	Of    int    // number of slices
}

// ParseCpuset parses a cpuset spec (see the package documentation).
func ParseCpuset(s string) (CpusetSpec, error) {
	s = strings.TrimSpace(s)
	switch {
	case s == "":
		return CpusetSpec{}, nil
	case s == "all":
		return CpusetSpec{Kind: "all"}, nil
	case strings.HasPrefix(s, "split:") || strings.HasPrefix(s, "overlap:"):
		kind, rest, _ := strings.Cut(s, ":")
		a, b, ok := strings.Cut(rest, "/")
		i, err1 := strconv.Atoi(a)
		n, err2 := strconv.Atoi(b)
		if !ok || err1 != nil || err2 != nil || n < 1 || n > 1024 || i < 0 || i >= n {
			return CpusetSpec{}, fmt.Errorf("%q: want %s:I/N with 0 <= I < N <= 1024", s, kind)
		}
		return CpusetSpec{Kind: kind, Index: i, Of: n}, nil
	case strings.HasPrefix(s, "llc:"):
		k, err := strconv.Atoi(s[4:])
		if err != nil || k < 0 || k > 4096 {
			return CpusetSpec{}, fmt.Errorf("%q: want llc:K with 0 <= K <= 4096", s)
		}
		return CpusetSpec{Kind: "llc", Index: k}, nil
	}
	l, err := ParseCPUList(s)
	if err != nil {
		return CpusetSpec{}, err
	}
	return CpusetSpec{Kind: "list", List: l}, nil
}

// MaxCPU bounds CPU numbers in lists.
const MaxCPU = 8191

// ParseCPUList parses the kernel's list format ("0-3,5,7-8") into sorted,
// distinct CPU numbers.
func ParseCPUList(s string) ([]int, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return nil, nil
	}
	parts := strings.Split(s, ",")
	if len(parts) > MaxCPU+1 {
		return nil, fmt.Errorf("cpu list: %d parts, more than CPUs can exist", len(parts))
	}
	seen := map[int]bool{}
	for _, part := range parts {
		a, b, isRange := strings.Cut(strings.TrimSpace(part), "-")
		lo, err := strconv.Atoi(a)
		if err != nil || lo < 0 || lo > MaxCPU {
			return nil, fmt.Errorf("cpu list %q: bad CPU %q", s, a)
		}
		hi := lo
		if isRange {
			hi, err = strconv.Atoi(b)
			if err != nil || hi < lo || hi > MaxCPU {
				return nil, fmt.Errorf("cpu list %q: bad range %q", s, part)
			}
		}
		for c := lo; c <= hi; c++ {
			seen[c] = true
		}
	}
	out := make([]int, 0, len(seen))
	for c := range seen {
		out = append(out, c)
	}
	sort.Ints(out)
	return out, nil
}

// FormatCPUList writes sorted CPUs in the kernel's list format.
func FormatCPUList(cpus []int) string {
	var b strings.Builder
	for i := 0; i < len(cpus); {
		j := i
		for j+1 < len(cpus) && cpus[j+1] == cpus[j]+1 {
			j++
		}
		if b.Len() > 0 {
			b.WriteByte(',')
		}
		if j == i {
			fmt.Fprintf(&b, "%d", cpus[i])
		} else {
			fmt.Fprintf(&b, "%d-%d", cpus[i], cpus[j])
		}
		i = j + 1
	}
	return b.String()
}

// Topology is what cpuset specs resolve against.
type Topology struct {
	CPUs []int   // online CPUs, sorted
	LLCs [][]int // CPUs per last-level cache, ordered by their first CPU
}

// ReadTopology reads the online CPUs and the LLC groups from sysfs
// (root is "/" normally). A CPU without cache information forms its own
// LLC group.
func ReadTopology(root string) (Topology, error) {
	b, err := os.ReadFile(filepath.Join(root, "sys/devices/system/cpu/online"))
	if err != nil {
		return Topology{}, err
	}
	cpus, err := ParseCPUList(string(b))
	if err != nil || len(cpus) == 0 {
		return Topology{}, fmt.Errorf("online CPUs %q: %v", strings.TrimSpace(string(b)), err)
	}
	t := Topology{CPUs: cpus}
	groups := map[string][]int{}
	var keys []string
	for _, c := range cpus {
		key := fmt.Sprintf("cpu%d", c)
		dir := filepath.Join(root, fmt.Sprintf("sys/devices/system/cpu/cpu%d/cache", c))
		ents, _ := filepath.Glob(filepath.Join(dir, "index*"))
		best := -1
		for _, e := range ents {
			lb, err := os.ReadFile(filepath.Join(e, "level"))
			if err != nil {
				continue
			}
			lvl, _ := strconv.Atoi(strings.TrimSpace(string(lb)))
			if lvl > best {
				if sb, err := os.ReadFile(filepath.Join(e, "shared_cpu_list")); err == nil {
					best, key = lvl, strings.TrimSpace(string(sb))
				}
			}
		}
		if _, ok := groups[key]; !ok {
			keys = append(keys, key)
		}
		groups[key] = append(groups[key], c)
	}
	for _, k := range keys {
		t.LLCs = append(t.LLCs, groups[k])
	}
	sort.Slice(t.LLCs, func(i, j int) bool { return t.LLCs[i][0] < t.LLCs[j][0] })
	return t, nil
}

// Resolve turns a spec into CPUs on topology t. An empty spec resolves
// to nil (no restriction). It is an error for a spec to name no online
// CPU, or CPUs that are not online.
func (c CpusetSpec) Resolve(t Topology) ([]int, error) {
	online := map[int]bool{}
	for _, x := range t.CPUs {
		online[x] = true
	}
	switch c.Kind {
	case "":
		return nil, nil
	case "all":
		return append([]int(nil), t.CPUs...), nil
	case "list":
		for _, x := range c.List {
			if !online[x] {
				return nil, fmt.Errorf("CPU %d is not online (online: %s)", x, FormatCPUList(t.CPUs))
			}
		}
		return append([]int(nil), c.List...), nil
	case "split", "overlap":
		n := len(t.CPUs)
		if c.Of > n {
			return nil, fmt.Errorf("%s:%d/%d needs at least %d CPUs, have %d", c.Kind, c.Index, c.Of, c.Of, n)
		}
		lo, hi := c.Index*n/c.Of, (c.Index+1)*n/c.Of
		if c.Kind == "overlap" && c.Of > 1 {
			if c.Index+1 < c.Of {
				hi++
			} else {
				lo--
			}
		}
		return append([]int(nil), t.CPUs[lo:hi]...), nil
	case "llc":
		if c.Index >= len(t.LLCs) {
			return nil, fmt.Errorf("llc:%d: this machine has %d LLC groups", c.Index, len(t.LLCs))
		}
		return append([]int(nil), t.LLCs[c.Index]...), nil
	}
	return nil, fmt.Errorf("unknown cpuset kind %q", c.Kind)
}
