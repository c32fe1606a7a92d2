package gauntlet

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/ktstr-go/ktstr/internal/verdict"
)

// Files a run leaves in its directory (ktstr-run with KTSTR_SAVE, and
// the cell script).
const (
	FramesFile  = "frames"       // the raw frames, as ktstr-drain wrote them
	RecordsFile = "records"      // ktstr-dispatch's records
	NoiseFile   = "noise.json"   // ktstr-boot's host-noise measurement
	VerdictFile = "verdict.json" // the run's verdict (JSON); written last
	CommandFile = "command"      // the exact command that runs the cell again
	StderrFile  = "stderr.log"   // the tools' diagnostics
)

// Consoles are the console logs of a run, in the order ktstr-run gives
// them to ktstr-verdict.
var Consoles = []string{"console.log", "com2.log"}

// CauseNotRun is the cause of a planned run that has no verdict: the
// gauntlet was stopped before it ended.
const CauseNotRun = "not_run"

// Report is the aggregate of a gauntlet: every cell with its runs'
// verdicts, folded again from each run's recordings.
type Report struct {
	Schema      int            `json:"schema"`
	Name        string         `json:"name"`
	Status      verdict.Status `json:"status"`
	ExitStatus  int            `json:"exit_status"`
	Reason      string         `json:"reason"`
	Shard       Shard          `json:"shard"`
	MatrixCells int            `json:"matrix_cells"`
	Repeat      int            `json:"repeat"`
	Totals      Totals         `json:"totals"`
	Cells       []CellReport   `json:"cells"`
}

// Totals count cells and runs.
type Totals struct {
	Cells        int `json:"cells"`
	Skipped      int `json:"skipped_cells"`
	FailedCells  int `json:"failed_cells"` // cells with a run that did not pass
	Runs         int `json:"runs"`         // planned
	NotRun       int `json:"not_run"`
	Pass         int `json:"pass"`
	Skip         int `json:"skip"`
	Inconclusive int `json:"inconclusive"`
	Error        int `json:"error"`
	Fail         int `json:"fail"`
}

// CellReport is one cell: its axes, and its runs' outcome with the
// failure rate and its 95% Wilson interval.
type CellReport struct {
	ID        string         `json:"id"`
	Kernel    string         `json:"kernel"`
	Scheduler string         `json:"scheduler"`
	Topology  string         `json:"topology"`
	Scenario  string         `json:"scenario"`
	Status    verdict.Status `json:"status"` // the worst of its runs; SKIP for a skipped cell
	Skip      string         `json:"skip,omitempty"`
	Planned   int            `json:"planned"`
	Runs      int            `json:"runs"`     // runs that ended
	Failures  int            `json:"failures"` // runs that ended and did not pass (FAIL, ERROR, INCONCLUSIVE)
	Rate      float64        `json:"failure_rate"`
	Interval  [2]float64     `json:"failure_rate_95"` // Wilson score interval
	Results   []RunResult    `json:"results,omitempty"`
}

// RunResult is one run of a cell.
type RunResult struct {
	Repeat int            `json:"repeat"`
	Dir    string         `json:"dir"`
	Ran    bool           `json:"ran"` // false: the gauntlet stopped before it ended
	Status verdict.Status `json:"status,omitempty"`
	Cause  string         `json:"cause,omitempty"`
	Reason string         `json:"reason,omitempty"`
	// Repro is the run's self-contained re-run script, when it failed.
	Repro string `json:"repro,omitempty"`
	// Diagnostic is the last line the tools wrote on stderr (stderr.log)
	// in a run that did not pass: what refused it when it never booted.
	Diagnostic string          `json:"diagnostic,omitempty"`
	verdict    verdict.Verdict // the whole verdict, for the TAP and JUnit reports
}

// Load folds every run of the gauntlet in dir again from its
// recordings (records, consoles, host noise) with cfg, and aggregates
// them. A run without a verdict file did not end: it counts as not run.
func Load(dir string, cfg verdict.Config) (*Report, error) {
	m, err := ReadManifest(dir)
	if err != nil {
		return nil, err
	}
	rep := &Report{Schema: Schema, Name: m.Name, Shard: m.Shard, MatrixCells: m.MatrixCells, Repeat: m.Repeat}
	for _, c := range m.Cells {
		cr := CellReport{ID: c.ID, Kernel: c.Kernel, Scheduler: c.Scheduler, Topology: c.Topology, Scenario: c.Scenario,
			Skip: c.Skip, Planned: len(c.Runs)}
		for i, rd := range c.Runs {
			rr, err := foldRun(dir, c.ID, i+1, rd, cfg)
			if err != nil {
				return nil, err
			}
			cr.Results = append(cr.Results, rr)
		}
		rep.Cells = append(rep.Cells, cr)
	}
	rep.summarise()
	return rep, nil
}

// RunName is a run's name in the reports: CELL/rK.
func RunName(cell string, repeat int) string { return fmt.Sprintf("%s/r%d", cell, repeat) }

func foldRun(dir, cell string, repeat int, rd string, cfg verdict.Config) (RunResult, error) {
	rr := RunResult{Repeat: repeat, Dir: rd}
	run := filepath.Join(dir, rd)
	if _, err := os.Stat(filepath.Join(run, VerdictFile)); errors.Is(err, fs.ErrNotExist) {
		return rr, nil
	} else if err != nil {
		return rr, err
	}
	f := verdict.FoldFile(RunName(cell, repeat), filepath.Join(run, RecordsFile), nil, cfg)
	for _, c := range Consoles {
		f.AddConsoleFile(filepath.Join(run, c))
	}
	f.AddNoiseFile(filepath.Join(run, NoiseFile))
	v := f.Verdict()
	rr.Ran, rr.Status, rr.Cause, rr.Reason, rr.verdict = true, v.Status, v.Cause, v.Reason, v
	if st, err := os.Stat(filepath.Join(run, ReproDir, ReproScript)); err == nil && st.Mode().IsRegular() {
		rr.Repro = filepath.Join(rd, ReproDir, ReproScript)
	}
	if !v.Status.OK() {
		rr.Diagnostic = lastLine(filepath.Join(run, StderrFile))
	}
	return rr, nil
}

// lastLine is the last non-empty line of the file's last 4 KiB, cut to
// 300 bytes; "" when there is none.
func lastLine(path string) string {
	f, err := os.Open(path)
	if err != nil {
		return ""
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return ""
	}
	off := max(st.Size()-4096, 0)
	b := make([]byte, st.Size()-off)
	n, _ := f.ReadAt(b, off)
	lines := strings.Split(strings.TrimRight(string(b[:n]), "\n"), "\n")
	l := strings.TrimSpace(lines[len(lines)-1])
	if len(l) > 300 {
		l = l[:300]
	}
	return strings.ToValidUTF8(l, "?")
}

// summarise fills each cell's counts and the totals, status and reason.
func (rep *Report) summarise() {
	t := &rep.Totals
	status := verdict.StatusSkip
	var worst *RunResult
	for i := range rep.Cells {
		c := &rep.Cells[i]
		t.Cells++
		t.Runs += c.Planned
		if c.Skip != "" {
			t.Skipped++
			c.Status = verdict.StatusSkip
			c.Interval = [2]float64{0, 1}
			continue
		}
		c.Status = verdict.StatusSkip
		for j := range c.Results {
			r := &c.Results[j]
			if !r.Ran {
				t.NotRun++
				continue
			}
			c.Runs++
			switch r.Status {
			case verdict.StatusPass:
				t.Pass++
			case verdict.StatusSkip:
				t.Skip++
			case verdict.StatusInconclusive:
				t.Inconclusive++
			case verdict.StatusInfra:
				t.Error++
			default:
				t.Fail++
			}
			if !r.Status.OK() {
				c.Failures++
			}
			c.Status = verdict.Worse(c.Status, r.Status)
			if worst == nil || r.Status.Rank() > worst.Status.Rank() {
				worst = r
			}
		}
		if c.Runs > 0 {
			c.Rate = float64(c.Failures) / float64(c.Runs)
		}
		lo, hi := Wilson(c.Failures, c.Runs)
		c.Interval = [2]float64{round4(lo), round4(hi)}
		c.Rate = round4(c.Rate)
		if c.Failures > 0 {
			t.FailedCells++
		}
		status = verdict.Worse(status, c.Status)
	}
	ran := t.Runs - t.NotRun
	switch {
	case worst != nil && !worst.Status.OK():
		rep.Reason = fmt.Sprintf("%d of %d runs did not pass, in %d of %d cells; the worst, %s: %s",
			ran-t.Pass-t.Skip, ran, t.FailedCells, t.Cells-t.Skipped, worst.verdict.Name, worst.Reason)
	case ran == 0 && t.Runs == 0:
		rep.Reason = fmt.Sprintf("nothing to run: all %d cells skipped", t.Cells)
	default:
		rep.Reason = fmt.Sprintf("all %d runs of %d cells passed (%d cells skipped)", ran, t.Cells-t.Skipped, t.Skipped)
	}
	if t.NotRun > 0 {
		// Not every planned run ended: the gauntlet says nothing about
		// those, so it cannot pass.
		status = verdict.Worse(status, verdict.StatusInfra)
		rep.Reason = fmt.Sprintf("%d of %d runs did not run (the gauntlet was stopped); %s", t.NotRun, t.Runs, rep.Reason)
	}
	rep.Status, rep.ExitStatus = status, status.ExitCode()
}

func round4(x float64) float64 {
	return float64(int64(x*1e4+0.5)) / 1e4
}

// verdicts returns the report as verdict.Report runs: each run's
// verdict, a skipped cell as one SKIP, a run that did not run as an
// infrastructure error; grouped by cell.
func (rep *Report) verdicts() (verdict.Report, []verdict.JUnitGroup) {
	var all []verdict.Verdict
	var groups []verdict.JUnitGroup
	for _, c := range rep.Cells {
		g := verdict.JUnitGroup{Name: c.ID}
		if c.Skip != "" {
			g.Runs = append(g.Runs, verdict.Verdict{Name: c.ID, Status: verdict.StatusSkip, Cause: verdict.CauseSkip, Reason: c.Skip, Findings: []verdict.Finding{}})
		}
		for _, r := range c.Results {
			v := r.verdict
			if !r.Ran {
				v = verdict.Verdict{Name: RunName(c.ID, r.Repeat), Status: verdict.StatusInfra, ExitStatus: verdict.ExitInfra, Cause: CauseNotRun,
					Reason: "did not run: the gauntlet was stopped before it ended", Findings: []verdict.Finding{}}
			}
			g.Runs = append(g.Runs, v)
		}
		all = append(all, g.Runs...)
		groups = append(groups, g)
	}
	vr := verdict.Aggregate(rep.Name, all)
	vr.Status, vr.ExitStatus, vr.Reason = rep.Status, rep.ExitStatus, rep.Reason
	return vr, groups
}

// axis lists the distinct values of an axis in the order the cells
// first use them (the matrix's order).
func axis(cells []CellReport, get func(CellReport) string) []string {
	seen := map[string]bool{}
	var out []string
	for _, c := range cells {
		if v := get(c); !seen[v] {
			seen[v] = true
			out = append(out, v)
		}
	}
	return out
}
