package verdict_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/ktstr-go/ktstr/internal/sanitize"
	"github.com/ktstr-go/ktstr/internal/verdict"
)

// tapPoint is one parsed test point.
type tapPoint struct {
	ok        bool
	num       int
	desc      string // unescaped
	directive string // "SKIP", "TODO" or ""
	reason    string
	yaml      map[string]any
}

type tapDoc struct {
	version int
	plan    int
	points  []tapPoint
	// subtests are the subtest documents, by the number of the test
	// point they belong to.
	subtests map[int]*tapDoc
}

var (
	tapPlanRe  = regexp.MustCompile(`^1\.\.(\d+)(?: # .*)?$`)
	tapPointRe = regexp.MustCompile(`^(ok|not ok)(?: (\d+))?(?: - (.*))?$`)
	yamlKeyRe  = regexp.MustCompile(`^  ([a-z_]+):(?: (.*))?$`)
	yamlItemRe = regexp.MustCompile(`^    - (.*)$`)
)

// parseTAP is a small TAP parser, strict about what ktstr-verdict
// writes: the version line (13 or 14), one plan, test points numbered
// 1..N, escaped descriptions, SKIP/TODO directives, comments, YAML
// diagnostic blocks ("  ---" ... "  ...") right after a test point whose
// values are JSON scalars or lists of them, and subtests: a "# Subtest:
// NAME" comment, a document indented four spaces (no version line), then
// the test point NAME.
func parseTAP(text string) (*tapDoc, error) {
	if !strings.HasSuffix(text, "\n") {
		return nil, fmt.Errorf("does not end with a newline")
	}
	lines := strings.Split(strings.TrimSuffix(text, "\n"), "\n")
	v := 0
	switch lines[0] {
	case "TAP version 13":
		v = 13
	case "TAP version 14":
		v = 14
	default:
		return nil, fmt.Errorf("line 1: want TAP version 13 or 14, got %q", lines[0])
	}
	doc, err := parseTAPBody(lines[1:])
	if err != nil {
		return nil, err
	}
	doc.version = v
	return doc, nil
}

func parseTAPBody(lines []string) (*tapDoc, error) {
	doc := &tapDoc{plan: -1, subtests: map[int]*tapDoc{}}
	var pending *tapDoc // a subtest waiting for its test point
	pendingName := ""
	for i := 0; i < len(lines); i++ {
		l := lines[i]
		switch {
		case strings.HasPrefix(l, "# Subtest: "):
			if pending != nil {
				return nil, fmt.Errorf("line %d: subtest without its test point", i+1)
			}
			j := i + 1
			var body []string
			for ; j < len(lines) && strings.HasPrefix(lines[j], "    "); j++ {
				body = append(body, strings.TrimPrefix(lines[j], "    "))
			}
			sub, err := parseTAPBody(body)
			if err != nil {
				return nil, fmt.Errorf("line %d: subtest: %v", i+2, err)
			}
			pending, pendingName = sub, strings.TrimPrefix(l, "# Subtest: ")
			i = j - 1
		case strings.HasPrefix(l, "#"):
			continue // comment
		case tapPlanRe.MatchString(l):
			if doc.plan >= 0 {
				return nil, fmt.Errorf("line %d: second plan", i+1)
			}
			if len(doc.points) > 0 && i != len(lines)-1 && !allComments(lines[i+1:]) {
				return nil, fmt.Errorf("line %d: plan in the middle", i+1)
			}
			doc.plan, _ = strconv.Atoi(tapPlanRe.FindStringSubmatch(l)[1])
		case tapPointRe.MatchString(l):
			m := tapPointRe.FindStringSubmatch(l)
			p := tapPoint{ok: m[1] == "ok"}
			if m[2] == "" {
				return nil, fmt.Errorf("line %d: test point without a number", i+1)
			}
			p.num, _ = strconv.Atoi(m[2])
			if p.num != len(doc.points)+1 {
				return nil, fmt.Errorf("line %d: test point %d out of sequence", i+1, p.num)
			}
			desc, dir, reason, err := splitDirective(m[3])
			if err != nil {
				return nil, fmt.Errorf("line %d: %v", i+1, err)
			}
			p.desc, p.directive, p.reason = desc, dir, reason
			if pending != nil {
				if pendingName != p.desc {
					return nil, fmt.Errorf("line %d: subtest %q before test point %q", i+1, pendingName, p.desc)
				}
				doc.subtests[p.num] = pending
				pending = nil
			}
			if i+1 < len(lines) && lines[i+1] == "  ---" {
				end := -1
				for j := i + 2; j < len(lines); j++ {
					if lines[j] == "  ..." {
						end = j
						break
					}
				}
				if end < 0 {
					return nil, fmt.Errorf("line %d: YAML block not closed", i+2)
				}
				y, err := parseYAML(lines[i+2 : end])
				if err != nil {
					return nil, fmt.Errorf("line %d: YAML: %v", i+3, err)
				}
				p.yaml = y
				i = end
			}
			doc.points = append(doc.points, p)
		case l == "":
			return nil, fmt.Errorf("line %d: empty line", i+1)
		default:
			return nil, fmt.Errorf("line %d: not TAP: %q", i+1, l)
		}
	}
	if pending != nil {
		return nil, fmt.Errorf("subtest %q without its test point", pendingName)
	}
	if doc.plan < 0 {
		return nil, fmt.Errorf("no plan")
	}
	if doc.plan != len(doc.points) {
		return nil, fmt.Errorf("plan 1..%d but %d test points", doc.plan, len(doc.points))
	}
	return doc, nil
}

func allComments(ls []string) bool {
	for _, l := range ls {
		if !strings.HasPrefix(l, "#") {
			return false
		}
	}
	return true
}

// splitDirective splits a description at its first unescaped "#" and
// unescapes "\#" and "\\".
func splitDirective(s string) (desc, dir, reason string, err error) {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c == '\\' && i+1 < len(s) && (s[i+1] == '#' || s[i+1] == '\\'):
			b.WriteByte(s[i+1])
			i++
		case c == '\\':
			return "", "", "", fmt.Errorf("lone backslash in %q", s)
		case c == '#':
			d := strings.TrimSpace(s[i+1:])
			word, rest, _ := strings.Cut(d, " ")
			switch strings.ToUpper(word) {
			case "SKIP", "TODO":
				return strings.TrimSpace(b.String()), strings.ToUpper(word), rest, nil
			}
			return "", "", "", fmt.Errorf("unescaped # without a directive in %q", s)
		default:
			b.WriteByte(c)
		}
	}
	return b.String(), "", "", nil
}

func parseYAML(lines []string) (map[string]any, error) {
	out := map[string]any{}
	var list *[]any
	for _, l := range lines {
		if m := yamlItemRe.FindStringSubmatch(l); m != nil && list != nil {
			var v any
			if err := json.Unmarshal([]byte(m[1]), &v); err != nil {
				return nil, fmt.Errorf("list item %q: %v", m[1], err)
			}
			*list = append(*list, v)
			continue
		}
		m := yamlKeyRe.FindStringSubmatch(l)
		if m == nil {
			return nil, fmt.Errorf("not a key line: %q", l)
		}
		if _, dup := out[m[1]]; dup {
			return nil, fmt.Errorf("duplicate key %q", m[1])
		}
		if m[2] == "" {
			l := []any{}
			list = &l
			out[m[1]] = list
			continue
		}
		list = nil
		var v any
		if err := json.Unmarshal([]byte(m[2]), &v); err != nil {
			return nil, fmt.Errorf("key %s value %q: %v", m[1], m[2], err)
		}
		out[m[1]] = v
	}
	return out, nil
}

func TestTAPParserRejects(t *testing.T) {
	bad := map[string]string{
		"no version":        "1..1\nok 1 - a\n",
		"version 12":        "TAP version 12\n1..1\nok 1 - a\n",
		"plan mismatch":     "TAP version 13\n1..2\nok 1 - a\n",
		"out of sequence":   "TAP version 13\n1..2\nok 2 - a\nok 1 - b\n",
		"unescaped hash":    "TAP version 13\n1..1\nok 1 - a # b\n",
		"open yaml":         "TAP version 13\n1..1\nnot ok 1 - a\n  ---\n  x: 1\n",
		"bad yaml":          "TAP version 13\n1..1\nnot ok 1 - a\n  ---\n  x: unquoted words\n  ...\n",
		"two plans":         "TAP version 13\n1..1\nok 1 - a\n1..1\n",
		"orphan subtest":    "TAP version 13\n1..0\n# Subtest: a\n    1..1\n    ok 1 - c\n",
		"subtest mismatch":  "TAP version 13\n1..1\n# Subtest: a\n    1..1\n    ok 1 - c\nok 1 - b\n",
		"bad subtest plan":  "TAP version 13\n1..1\n# Subtest: a\n    1..2\n    ok 1 - c\nok 1 - a\n",
		"subtest unescaped": "TAP version 13\n1..1\n# Subtest: a\n    1..1\n    ok 1 - c # d\nok 1 - a\n",
	}
	for name, text := range bad {
		if _, err := parseTAP(text); err == nil {
			t.Errorf("%s: parseTAP accepted %q", name, text)
		}
	}
	for _, text := range []string{
		"TAP version 14\n1..1\nok 1 - a \\# b # SKIP why\n# end\n",
		"TAP version 13\n1..1\n# Subtest: a\n    1..1\n    not ok 1 - c\nnot ok 1 - a\n",
	} {
		if _, err := parseTAP(text); err != nil {
			t.Errorf("parseTAP rejected valid TAP %q: %v", text, err)
		}
	}
}

func TestTAP(t *testing.T) {
	reps := goldenReports(t)
	reps["hostile"] = hostileReport(t)
	for _, version := range []int{0, 13, 14} {
		for name, rep := range reps {
			t.Run(fmt.Sprintf("%s/v%d", name, version), func(t *testing.T) {
				var b strings.Builder
				if err := verdict.Write(&b, "tap", rep, verdict.TextOptions{TAPVersion: version}); err != nil {
					t.Fatal(err)
				}
				out := b.String()
				doc, err := parseTAP(out)
				if err != nil {
					t.Fatalf("parseTAP: %v\n%s", err, out)
				}
				if want := max(version, 13); doc.version != want {
					t.Errorf("TAP version %d, want %d", doc.version, want)
				}
				checkTAP(t, doc, rep)
			})
		}
	}
}

func TestTAPVersionRefused(t *testing.T) {
	for _, v := range []int{-1, 12, 15} {
		if err := verdict.WriteTAPVersion(&strings.Builder{}, verdict.Report{}, v); err == nil {
			t.Errorf("WriteTAPVersion(%d) = nil, want an error", v)
		}
	}
}

// checkTAP checks doc against rep: a point per run, ok as the status
// says, the YAML block of a failed run, and the run's checks as a
// subtest: every pass and every finding, not ok for each finding that is
// not OK.
func checkTAP(t *testing.T, doc *tapDoc, rep verdict.Report) {
	t.Helper()
	if len(doc.points) != len(rep.Runs) {
		t.Fatalf("%d test points, want %d", len(doc.points), len(rep.Runs))
	}
	for i, p := range doc.points {
		v := rep.Runs[i]
		if p.ok != v.Status.OK() {
			t.Errorf("point %d ok=%v for %s", i+1, p.ok, v.Status)
		}
		if want := oneLineText(v.Name); p.desc != want {
			t.Errorf("point %d description %q, want %q", i+1, p.desc, want)
		}
		if (p.directive == "SKIP") != (v.Status == verdict.StatusSkip) || p.directive == "TODO" {
			t.Errorf("point %d directive %q for %s", i+1, p.directive, v.Status)
		}
		var passes, failing int
		if v.Result != nil {
			passes = min(len(v.Result.Passes), 50) // the subtest lists the first 50
		}
		for _, f := range v.Findings {
			if !f.Status.OK() {
				failing++
			}
		}
		sub := doc.subtests[i+1]
		switch {
		case sub == nil && passes+len(v.Findings) > 0:
			t.Errorf("point %d: no subtest for %d passes and %d findings", i+1, passes, len(v.Findings))
		case sub != nil:
			notOK := 0
			for _, sp := range sub.points {
				if !sp.ok {
					notOK++
				}
			}
			if len(sub.points) != passes+len(v.Findings) || notOK != failing {
				t.Errorf("point %d: subtest has %d points (%d not ok), want %d (%d)", i+1, len(sub.points), notOK, passes+len(v.Findings), failing)
			}
			if v.Result != nil {
				for k, ps := range v.Result.Passes[:passes] {
					if want := oneLineText(ps.Check + ": " + ps.Message); sub.points[k].desc != want || !sub.points[k].ok {
						t.Errorf("point %d subtest %d: %q ok=%v, want %q ok", i+1, k+1, sub.points[k].desc, sub.points[k].ok, want)
					}
				}
			}
		}
		if v.Status.OK() {
			continue
		}
		if p.yaml == nil {
			t.Fatalf("point %d: no YAML block for %s", i+1, v.Status)
		}
		if p.yaml["status"] != string(v.Status) || p.yaml["cause"] != v.Cause || p.yaml["message"] != v.Reason ||
			p.yaml["exit_status"] != float64(v.ExitStatus) {
			t.Errorf("point %d YAML %v does not match the verdict %s %s %q", i+1, p.yaml, v.Status, v.Cause, v.Reason)
		}
		if fs, _ := p.yaml["findings"].(*[]any); fs == nil || len(*fs) != len(v.Findings) {
			t.Errorf("point %d YAML findings %v, want %d", i+1, p.yaml["findings"], len(v.Findings))
		}
	}
}

// TestTAPProve feeds the reports to Perl's TAP::Harness (prove), the TAP
// consumer Debian ships: it must parse every report without a parse
// error, and pass exactly when every run passed. Debian 12's prove
// (TAP::Harness 3.44) knows no TAP version above 13.
func TestTAPProve(t *testing.T) {
	prove, err := exec.LookPath("prove")
	if err != nil {
		t.Skip("prove not installed (Debian's perl package has it)")
	}
	reps := goldenReports(t)
	reps["hostile"] = hostileReport(t)
	dir := t.TempDir()
	for name, rep := range reps {
		t.Run(name, func(t *testing.T) {
			path := filepath.Join(dir, name+".tap")
			if err := os.WriteFile(path, render(t, "tap", rep), 0o644); err != nil {
				t.Fatal(err)
			}
			cmd := exec.Command(prove, "--exec", "cat", path)
			out, err := cmd.CombinedOutput()
			passed := err == nil
			if ee := (*exec.ExitError)(nil); err != nil && !errors.As(err, &ee) {
				t.Fatal(err)
			}
			if strings.Contains(string(out), "Parse errors") {
				t.Errorf("prove found parse errors:\n%s", out)
			}
			want := rep.Status.OK()
			if passed != want || !strings.Contains(string(out), map[bool]string{true: "Result: PASS", false: "Result: FAIL"}[want]) {
				t.Errorf("prove passed=%v, want %v (report %s)\n%s", passed, want, rep.Status, out)
			}
			failed := 0
			for _, v := range rep.Runs {
				if !v.Status.OK() {
					failed++
				}
			}
			m := regexp.MustCompile(`Tests: (\d+) Failed: (\d+)\)`).FindStringSubmatch(string(out))
			switch {
			case failed == 0 && m != nil:
				t.Errorf("prove counts failures in a report without any:\n%s", out)
			case failed > 0 && (m == nil || m[1] != strconv.Itoa(len(rep.Runs)) || m[2] != strconv.Itoa(failed)):
				t.Errorf("prove does not count %d of %d runs failed:\n%s", failed, len(rep.Runs), out)
			}
		})
	}
}

// oneLineText is how the TAP description carries a run name.
func oneLineText(s string) string {
	return sanitize.String(strings.NewReplacer("\r\n", " ", "\n", " ", "\r", " ").Replace(s))
}
