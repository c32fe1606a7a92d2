package gauntlet

import (
	"encoding/json"
	"fmt"
	"html/template"
	"io"
	"strings"

	"github.com/ktstr-go/ktstr/internal/verdict"
)

// Formats are the aggregate report's formats.
var Formats = []string{"text", "json", "junit", "tap", "html"}

// Write writes rep in format (one of Formats); tapVersion is the TAP
// version (0: 13).
func Write(w io.Writer, format string, rep *Report, tapVersion int) error {
	switch format {
	case "text":
		return WriteText(w, rep)
	case "json":
		b, err := json.MarshalIndent(rep, "", "  ")
		if err != nil {
			return err
		}
		_, err = w.Write(append(b, '\n'))
		return err
	case "junit":
		vr, groups := rep.verdicts()
		return verdict.WriteJUnitGroups(w, vr, groups)
	case "tap":
		vr, _ := rep.verdicts()
		return verdict.WriteTAPVersion(w, vr, max(tapVersion, verdict.TAPVersion13))
	case "html":
		return WriteHTML(w, rep)
	}
	return fmt.Errorf("gauntlet: unknown format %q", format)
}

// Mark is a cell's entry in the matrix view.
func (c CellReport) Mark() string {
	switch {
	case c.Skip != "":
		return "skip"
	case c.Runs == 0:
		return fmt.Sprintf("-  0/%d", c.Planned)
	case c.Failures == 0:
		s := fmt.Sprintf("ok %d/%d", c.Runs, c.Runs)
		if c.Runs < c.Planned {
			s += "+"
		}
		return s
	}
	s := fmt.Sprintf("%s %d/%d", short(c.Status), c.Failures, c.Runs)
	if c.Runs < c.Planned {
		s += "+"
	}
	return s
}

func short(s verdict.Status) string {
	switch s {
	case verdict.StatusInconclusive:
		return "INC"
	case verdict.StatusInfra:
		return "ERR"
	}
	return string(s)
}

// WriteText writes the matrix view: per kernel, a table of scheduler ×
// topology rows and a column per scenario, each cell "ok R/R" (every run
// passed), "FAIL F/R" (F of R runs did not pass; INC and ERR when the
// worst was inconclusive or an infrastructure error), "skip", or "-"
// (did not run; "+" after a count: some runs did not). Then every cell
// with its failure rate and 95% interval, the skipped cells with their
// reasons, the failed runs with their directories, and the summary.
func WriteText(w io.Writer, rep *Report) error {
	var b strings.Builder
	scen, kernels := grid(rep)
	for _, k := range kernels {
		fmt.Fprintf(&b, "kernel %s\n", k.Name)
		rows := [][]string{append([]string{"scheduler", "topology"}, scen...)}
		for _, r := range k.Rows {
			row := []string{r.Scheduler, r.Topology}
			for _, c := range r.Cells {
				m := ""
				if c != nil {
					m = c.Mark()
				}
				row = append(row, m)
			}
			rows = append(rows, row)
		}
		writeTable(&b, rows)
		b.WriteString("\n")
	}
	b.WriteString("cells (failed runs / runs, failure rate, 95% Wilson interval):\n")
	for _, c := range rep.Cells {
		if c.Skip != "" {
			continue
		}
		fmt.Fprintf(&b, "  %-12s %s: %d/%d failed, %s (95%% %s..%s)\n", c.Status, c.ID, c.Failures, c.Runs,
			pct(c.Rate), pct(c.Interval[0]), pct(c.Interval[1]))
	}
	if rep.Totals.Skipped > 0 {
		b.WriteString("skipped:\n")
		for _, c := range rep.Cells {
			if c.Skip != "" {
				fmt.Fprintf(&b, "  %s: %s\n", c.ID, c.Skip)
			}
		}
	}
	var failed strings.Builder
	for _, c := range rep.Cells {
		for _, r := range c.Results {
			switch {
			case !r.Ran:
				fmt.Fprintf(&failed, "  NOT RUN %s  %s\n", RunName(c.ID, r.Repeat), r.Dir)
			case !r.Status.OK():
				fmt.Fprintf(&failed, "  %s %s: %s\n    %s\n", r.Status, RunName(c.ID, r.Repeat), oneLine(r.Reason), r.Dir)
				if r.Diagnostic != "" {
					fmt.Fprintf(&failed, "    stderr: %s\n", oneLine(r.Diagnostic))
				}
				if r.Repro != "" {
					fmt.Fprintf(&failed, "    re-run: %s\n", r.Repro)
				}
			}
		}
	}
	if failed.Len() > 0 {
		b.WriteString("runs that did not pass:\n")
		b.WriteString(failed.String())
	}
	t := rep.Totals
	fmt.Fprintf(&b, "\n%s %s: %s\n", rep.Status, oneLine(rep.Name), oneLine(rep.Reason))
	fmt.Fprintf(&b, "cells=%d skipped=%d failed=%d runs=%d not_run=%d pass=%d skip=%d inconclusive=%d error=%d fail=%d shard=%s of %d cells\n",
		t.Cells, t.Skipped, t.FailedCells, t.Runs, t.NotRun, t.Pass, t.Skip, t.Inconclusive, t.Error, t.Fail, rep.Shard, rep.MatrixCells)
	_, err := io.WriteString(w, b.String())
	return err
}

func pct(x float64) string { return fmt.Sprintf("%.1f%%", 100*x) }

// writeTable aligns rows in columns.
func writeTable(b *strings.Builder, rows [][]string) {
	var width []int
	for _, r := range rows {
		for i, c := range r {
			if i >= len(width) {
				width = append(width, 0)
			}
			width[i] = max(width[i], len(c))
		}
	}
	for _, r := range rows {
		var line strings.Builder
		for i, c := range r {
			if i > 0 {
				line.WriteString("  ")
			}
			fmt.Fprintf(&line, "%-*s", width[i], c)
		}
		b.WriteString(strings.TrimRight(line.String(), " ") + "\n")
	}
}

var htmlPage = template.Must(template.New("gauntlet").Funcs(template.FuncMap{
	"pct":  pct,
	"name": RunName,
	"class": func(c CellReport) string {
		switch {
		case c.Skip != "":
			return "skip"
		case c.Runs == 0:
			return "notrun"
		case c.Failures > 0:
			return "fail"
		}
		return "pass"
	},
}).Parse(`<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{{.Rep.Name}}: {{.Rep.Status}}</title>
<style>
body{font-family:sans-serif;margin:1em}
table{border-collapse:collapse;margin-bottom:1em}
td,th{border:1px solid #999;padding:.2em .5em;text-align:left;vertical-align:top}
.pass{background:#cfc}.fail{background:#fcc}.skip{background:#eee;color:#666}.notrun{background:#ffc}
code{font-size:90%}
</style></head><body>
<h1>{{.Rep.Name}}: {{.Rep.Status}}</h1>
<p>{{.Rep.Reason}}</p>
<p>cells {{.Rep.Totals.Cells}} (skipped {{.Rep.Totals.Skipped}}, failed {{.Rep.Totals.FailedCells}}),
runs {{.Rep.Totals.Runs}} (pass {{.Rep.Totals.Pass}}, fail {{.Rep.Totals.Fail}}, error {{.Rep.Totals.Error}},
inconclusive {{.Rep.Totals.Inconclusive}}, skip {{.Rep.Totals.Skip}}, not run {{.Rep.Totals.NotRun}}),
shard {{.Rep.Shard.Index}}/{{.Rep.Shard.Count}} of {{.Rep.MatrixCells}} cells.</p>
{{range .Kernels}}<h2>kernel {{.Name}}</h2>
<table><tr><th>scheduler</th><th>topology</th>{{range $.Scenarios}}<th>{{.}}</th>{{end}}</tr>
{{range .Rows}}<tr><td>{{.Scheduler}}</td><td>{{.Topology}}</td>{{range .Cells}}{{if .}}<td class="{{class .}}" title="{{.ID}}">{{if .Skip}}skip{{else}}<a href="#{{.ID}}">{{.Mark}}</a>{{end}}</td>{{else}}<td></td>{{end}}{{end}}</tr>
{{end}}</table>
{{end}}
<h2>cells</h2>
<table><tr><th>cell</th><th>status</th><th>failed / runs</th><th>failure rate</th><th>95% interval</th><th>runs</th></tr>
{{range .Rep.Cells}}<tr id="{{.ID}}" class="{{class .}}"><td>{{.ID}}</td><td>{{.Status}}</td>{{if .Skip}}<td colspan="4">{{.Skip}}</td>{{else}}<td>{{.Failures}} / {{.Runs}}</td><td>{{pct .Rate}}</td><td>{{pct (index .Interval 0)}} .. {{pct (index .Interval 1)}}</td>
<td>{{$id := .ID}}{{range .Results}}{{if not .Ran}}r{{.Repeat}} not run<br>{{else if .Status.OK}}<a href="{{.Dir}}/">r{{.Repeat}}</a> {{.Status}}<br>{{else}}<a href="{{.Dir}}/">r{{.Repeat}}</a> <b>{{.Status}}</b>: {{.Reason}}
(<a href="{{.Dir}}/verdict.json">verdict</a>, <a href="{{.Dir}}/console.log">console</a>, <a href="{{.Dir}}/command">command</a>, <a href="{{.Dir}}/stderr.log">stderr</a>{{if .Repro}}, <a href="{{.Repro}}">re-run script</a>{{end}}){{if .Diagnostic}}<br><code>{{.Diagnostic}}</code>{{end}}<br>{{end}}{{end}}</td>{{end}}</tr>
{{end}}</table>
</body></html>
`))

// gridKernel is one kernel's table in the matrix view: a row per
// scheduler and topology that has cells, a column per scenario (nil
// where the combination is not in this shard).
type gridKernel struct {
	Name string
	Rows []gridRow
}

type gridRow struct {
	Scheduler, Topology string
	Cells               []*CellReport
}

func grid(rep *Report) (scenarios []string, kernels []gridKernel) {
	scenarios = axis(rep.Cells, func(c CellReport) string { return c.Scenario })
	for _, k := range axis(rep.Cells, func(c CellReport) string { return c.Kernel }) {
		gk := gridKernel{Name: k}
		for _, s := range axis(rep.Cells, func(c CellReport) string { return c.Scheduler }) {
			for _, t := range axis(rep.Cells, func(c CellReport) string { return c.Topology }) {
				row := gridRow{Scheduler: s, Topology: t, Cells: make([]*CellReport, len(scenarios))}
				any := false
				for i, sc := range scenarios {
					for j := range rep.Cells {
						c := &rep.Cells[j]
						if c.Kernel == k && c.Scheduler == s && c.Topology == t && c.Scenario == sc {
							row.Cells[i], any = c, true
						}
					}
				}
				if any {
					gk.Rows = append(gk.Rows, row)
				}
			}
		}
		kernels = append(kernels, gk)
	}
	return scenarios, kernels
}

// WriteHTML writes the matrix as an HTML page: a table per kernel, each
// cell linked to its entry in the list of cells, where every run that
// did not pass links to its run directory, verdict, console, command and
// re-run script (relative links: the page lives in the gauntlet's
// directory).
func WriteHTML(w io.Writer, rep *Report) error {
	scen, kernels := grid(rep)
	return htmlPage.Execute(w, struct {
		Rep       *Report
		Kernels   []gridKernel
		Scenarios []string
	}{rep, kernels, scen})
}
