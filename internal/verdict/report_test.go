package verdict_test

import (
	"bytes"
	"regexp"
	"strings"
	"testing"

	"github.com/ktstr-go/ktstr/internal/verdict"
	vt "github.com/ktstr-go/ktstr/internal/verdict/verdicttest"
	"github.com/ktstr-go/ktstr/lib/wire/payload"
)

var sgr = regexp.MustCompile("\x1b\\[[0-9;]*m")

// TestTextColor: colour only when asked, only SGR sequences the report
// itself chose, and the same text once they are removed.
func TestTextColor(t *testing.T) {
	for name, rep := range map[string]verdict.Report{"aggregate": goldenReports(t)["aggregate"], "hostile": hostileReport(t)} {
		var plain, colour bytes.Buffer
		if err := verdict.WriteText(&plain, rep, verdict.TextOptions{}); err != nil {
			t.Fatal(err)
		}
		if err := verdict.WriteText(&colour, rep, verdict.TextOptions{Color: true}); err != nil {
			t.Fatal(err)
		}
		if bytes.Contains(plain.Bytes(), []byte("\x1b")) {
			t.Errorf("%s: plain report has escapes", name)
		}
		if !sgr.Match(colour.Bytes()) {
			t.Errorf("%s: coloured report has no colour", name)
		}
		if got := sgr.ReplaceAllString(colour.String(), ""); got != plain.String() {
			t.Errorf("%s: coloured report differs from the plain one beyond colour", name)
		}
		if strings.Contains(sgr.ReplaceAllString(colour.String(), ""), "\x1b") {
			t.Errorf("%s: escape other than the report's own colours", name)
		}
	}
	// The verdict word carries the status colour.
	v := fold(vt.Base().Outcomes(vt.Fail("x", "y")).Finish(), verdict.DefaultConfig())
	var b bytes.Buffer
	verdict.WriteText(&b, verdict.Aggregate("t", []verdict.Verdict{v}), verdict.TextOptions{Color: true})
	if !strings.HasPrefix(b.String(), "\x1b[31;1mFAIL\x1b[0m t: ") {
		t.Errorf("verdict line %q, want a red FAIL", strings.SplitN(b.String(), "\n", 2)[0])
	}
}

func TestWriteUnknownFormat(t *testing.T) {
	if err := verdict.Write(&bytes.Buffer{}, "yaml", verdict.Report{}, verdict.TextOptions{}); err == nil {
		t.Error("Write(yaml) = nil, want an error")
	}
}

// TestTextPerf: the text report prints a cgroup's and the whole
// scenario's rates and latency percentiles, where measured.
func TestTextPerf(t *testing.T) {
	st := vt.Stats()
	lat := &payload.Latency{Count: 750, MeanNS: 5e6, P50NS: 1654783, P90NS: 12189695, P99NS: 68157439, P999NS: 260472139, MaxNS: 260472139, CV: 2.87}
	st.Cgroups[0].IterationRate, st.Cgroups[0].WorkRate, st.Cgroups[0].ThroughputCV, st.Cgroups[0].WakeLatency = 4500, 33.5, 0.83, lat
	st.IterationRate, st.TimerLatency = 4500, lat
	v := fold(vt.New().Result(&payload.AssertResult{Outcomes: []payload.Outcome{vt.Pass()}, Stats: st}).Finish(), verdict.DefaultConfig())
	var b bytes.Buffer
	verdict.WriteText(&b, verdict.Aggregate("t", []verdict.Verdict{v}), verdict.TextOptions{})
	for _, want := range []string{
		"\ncg0: iteration_rate=4500.0/s work_rate=33.5/s throughput_cv=0.830\n",
		"\ncg0: wake_latency n=750 p50=1654.8us p90=12189.7us p99=68157.4us p99.9=260472.1us max=260472.1us cv=2.87\n",
		"\nall: iteration_rate=4500.0/s work_rate=0.0/s throughput_cv=0.000\nall: timer_latency n=750 ",
	} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("text report lacks %q:\n%s", want, b.String())
		}
	}
	if n := strings.Count(b.String(), "latency n="); n != 2 {
		t.Errorf("%d latency lines, want 2 (cg0 wake, all timer)", n)
	}
}
