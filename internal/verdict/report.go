package verdict

import (
	"encoding/json"
	"fmt"
	"io"
	"sort"
	"strings"
)

// WriteText writes the human report: the verdict line, the findings, the
// stats, the step timeline and the diagnostics.
func WriteText(w io.Writer, v Verdict) error {
	var b strings.Builder
	fmt.Fprintf(&b, "%s %s: %s\n", v.Status, v.Name, v.Reason)
	for _, f := range v.Findings {
		kind := ""
		if f.Kind != "" {
			kind = " [" + f.Kind + "]"
		}
		fmt.Fprintf(&b, "  %s %s%s: %s\n", strings.ToLower(string(f.Status)), f.Cause, kind, f.Message)
	}
	if r := v.Result; r != nil {
		s := r.Stats
		b.WriteString("\n--- stats ---\n")
		fmt.Fprintf(&b, "%d workers, %d cpus, %d migrations, worst_spread=%.1f%%, worst_gap=%.1fms, iterations=%d\n",
			s.Workers, s.CPUs, s.Migrations, s.WorstSpreadPct, s.WorstGapMS, s.TotalIterations)
		for i, cg := range s.Cgroups {
			fmt.Fprintf(&b, "cg%d %s: workers=%d cpus=%d iterations=%d migrations=%d spread=%.1f%% max_gap=%.1fms run=%.3fs wait=%.3fs\n",
				i, cg.Name, cg.Workers, cg.CPUs, cg.Iterations, cg.Migrations, cg.SpreadPct, cg.MaxGapMS,
				float64(cg.RunNS)/1e9, float64(cg.WaitNS)/1e9)
		}
		for _, p := range r.Passes {
			fmt.Fprintf(&b, "pass %s: %s\n", p.Check, p.Message)
		}
	}
	if len(v.Steps) > 0 {
		b.WriteString("\n--- timeline ---\n")
		for _, s := range v.Steps {
			end := "(no end)"
			if s.EndMS != nil {
				end = fmt.Sprintf("%dms", *s.EndMS)
			}
			fmt.Fprintf(&b, "step %d: %dms -> %s workers=%d cgroups=%d iterations=%d\n", s.Index, s.StartMS, end, s.Workers, s.Cgroups, s.Iterations)
		}
	}
	b.WriteString("\n--- diagnostics ---\n")
	fmt.Fprintf(&b, "stage: %s\n", v.Stage)
	if v.ExitCode != nil {
		fmt.Fprintf(&b, "exit_code=%d\n", *v.ExitCode)
	}
	if e := v.VMEnd; e != nil {
		fmt.Fprintf(&b, "vm: %s after %.2fs (ktstr-boot exit %d)\n", e.Reason, e.Elapsed, e.ExitCode)
	} else {
		b.WriteString("vm: no end record (stream not from a closed region)\n")
	}
	c := v.Counts
	fmt.Fprintf(&b, "records=%d entries=%d bad_crc=%d effects=%d diags=%d lost_frames=%d\n",
		c.Records, c.Entries, c.BadCRC, c.Effects, c.Diags, c.LostFrames)
	if len(v.Diags) > 0 {
		keys := make([]string, 0, len(v.Diags))
		for k := range v.Diags {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			fmt.Fprintf(&b, "diag %s=%d\n", k, v.Diags[k])
		}
	}
	if v.SchedLog != "" {
		b.WriteString("\n--- scheduler log ---\n")
		b.WriteString(tail(v.SchedLog, 200))
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// WriteJSON writes v as one JSON object.
func WriteJSON(w io.Writer, v Verdict) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// tail returns the last n lines of s, newline-terminated.
func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n") + "\n"
}
