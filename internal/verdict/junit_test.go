package verdict_test

import (
	"bytes"
	"encoding/xml"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/ktstr-go/ktstr/internal/sanitize"
	"github.com/ktstr-go/ktstr/internal/verdict"
	vt "github.com/ktstr-go/ktstr/internal/verdict/verdicttest"
	"github.com/ktstr-go/ktstr/lib/wire"
)

// node is any XML element, kept whole for the structural check.
type node struct {
	XMLName  xml.Name
	Attrs    []xml.Attr `xml:",any,attr"`
	Children []node     `xml:",any"`
	Text     string     `xml:",chardata"`
}

func (n node) attr(name string) (string, bool) {
	for _, a := range n.Attrs {
		if a.Name.Local == name && a.Name.Space == "" {
			return a.Value, true
		}
	}
	return "", false
}

// elementRule is the part of the JUnit schema (Jenkins junit-4.xsd, with
// the attributes ktstr-verdict promises made required) that one element
// must satisfy.
type elementRule struct {
	required []string
	optional []string
	children []string // allowed child elements, in schema order
}

var junitSchema = map[string]elementRule{
	"testsuites": {required: []string{"name", "tests", "failures", "errors", "skipped", "time"}, optional: []string{"disabled"}, children: []string{"testsuite"}},
	"testsuite": {required: []string{"name", "tests", "failures", "errors", "skipped", "time"}, optional: []string{"disabled", "hostname", "id", "package", "timestamp"},
		children: []string{"properties", "testcase", "system-out", "system-err"}},
	"properties": {children: []string{"property"}},
	"property":   {required: []string{"name", "value"}},
	"testcase": {required: []string{"name", "classname", "time"}, optional: []string{"assertions", "status"},
		children: []string{"skipped", "error", "failure", "system-out", "system-err"}},
	"failure":    {required: []string{"message", "type"}},
	"error":      {required: []string{"message", "type"}},
	"skipped":    {optional: []string{"message"}},
	"system-out": {},
	"system-err": {},
}

var decimal = regexp.MustCompile(`^[0-9]+(\.[0-9]+)?$`)

// checkElement checks n and its subtree against junitSchema.
func checkElement(t *testing.T, path string, n node) {
	t.Helper()
	name := n.XMLName.Local
	rule, ok := junitSchema[name]
	if !ok {
		t.Errorf("%s: element <%s> is not in the schema", path, name)
		return
	}
	path += "/" + name
	allowed := map[string]bool{}
	for _, a := range append(append([]string{}, rule.required...), rule.optional...) {
		allowed[a] = true
	}
	for _, a := range n.Attrs {
		if !allowed[a.Name.Local] {
			t.Errorf("%s: attribute %q is not in the schema", path, a.Name.Local)
		}
	}
	for _, a := range rule.required {
		if _, ok := n.attr(a); !ok {
			t.Errorf("%s: required attribute %q missing", path, a)
		}
	}
	for _, a := range []string{"tests", "failures", "errors", "skipped"} {
		if v, ok := n.attr(a); ok {
			if _, err := strconv.ParseUint(v, 10, 31); err != nil {
				t.Errorf("%s: %s=%q is not a count", path, a, v)
			}
		}
	}
	if v, ok := n.attr("time"); ok && !decimal.MatchString(v) {
		t.Errorf("%s: time=%q is not a decimal", path, v)
	}
	// Children: allowed, in schema order, and in a testcase at most one
	// of skipped, error and failure.
	last := -1
	outcome := 0
	for _, c := range n.Children {
		i := indexOf(rule.children, c.XMLName.Local)
		if i < 0 {
			t.Errorf("%s: <%s> may not contain <%s>", path, name, c.XMLName.Local)
			continue
		}
		if i < last {
			t.Errorf("%s: <%s> out of schema order", path, c.XMLName.Local)
		}
		last = i
		if name == "testcase" && i <= 2 {
			outcome++
		}
		checkElement(t, path, c)
	}
	if outcome > 1 {
		t.Errorf("%s: %d of skipped/error/failure, want at most one", path, outcome)
	}
	if name == "testsuite" || name == "testsuites" {
		checkCounts(t, path, n)
	}
}

func indexOf(list []string, s string) int {
	for i, x := range list {
		if x == s {
			return i
		}
	}
	return -1
}

// checkCounts checks tests/failures/errors/skipped against the testcases.
func checkCounts(t *testing.T, path string, n node) {
	t.Helper()
	counts := map[string]int{}
	var walk func(node)
	walk = func(m node) {
		for _, c := range m.Children {
			switch c.XMLName.Local {
			case "testcase":
				counts["tests"]++
				for _, o := range c.Children {
					switch o.XMLName.Local {
					case "failure":
						counts["failures"]++
					case "error":
						counts["errors"]++
					case "skipped":
						counts["skipped"]++
					}
				}
			case "testsuite":
				walk(c)
			}
		}
	}
	walk(n)
	for _, a := range []string{"tests", "failures", "errors", "skipped"} {
		if v, _ := n.attr(a); v != strconv.Itoa(counts[a]) {
			t.Errorf("%s: %s=%q, but the testcases say %d", path, a, v, counts[a])
		}
	}
}

// junitDoc is how a CI consumer reads the report.
type junitDoc struct {
	XMLName xml.Name `xml:"testsuites"`
	Name    string   `xml:"name,attr"`
	Tests   int      `xml:"tests,attr"`
	Suites  []struct {
		Name  string `xml:"name,attr"`
		Cases []struct {
			Name    string `xml:"name,attr"`
			Class   string `xml:"classname,attr"`
			Time    string `xml:"time,attr"`
			Failure *struct {
				Message string `xml:"message,attr"`
				Type    string `xml:"type,attr"`
				Text    string `xml:",chardata"`
			} `xml:"failure"`
			Error *struct {
				Message string `xml:"message,attr"`
				Type    string `xml:"type,attr"`
				Text    string `xml:",chardata"`
			} `xml:"error"`
			Skipped *struct {
				Message string `xml:"message,attr"`
			} `xml:"skipped"`
			SystemOut string `xml:"system-out"`
		} `xml:"testcase"`
	} `xml:"testsuite"`
}

func hostileReport(t testing.TB) verdict.Report {
	nasty := "]]> <b>&amp;</b> \x00\x1b[31m\x7f \uFFFE \"quotes\" 'apos' # \\ \ttab"
	s := vt.New().Boot().Crash(nasty).Dmesg(nasty).SchedLog(nasty+"\n").
		Outcomes(vt.Fail("other", nasty)).End(wire.EndCrash, 1, 1)
	f := verdict.NewFolder("run "+nasty, verdict.DefaultConfig())
	for _, r := range s.Records() {
		f.Add(r)
	}
	f.AddConsole("console.log", strings.NewReader("PANIC: "+nasty+"\n"))
	return verdict.Aggregate("suite "+nasty, []verdict.Verdict{f.Verdict()})
}

func TestJUnitStructure(t *testing.T) {
	reps := goldenReports(t)
	reps["hostile"] = hostileReport(t)
	for name, rep := range reps {
		t.Run(name, func(t *testing.T) {
			out := render(t, "junit", rep)
			if !bytes.HasPrefix(out, []byte(xml.Header)) {
				t.Errorf("no XML declaration:\n%s", out)
			}
			var root node
			if err := xml.Unmarshal(out, &root); err != nil {
				t.Fatalf("not well-formed XML: %v\n%s", err, out)
			}
			checkElement(t, "", root)

			// What a consumer reads must be what the report says.
			var doc junitDoc
			if err := xml.Unmarshal(out, &doc); err != nil {
				t.Fatal(err)
			}
			if len(doc.Suites) != 1 || len(doc.Suites[0].Cases) != len(rep.Runs) {
				t.Fatalf("%d suites, want 1 with %d testcases", len(doc.Suites), len(rep.Runs))
			}
			for i, c := range doc.Suites[0].Cases {
				v := rep.Runs[i]
				if c.Name != xmlClean(v.Name) {
					t.Errorf("testcase %d name %q, want %q", i, c.Name, xmlClean(v.Name))
				}
				if want := xmlClean(fmt.Sprintf("%s %s: ", v.Status, sanitize.String(v.Name))); !strings.HasPrefix(c.SystemOut, want) {
					t.Errorf("testcase %d system-out does not start with %q:\n%s", i, want, c.SystemOut)
				}
				var msg, typ string
				switch {
				case c.Failure != nil:
					msg, typ = c.Failure.Message, c.Failure.Type
					if v.Status != verdict.StatusFail {
						t.Errorf("testcase %d: failure for %s", i, v.Status)
					}
				case c.Error != nil:
					msg, typ = c.Error.Message, c.Error.Type
					if v.Status != verdict.StatusInfra && v.Status != verdict.StatusInconclusive {
						t.Errorf("testcase %d: error for %s", i, v.Status)
					}
				case c.Skipped != nil:
					msg = c.Skipped.Message
					if v.Status != verdict.StatusSkip {
						t.Errorf("testcase %d: skipped for %s", i, v.Status)
					}
				default:
					if v.Status != verdict.StatusPass {
						t.Errorf("testcase %d: no outcome element for %s", i, v.Status)
					}
				}
				if msg != "" && msg != xmlClean(v.Reason) {
					t.Errorf("testcase %d message %q, want %q", i, msg, xmlClean(v.Reason))
				}
				if typ != "" && typ != v.Cause && typ != verdict.CauseInconclusive {
					t.Errorf("testcase %d type %q, want %q", i, typ, v.Cause)
				}
			}

			// Round trip: what encoding/xml reads back re-encodes to the same
			// document.
			again, err := xml.Marshal(doc)
			if err != nil {
				t.Fatal(err)
			}
			var doc2 junitDoc
			if err := xml.Unmarshal(again, &doc2); err != nil {
				t.Fatalf("re-encoded document does not parse: %v", err)
			}
			if d := cmp.Diff(doc, doc2); d != "" {
				t.Errorf("round trip differs (-first +second):\n%s", d)
			}
		})
	}
}

// xmlClean is what an attribute value reads back as: characters XML
// cannot carry become U+FFFD.
func xmlClean(s string) string {
	return strings.Map(func(r rune) rune {
		if r == '\t' || r == '\n' || r == '\r' || r >= 0x20 && r <= 0xD7FF || r >= 0xE000 && r <= 0xFFFD || r >= 0x10000 {
			return r
		}
		return '\uFFFD'
	}, s)
}
