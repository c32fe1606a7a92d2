package compare

import (
	"encoding/json"
	"encoding/xml"
	"fmt"
	"io"
	"math"
	"strings"
	"text/tabwriter"
)

// Formats are the output formats of Write.
var Formats = []string{"text", "json", "markdown", "svg"}

// Write writes r in format (one of Formats).
func Write(w io.Writer, format string, r *Result) error {
	switch format {
	case "text":
		return WriteText(w, r)
	case "json":
		return WriteJSON(w, r)
	case "markdown":
		return WriteMarkdown(w, r)
	case "svg":
		return WriteSVG(w, r)
	}
	return fmt.Errorf("unknown format %q (want %s)", format, strings.Join(Formats, ", "))
}

// WriteJSON writes r as one indented JSON object.
func WriteJSON(w io.Writer, r *Result) error {
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return err
	}
	_, err = w.Write(append(b, '\n'))
	return err
}

// header is the lines above the tables.
func header(r *Result) []string {
	l := []string{fmt.Sprintf("scenario: %s", r.Scenario)}
	if r.Machine != "" {
		l = append(l, "machine: "+r.Machine)
	}
	l = append(l, fmt.Sprintf("A: %s (%d runs)   B: %s (%d runs)", r.A.Label, len(r.A.Runs), r.B.Label, len(r.B.Runs)),
		fmt.Sprintf("medians with %.0f%% intervals; delta = B - A with a bootstrap %.0f%% interval; p: Mann-Whitney U, alpha %g",
			r.Confidence*100, r.Confidence*100, r.Alpha),
		fmt.Sprintf("gated (can fail the comparison, Holm-adjusted together): %s", r.Gate))
	return l
}

// footer is the summary and notes below the tables.
func footer(r *Result) []string {
	var l []string
	if r.Regressions == 0 {
		l = append(l, fmt.Sprintf("no regression of a gated metric beyond its threshold (%d metrics, %d gated)", len(r.Metrics), gatedCount(r)))
	} else {
		var names []string
		for _, m := range r.Metrics {
			if m.Regression {
				names = append(names, fmt.Sprintf("%s %+.1f%%", m.Scoped(), m.DeltaPct))
			}
		}
		l = append(l, fmt.Sprintf("%d regression(s) of gated metrics beyond threshold: %s", r.Regressions, strings.Join(names, ", ")))
	}
	for _, s := range append(r.A.Skipped, r.B.Skipped...) {
		l = append(l, "left out: "+s)
	}
	l = append(l, r.Notes...)
	return l
}

func gatedCount(r *Result) int {
	n := 0
	for _, m := range r.Metrics {
		if m.Gated {
			n++
		}
	}
	return n
}

// row is one metric's cells, the same in text and Markdown.
func row(m *Metric) []string {
	return []string{
		m.Scoped(),
		fmtVal(m.MedianA, m.Unit) + " " + fmtCI(m.CIA, m.MedianA),
		fmtVal(m.MedianB, m.Unit) + " " + fmtCI(m.CIB, m.MedianB),
		fmt.Sprintf("%+.1f%% [%+.1f%%, %+.1f%%]", m.DeltaPct, m.DeltaPctCI[0], m.DeltaPctCI[1]),
		fmtP(m.P),
		holmCell(m),
		verdictCell(m),
	}
}

func holmCell(m *Metric) string {
	if !m.Gated {
		return "-"
	}
	return fmtP(m.PHolm)
}

func verdictCell(m *Metric) string {
	v := m.Verdict
	if v == Better || v == Worse {
		v += fmt.Sprintf(" (>%g%%)", m.Threshold)
	}
	if m.Regression {
		v += ": REGRESSION"
	}
	return v
}

func columns(r *Result) []string {
	return []string{"metric", r.A.Label + " median [CI]", r.B.Label + " median [CI]", "delta [CI]", "p", "gate p (Holm)", "verdict"}
}

// WriteText writes a benchstat-like table.
func WriteText(w io.Writer, r *Result) error {
	var b strings.Builder
	for _, l := range header(r) {
		b.WriteString(l + "\n")
	}
	b.WriteString("\n")
	tw := tabwriter.NewWriter(&b, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, strings.Join(columns(r), "\t"))
	for i := range r.Metrics {
		fmt.Fprintln(tw, strings.Join(row(&r.Metrics[i]), "\t"))
	}
	tw.Flush()
	b.WriteString("\n")
	for _, l := range footer(r) {
		b.WriteString(l + "\n")
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// WriteMarkdown writes the table for a pull-request comment.
func WriteMarkdown(w io.Writer, r *Result) error {
	var b strings.Builder
	status := "no regression"
	if r.Regressions > 0 {
		status = fmt.Sprintf("**%d regression(s)**", r.Regressions)
	}
	fmt.Fprintf(&b, "### ktstr-compare: %s vs %s on %s: %s\n\n", md(r.A.Label), md(r.B.Label), md(r.Scenario), status)
	for _, l := range header(r)[1:] {
		b.WriteString(md(l) + "  \n")
	}
	b.WriteString("\n| " + strings.Join(mdAll(columns(r)), " | ") + " |\n")
	b.WriteString("|---|---:|---:|---:|---:|---:|---|\n")
	for i := range r.Metrics {
		cells := mdAll(row(&r.Metrics[i]))
		if r.Metrics[i].Regression {
			cells[6] = "**" + cells[6] + "**"
		}
		b.WriteString("| " + strings.Join(cells, " | ") + " |\n")
	}
	b.WriteString("\n")
	for _, l := range footer(r) {
		b.WriteString("- " + md(l) + "\n")
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// md escapes what Markdown would read as markup in a table.
func md(s string) string {
	return strings.NewReplacer("|", `\|`, "*", `\*`, "_", `\_`, "`", "\\`", "<", "&lt;", ">", "&gt;", "[", `\[`, "]", `\]`).Replace(s)
}

func mdAll(s []string) []string {
	out := make([]string, len(s))
	for i, c := range s {
		out[i] = md(c)
	}
	return out
}

// fmtVal writes v in its unit, scaled for people.
func fmtVal(v float64, unit string) string {
	switch unit {
	case "ns":
		switch {
		case v >= 1e9:
			return fmt.Sprintf("%.3gs", v/1e9)
		case v >= 1e6:
			return fmt.Sprintf("%.3gms", v/1e6)
		case v >= 1e3:
			return fmt.Sprintf("%.3gµs", v/1e3)
		}
		return fmt.Sprintf("%.3gns", v)
	case "ms":
		return fmt.Sprintf("%.3gms", v)
	case "it/s":
		switch {
		case v >= 1e6:
			return fmt.Sprintf("%.3gM/s", v/1e6)
		case v >= 1e3:
			return fmt.Sprintf("%.3gk/s", v/1e3)
		}
		return fmt.Sprintf("%.3g/s", v)
	}
	return fmt.Sprintf("%.3g", v)
}

// fmtCI writes a median's interval as ± percent of the median (the
// larger side), as benchstat does.
func fmtCI(ci Interval, c float64) string {
	if c == 0 || math.IsInf(ci[0], 0) || math.IsInf(ci[1], 0) || math.IsNaN(ci[0]) || math.IsNaN(ci[1]) {
		return "±∞"
	}
	d := max(c-ci[0], ci[1]-c) / math.Abs(c) * 100
	return fmt.Sprintf("±%.0f%%", d)
}

func fmtP(p float64) string {
	if p < 0.001 {
		return "p<0.001"
	}
	return fmt.Sprintf("p=%.3f", p)
}

// SVG layout.
const (
	svgWidth  = 960
	svgLabelW = 230
	svgPlotW  = 500
	svgRowH   = 56
	svgTop    = 90
)

// WriteSVG draws, for each metric, the two sides' per-run values on one
// axis (A above, B below), each side's median as a bar, and the verdict.
func WriteSVG(w io.Writer, r *Result) error {
	var b strings.Builder
	h := svgTop + svgRowH*len(r.Metrics) + 30
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" viewBox="0 0 %d %d" font-family="sans-serif" font-size="12">`+"\n", svgWidth, h, svgWidth, h)
	b.WriteString(`<rect width="100%" height="100%" fill="white"/>` + "\n")
	fmt.Fprintf(&b, `<text x="10" y="22" font-size="16" font-weight="bold">%s</text>`+"\n", esc(fmt.Sprintf("ktstr-compare: %s, %d regression(s)", r.Scenario, r.Regressions)))
	fmt.Fprintf(&b, `<circle cx="16" cy="44" r="5" fill="%s"/><text x="26" y="48" class="side-a">A: %s (%d runs)</text>`+"\n", colorA, esc(r.A.Label), len(r.A.Runs))
	fmt.Fprintf(&b, `<circle cx="316" cy="44" r="5" fill="%s"/><text x="326" y="48" class="side-b">B: %s (%d runs)</text>`+"\n", colorB, esc(r.B.Label), len(r.B.Runs))
	fmt.Fprintf(&b, `<text x="10" y="70" fill="#555">%s</text>`+"\n", esc(fmt.Sprintf("each dot one run; bars: medians; p: Mann-Whitney U, alpha %g", r.Alpha)))
	for i := range r.Metrics {
		m := &r.Metrics[i]
		y := svgTop + svgRowH*i
		lo, hi := span(m.A, m.B)
		x := func(v float64) float64 {
			return svgLabelW + (v-lo)/(hi-lo)*svgPlotW
		}
		fmt.Fprintf(&b, `<g class="metric" data-metric="%s">`+"\n", esc(m.Scoped()))
		if i%2 == 0 {
			fmt.Fprintf(&b, `<rect x="0" y="%d" width="%d" height="%d" fill="#f4f4f4"/>`+"\n", y, svgWidth, svgRowH)
		}
		fmt.Fprintf(&b, `<text x="10" y="%d">%s</text>`+"\n", y+24, esc(m.Scoped()))
		fmt.Fprintf(&b, `<text x="10" y="%d" fill="#555" font-size="10">%s</text>`+"\n", y+40, esc(m.Better+" is better"))
		fmt.Fprintf(&b, `<line x1="%d" y1="%d" x2="%d" y2="%d" stroke="#999"/>`+"\n", svgLabelW, y+svgRowH-10, svgLabelW+svgPlotW, y+svgRowH-10)
		fmt.Fprintf(&b, `<text x="%d" y="%d" font-size="9" fill="#555">%s</text>`+"\n", svgLabelW, y+svgRowH-1, esc(fmtVal(lo, m.Unit)))
		fmt.Fprintf(&b, `<text x="%d" y="%d" font-size="9" fill="#555" text-anchor="end">%s</text>`+"\n", svgLabelW+svgPlotW, y+svgRowH-1, esc(fmtVal(hi, m.Unit)))
		for _, s := range []struct {
			side, color string
			vals        []float64
			med         float64
			cy          int
		}{{"a", colorA, m.A, m.MedianA, y + 14}, {"b", colorB, m.B, m.MedianB, y + 32}} {
			for _, v := range s.vals {
				fmt.Fprintf(&b, `<circle class="run-%s" cx="%.1f" cy="%d" r="4" fill="%s" fill-opacity="0.7"><title>%s</title></circle>`+"\n",
					s.side, x(v), s.cy, s.color, esc(fmtVal(v, m.Unit)))
			}
			fmt.Fprintf(&b, `<line class="median-%s" x1="%.1f" y1="%d" x2="%.1f" y2="%d" stroke="%s" stroke-width="2"/>`+"\n",
				s.side, x(s.med), s.cy-8, x(s.med), s.cy+8, s.color)
		}
		color := "#333"
		switch m.Verdict {
		case Worse:
			color = "#c00"
		case Better:
			color = "#070"
		}
		fmt.Fprintf(&b, `<text x="%d" y="%d" fill="%s">%s</text>`+"\n", svgLabelW+svgPlotW+20, y+24, color,
			esc(fmt.Sprintf("%+.1f%% [%+.1f%%, %+.1f%%]", m.DeltaPct, m.DeltaPctCI[0], m.DeltaPctCI[1])))
		fmt.Fprintf(&b, `<text x="%d" y="%d" fill="%s">%s</text>`+"\n", svgLabelW+svgPlotW+20, y+40, color, esc(svgP(m)+"  "+verdictCell(m)))
		b.WriteString("</g>\n")
	}
	b.WriteString("</svg>\n")
	_, err := io.WriteString(w, b.String())
	return err
}

// svgP is the p-value line: the gate's adjusted p too, for a gated metric.
func svgP(m *Metric) string {
	if m.Gated {
		return fmtP(m.P) + ", gated: Holm " + fmtP(m.PHolm)
	}
	return fmtP(m.P)
}

const (
	colorA = "#1f77b4"
	colorB = "#ff7f0e"
)

// span is the axis: both sides' values, padded by 5%; never empty.
func span(a, b []float64) (lo, hi float64) {
	lo, hi = math.Inf(1), math.Inf(-1)
	for _, v := range append(append([]float64{}, a...), b...) {
		lo, hi = min(lo, v), max(hi, v)
	}
	pad := (hi - lo) * 0.05
	if pad == 0 {
		pad = math.Max(math.Abs(lo)*0.05, 1)
	}
	return lo - pad, hi + pad
}

func esc(s string) string {
	var b strings.Builder
	xml.EscapeText(&b, []byte(s))
	return b.String()
}
