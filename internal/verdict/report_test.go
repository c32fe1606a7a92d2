package verdict_test

import (
	"bytes"
	"regexp"
	"strings"
	"testing"

	"github.com/ktstr-go/ktstr/internal/verdict"
	vt "github.com/ktstr-go/ktstr/internal/verdict/verdicttest"
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
