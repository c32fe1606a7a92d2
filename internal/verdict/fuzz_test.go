package verdict_test

import (
	"bytes"
	"encoding/json"
	"encoding/xml"
	"strings"
	"testing"

	"github.com/ktstr-go/ktstr/internal/verdict"
	vt "github.com/ktstr-go/ktstr/internal/verdict/verdicttest"
	"github.com/ktstr-go/ktstr/lib/wire/payload"
)

// checkReports renders rep in every format and checks each is well
// formed: JSON valid, JUnit well-formed XML, TAP parseable, and none of
// them carrying a character that steers a terminal.
func checkReports(t *testing.T, rep verdict.Report) {
	t.Helper()
	if !json.Valid(render(t, "json", rep)) {
		t.Fatal("JSON report is not valid JSON")
	}
	var n node
	if err := xml.Unmarshal(render(t, "junit", rep), &n); err != nil {
		t.Fatalf("JUnit report is not well-formed: %v", err)
	}
	if _, err := parseTAP(string(render(t, "tap", rep))); err != nil {
		t.Fatalf("TAP report does not parse: %v", err)
	}
	for _, format := range []string{"text", "tap", "junit"} {
		if bad := safeText(string(render(t, format, rep)), true); bad != "" {
			t.Fatalf("%s report carries %q", format, bad)
		}
	}
	var v any
	json.Unmarshal(render(t, "json", rep), &v)
	jsonStrings(v, func(s string) {
		if bad := safeText(s, false); bad != "" {
			t.Fatalf("JSON report string %q carries %q", s, bad)
		}
	})
}

func FuzzFold(f *testing.F) {
	for _, name := range vt.Names() {
		s := vt.Scenarios()[name].Stream
		f.Add(s.Bytes(false))
		f.Add(s.Bytes(true))
	}
	f.Add([]byte("{\"v\":1,\"kind\":\"entry\"}\n{"))
	// The agent's labelled scheduler log and a result naming a scheduler
	// that detached.
	f.Add(vt.Base().SchedLog("===SCHED_OUTPUT_START===\n[    1.000000] stderr: libbpf: failed to open system Kconfig\n" +
		"[    2.000000] ktstr: 7 lines of output dropped\n[ 3.0] stdout: x\n===SCHED_OUTPUT_END===\n").
		Result(&payload.AssertResult{Outcomes: []payload.Outcome{vt.Fail(payload.KindSchedulerDetached, "gone")},
			Scheduler:        &payload.SchedulerInfo{Binary: "x", Ops: "simple", Detached: &payload.SchedDetach{AtMS: 1, How: "detached"}},
			StatsAfterDetach: &payload.ScenarioStats{Workers: 1}}).Finish().Bytes(false))
	f.Fuzz(func(t *testing.T, data []byte) {
		v := verdict.Fold("fuzz", verdict.DefaultConfig(), bytes.NewReader(data)).Verdict()
		found := false
		for _, s := range verdict.Statuses {
			found = found || v.Status == s
		}
		if !found || v.ExitStatus != v.Status.ExitCode() {
			t.Fatalf("status %q exit %d", v.Status, v.ExitStatus)
		}
		if v.Status.OK() && (v.Result == nil || v.Counts.UnreadableAt != 0) {
			t.Fatalf("%s without a decoded result or with unreadable records", v.Status)
		}
		checkReports(t, verdict.Aggregate("fuzz", []verdict.Verdict{v}))
	})
}

func FuzzConsole(f *testing.F) {
	for _, sc := range vt.Scenarios() {
		for _, text := range sc.Consoles {
			f.Add(text)
		}
	}
	f.Add("PANIC:\n")
	f.Add("[ 1.0] sched_ext: BPF scheduler \"x\" disabled (runtime error)\n[ 1.0] sched_ext: x: \x1b[2J")
	f.Add("WARNING: CPU: 0 PID: 0 at \xff\xfe")
	f.Fuzz(func(t *testing.T, text string) {
		fo := verdict.NewFolder("fuzz", verdict.DefaultConfig())
		for _, r := range vt.Base().Outcomes(vt.Pass()).Finish().Records() {
			fo.Add(r)
		}
		if err := fo.AddConsole("console.log", strings.NewReader(text)); err != nil {
			t.Fatal(err)
		}
		v := fo.Verdict()
		if strings.Contains(text, "PANIC:") && v.Cause != verdict.CauseCrash {
			// Only a line that starts with PANIC: (after spaces) counts.
			for _, l := range strings.Split(text, "\n") {
				if strings.HasPrefix(strings.TrimSpace(l), "PANIC:") {
					t.Fatalf("PANIC line %q did not give a crash: %s", l, v.Reason)
				}
			}
		}
		checkReports(t, verdict.Aggregate("fuzz", []verdict.Verdict{v}))
	})
}
