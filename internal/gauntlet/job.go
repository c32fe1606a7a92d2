package gauntlet

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// ErrVerify is the error of a job whose kernel, scheduler or scenario
// file is not the one the gauntlet planned (another host, or a file
// changed since).
var ErrVerify = errors.New("gauntlet: not the planned file")

// Files in a gauntlet directory and in each run's directory.
const (
	ManifestFile = "gauntlet.json"
	JobsFile     = "jobs"          // the job files in the order they run, one a line
	JobFile      = "job.json"      // a run's job
	ScenarioFile = "scenario.json" // the scenario's JSON as planned
	ReproDir     = "repro"         // a failed run's self-contained re-run
	ReproScript  = "run"
)

// Job is one run of a cell, as job.json in its directory: everything
// the run needs, so that a host that has only this file (and the tools,
// kernel and scheduler at the same paths) can run it.
type Job struct {
	Gauntlet  string   `json:"gauntlet"`
	Cell      string   `json:"cell"`
	Repeat    int      `json:"repeat"`
	Dir       string   `json:"dir"` // relative to the gauntlet's directory
	Kernel    string   `json:"kernel"`
	Topology  string   `json:"topology"`
	Scenario  string   `json:"scenario"` // --scenario's value
	Scheduler string   `json:"scheduler,omitempty"`
	Options   []string `json:"options,omitempty"` // the scheduler's ktstr-boot options, {repeat} replaced
	Verify    []Check  `json:"verify"`
}

// Check is a file a job needs with the hash it was planned with.
type Check struct {
	What   string `json:"what"` // kernel, scheduler, scenario
	Path   string `json:"path"`
	SHA256 string `json:"sha256"`
}

// Args are the job's ktstr-boot options.
func (j Job) Args() []string {
	a := []string{"--kernel", j.Kernel, "--topology", j.Topology, "--scenario", j.Scenario}
	if j.Scheduler != "" {
		a = append(a, "--scheduler", j.Scheduler)
	}
	return append(a, j.Options...)
}

// Runs returns the manifest's runs, first repeats first: every cell runs
// once before any runs twice, so a gauntlet stopped early has covered
// the most cells.
func (m *Manifest) Runs() []Job {
	kern := byName(m.Kernels, func(k Kernel) string { return k.Name })
	sched := byName(m.Schedulers, func(s Scheduler) string { return s.Name })
	scen := byName(m.Scenarios, func(s Scenario) string { return s.Name })
	topo := byName(m.Topologies, func(t Topology) string { return t.Name })
	var jobs []Job
	for r := 1; r <= m.Repeat; r++ {
		for _, c := range m.Cells {
			if c.Skip != "" {
				continue
			}
			k, s, sc := kern[c.Kernel], sched[c.Scheduler], scen[c.Scenario]
			j := Job{Gauntlet: m.Name, Cell: c.ID, Repeat: r, Dir: RunDir(c.ID, r),
				Kernel: k.Path, Topology: topo[c.Topology].Name, Scenario: sc.Arg, Scheduler: s.Path,
				Verify: []Check{{"kernel", k.Path, k.SHA256}}}
			for _, o := range s.Options {
				j.Options = append(j.Options, strings.ReplaceAll(o, "{repeat}", strconv.Itoa(r)))
			}
			if s.Path != "" {
				j.Verify = append(j.Verify, Check{"scheduler", s.Path, s.SHA256})
			}
			if sc.File {
				j.Verify = append(j.Verify, Check{"scenario", sc.Arg, sc.SHA256})
			}
			jobs = append(jobs, j)
		}
	}
	return jobs
}

// byName indexes an axis's values by their names.
func byName[T any](xs []T, name func(T) string) map[string]T {
	m := make(map[string]T, len(xs))
	for _, x := range xs {
		m[name(x)] = x
	}
	return m
}

// Write makes the gauntlet's directory dir (which must not exist, or be
// empty): gauntlet.json, a directory per run with its job.json and
// scenario.json, and the jobs file listing the job files in order.
func (m *Manifest) Write(dir string) error {
	if ents, err := os.ReadDir(dir); err == nil && len(ents) > 0 {
		return fmt.Errorf("gauntlet: %s is not empty", dir)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	scen := map[string][]byte{}
	for _, s := range m.Scenarios {
		scen[s.Arg] = s.JSON
	}
	var list strings.Builder
	for _, j := range m.Runs() {
		d := filepath.Join(dir, j.Dir)
		if err := os.MkdirAll(d, 0o755); err != nil {
			return err
		}
		if err := writeJSON(filepath.Join(d, JobFile), j); err != nil {
			return err
		}
		if err := os.WriteFile(filepath.Join(d, ScenarioFile), scen[j.Scenario], 0o644); err != nil {
			return err
		}
		list.WriteString(filepath.Join(j.Dir, JobFile) + "\n")
	}
	if err := os.WriteFile(filepath.Join(dir, JobsFile), []byte(list.String()), 0o644); err != nil {
		return err
	}
	return writeJSON(filepath.Join(dir, ManifestFile), m)
}

func writeJSON(path string, v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(path, append(b, '\n'), 0o644)
}

// maxJobFile bounds a job.json and a gauntlet.json that are read back.
const (
	maxJobFile      = 1 << 20
	maxManifestFile = 64 << 20
)

// ReadJob reads a job.json.
func ReadJob(path string) (Job, error) {
	var j Job
	if err := readJSON(path, maxJobFile, &j); err != nil {
		return Job{}, err
	}
	if j.Dir == "" || j.Kernel == "" || j.Repeat < 1 {
		return Job{}, fmt.Errorf("gauntlet: %s: not a job", path)
	}
	return j, nil
}

// ReadManifest reads a gauntlet directory's gauntlet.json.
func ReadManifest(dir string) (*Manifest, error) {
	var m Manifest
	if err := readJSON(filepath.Join(dir, ManifestFile), maxManifestFile, &m); err != nil {
		return nil, err
	}
	if m.Schema != Schema {
		return nil, fmt.Errorf("gauntlet: %s: schema %d, want %d", filepath.Join(dir, ManifestFile), m.Schema, Schema)
	}
	for _, c := range m.Cells {
		for _, r := range c.Runs {
			// Run directories stay inside the gauntlet's.
			if !filepath.IsLocal(r) {
				return nil, fmt.Errorf("gauntlet: %s: run directory %q outside the gauntlet", filepath.Join(dir, ManifestFile), r)
			}
		}
	}
	return &m, nil
}

func readJSON(path string, limit int64, v any) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, limit+1))
	if err != nil {
		return err
	}
	if int64(len(b)) > limit {
		return fmt.Errorf("gauntlet: %s: larger than %d bytes", path, limit)
	}
	if err := json.Unmarshal(b, v); err != nil {
		return fmt.Errorf("gauntlet: %s: %v", path, err)
	}
	return nil
}

// Check checks that every file the job needs is the one planned.
func (j Job) Check() error {
	for _, c := range j.Verify {
		_, sum, err := hashFile(c.Path)
		if err != nil {
			return fmt.Errorf("%w: %s %s: %v", ErrVerify, c.What, c.Path, err)
		}
		if sum != c.SHA256 {
			return fmt.Errorf("%w: %s %s has SHA-256 %s, the gauntlet planned %s", ErrVerify, c.What, c.Path, sum, c.SHA256)
		}
	}
	return nil
}

// Command is the exact command that runs the job's cell again:
// ktstr-run (at ktstrRun) with the tools in bin.
func (j Job) Command(ktstrRun, bin string) string {
	return "KTSTR_BIN=" + Quote(bin) + " " + Quote(ktstrRun) + " " + QuoteArgs(j.Args())
}

// Quote returns s as one sh word: as it is when it holds only characters
// the shell takes literally, else in single quotes.
func Quote(s string) string {
	if s != "" && strings.Trim(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_./,:=+@%") == "" {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// QuoteArgs quotes each argument and joins them with spaces.
func QuoteArgs(args []string) string {
	q := make([]string, len(args))
	for i, a := range args {
		q[i] = Quote(a)
	}
	return strings.Join(q, " ")
}
