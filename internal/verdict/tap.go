package verdict

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"

	"github.com/ktstr-go/ktstr/internal/sanitize"
)

// TAP versions WriteTAPVersion writes: 13 (the default: what kselftest
// emits and what Perl's TAP::Harness 3.44, Debian 12's prove, reads) and
// 14.
const (
	TAPVersion13 = 13
	TAPVersion14 = 14
)

// WriteTAP writes rep as TAP version 13 (see WriteTAPVersion).
func WriteTAP(w io.Writer, rep Report) error {
	return WriteTAPVersion(w, rep, TAPVersion13)
}

// WriteTAPVersion writes rep as TAP version (13 or 14): a plan, one test
// point per run, "ok" for PASS and SKIP (with a SKIP directive), "not ok"
// for the rest with a YAML diagnostic block (status, exit_status, cause,
// message, bug_summary, findings). YAML values are written as JSON strings
// and numbers, which YAML reads as they are.
//
// Before a run's test point, its checks are a subtest, indented four
// spaces after a "# Subtest: NAME" comment: one point per check that
// passed ("ok N - CHECK: MESSAGE"; the first 50, then a comment that
// counts the rest) and one per finding ("not ok N -
// status cause/kind: MESSAGE", "ok N - ... # SKIP" for a skip), so that a
// CI shows which check failed. TAP 14 defines subtests this way; a TAP 13
// reader that does not know them (TAP::Harness) passes over the indented
// lines, and the run's own point still says whether it passed. With
// several runs a final comment line gives the aggregate.
func WriteTAPVersion(w io.Writer, rep Report, version int) error {
	if version != TAPVersion13 && version != TAPVersion14 {
		return fmt.Errorf("verdict: TAP version %d: want 13 or 14", version)
	}
	var b strings.Builder
	fmt.Fprintf(&b, "TAP version %d\n", version)
	fmt.Fprintf(&b, "1..%d\n", len(rep.Runs))
	for i, v := range rep.Runs {
		writeTAPSubtest(&b, v)
		writeTAPPoint(&b, i+1, v)
	}
	if len(rep.Runs) != 1 {
		fmt.Fprintf(&b, "# %s %s: %s\n", rep.Status, oneLine(rep.Name), oneLine(rep.Reason))
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// writeTAPPoint writes run v's test point, number n.
func writeTAPPoint(b *strings.Builder, n int, v Verdict) {
	switch v.Status {
	case StatusPass:
		fmt.Fprintf(b, "ok %d - %s\n", n, tapDesc(v.Name))
	case StatusSkip:
		fmt.Fprintf(b, "ok %d - %s # SKIP %s\n", n, tapDesc(v.Name), oneLine(v.Reason))
	default:
		fmt.Fprintf(b, "not ok %d - %s\n", n, tapDesc(v.Name))
		b.WriteString("  ---\n")
		fmt.Fprintf(b, "  status: %s\n", yamlString(string(v.Status)))
		fmt.Fprintf(b, "  exit_status: %d\n", v.ExitStatus)
		fmt.Fprintf(b, "  cause: %s\n", yamlString(v.Cause))
		fmt.Fprintf(b, "  message: %s\n", yamlString(v.Reason))
		if v.BugSummary != "" {
			fmt.Fprintf(b, "  bug_summary: %s\n", yamlString(v.BugSummary))
		}
		fmt.Fprintf(b, "  stage: %s\n", yamlString(v.Stage))
		if len(v.Findings) > 0 {
			b.WriteString("  findings:\n")
			for _, f := range v.Findings {
				fmt.Fprintf(b, "    - %s\n", yamlString(findingLine(f, painter{})))
			}
		}
		b.WriteString("  ...\n")
	}
}

// writeTAPSubtest writes run v's checks as a subtest; nothing when it
// has none to list.
func writeTAPSubtest(b *strings.Builder, v Verdict) {
	type point struct {
		ok         bool
		desc, skip string
	}
	var pts []point
	passes := 0
	if v.Result != nil {
		// The guest decides how many passes it lists: the subtest shows
		// as many as the text report and counts the rest.
		passes = len(v.Result.Passes)
		for _, p := range v.Result.Passes[:min(passes, textListMax)] {
			pts = append(pts, point{ok: true, desc: p.Check + ": " + p.Message})
		}
	}
	for _, f := range v.Findings {
		pt := point{ok: f.Status.OK(), desc: findingLine(f, painter{})}
		if f.Status == StatusSkip {
			pt.skip = f.Message
		}
		pts = append(pts, pt)
	}
	if len(pts) == 0 {
		return
	}
	fmt.Fprintf(b, "# Subtest: %s\n", oneLine(v.Name))
	fmt.Fprintf(b, "    1..%d\n", len(pts))
	for i, pt := range pts {
		b.WriteString("    ")
		if !pt.ok {
			b.WriteString("not ")
		}
		fmt.Fprintf(b, "ok %d - %s", i+1, tapDesc(pt.desc))
		if pt.skip != "" {
			b.WriteString(" # SKIP " + oneLine(pt.skip))
		}
		b.WriteString("\n")
	}
	if n := passes - textListMax; n > 0 {
		fmt.Fprintf(b, "    # ... and %d more %s\n", n, pluralWord(int64(n), "passed check"))
	}
}

// tapDesc escapes a test point description: "\" and "#" are escaped and
// line breaks become spaces.
func tapDesc(s string) string {
	s = oneLine(s)
	s = strings.ReplaceAll(s, `\`, `\\`)
	return strings.ReplaceAll(s, "#", `\#`)
}

func oneLine(s string) string {
	return sanitize.String(strings.NewReplacer("\r\n", " ", "\n", " ", "\r", " ").Replace(s))
}

// yamlString writes s as a double-quoted scalar (JSON's escaping is a
// subset of YAML's).
func yamlString(s string) string {
	var b strings.Builder
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	enc.Encode(s) // a string always encodes
	return strings.TrimSuffix(b.String(), "\n")
}
