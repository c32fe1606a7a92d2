package gauntlet

import (
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ktstr-go/ktstr/internal/scenario"
	"github.com/ktstr-go/ktstr/internal/topology"
)

// testEnv is an Env over a temporary cache holding a "project" and a
// "debian" kernel (plain files: planning only hashes them) and a
// scheduler scx_a; debian has no sched_ext. Scenarios are the canned
// ones (validated without the agent's work types).
func testEnv(t *testing.T) Env {
	t.Helper()
	c := t.TempDir()
	for _, f := range []string{"kernel/bzImage", "debian/vmlinuz", "sched/current/scx_a", "sched/current/scx_b"} {
		p := filepath.Join(c, f)
		os.MkdirAll(filepath.Dir(p), 0o755)
		if err := os.WriteFile(p, []byte(f), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	return Env{
		CacheDir:      c,
		DefaultKernel: func() (string, error) { return filepath.Join(c, "kernel", "bzImage"), nil },
		LoadScenario:  func(a string) (*scenario.Scenario, []byte, error) { return scenario.Load(a) },
		CheckSchedExt: func(k string) error {
			if strings.Contains(k, "debian") {
				return errors.New("CONFIG_SCHED_CLASS_EXT is not set")
			}
			return nil
		},
		CheckTopology: func(tp topology.Topology) error {
			if tp.CPUs() > 64 {
				return errors.New("too many vCPUs for this backend")
			}
			return nil
		},
	}
}

func TestParseMatrix(t *testing.T) {
	m, err := ParseMatrix(strings.NewReader(`# a gauntlet
scenario steady cpuset-split   # two scenarios
scenario smt-siblings
topology 1,1,2,1 tiny-2llc
scheduler eevdf
scheduler qmap=/x/scx_qmap --sched-arg=-e --sched-arg={repeat}
kernel project debian
repeat 3
`))
	if err != nil {
		t.Fatal(err)
	}
	want := Spec{
		Scenarios:  []string{"steady", "cpuset-split", "smt-siblings"},
		Topologies: []string{"1,1,2,1", "tiny-2llc"},
		Schedulers: []string{"eevdf", "qmap=/x/scx_qmap --sched-arg=-e --sched-arg={repeat}"},
		Kernels:    []string{"project", "debian"},
		Repeat:     3,
	}
	if fmt.Sprint(m) != fmt.Sprint(want) {
		t.Errorf("ParseMatrix = %+v, want %+v", m, want)
	}
	for name, text := range map[string]string{
		"unknown key":   "scenarios steady\n",
		"no value":      "scenario\n",
		"bad repeat":    "repeat 0\n",
		"repeat twice":  "repeat 2\nrepeat 3\n",
		"repeat words":  "repeat 2 3\n",
		"too long line": "scenario " + strings.Repeat("x", 2<<20) + "\n",
	} {
		if _, err := ParseMatrix(strings.NewReader(text)); !errors.Is(err, ErrSpec) {
			t.Errorf("%s: ParseMatrix = %v, want ErrSpec", name, err)
		}
	}
}

func TestParseScheduler(t *testing.T) {
	for _, v := range []string{"eevdf", "scx_simple", "q=/p/scx_qmap --sched-arg=-e --verbose", "/p/x --include=/a:/b"} {
		if _, err := ParseScheduler(v); err != nil {
			t.Errorf("ParseScheduler(%q) = %v", v, err)
		}
	}
	for _, v := range []string{"", "--sched-arg=x", "scx -e", "scx --kernel=/k", "scx --topology=1,1,1,1", "scx --run-dir=/x", "scx -t=1"} {
		if _, err := ParseScheduler(v); !errors.Is(err, ErrSpec) {
			t.Errorf("ParseScheduler(%q) = %v, want ErrSpec", v, err)
		}
	}
}

// TestPlanConstraints expands a matrix whose cells do not all fit: each
// skip carries its reason, the rest get their runs, and the jobs respect
// the vCPU budget.
func TestPlanConstraints(t *testing.T) {
	env := testEnv(t)
	spec := Spec{
		Scenarios:  []string{"steady", "smt-siblings", "numa-local", "steady-llc"},
		Topologies: []string{"1,1,2,1", "1,1,1,2", "2,2,1,1", "1,2,2,2", "1,8,8,2"},
		Schedulers: []string{"eevdf", "scx_a"},
		Kernels:    []string{"project", "debian"},
		Repeat:     2,
	}
	m, err := Plan(spec, env, Options{VCPUs: 8, Jobs: 4})
	if err != nil {
		t.Fatal(err)
	}
	if m.MatrixCells != 4*5*2*2 || len(m.Cells) != m.MatrixCells {
		t.Fatalf("%d cells of %d, want 80 of 80", len(m.Cells), m.MatrixCells)
	}
	cell := func(sc, tp, sched, k string) Cell {
		for _, c := range m.Cells {
			if c.Scenario == sc && c.Topology == tp && c.Scheduler == sched && c.Kernel == k {
				return c
			}
		}
		t.Fatalf("no cell %s %s %s %s", sc, tp, sched, k)
		return Cell{}
	}
	tests := []struct {
		sc, tp, sched, k string
		skip             string // "" runs
	}{
		{"steady", "1,1,2,1", "eevdf", "project", ""},
		{"steady", "1,1,2,1", "eevdf", "debian", ""},
		{"steady", "1,1,2,1", "scx_a", "debian", "kernel debian cannot run scheduler scx_a: CONFIG_SCHED_CLASS_EXT is not set"},
		{"smt-siblings", "1,1,2,1", "eevdf", "project", "scenario smt-siblings on 1,1,2,1: needs SMT (cores with more than one thread), the machine has none"},
		{"smt-siblings", "1,1,1,2", "scx_a", "project", ""},
		{"numa-local", "1,1,2,1", "eevdf", "project", "scenario numa-local on 1,1,2,1: needs at least 2 NUMA nodes, the machine has 1"},
		{"numa-local", "2,2,1,1", "eevdf", "project", ""},
		{"steady-llc", "1,2,2,2", "scx_a", "project", ""},
		{"steady", "1,8,8,2", "eevdf", "project", "topology 1,8,8,2 has 128 vCPUs, above the vCPU budget of 8 (--vcpus)"},
	}
	for _, tc := range tests {
		c := cell(tc.sc, tc.tp, tc.sched, tc.k)
		if c.Skip != tc.skip {
			t.Errorf("%s: skip %q, want %q", c.ID, c.Skip, tc.skip)
		}
		if want := map[bool]int{true: 2, false: 0}[tc.skip == ""]; len(c.Runs) != want {
			t.Errorf("%s: %d runs, want %d", c.ID, len(c.Runs), want)
		}
	}
	if c := cell("steady", "1,2,2,2", "eevdf", "project"); c.ID != "steady.1,2,2,2.eevdf.project" || c.VCPUs != 8 || c.Runs[1] != "runs/steady.1,2,2,2.eevdf.project/r2" {
		t.Errorf("cell %+v", c)
	}
	// The biggest runnable cell has 8 vCPUs: one at a time in a budget of 8.
	if m.Jobs != 1 {
		t.Errorf("jobs %d, want 1 (8 vCPUs per cell, budget 8)", m.Jobs)
	}
	// The backend's limit: above 64 vCPUs with a budget that allows it.
	m2, err := Plan(Spec{Topologies: []string{"1,8,8,2"}}, env, Options{VCPUs: 1000, Jobs: 4})
	if err != nil {
		t.Fatal(err)
	}
	if c := m2.Cells[0]; c.Skip != "topology 1,8,8,2: too many vCPUs for this backend" {
		t.Errorf("skip %q", c.Skip)
	}
}

func TestPlanJobs(t *testing.T) {
	env := testEnv(t)
	spec := Spec{Topologies: []string{"1,1,2,1", "1,1,1,1"}}
	for _, tc := range []struct{ vcpus, jobs, want int }{{2, 4, 1}, {4, 4, 2}, {4, 1, 1}, {16, 4, 4}, {1, 4, 1}} {
		m, err := Plan(spec, env, Options{VCPUs: tc.vcpus, Jobs: tc.jobs})
		if err != nil {
			t.Fatal(err)
		}
		if m.Jobs != tc.want {
			t.Errorf("budget %d, --jobs %d: %d jobs, want %d", tc.vcpus, tc.jobs, m.Jobs, tc.want)
		}
	}
}

func TestPlanRejects(t *testing.T) {
	env := testEnv(t)
	for name, spec := range map[string]Spec{
		"unknown scenario":  {Scenarios: []string{"stedy"}},
		"bad topology":      {Topologies: []string{"1,2,3"}},
		"unknown preset":    {Topologies: []string{"tiny"}},
		"missing scheduler": {Schedulers: []string{"scx_nope"}},
		"missing kernel":    {Kernels: []string{"/nope/bzImage"}},
		"eevdf options":     {Schedulers: []string{"eevdf --sched-arg=x"}},
		"reserved option":   {Schedulers: []string{"scx_a --kernel=/k"}},
	} {
		if _, err := Plan(spec, env, Options{VCPUs: 2, Jobs: 1}); err == nil {
			t.Errorf("%s: Plan accepted %+v", name, spec)
		}
	}
}

// TestShards: for many N, the shards 1..N of a matrix are disjoint,
// their union is the whole matrix, and their sizes differ by at most
// one (runnable and skipped cells each).
func TestShards(t *testing.T) {
	env := testEnv(t)
	spec := Spec{
		Scenarios:  []string{"steady", "smt-siblings", "numa-local"},
		Topologies: []string{"1,1,2,1", "1,1,1,2", "2,2,1,1"},
		Schedulers: []string{"eevdf", "scx_a", "scx_b"},
		Kernels:    []string{"project", "debian"},
	}
	whole, err := Plan(spec, env, Options{VCPUs: 4, Jobs: 1})
	if err != nil {
		t.Fatal(err)
	}
	for n := 1; n <= 60; n++ {
		seen := map[string]int{}
		var runnable, skipped []int
		for i := 1; i <= n; i++ {
			m, err := Plan(spec, env, Options{VCPUs: 4, Jobs: 1, Shard: Shard{i, n}})
			if err != nil {
				t.Fatal(err)
			}
			if m.MatrixCells != whole.MatrixCells {
				t.Fatalf("shard %d/%d: matrix of %d cells, want %d", i, n, m.MatrixCells, whole.MatrixCells)
			}
			r, s := 0, 0
			for _, c := range m.Cells {
				seen[c.ID]++
				if c.Skip == "" {
					r++
				} else {
					s++
				}
			}
			runnable, skipped = append(runnable, r), append(skipped, s)
		}
		for _, c := range whole.Cells {
			if seen[c.ID] != 1 {
				t.Fatalf("N=%d: cell %s in %d shards, want 1", n, c.ID, seen[c.ID])
			}
		}
		if len(seen) != len(whole.Cells) {
			t.Fatalf("N=%d: %d cells in the shards, the matrix has %d", n, len(seen), len(whole.Cells))
		}
		for _, sizes := range [][]int{runnable, skipped} {
			lo, hi := sizes[0], sizes[0]
			for _, v := range sizes {
				lo, hi = min(lo, v), max(hi, v)
			}
			if hi-lo > 1 {
				t.Fatalf("N=%d: shard sizes %v differ by more than one", n, sizes)
			}
		}
	}
	// The same shard twice is the same cells.
	a, _ := Plan(spec, env, Options{VCPUs: 4, Jobs: 1, Shard: Shard{3, 7}})
	b, _ := Plan(spec, env, Options{VCPUs: 4, Jobs: 1, Shard: Shard{3, 7}})
	if fmt.Sprint(a.Cells) != fmt.Sprint(b.Cells) {
		t.Error("shard 3/7 differs between two plans")
	}
}

func TestParseShard(t *testing.T) {
	if s, err := ParseShard("2/5"); err != nil || s != (Shard{2, 5}) {
		t.Errorf("ParseShard(2/5) = %v, %v", s, err)
	}
	for _, v := range []string{"0/5", "6/5", "1/0", "a/b", "1", "1/2/3", "-1/2", "1/1000001"} {
		if _, err := ParseShard(v); err == nil {
			t.Errorf("ParseShard(%q) accepted", v)
		}
	}
}

// TestWilson pins the 95% Wilson interval against published values.
func TestWilson(t *testing.T) {
	tests := []struct {
		x, n   int
		lo, hi float64
	}{
		{0, 2, 0, 0.6576},
		{0, 20, 0, 0.1611},
		{1, 20, 0.0089, 0.2361},
		{1, 3, 0.0615, 0.7923},
		{3, 3, 0.4385, 1},
		{10, 20, 0.2993, 0.7007},
		{0, 0, 0, 1},
	}
	for _, tc := range tests {
		lo, hi := Wilson(tc.x, tc.n)
		if math.Abs(lo-tc.lo) > 5e-5 || math.Abs(hi-tc.hi) > 5e-5 {
			t.Errorf("Wilson(%d, %d) = [%.4f, %.4f], want [%.4f, %.4f]", tc.x, tc.n, lo, hi, tc.lo, tc.hi)
		}
	}
	// Monotone: more failures never lower either bound.
	for n := 1; n <= 50; n++ {
		plo, phi := -1.0, -1.0
		for x := 0; x <= n; x++ {
			lo, hi := Wilson(x, n)
			if lo < plo || hi < phi || lo < 0 || hi > 1 || lo > hi {
				t.Fatalf("Wilson(%d, %d) = [%v, %v] after [%v, %v]", x, n, lo, hi, plo, phi)
			}
			plo, phi = lo, hi
		}
	}
}

func TestQuote(t *testing.T) {
	for in, want := range map[string]string{
		"steady": "steady", "1,1,2,1": "1,1,2,1", "/a/b-c_d.e": "/a/b-c_d.e", "--sched-arg=-e": "--sched-arg=-e",
		"": "''", "a b": "'a b'", "it's": `'it'\''s'`, "$HOME": "'$HOME'", "a\nb": "'a\nb'",
	} {
		if got := Quote(in); got != want {
			t.Errorf("Quote(%q) = %s, want %s", in, got, want)
		}
	}
}
