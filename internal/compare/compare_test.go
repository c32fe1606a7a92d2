package compare

import (
	"bytes"
	"encoding/xml"
	"errors"
	"flag"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/ktstr-go/ktstr/internal/verdict"
	"github.com/ktstr-go/ktstr/lib/wire/payload"
)

var update = flag.Bool("update", false, "rewrite the golden files")

// TestRankTestTextbook: two samples of five without overlap give the
// exact two-sided p-value 2/C(10,5) = 2/252; identical samples p = 1.
func TestRankTestTextbook(t *testing.T) {
	p, _ := rankTest([]float64{1, 2, 3, 4, 5}, []float64{6, 7, 8, 9, 10}, 0.05)
	if math.Abs(p-2.0/252) > 1e-9 {
		t.Errorf("p = %v, want %v", p, 2.0/252)
	}
	// One swap: U = 1, P(U <= 1) = 2/252 per tail, two-sided 4/252.
	p, _ = rankTest([]float64{1, 2, 3, 4, 6}, []float64{5, 7, 8, 9, 10}, 0.05)
	if math.Abs(p-4.0/252) > 1e-9 {
		t.Errorf("p = %v, want %v", p, 4.0/252)
	}
	if p, _ := rankTest([]float64{1, 2, 3}, []float64{1, 2, 3}, 0.05); p != 1 {
		t.Errorf("identical samples p = %v, want 1", p)
	}
	for _, c := range []struct {
		n    int
		want float64
	}{{2, 1.0 / 3}, {3, 0.1}, {4, 2.0 / 70}, {5, 2.0 / 252}} {
		if got := minP(c.n, c.n); math.Abs(got-c.want) > 1e-12 {
			t.Errorf("minP(%d, %d) = %v, want %v", c.n, c.n, got, c.want)
		}
	}
}

// TestHolm: the textbook step-down adjustment, monotone, capped at 1;
// metrics not gated are left alone.
func TestHolm(t *testing.T) {
	ms := []Metric{{P: 0.01, Gated: true}, {P: 0.04, Gated: true}, {P: 0.03, Gated: true}, {P: 0.005, Gated: true}, {P: 0.001}, {P: 0.6, Gated: true}}
	if n := holm(ms); n != 5 {
		t.Fatalf("holm counted %d gated, want 5", n)
	}
	want := []float64{0.04, 0.09, 0.09, 0.025, 0, 0.6}
	for i, m := range ms {
		if math.Abs(m.PHolm-want[i]) > 1e-12 {
			t.Errorf("metric %d: p %v adjusted %v, want %v", i, m.P, m.PHolm, want[i])
		}
	}
}

func TestMedianAndBootstrap(t *testing.T) {
	if median([]float64{5, 1, 3}) != 3 || median([]float64{4, 1, 3, 2}) != 2.5 || median(nil) != 0 {
		t.Error("median")
	}
	// Constant samples: every resample's difference is the shift.
	lo, hi := diffCI([]float64{10, 10, 10}, []float64{13, 13, 13, 13}, 0.95)
	if lo != 3 || hi != 3 {
		t.Errorf("constant shift CI = [%v, %v], want [3, 3]", lo, hi)
	}
	// Deterministic (fixed seed) and containing the point estimate.
	a, b := []float64{10, 11, 12, 13, 14}, []float64{15, 16, 17, 18, 30}
	lo1, hi1 := diffCI(a, b, 0.95)
	lo2, hi2 := diffCI(a, b, 0.95)
	if lo1 != lo2 || hi1 != hi2 || !(lo1 <= 5 && 5 <= hi1) || lo1 <= 0 {
		t.Errorf("CI [%v, %v] then [%v, %v]; want equal, containing 5, above 0", lo1, hi1, lo2, hi2)
	}
}

// run builds a passing run of the wake-latency scenario.
func run(name string, rate float64, p99 uint64) Run {
	return Run{Name: name, Source: name + ".json", Status: verdict.StatusPass, Result: &payload.AssertResult{
		Scenario: "wake-latency",
		Machine:  &payload.Machine{CPUs: 2, LLCs: []string{"0-1"}, Nodes: []string{"0-1"}},
		Stats: payload.ScenarioStats{
			IterationRate: rate, WorstGapMS: 10,
			WakeLatency: &payload.Latency{Count: 1000, MeanNS: float64(p99) / 4, P50NS: p99 / 5, P90NS: p99 / 2, P99NS: p99, P999NS: p99 * 2, MaxNS: p99 * 3, CV: 1.5},
			Cgroups:     []payload.CgroupStats{{Name: "wake", Workers: 8, IterationRate: rate}},
		},
	}}
}

func side(prefix string, rates []float64, p99s []uint64) []Run {
	var out []Run
	for i := range rates {
		out = append(out, run(prefix+string(rune('1'+i)), rates[i], p99s[i]))
	}
	return out
}

// fixed sides: B's wake p99 is 30% worse, its rate unchanged within noise.
func fixed() (a, b []Run) {
	a = side("a", []float64{1000, 1010, 990, 1005, 995}, []uint64{100000, 101000, 99000, 100500, 99500})
	b = side("b", []float64{1002, 1008, 992, 1003, 999}, []uint64{130000, 131000, 129000, 130500, 129500})
	return a, b
}

func TestCompareVerdicts(t *testing.T) {
	a, b := fixed()
	r, err := Compare(a, b, Options{})
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, m := range r.Metrics {
		got[m.Scoped()] = m.Verdict
	}
	want := map[string]string{"all/iteration_rate": Same, "all/wake_p99_ns": Worse, "all/wake_p50_ns": Worse, "all/max_gap_ms": Same}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s: %q, want %q", k, got[k], v)
		}
	}
	// Worse: p50, p90, p99, p999 (max's threshold is 50%); regressions
	// only the gated p50 and p99.
	if r.Regressions != 2 || r.A.Label != "EEVDF" {
		t.Errorf("regressions %d label %q; want 2 (gated wake p50 and p99), EEVDF", r.Regressions, r.A.Label)
	}
	for _, m := range r.Metrics {
		if m.Regression != (m.Gated && m.Verdict == Worse) || m.Gated != (m.Name == "iteration_rate" || m.Name == "wake_p50_ns" || m.Name == "wake_p99_ns") {
			t.Errorf("%s: gated %v verdict %s regression %v", m.Scoped(), m.Gated, m.Verdict, m.Regression)
		}
	}
	// A gate of its own.
	r, _ = Compare(a, b, Options{Gate: regexp.MustCompile(`wake_p90`)})
	if r.Regressions != 1 || r.Gate != "wake_p90" {
		t.Errorf("gate wake_p90: %d regressions", r.Regressions)
	}
	// The other way round it is better; a threshold above 30% makes it small.
	r, _ = Compare(b, a, Options{Metrics: regexp.MustCompile(`^wake_p99_ns$`)})
	if len(r.Metrics) != 1 || r.Metrics[0].Verdict != Better || r.Regressions != 0 {
		t.Errorf("reversed: %+v", r.Metrics)
	}
	r, _ = Compare(a, b, Options{Metrics: regexp.MustCompile(`^wake_p99_ns$`), Thresholds: map[string]float64{"wake_p99_ns": 40}})
	if r.Metrics[0].Verdict != Small || r.Regressions != 0 {
		t.Errorf("threshold 40%%: %q", r.Metrics[0].Verdict)
	}
	// Per cgroup.
	r, _ = Compare(a, b, Options{Cgroups: true, Metrics: regexp.MustCompile(`^cg:`)})
	if len(r.Metrics) != 1 || r.Metrics[0].Scoped() != "cg:wake/iteration_rate" {
		t.Errorf("cgroup metrics %+v", r.Metrics)
	}
}

func TestCompareRefuses(t *testing.T) {
	a, b := fixed()
	if _, err := Compare(a[:1], b, Options{}); !errors.Is(err, ErrNotEnoughRuns) || !strings.Contains(err.Error(), "not enough runs") {
		t.Errorf("one run: %v", err)
	}
	failed := append([]Run{}, a...)
	for i := 1; i < len(failed); i++ {
		failed[i].Status = verdict.StatusFail
	}
	if _, err := Compare(failed, b, Options{}); !errors.Is(err, ErrNotEnoughRuns) || !strings.Contains(err.Error(), "not a pass") {
		t.Errorf("failed runs: %v", err)
	}
	if _, err := Compare(failed, b, Options{IncludeFailed: true}); err != nil {
		t.Errorf("--include-failed: %v", err)
	}
	other := side("c", []float64{1, 2}, []uint64{1, 2})
	other[1].Result.Scenario = "steady"
	_, err := Compare(a, other, Options{})
	if !errors.Is(err, ErrMismatch) || !strings.Contains(err.Error(), `scenario "wake-latency"`) || !strings.Contains(err.Error(), `"steady"`) {
		t.Errorf("scenarios: %v", err)
	}
	shape := side("d", []float64{1, 2}, []uint64{1, 2})
	shape[0].Result.Machine = &payload.Machine{CPUs: 4}
	if _, err := Compare(a, shape, Options{}); !errors.Is(err, ErrMismatch) || !strings.Contains(err.Error(), "different machines") {
		t.Errorf("machines: %v", err)
	}
	r, err := Compare(a[:3], b[:3], Options{})
	if err != nil || r.Regressions != 0 || !strings.Contains(strings.Join(r.Notes, " "), "no regression can be found") {
		t.Errorf("3 vs 3: %v %d %q", err, r.Regressions, r.Notes)
	}
}

// TestAAFalsePositives: 200 A/A comparisons of 5 vs 5 runs drawn from one
// log-normal distribution (fixed seed, 15% spread) flag a regression in
// at most the rank test's rate, and the thresholds keep it well below.
func TestAAFalsePositives(t *testing.T) {
	rng := rand.New(rand.NewPCG(17, 17))
	draw := func(n int) []Run {
		var rs []Run
		for i := 0; i < n; i++ {
			f := math.Exp(rng.NormFloat64() * 0.15)
			rs = append(rs, run("r", 1000*f, uint64(100000*math.Exp(rng.NormFloat64()*0.15))))
		}
		return rs
	}
	flagged, significant, metrics := 0, 0, 0
	for i := 0; i < 200; i++ {
		r, err := Compare(draw(5), draw(5), Options{Metrics: regexp.MustCompile(`^(iteration_rate|wake_p99_ns)$`)})
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range r.Metrics {
			metrics++
			if m.P < 0.05 {
				significant++
			}
		}
		if r.Regressions > 0 {
			flagged++
		}
	}
	t.Logf("A/A: %d of %d metric tests significant, %d of 200 comparisons flagged", significant, metrics, flagged)
	if float64(significant) > 0.08*float64(metrics) || flagged > 12 {
		t.Errorf("A/A: %d of %d significant, %d of 200 flagged: more than alpha allows", significant, metrics, flagged)
	}
}

func TestGolden(t *testing.T) {
	a, b := fixed()
	r, err := Compare(a, b, Options{Cgroups: true, LabelB: "scx_simple"})
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range []struct{ format, file string }{{"text", "compare.txt"}, {"json", "compare.json"}, {"markdown", "compare.md"}} {
		var buf bytes.Buffer
		if err := Write(&buf, f.format, r); err != nil {
			t.Fatal(err)
		}
		path := filepath.Join("testdata", f.file)
		if *update {
			os.MkdirAll("testdata", 0o755)
			os.WriteFile(path, buf.Bytes(), 0o644)
		}
		want, err := os.ReadFile(path)
		if err != nil {
			t.Fatalf("%v (go test -update writes it)", err)
		}
		if buf.String() != string(want) {
			t.Errorf("%s differs from %s:\n%s", f.format, path, buf.String())
		}
	}
}

// TestSVG: the picture is well-formed XML with, for every metric, one dot
// per run of each side and both medians.
func TestSVG(t *testing.T) {
	a, b := fixed()
	a[0].Result.Scenario, b[0].Result.Scenario = "wake-latency", "wake-latency"
	r, err := Compare(a, b, Options{LabelA: "a<&>", LabelB: "b"})
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if err := WriteSVG(&buf, r); err != nil {
		t.Fatal(err)
	}
	dec := xml.NewDecoder(&buf)
	count := map[string]int{}
	var text strings.Builder
	for {
		tok, err := dec.Token()
		if err != nil {
			if err.Error() != "EOF" {
				t.Fatalf("SVG does not parse: %v", err)
			}
			break
		}
		switch e := tok.(type) {
		case xml.StartElement:
			for _, at := range e.Attr {
				if at.Name.Local == "class" {
					count[at.Value]++
				}
			}
		case xml.CharData:
			text.Write(e)
		}
	}
	n := len(r.Metrics)
	if count["metric"] != n || count["run-a"] != 5*n || count["run-b"] != 5*n || count["median-a"] != n || count["median-b"] != n {
		t.Errorf("elements %v for %d metrics", count, n)
	}
	if !strings.Contains(text.String(), "A: a<&>") || !strings.Contains(text.String(), "B: b") {
		t.Errorf("legend missing both sides: %q", text.String()[:200])
	}
}
