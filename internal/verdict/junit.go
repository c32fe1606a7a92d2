package verdict

import (
	"encoding/xml"
	"fmt"
	"io"
	"strings"

	"github.com/ktstr-go/ktstr/internal/sanitize"
)

// The JUnit XML report: the structure of the Jenkins junit-4 schema
// (testsuites > testsuite > testcase, with failure, error, skipped and
// system-out), which GitLab, GitHub reporters and Jenkins read.
//
//	FAIL          <failure type="CAUSE" message="REASON">findings</failure>
//	ERROR         <error type="CAUSE" message="REASON">findings</error>
//	INCONCLUSIVE  <error type="inconclusive" message="REASON">findings</error>
//	SKIP          <skipped message="REASON"/>
//	PASS          (no child but system-out)
//
// Every testcase carries the run's text report (without colour) in
// system-out. time is the VM's run time from the VEND entry (0 without
// one); there is no timestamp, so the same recording gives the same XML.

type junitSuites struct {
	XMLName  xml.Name     `xml:"testsuites"`
	Name     string       `xml:"name,attr"`
	Tests    int          `xml:"tests,attr"`
	Failures int          `xml:"failures,attr"`
	Errors   int          `xml:"errors,attr"`
	Skipped  int          `xml:"skipped,attr"`
	Time     string       `xml:"time,attr"`
	Suites   []junitSuite `xml:"testsuite"`
}

type junitSuite struct {
	Name       string          `xml:"name,attr"`
	Tests      int             `xml:"tests,attr"`
	Failures   int             `xml:"failures,attr"`
	Errors     int             `xml:"errors,attr"`
	Skipped    int             `xml:"skipped,attr"`
	Time       string          `xml:"time,attr"`
	Properties junitProperties `xml:"properties"`
	Cases      []junitCase     `xml:"testcase"`
}

type junitProperties struct {
	Props []junitProperty `xml:"property"`
}

type junitProperty struct {
	Name  string `xml:"name,attr"`
	Value string `xml:"value,attr"`
}

type junitCase struct {
	Name      string        `xml:"name,attr"`
	Classname string        `xml:"classname,attr"`
	Time      string        `xml:"time,attr"`
	Failure   *junitProblem `xml:"failure,omitempty"`
	Error     *junitProblem `xml:"error,omitempty"`
	Skipped   *junitSkipped `xml:"skipped,omitempty"`
	SystemOut junitText     `xml:"system-out"`
}

type junitProblem struct {
	Message string `xml:"message,attr"`
	Type    string `xml:"type,attr"`
	Text    string `xml:",cdata"`
}

type junitSkipped struct {
	Message string `xml:"message,attr"`
}

type junitText struct {
	Text string `xml:",cdata"`
}

// xmlText replaces what XML 1.0 cannot carry even escaped (most control
// characters, U+FFFE, U+FFFF) with U+FFFD; CDATA sections hold the rest
// as it is.
func xmlText(s string) string {
	return strings.Map(func(r rune) rune {
		if r == '\t' || r == '\n' || r == '\r' || r >= 0x20 && r <= 0xD7FF || r >= 0xE000 && r <= 0xFFFD || r >= 0x10000 && r <= 0x10FFFF {
			return r
		}
		return '\uFFFD'
	}, s)
}

func junitTime(v Verdict) float64 {
	if v.VMEnd != nil {
		return v.VMEnd.Elapsed
	}
	return 0
}

// WriteJUnit writes rep as JUnit XML: one testsuite named after the
// report, one testcase per run.
func WriteJUnit(w io.Writer, rep Report) error {
	return WriteJUnitGroups(w, rep, []JUnitGroup{{Name: rep.Name, Runs: rep.Runs}})
}

// JUnitGroup is a testsuite of WriteJUnitGroups: a name and its runs.
type JUnitGroup struct {
	Name string
	Runs []Verdict
}

// WriteJUnitGroups writes one testsuite per group, one testcase per run
// (its classname the group's name), under a testsuites element that
// carries rep's name and the totals. Each testsuite's properties give
// rep's status, exit status and reason.
func WriteJUnitGroups(w io.Writer, rep Report, groups []JUnitGroup) error {
	doc := junitSuites{Name: rep.Name}
	total := 0.0
	for _, g := range groups {
		s := junitGroup(g)
		s.Properties.Props = []junitProperty{
			{"ktstr.status", string(rep.Status)},
			{"ktstr.exit_status", fmt.Sprint(rep.ExitStatus)},
			{"ktstr.reason", rep.Reason},
		}
		doc.Tests += s.Tests
		doc.Failures += s.Failures
		doc.Errors += s.Errors
		doc.Skipped += s.Skipped
		for _, v := range g.Runs {
			total += junitTime(v)
		}
		doc.Suites = append(doc.Suites, s)
	}
	doc.Time = fmt.Sprintf("%.3f", total)
	if _, err := io.WriteString(w, xml.Header); err != nil {
		return err
	}
	enc := xml.NewEncoder(w)
	enc.Indent("", "  ")
	if err := enc.Encode(doc); err != nil {
		return err
	}
	_, err := io.WriteString(w, "\n")
	return err
}

func junitGroup(g JUnitGroup) junitSuite {
	s := junitSuite{Name: g.Name, Tests: len(g.Runs)}
	total := 0.0
	for _, v := range g.Runs {
		var out strings.Builder
		writeRun(&out, v, painter{})
		c := junitCase{Name: v.Name, Classname: g.Name, Time: fmt.Sprintf("%.3f", junitTime(v)), SystemOut: junitText{xmlText(out.String())}}
		total += junitTime(v)
		var details strings.Builder
		for _, f := range v.Findings {
			details.WriteString(findingLine(f, painter{}) + "\n")
			for _, l := range f.Lines {
				details.WriteString("    " + sanitize.String(l) + "\n")
			}
		}
		switch v.Status {
		case StatusPass:
		case StatusSkip:
			s.Skipped++
			c.Skipped = &junitSkipped{Message: v.Reason}
		case StatusInconclusive:
			s.Errors++
			c.Error = &junitProblem{Message: v.Reason, Type: CauseInconclusive, Text: xmlText(details.String())}
		case StatusInfra:
			s.Errors++
			c.Error = &junitProblem{Message: v.Reason, Type: v.Cause, Text: xmlText(details.String())}
		default:
			s.Failures++
			c.Failure = &junitProblem{Message: v.Reason, Type: v.Cause, Text: xmlText(details.String())}
		}
		s.Cases = append(s.Cases, c)
	}
	s.Time = fmt.Sprintf("%.3f", total)
	return s
}
