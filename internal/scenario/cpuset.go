package scenario

import (
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/ktstr-go/ktstr/internal/cpulist"
	"github.com/ktstr-go/ktstr/internal/topology"
)

// CpusetSpec is a parsed cpuset specification.
type CpusetSpec struct {
	Kind  string // "", "all", "list", "split", "overlap", "llc", "numa", "smt"
	List  []int  // for "list"
	Index int    // slice index, LLC, node or thread index
	Of    int    // number of slices
}

// CpusetKinds says what a cpuset spec may be, for error messages.
const CpusetKinds = `"" (no restriction), "all", a CPU list ("0-2,5"), split:I/N, overlap:I/N, llc:K, numa:K or smt:I`

// UnmarshalJSON decodes a cpuset spec from its string form, so a decoded
// scenario holds parsed specs and nothing parses them again at run time.
func (c *CpusetSpec) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return errf("%s: want a string: %s", short(b), CpusetKinds)
	}
	spec, err := ParseCpuset(s)
	if err != nil {
		return errf("%v (want %s)", err, CpusetKinds)
	}
	*c = spec
	return nil
}

// MarshalJSON encodes the spec in its string form.
func (c CpusetSpec) MarshalJSON() ([]byte, error) { return json.Marshal(c.String()) }

// IsZero reports whether the spec is empty (no restriction).
func (c CpusetSpec) IsZero() bool { return c.Kind == "" }

// String is the spec as a scenario file writes it.
func (c CpusetSpec) String() string {
	switch c.Kind {
	case "", "all":
		return c.Kind
	case "list":
		return cpulist.Format(c.List)
	case "split", "overlap":
		return fmt.Sprintf("%s:%d/%d", c.Kind, c.Index, c.Of)
	}
	return fmt.Sprintf("%s:%d", c.Kind, c.Index)
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
	case strings.HasPrefix(s, "llc:") || strings.HasPrefix(s, "numa:") || strings.HasPrefix(s, "smt:"):
		kind, rest, _ := strings.Cut(s, ":")
		k, err := strconv.Atoi(rest)
		if err != nil || k < 0 || k > 4096 {
			return CpusetSpec{}, fmt.Errorf("%q: want %s:K with 0 <= K <= 4096", s, kind)
		}
		return CpusetSpec{Kind: kind, Index: k}, nil
	}
	l, err := cpulist.Parse(s)
	if err != nil {
		return CpusetSpec{}, err
	}
	return CpusetSpec{Kind: "list", List: l}, nil
}

// Resolve turns a spec into CPUs on topology t. An empty spec resolves
// to nil (no restriction). It is an error for a spec to name no online
// CPU, or CPUs that are not online.
func (c CpusetSpec) Resolve(t topology.Observed) ([]int, error) {
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
				return nil, fmt.Errorf("CPU %d is not online (online: %s)", x, cpulist.Format(t.CPUs))
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
	case "numa":
		var cpus []int
		for _, n := range t.Nodes {
			if n.ID == c.Index {
				cpus = n.CPUs
			}
		}
		if len(cpus) == 0 {
			return nil, fmt.Errorf("numa:%d: this machine has no NUMA node %d with CPUs (%d nodes)", c.Index, c.Index, len(t.Nodes))
		}
		return append([]int(nil), cpus...), nil
	case "smt":
		var cpus []int
		for _, core := range t.Cores {
			if c.Index < len(core) {
				cpus = append(cpus, core[c.Index])
			}
		}
		if len(cpus) == 0 {
			return nil, fmt.Errorf("smt:%d: no core of this machine has a thread %d", c.Index, c.Index)
		}
		slices.Sort(cpus)
		return cpus, nil
	}
	return nil, fmt.Errorf("unknown cpuset kind %q", c.Kind)
}
