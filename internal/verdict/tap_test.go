package verdict_test

import (
	"encoding/json"
	"fmt"
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
	plan   int
	points []tapPoint
}

var (
	tapPlanRe  = regexp.MustCompile(`^1\.\.(\d+)(?: # .*)?$`)
	tapPointRe = regexp.MustCompile(`^(ok|not ok)(?: (\d+))?(?: - (.*))?$`)
	yamlKeyRe  = regexp.MustCompile(`^  ([a-z_]+):(?: (.*))?$`)
	yamlItemRe = regexp.MustCompile(`^    - (.*)$`)
)

// parseTAP14 is a small TAP version 14 parser, strict about what
// ktstr-verdict writes: the version line, one plan, test points numbered
// 1..N, escaped descriptions, SKIP/TODO directives, comments, and YAML
// diagnostic blocks ("  ---" ... "  ...") right after a test point whose
// values are JSON scalars or lists of them.
func parseTAP14(text string) (*tapDoc, error) {
	if !strings.HasSuffix(text, "\n") {
		return nil, fmt.Errorf("does not end with a newline")
	}
	lines := strings.Split(strings.TrimSuffix(text, "\n"), "\n")
	if len(lines) == 0 || lines[0] != "TAP version 14" {
		return nil, fmt.Errorf("line 1: want %q", "TAP version 14")
	}
	doc := &tapDoc{plan: -1}
	for i := 1; i < len(lines); i++ {
		l := lines[i]
		switch {
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
		"no version":      "1..1\nok 1 - a\n",
		"plan mismatch":   "TAP version 14\n1..2\nok 1 - a\n",
		"out of sequence": "TAP version 14\n1..2\nok 2 - a\nok 1 - b\n",
		"unescaped hash":  "TAP version 14\n1..1\nok 1 - a # b\n",
		"open yaml":       "TAP version 14\n1..1\nnot ok 1 - a\n  ---\n  x: 1\n",
		"bad yaml":        "TAP version 14\n1..1\nnot ok 1 - a\n  ---\n  x: unquoted words\n  ...\n",
		"two plans":       "TAP version 14\n1..1\nok 1 - a\n1..1\n",
	}
	for name, text := range bad {
		if _, err := parseTAP14(text); err == nil {
			t.Errorf("%s: parseTAP14 accepted %q", name, text)
		}
	}
	if _, err := parseTAP14("TAP version 14\n1..1\nok 1 - a \\# b # SKIP why\n# end\n"); err != nil {
		t.Errorf("parseTAP14 rejected valid TAP: %v", err)
	}
}

func TestTAP(t *testing.T) {
	reps := goldenReports(t)
	reps["hostile"] = hostileReport(t)
	for name, rep := range reps {
		t.Run(name, func(t *testing.T) {
			out := string(render(t, "tap", rep))
			doc, err := parseTAP14(out)
			if err != nil {
				t.Fatalf("parseTAP14: %v\n%s", err, out)
			}
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
		})
	}
}

// oneLineText is how the TAP description carries a run name.
func oneLineText(s string) string {
	return sanitize.String(strings.NewReplacer("\r\n", " ", "\n", " ", "\r", " ").Replace(s))
}
