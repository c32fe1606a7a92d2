package gauntlet

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/ktstr-go/ktstr/internal/scenario"
	"github.com/ktstr-go/ktstr/internal/topology"
)

// Schema is the version of gauntlet.json and of the aggregate report.
const Schema = 1

// EEVDF is the scheduler axis's name for the kernel's own scheduler.
const EEVDF = "eevdf"

// Env is what planning needs from the host: where names point and what
// the host can run. Tests and the command fill it with the real things.
type Env struct {
	// CacheDir is ktstr's cache: kernel names project and debian are
	// CacheDir/kernel/bzImage and CacheDir/debian/vmlinuz, a scheduler
	// name is CacheDir/sched/current/NAME.
	CacheDir string
	// DefaultKernel is the kernel of an empty kernel axis.
	DefaultKernel func() (string, error)
	// LoadScenario loads a canned name or a file (scenario.Load with the
	// agent's work validator).
	LoadScenario func(arg string) (*scenario.Scenario, []byte, error)
	// CheckSchedExt says why a kernel cannot run a sched_ext scheduler
	// (nil: it can, or nobody can tell).
	CheckSchedExt func(kernel string) error
	// CheckTopology says why the backend cannot give a guest a shape.
	CheckTopology func(t topology.Topology) error
}

// Options are a plan's settings besides the axes.
type Options struct {
	Name  string // the gauntlet's name (default "gauntlet")
	VCPUs int    // the vCPU budget: the most vCPUs running at once (at least 1)
	Jobs  int    // runs at once, at most (at least 1)
	Shard Shard  // the slice of the matrix to run (zero: all of it)
}

// Shard is a slice of the matrix: shard Index of Count, 1-based.
type Shard struct {
	Index int `json:"index"`
	Count int `json:"count"`
}

// ParseShard reads "I/N", 1 <= I <= N.
func ParseShard(v string) (Shard, error) {
	a, b, ok := strings.Cut(v, "/")
	i, err1 := strconv.Atoi(a)
	n, err2 := strconv.Atoi(b)
	if !ok || err1 != nil || err2 != nil || n < 1 || n > maxCells || i < 1 || i > n {
		return Shard{}, fmt.Errorf("shard %q: want I/N with 1 <= I <= N <= %d", v, maxCells)
	}
	return Shard{i, n}, nil
}

func (s Shard) String() string { return fmt.Sprintf("%d/%d", s.Index, s.Count) }

// Has reports whether the k-th cell (0-based) of a sequence belongs to
// shard s: cells are dealt round-robin, so every shard gets a fair share
// and the shards of one N are disjoint and cover the sequence.
func (s Shard) Has(k int) bool { return k%s.Count == s.Index-1 }

// Kernel, Scheduler, Scenario and Topology are the resolved axis values.
type Kernel struct {
	Name   string `json:"name"`
	Path   string `json:"path"` // symbolic links resolved
	SHA256 string `json:"sha256"`
}

type Scheduler struct {
	Name    string   `json:"name"`
	Path    string   `json:"path,omitempty"` // "" for EEVDF
	SHA256  string   `json:"sha256,omitempty"`
	Options []string `json:"options,omitempty"`
}

type Scenario struct {
	Name   string `json:"name"`
	Arg    string `json:"arg"`            // what --scenario gets: the canned name or the file's absolute path
	File   bool   `json:"file,omitempty"` // a file, not a canned name
	SHA256 string `json:"sha256"`         // of its JSON
	JSON   []byte `json:"-"`
	parsed *scenario.Scenario
}

type Topology struct {
	Name  string `json:"name"`  // as given
	Shape string `json:"shape"` // N,L,C,T
	VCPUs int    `json:"vcpus"`
	t     topology.Topology
}

// Manifest is a planned gauntlet, gauntlet.json in its directory: the
// axes resolved, every cell of this shard with its runs or the reason it
// is skipped.
type Manifest struct {
	Schema int    `json:"schema"`
	Name   string `json:"name"`
	Shard  Shard  `json:"shard"`
	Repeat int    `json:"repeat"`
	VCPUs  int    `json:"vcpu_budget"`
	// Jobs is how many runs go at once: the --jobs asked for, lowered
	// so that the biggest cell times Jobs stays within the budget.
	Jobs int `json:"jobs"`
	// MatrixCells counts the cells of the whole matrix, every shard's.
	MatrixCells int         `json:"matrix_cells"`
	Kernels     []Kernel    `json:"kernels"`
	Schedulers  []Scheduler `json:"schedulers"`
	Topologies  []Topology  `json:"topologies"`
	Scenarios   []Scenario  `json:"scenarios"`
	Cells       []Cell      `json:"cells"`
}

// Cell is one combination of the axes.
type Cell struct {
	ID        string `json:"id"`
	Index     int    `json:"index"` // in the whole matrix
	Kernel    string `json:"kernel"`
	Scheduler string `json:"scheduler"`
	Topology  string `json:"topology"`
	Scenario  string `json:"scenario"`
	VCPUs     int    `json:"vcpus"`
	// Skip says why the cell does not run (the scenario's requires, the
	// vCPU budget, a kernel without sched_ext, a shape the backend
	// cannot give); "" when it runs.
	Skip string `json:"skip,omitempty"`
	// Runs are the run directories, relative to the gauntlet's.
	Runs []string `json:"runs,omitempty"`
}

// Plan expands spec into the cells of shard opt.Shard.
func Plan(spec Spec, env Env, opt Options) (*Manifest, error) {
	if opt.VCPUs < 1 || opt.Jobs < 1 {
		return nil, fmt.Errorf("%w: the vCPU budget and the jobs must be at least 1", ErrSpec)
	}
	if opt.Shard.Count == 0 {
		opt.Shard = Shard{1, 1}
	}
	m := &Manifest{Schema: Schema, Name: opt.Name, Shard: opt.Shard, Repeat: max(spec.Repeat, 1), VCPUs: opt.VCPUs}
	if m.Name == "" {
		m.Name = "gauntlet"
	}
	var err error
	if m.Kernels, err = resolveKernels(spec.Kernels, env); err != nil {
		return nil, err
	}
	if m.Schedulers, err = resolveSchedulers(spec.Schedulers, env); err != nil {
		return nil, err
	}
	if m.Topologies, err = resolveTopologies(spec.Topologies); err != nil {
		return nil, err
	}
	if m.Scenarios, err = resolveScenarios(spec.Scenarios, env); err != nil {
		return nil, err
	}
	total := len(m.Kernels) * len(m.Schedulers) * len(m.Topologies) * len(m.Scenarios)
	if total > maxCells || total*m.Repeat > maxCells*10 {
		return nil, fmt.Errorf("%w: %d cells × %d repeats is too many", ErrSpec, total, m.Repeat)
	}
	m.MatrixCells = total
	noSchedExt := map[string]string{}
	for _, k := range m.Kernels {
		if env.CheckSchedExt != nil {
			if err := env.CheckSchedExt(k.Path); err != nil {
				noSchedExt[k.Name] = err.Error()
			}
		}
	}
	ids := map[string]int{}
	var index, runnable, skipped int
	for _, k := range m.Kernels {
		for _, s := range m.Schedulers {
			for _, t := range m.Topologies {
				for _, sc := range m.Scenarios {
					c := Cell{Index: index, Kernel: k.Name, Scheduler: s.Name, Topology: t.Name, Scenario: sc.Name, VCPUs: t.VCPUs}
					index++
					c.ID = uniqueID(ids, cellID(c))
					c.Skip = skipReason(c, k, s, t, sc, env, opt, noSchedExt)
					// Runnable and skipped cells are dealt to the shards
					// separately, so that each shard gets its share of
					// the work.
					seq := &runnable
					if c.Skip != "" {
						seq = &skipped
					}
					in := opt.Shard.Has(*seq)
					*seq++
					if !in {
						continue
					}
					if c.Skip == "" {
						for r := 1; r <= m.Repeat; r++ {
							c.Runs = append(c.Runs, RunDir(c.ID, r))
						}
					}
					m.Cells = append(m.Cells, c)
				}
			}
		}
	}
	maxV := 0
	for _, c := range m.Cells {
		if c.Skip == "" {
			maxV = max(maxV, c.VCPUs)
		}
	}
	m.Jobs = opt.Jobs
	if maxV > 0 {
		m.Jobs = max(1, min(opt.Jobs, opt.VCPUs/maxV))
	}
	return m, nil
}

// RunDir is the directory of a cell's run (repeat r, 1-based), relative
// to the gauntlet's.
func RunDir(id string, r int) string {
	return fmt.Sprintf("runs/%s/r%d", id, r)
}

func skipReason(c Cell, k Kernel, s Scheduler, t Topology, sc Scenario, env Env, opt Options, noSchedExt map[string]string) string {
	if why := sc.parsed.Requires.Unmet(t.t.Ideal(0)); why != "" {
		return fmt.Sprintf("scenario %s on %s: %s", sc.Name, t.Name, why)
	}
	if t.VCPUs > opt.VCPUs {
		return fmt.Sprintf("topology %s has %d vCPUs, above the vCPU budget of %d (--vcpus)", t.Name, t.VCPUs, opt.VCPUs)
	}
	if env.CheckTopology != nil {
		if err := env.CheckTopology(t.t); err != nil {
			return fmt.Sprintf("topology %s: %v", t.Name, err)
		}
	}
	if s.Path != "" {
		if why := noSchedExt[k.Name]; why != "" {
			return fmt.Sprintf("kernel %s cannot run scheduler %s: %s", k.Name, s.Name, why)
		}
	}
	return ""
}

// cellID names a cell SCENARIO.TOPOLOGY.SCHEDULER.KERNEL, in the
// characters a file name and a shell word take as they are.
func cellID(c Cell) string {
	parts := []string{c.Scenario, c.Topology, c.Scheduler, c.Kernel}
	for i, p := range parts {
		parts[i] = safeName(p)
	}
	return strings.Join(parts, ".")
}

func safeName(s string) string {
	b := []byte(s)
	for i, c := range b {
		ok := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == ',' || c == '+'
		if !ok {
			b[i] = '_'
		}
	}
	if len(b) == 0 {
		return "_"
	}
	if len(b) > 64 {
		b = b[:64]
	}
	return string(b)
}

// uniqueID returns id, or id-N when it was taken (cell ids, and names
// two values of one axis share).
func uniqueID(seen map[string]int, id string) string {
	seen[id]++
	if n := seen[id]; n > 1 {
		return uniqueID(seen, fmt.Sprintf("%s-%d", id, n))
	}
	return id
}

func resolveKernels(specs []string, env Env) ([]Kernel, error) {
	if len(specs) == 0 {
		if env.DefaultKernel == nil {
			return nil, fmt.Errorf("%w: no kernel", ErrSpec)
		}
		p, err := env.DefaultKernel()
		if err != nil {
			return nil, err
		}
		name := filepath.Base(p)
		switch p {
		case filepath.Join(env.CacheDir, "kernel", "bzImage"):
			name = "project"
		case filepath.Join(env.CacheDir, "debian", "vmlinuz"):
			name = "debian"
		}
		specs = []string{name + "=" + p}
	}
	seen := map[string]int{}
	var out []Kernel
	for _, s := range specs {
		name, path, named := strings.Cut(s, "=")
		switch {
		case named:
		case s == "project":
			path = filepath.Join(env.CacheDir, "kernel", "bzImage")
		case s == "debian":
			path = filepath.Join(env.CacheDir, "debian", "vmlinuz")
		default:
			name, path = filepath.Base(s), s
		}
		if name == "" || path == "" {
			return nil, fmt.Errorf("%w: kernel %q: want project, debian, NAME=PATH or a path", ErrSpec, s)
		}
		real, sum, err := hashFile(path)
		if err != nil {
			hint := ""
			switch s {
			case "project":
				hint = " (make kernel builds it)"
			case "debian":
				hint = " (scripts/fetch-kernel fetches it)"
			}
			return nil, fmt.Errorf("%w: kernel %s: %v%s", ErrSpec, s, err, hint)
		}
		out = append(out, Kernel{Name: uniqueID(seen, name), Path: real, SHA256: sum})
	}
	return out, nil
}

func resolveSchedulers(specs []string, env Env) ([]Scheduler, error) {
	if len(specs) == 0 {
		specs = []string{EEVDF}
	}
	seen := map[string]int{}
	var out []Scheduler
	for _, v := range specs {
		e, err := ParseScheduler(v)
		if err != nil {
			return nil, err
		}
		name, path, named := strings.Cut(e.Spec, "=")
		switch {
		case named:
		case e.Spec == EEVDF:
			if len(e.Options) > 0 {
				return nil, fmt.Errorf("%w: scheduler %q: eevdf takes no options", ErrSpec, v)
			}
			out = append(out, Scheduler{Name: uniqueID(seen, EEVDF)})
			continue
		case strings.ContainsRune(e.Spec, '/'):
			name, path = filepath.Base(e.Spec), e.Spec
		default:
			path = filepath.Join(env.CacheDir, "sched", "current", e.Spec)
		}
		if name == "" || path == "" {
			return nil, fmt.Errorf("%w: scheduler %q: want eevdf, NAME=PATH, a path or a name", ErrSpec, v)
		}
		real, sum, err := hashFile(path)
		if err != nil {
			hint := ""
			if !named && !strings.ContainsRune(e.Spec, '/') {
				hint = " (make schedulers builds the kernel tree's; or give a path)"
			}
			return nil, fmt.Errorf("%w: scheduler %s: %v%s", ErrSpec, e.Spec, err, hint)
		}
		out = append(out, Scheduler{Name: uniqueID(seen, name), Path: real, SHA256: sum, Options: e.Options})
	}
	return out, nil
}

func resolveTopologies(specs []string) ([]Topology, error) {
	if len(specs) == 0 {
		specs = []string{"1,1,2,1"} // ktstr-boot's default, --cpus 2
	}
	seen := map[string]int{}
	var out []Topology
	for _, s := range specs {
		t, err := topology.Parse(s)
		if err != nil {
			return nil, fmt.Errorf("%w: %v", ErrSpec, err)
		}
		out = append(out, Topology{Name: uniqueID(seen, s), Shape: t.String(), VCPUs: t.CPUs(), t: t})
	}
	return out, nil
}

func resolveScenarios(specs []string, env Env) ([]Scenario, error) {
	if len(specs) == 0 {
		specs = []string{"steady"}
	}
	if env.LoadScenario == nil {
		return nil, errors.New("gauntlet: no scenario loader")
	}
	seen := map[string]int{}
	var out []Scenario
	for _, s := range specs {
		sc, b, err := env.LoadScenario(s)
		if err != nil {
			return nil, fmt.Errorf("%w: scenario %s: %v", ErrSpec, s, err)
		}
		v := Scenario{Name: s, Arg: s, JSON: b, parsed: sc}
		if strings.ContainsRune(s, '/') || strings.HasSuffix(s, ".json") {
			abs, err := filepath.Abs(s)
			if err != nil {
				return nil, err
			}
			v.Name, v.Arg, v.File = strings.TrimSuffix(filepath.Base(s), ".json"), abs, true
		}
		v.Name = uniqueID(seen, v.Name)
		h := sha256.Sum256(b)
		v.SHA256 = hex.EncodeToString(h[:])
		out = append(out, v)
	}
	return out, nil
}

// hashFile resolves path's symbolic links and hashes the regular file
// it names.
func hashFile(path string) (real, sum string, err error) {
	real, err = filepath.EvalSymlinks(path)
	if err != nil {
		return "", "", err
	}
	if real, err = filepath.Abs(real); err != nil {
		return "", "", err
	}
	f, err := os.Open(real)
	if err != nil {
		return "", "", err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return "", "", err
	}
	if !st.Mode().IsRegular() {
		return "", "", fmt.Errorf("%s is not a regular file", real)
	}
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", "", err
	}
	return real, hex.EncodeToString(h.Sum(nil)), nil
}
