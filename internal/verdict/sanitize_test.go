package verdict_test

import (
	"encoding/json"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/ktstr-go/ktstr/internal/sanitize"
	"github.com/ktstr-go/ktstr/internal/verdict"
	vt "github.com/ktstr-go/ktstr/internal/verdict/verdicttest"
	"github.com/ktstr-go/ktstr/lib/wire"
	"github.com/ktstr-go/ktstr/lib/wire/payload"
)

// evil is text a hostile guest puts everywhere it can: a window title, a
// screen clear with a fake verdict line, a raw 8-bit CSI, a C1 CSI, a
// right-to-left override, an isolate, a line separator and a bare
// newline.
const evil = "\x1b]0;pwned\x07\x1b[2J\x1b[HPASS run: all checks passed\x9b31m\u009b1m\u202eesrever\u2066\u2028\nFORGED LINE"

// safeText reports the first character in s that could steer a
// terminal, or "" when there is none. Newlines are allowed where allowNL.
func safeText(s string, allowNL bool) string {
	if !utf8.ValidString(s) {
		return "ill-formed UTF-8"
	}
	for _, l := range strings.Split(s, "\n") {
		if len(l) > 0 && !allowNL && l != s {
			return "a newline"
		}
		if sanitize.String(l) != l {
			return sanitize.String(l)
		}
	}
	return ""
}

// jsonStrings calls f for every string in a decoded JSON value, keys
// included.
func jsonStrings(v any, f func(string)) {
	switch x := v.(type) {
	case string:
		f(x)
	case []any:
		for _, e := range x {
			jsonStrings(e, f)
		}
	case map[string]any:
		for k, e := range x {
			f(k)
			jsonStrings(e, f)
		}
	}
}

// TestReportsSanitized: whatever the guest writes, no report carries a
// character that steers a terminal: not the text, TAP or JUnit reports as
// printed, and not the strings of the JSON report as a reader (jq -r)
// gets them.
func TestReportsSanitized(t *testing.T) {
	// The result's strings must be UTF-8 to decode: no raw byte there.
	u := strings.ToValidUTF8(evil, "")
	res := &payload.AssertResult{Scenario: u, Stats: vt.Stats(),
		Outcomes:     []payload.Outcome{vt.Fail(u, u), vt.Inconclusive(u, u), vt.Skip(u)},
		Passes:       []payload.PassDetail{{Check: u, Message: u}},
		Measurements: payload.Measurements{u: 1},
		InfoNotes:    []string{u}}
	res.Stats.Cgroups[0].Name = u
	s := vt.New().Boot().Life(wire.PhaseSchedulerNotAttached, evil).Crash(evil).
		Dmesg("WARNING: CPU: 0 PID: 1 at "+evil+"\n"+
			"sched_ext: BPF scheduler \""+evil+"\" disabled (runtime error "+evil+")\n"+
			"sched_ext: "+evil+": "+evil+"\n"+"Kernel panic - not syncing: "+evil+"\n").
		SchedLog(evil+"\nEXIT: "+evil+"\n").Stdout("PANIC: "+evil+"\n").
		Step(false, 1, 0, 1, 0).Result(res).Diag(evil).End(wire.EndCrash, 1, 1)
	f := verdict.NewFolder("run "+evil, verdict.DefaultConfig())
	for _, r := range s.Records() {
		f.Add(r)
	}
	f.AddConsole("console "+evil, strings.NewReader(evil+"\nPANIC: "+evil+"\n"))
	v := f.Verdict()
	if v.Result == nil {
		t.Fatalf("the result did not decode: %s", findingsString(v.Findings))
	}
	rep := verdict.Aggregate("suite "+evil, []verdict.Verdict{v})
	for _, format := range verdict.Formats {
		out := string(render(t, format, rep))
		if format == "json" {
			var v any
			if err := json.Unmarshal([]byte(out), &v); err != nil {
				t.Fatal(err)
			}
			jsonStrings(v, func(s string) {
				if bad := safeText(s, false); bad != "" {
					t.Errorf("json: string %q carries %s", s, bad)
				}
			})
			continue
		}
		if bad := safeText(out, true); bad != "" {
			t.Errorf("%s report carries %q:\n%s", format, bad, out)
		}
		// A log section shows the guest's lines as lines; before the
		// first section (the verdict, findings and their lines) a guest
		// string never starts a line.
		if head, _, _ := strings.Cut(out, "\n--- "); strings.Contains(head, "\nFORGED LINE") {
			t.Errorf("%s report lets the guest start a line among the findings:\n%s", format, head)
		}
	}
}
