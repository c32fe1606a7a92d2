package compare

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"regexp"
	"slices"
	"strings"

	"github.com/ktstr-go/ktstr/internal/verdict"
)

// Options configure a comparison; the zero value takes the defaults.
type Options struct {
	// Alpha is the rank test's significance level (default 0.05).
	Alpha float64
	// Confidence is the level of the intervals (default 0.95).
	Confidence float64
	// Thresholds override the default threshold (percent) of metrics by
	// name.
	Thresholds map[string]float64
	// Cgroups adds each cgroup's figures to the whole scenario's.
	Cgroups bool
	// Metrics keeps only the metrics whose name ("wake_p99_ns") or scoped
	// name ("cg:wake/wake_p99_ns", "all/iteration_rate") matches.
	Metrics *regexp.Regexp
	// LabelA and LabelB name the sides (default: the scheduler the runs
	// ran, else "A" and "B").
	LabelA, LabelB string
	// IncludeFailed uses the results of runs that did not pass (by
	// default only passing runs count).
	IncludeFailed bool
	// Gate selects, by scoped name, the metrics that can fail the
	// comparison (nil: DefaultGate).
	Gate *regexp.Regexp
}

// DefaultGate are the metrics that fail a comparison by default.
var DefaultGate = regexp.MustCompile(`^all/(iteration_rate|wake_p50_ns|wake_p99_ns)$`)

// Errors that refuse a comparison.
var (
	ErrNotEnoughRuns = errors.New("not enough runs")
	ErrMismatch      = errors.New("runs do not match")
)

// Side is one side's runs.
type Side struct {
	Label string   `json:"label"`
	Runs  []string `json:"runs"`
	// Skipped are the runs left out, with why.
	Skipped []string `json:"skipped,omitempty"`
}

// Metric is one metric's comparison.
type Metric struct {
	Scope     string  `json:"scope"`
	Name      string  `json:"name"`
	Unit      string  `json:"unit,omitempty"`
	Better    string  `json:"better"`        // "lower" or "higher"
	Threshold float64 `json:"threshold_pct"` // percent of A's median

	A []float64 `json:"a"` // per run, in input order
	B []float64 `json:"b"`

	MedianA float64 `json:"median_a"`
	MedianB float64 `json:"median_b"`
	// CIA and CIB are the medians' order-statistic intervals: infinite
	// (null in JSON) when the side has too few runs for the confidence
	// (fewer than 6 at 95%).
	CIA Interval `json:"ci_a"`
	CIB Interval `json:"ci_b"`

	Delta      float64  `json:"delta"` // MedianB - MedianA
	DeltaCI    Interval `json:"delta_ci"`
	DeltaPct   float64  `json:"delta_pct"` // of MedianA
	DeltaPctCI Interval `json:"delta_pct_ci"`
	P          float64  `json:"p"`
	// Gated says the metric can fail the comparison; PHolm is then its
	// Holm-Bonferroni adjusted p-value over the gated metrics, which its
	// verdict uses.
	Gated bool    `json:"gated"`
	PHolm float64 `json:"p_holm,omitempty"`

	// Verdict is "better", "worse", "~" or "~ (< threshold)";
	// Regression is true for a gated metric that is worse.
	Verdict    string   `json:"verdict"`
	Regression bool     `json:"regression"`
	Warnings   []string `json:"warnings,omitempty"`
}

// Interval is a confidence interval, low and high; a bound that is not
// finite is null in JSON.
type Interval [2]float64

// MarshalJSON writes [lo, hi] with null for a bound that is not finite.
func (iv Interval) MarshalJSON() ([]byte, error) {
	f := func(v float64) string {
		if math.IsInf(v, 0) || math.IsNaN(v) {
			return "null"
		}
		b, _ := json.Marshal(v)
		return string(b)
	}
	return []byte("[" + f(iv[0]) + "," + f(iv[1]) + "]"), nil
}

// Scoped is the metric's scoped name, "all/NAME" or "cg:CGROUP/NAME".
func (m *Metric) Scoped() string { return m.Scope + "/" + m.Name }

// Verdicts.
const (
	Better = "better"
	Worse  = "worse"
	Same   = "~"
	Small  = "~ (< threshold)"
)

// Result is a whole comparison.
type Result struct {
	Scenario   string   `json:"scenario"`
	Machine    string   `json:"machine,omitempty"`
	A          Side     `json:"a"`
	B          Side     `json:"b"`
	Alpha      float64  `json:"alpha"`
	Confidence float64  `json:"confidence"`
	Metrics    []Metric `json:"metrics"`
	// Regressions counts the gated metrics that got significantly worse
	// beyond their threshold; the tool's exit status is 1 when it is not
	// zero. Gate is the gate's expression.
	Regressions int      `json:"regressions"`
	Gate        string   `json:"gate"`
	Notes       []string `json:"notes,omitempty"`
}

// Compare compares the runs of side a with those of side b.
func Compare(a, b []Run, opt Options) (*Result, error) {
	if opt.Alpha == 0 {
		opt.Alpha = 0.05
	}
	if opt.Confidence == 0 {
		opt.Confidence = 0.95
	}
	if opt.Gate == nil {
		opt.Gate = DefaultGate
	}
	if !(opt.Alpha > 0 && opt.Alpha < 1) || !(opt.Confidence > 0 && opt.Confidence < 1) {
		return nil, fmt.Errorf("alpha %v and confidence %v must be within (0, 1)", opt.Alpha, opt.Confidence)
	}
	res := &Result{Alpha: opt.Alpha, Confidence: opt.Confidence, Gate: opt.Gate.String()}
	ua, sa := usable(a, opt.IncludeFailed)
	ub, sb := usable(b, opt.IncludeFailed)
	res.A = Side{Label: label(opt.LabelA, ua, "A"), Runs: names(ua), Skipped: sa}
	res.B = Side{Label: label(opt.LabelB, ub, "B"), Runs: names(ub), Skipped: sb}
	if len(ua) < 2 || len(ub) < 2 {
		return res, fmt.Errorf("%w: %s has %d usable runs and %s %d; want at least 2 on each side (5 or more to detect a change at alpha 0.05)%s",
			ErrNotEnoughRuns, res.A.Label, len(ua), res.B.Label, len(ub), skippedNote(sa, sb))
	}
	if err := match(ua, ub, res); err != nil {
		return res, err
	}
	ma, mb := perRun(ua, opt.Cgroups), perRun(ub, opt.Cgroups)
	for _, k := range keys(ma, mb) {
		d, _ := def(k.name)
		if opt.Metrics != nil && !opt.Metrics.MatchString(k.name) && !opt.Metrics.MatchString(k.scope+"/"+k.name) {
			continue
		}
		if t, ok := opt.Thresholds[k.name]; ok {
			d.Threshold = t
		}
		va, vb := values(ma, k), values(mb, k)
		if len(va) < 2 || len(vb) < 2 {
			res.Notes = append(res.Notes, fmt.Sprintf("%s/%s: measured in %d and %d runs, not compared", k.scope, k.name, len(va), len(vb)))
			continue
		}
		m := compareOne(k, d, va, vb, opt)
		m.Gated = opt.Gate.MatchString(m.Scoped())
		res.Metrics = append(res.Metrics, m)
	}
	if len(res.Metrics) == 0 {
		return res, fmt.Errorf("%w: no metric was measured on both sides", ErrNotEnoughRuns)
	}
	gated := holm(res.Metrics)
	for i := range res.Metrics {
		m := &res.Metrics[i]
		p := m.P
		if m.Gated {
			p = m.PHolm
		}
		m.Verdict = judge(m, p, opt.Alpha)
		if m.Gated && m.Verdict == Worse {
			m.Regression = true
			res.Regressions++
		}
	}
	if gated == 0 {
		res.Notes = append(res.Notes, fmt.Sprintf("no metric matches the gate %s: nothing can fail the comparison", opt.Gate))
	} else if p := float64(gated) * minP(len(ua), len(ub)); p >= opt.Alpha {
		res.Notes = append(res.Notes, fmt.Sprintf("with %d and %d runs and %d gated metrics the smallest Holm-adjusted p-value is %.3g, not below alpha %g: no regression can be found; run more", len(ua), len(ub), gated, p, opt.Alpha))
	}
	for _, m := range res.Metrics {
		if math.IsInf(m.CIA[0], 0) || math.IsInf(m.CIB[0], 0) || math.IsInf(m.CIA[1], 0) || math.IsInf(m.CIB[1], 0) {
			res.Notes = append(res.Notes, fmt.Sprintf("±∞: too few runs for a %g%% interval of a median (6 or more at 95%%); the difference's bootstrap interval stands", opt.Confidence*100))
			break
		}
	}
	return res, nil
}

func compareOne(k key, d Def, va, vb []float64, opt Options) Metric {
	m := Metric{Scope: k.scope, Name: k.name, Unit: d.Unit, Better: d.Dir.String(), Threshold: d.Threshold, A: va, B: vb}
	sa, sb := summary(va, opt.Confidence), summary(vb, opt.Confidence)
	m.MedianA, m.MedianB = median(va), median(vb)
	m.CIA, m.CIB = Interval{sa.Lo, sa.Hi}, Interval{sb.Lo, sb.Hi}
	m.Delta = m.MedianB - m.MedianA
	lo, hi := diffCI(va, vb, opt.Confidence)
	m.DeltaCI = Interval{lo, hi}
	if m.MedianA != 0 {
		m.DeltaPct = m.Delta / m.MedianA * 100
		m.DeltaPctCI = Interval{lo / m.MedianA * 100, hi / m.MedianA * 100}
	}
	var warns []error
	m.P, warns = rankTest(va, vb, opt.Alpha)
	for _, w := range slices.Concat(warns, sa.Warnings, sb.Warnings) {
		if w != nil && !slices.Contains(m.Warnings, w.Error()) {
			m.Warnings = append(m.Warnings, w.Error())
		}
	}
	return m
}

// judge is m's verdict with p-value p.
func judge(m *Metric, p, alpha float64) string {
	worse := (m.Better == LowerIsBetter.String()) == (m.Delta > 0)
	switch {
	case p >= alpha || m.Delta == 0:
		return Same
	case abs(m.DeltaPct) < m.Threshold:
		return Small
	case worse:
		return Worse
	}
	return Better
}

// holm sets PHolm of the gated metrics, the Holm-Bonferroni adjusted
// p-values over them, and returns how many are gated.
func holm(ms []Metric) int {
	var idx []int
	for i := range ms {
		if ms[i].Gated {
			idx = append(idx, i)
		}
	}
	slices.SortStableFunc(idx, func(a, b int) int { return cmpFloat(ms[a].P, ms[b].P) })
	run := 0.0
	for j, i := range idx {
		run = max(run, min(1, float64(len(idx)-j)*ms[i].P))
		ms[i].PHolm = run
	}
	return len(idx)
}

func cmpFloat(a, b float64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

func abs(x float64) float64 {
	if x < 0 {
		return -x
	}
	return x
}

// usable returns the runs with a result (and, unless all, that passed),
// and notes on the others.
func usable(runs []Run, all bool) (ok []Run, skipped []string) {
	for _, r := range runs {
		switch {
		case r.Result == nil:
			skipped = append(skipped, fmt.Sprintf("%s (%s): no TEST result (%s)", r.Name, r.Source, r.Status))
		case !all && r.Status != verdict.StatusPass:
			skipped = append(skipped, fmt.Sprintf("%s (%s): %s, not a pass (--include-failed uses it)", r.Name, r.Source, r.Status))
		default:
			ok = append(ok, r)
		}
	}
	return ok, skipped
}

func skippedNote(a, b []string) string {
	all := slices.Concat(a, b)
	if len(all) == 0 {
		return ""
	}
	return "; left out: " + strings.Join(all, "; ")
}

func names(runs []Run) []string {
	out := make([]string, len(runs))
	for i, r := range runs {
		out[i] = r.Name
	}
	return out
}

// label is the side's label: given, else the scheduler every run ran
// ("EEVDF" for the kernel's own), else def.
func label(given string, runs []Run, def string) string {
	if given != "" {
		return given
	}
	l := ""
	for i, r := range runs {
		s := "EEVDF"
		if r.Result.Scheduler != nil {
			s = strings.ToValidUTF8(r.Result.Scheduler.Binary, "?")
		}
		if i > 0 && s != l {
			return def
		}
		l = s
	}
	if l == "" {
		return def
	}
	return l
}

// match refuses runs of different scenarios or machine shapes.
func match(a, b []Run, res *Result) error {
	scen := func(r Run) string { return r.Result.Scenario }
	mach := func(r Run) string {
		m := r.Result.Machine
		if m == nil {
			return ""
		}
		return fmt.Sprintf("%d cpus, llcs %s, nodes %s, smt %v", m.CPUs, strings.Join(m.LLCs, " "), strings.Join(m.Nodes, " "), m.SMT)
	}
	for _, f := range []struct {
		what string
		get  func(Run) string
	}{{"scenario", scen}, {"machine", mach}} {
		first := f.get(a[0])
		for _, r := range slices.Concat(a, b) {
			if v := f.get(r); v != first {
				return fmt.Errorf("%w: run %s (%s) has %s %q, run %s (%s) %q; refusing to compare different %ss",
					ErrMismatch, a[0].Name, a[0].Source, f.what, first, r.Name, r.Source, v, f.what)
			}
		}
	}
	res.Scenario, res.Machine = scen(a[0]), mach(a[0])
	return nil
}

func perRun(runs []Run, cgroups bool) []map[key]float64 {
	out := make([]map[key]float64, len(runs))
	for i, r := range runs {
		out[i] = metricsOf(r.Result, cgroups)
	}
	return out
}

// keys are the metrics measured on either side: the whole scenario's
// first, then each cgroup's in order of first appearance, each in the
// order of Defs.
func keys(sides ...[]map[key]float64) []key {
	var scopes []string
	seen := map[key]bool{}
	for _, side := range sides {
		for _, m := range side {
			for k := range m {
				seen[k] = true
				if !slices.Contains(scopes, k.scope) {
					scopes = append(scopes, k.scope)
				}
			}
		}
	}
	slices.SortStableFunc(scopes, func(x, y string) int {
		if x == Overall {
			return -1
		}
		if y == Overall {
			return 1
		}
		return strings.Compare(x, y)
	})
	var out []key
	for _, s := range scopes {
		for _, d := range Defs {
			if k := (key{s, d.Name}); seen[k] {
				out = append(out, k)
			}
		}
	}
	return out
}

func values(side []map[key]float64, k key) []float64 {
	var out []float64
	for _, m := range side {
		if v, ok := m[k]; ok {
			out = append(out, v)
		}
	}
	return out
}
