package verdict

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"

	"github.com/ktstr-go/ktstr/internal/sanitize"
)

// WriteTAP writes rep as TAP version 14: a plan, one test point per run,
// "ok" for PASS and SKIP (with a SKIP directive), "not ok" for the rest
// with a YAML diagnostic block (status, exit_status, cause, message,
// bug_summary, findings). YAML values are written as JSON strings and
// numbers, which YAML reads as they are. With several runs a final
// comment line gives the aggregate.
func WriteTAP(w io.Writer, rep Report) error {
	var b strings.Builder
	b.WriteString("TAP version 14\n")
	fmt.Fprintf(&b, "1..%d\n", len(rep.Runs))
	for i, v := range rep.Runs {
		n := i + 1
		switch v.Status {
		case StatusPass:
			fmt.Fprintf(&b, "ok %d - %s\n", n, tapDesc(v.Name))
		case StatusSkip:
			fmt.Fprintf(&b, "ok %d - %s # SKIP %s\n", n, tapDesc(v.Name), oneLine(v.Reason))
		default:
			fmt.Fprintf(&b, "not ok %d - %s\n", n, tapDesc(v.Name))
			b.WriteString("  ---\n")
			fmt.Fprintf(&b, "  status: %s\n", yamlString(string(v.Status)))
			fmt.Fprintf(&b, "  exit_status: %d\n", v.ExitStatus)
			fmt.Fprintf(&b, "  cause: %s\n", yamlString(v.Cause))
			fmt.Fprintf(&b, "  message: %s\n", yamlString(v.Reason))
			if v.BugSummary != "" {
				fmt.Fprintf(&b, "  bug_summary: %s\n", yamlString(v.BugSummary))
			}
			fmt.Fprintf(&b, "  stage: %s\n", yamlString(v.Stage))
			if len(v.Findings) > 0 {
				b.WriteString("  findings:\n")
				for _, f := range v.Findings {
					fmt.Fprintf(&b, "    - %s\n", yamlString(findingLine(f, painter{})))
				}
			}
			b.WriteString("  ...\n")
		}
	}
	if len(rep.Runs) != 1 {
		fmt.Fprintf(&b, "# %s %s: %s\n", rep.Status, oneLine(rep.Name), oneLine(rep.Reason))
	}
	_, err := io.WriteString(w, b.String())
	return err
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
