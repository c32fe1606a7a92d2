package verdict

import (
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"

	"github.com/ktstr-go/ktstr/internal/sanitize"
	"github.com/ktstr-go/ktstr/lib/wire/payload"
)

// Formats are the report formats, the first the default.
var Formats = []string{"text", "json", "junit", "tap"}

// TextOptions tune the text report, and the TAP version.
type TextOptions struct {
	// Color adds ANSI colours (ktstr-verdict sets it only when stdout is
	// a terminal and NO_COLOR is not set).
	Color bool
	// TAPVersion is the TAP version the tap format writes: 13 or 14
	// (0: 13).
	TAPVersion int
}

// Write writes rep in format (one of Formats).
func Write(w io.Writer, format string, rep Report, opt TextOptions) error {
	switch format {
	case "text":
		return WriteText(w, rep, opt)
	case "json":
		return WriteJSON(w, rep)
	case "junit":
		return WriteJUnit(w, rep)
	case "tap":
		if opt.TAPVersion == 0 {
			return WriteTAP(w, rep)
		}
		return WriteTAPVersion(w, rep, opt.TAPVersion)
	}
	return fmt.Errorf("verdict: unknown format %q", format)
}

// How many lines of each log the text report shows.
const (
	textSchedOK     = 20
	textSchedFail   = 200
	textSchedHead   = 20
	textKernelOK    = 20
	textKernelFail  = 50
	textOutputFail  = 50
	textConsoleFail = 20
	// textListMax bounds each list taken from the TEST result (cgroups,
	// passes, info notes, measurements); the report counts the rest.
	textListMax = 50
)

// more writes "... and N more WHAT" when n of total items were shown.
func more(b *strings.Builder, shown, total int, what string) {
	if n := total - shown; n > 0 {
		fmt.Fprintf(b, "... and %d more %s\n", n, pluralWord(int64(n), what))
	}
}

type painter struct{ on bool }

func (p painter) paint(code, s string) string {
	if !p.on {
		return s
	}
	return "\x1b[" + code + "m" + s + "\x1b[0m"
}

func (p painter) status(s Status) string {
	code := "31;1" // FAIL, red
	switch s {
	case StatusPass:
		code = "32;1"
	case StatusSkip:
		code = "36;1"
	case StatusInconclusive:
		code = "33;1"
	case StatusInfra:
		code = "35;1"
	}
	return p.paint(code, string(s))
}

func (p painter) section(b *strings.Builder, title string) {
	b.WriteString("\n")
	b.WriteString(p.paint("1", "--- "+title+" ---"))
	b.WriteString("\n")
}

// WriteText writes the human report: for each run the verdict line with
// its cause, the findings, stats, the step timeline, diagnostics and the
// log tails; with several runs, a summary line at the end. A Verdict's
// strings are sanitised when it is made; the writers pass what they print
// through sanitize.String again (it changes nothing on sanitised text),
// so that a Report built by hand is just as safe.
func WriteText(w io.Writer, rep Report, opt TextOptions) error {
	p := painter{opt.Color}
	var b strings.Builder
	for i, v := range rep.Runs {
		if i > 0 {
			b.WriteString("\n")
		}
		writeRun(&b, v, p)
	}
	if len(rep.Runs) != 1 {
		b.WriteString("\n")
		fmt.Fprintf(&b, "%s %s: %s\n", p.status(rep.Status), sanitize.String(rep.Name), sanitize.String(rep.Reason))
		t := rep.Totals
		fmt.Fprintf(&b, "runs=%d pass=%d skip=%d inconclusive=%d error=%d fail=%d\n", t.Runs, t.Pass, t.Skip, t.Inconclusive, t.Error, t.Fail)
	}
	_, err := io.WriteString(w, b.String())
	return err
}

func writeRun(b *strings.Builder, v Verdict, p painter) {
	fmt.Fprintf(b, "%s %s: %s\n", p.status(v.Status), sanitize.String(v.Name), sanitize.String(v.Reason))
	failed := !v.Status.OK()
	if failed && v.BugSummary != "" {
		fmt.Fprintf(b, "  BUG SUMMARY: %s\n", sanitize.String(v.BugSummary))
	}
	for _, f := range v.Findings {
		b.WriteString("  " + findingLine(f, p) + "\n")
		for _, l := range f.Lines {
			b.WriteString("      " + sanitize.String(l) + "\n")
		}
	}
	if r := v.Result; r != nil {
		p.section(b, "stats")
		if m := r.Machine; m != nil {
			fmt.Fprintf(b, "machine %s: %d cpus, LLCs %s, nodes %s, smt=%v\n", sanitize.String(cutText(orDash(m.Shape))), m.CPUs,
				guestList(m.LLCs), guestList(m.Nodes), m.SMT)
		}
		if d := schedDetached(r); d != nil {
			fmt.Fprintf(b, "until the scheduler was lost (%.0f ms into the scenario):\n", d.AtMS)
		}
		writeStats(b, r.Stats)
		if a := r.StatsAfterDetach; a != nil {
			b.WriteString("after the scheduler was lost, until the workers stopped (not judged):\n")
			writeStats(b, *a)
		}
		for _, ps := range r.Passes[:min(len(r.Passes), textListMax)] {
			fmt.Fprintf(b, "pass %s: %s\n", sanitize.String(cutText(ps.Check)), sanitize.String(cutText(ps.Message)))
		}
		more(b, textListMax, len(r.Passes), "passed check")
		if len(r.InfoNotes) > 0 || len(r.Measurements) > 0 {
			p.section(b, "info")
			for _, n := range r.InfoNotes[:min(len(r.InfoNotes), textListMax)] {
				b.WriteString(sanitize.String(cutText(n)) + "\n")
			}
			more(b, textListMax, len(r.InfoNotes), "note")
			keys := slices.Sorted(maps.Keys(r.Measurements))
			for _, k := range keys[:min(len(keys), textListMax)] {
				fmt.Fprintf(b, "%s=%g\n", sanitize.String(cutText(k)), r.Measurements[k])
			}
			more(b, textListMax, len(keys), "measurement")
		}
	}
	writeTimeline(b, v, p)
	writeDiagnostics(b, v, p)
	writeHostNoise(b, v)
	if l := v.Logs.Sched; l != nil {
		writeLog(b, p, "scheduler log", l, pick(failed, textSchedFail, textSchedOK), pick(failed, textSchedHead, 0))
	}
	if l := v.Logs.Kernel; l != nil {
		writeLog(b, p, "kernel log", l, pick(failed, textKernelFail, textKernelOK), 0)
	}
	if failed {
		if l := v.Logs.Output; l != nil && (v.Logs.Sched == nil || v.Logs.Sched.Name != l.Name) {
			writeLog(b, p, "output", l, textOutputFail, textSchedHead)
		}
		for i := range v.Logs.Console {
			l := &v.Logs.Console[i]
			if l.Lines == 0 {
				continue
			}
			n := textConsoleFail
			for _, f := range v.Findings {
				if f.Cause == CauseCrash && f.Source == l.Name {
					n = len(l.Tail) // ktstr shows the whole console after a panic
				}
			}
			writeLog(b, p, "console", l, n, 0)
		}
	}
}

func writeStats(b *strings.Builder, s payload.ScenarioStats) {
	fmt.Fprintf(b, "%d workers, %d cpus, %d migrations, worst_spread=%.1f%%, worst_gap=%.1fms, iterations=%d\n",
		s.Workers, s.CPUs, s.Migrations, s.WorstSpreadPct, s.WorstGapMS, s.TotalIterations)
	for i, cg := range s.Cgroups[:min(len(s.Cgroups), textListMax)] {
		label := fmt.Sprintf("cg%d", i)
		if cg.Name != "" && cg.Name != label {
			label += " (" + sanitize.String(cg.Name) + ")"
		}
		fmt.Fprintf(b, "%s: workers=%d cpus=%d iterations=%d migrations=%d spread=%.1f%% max_gap=%.1fms run=%.3fs wait=%.3fs\n",
			label, cg.Workers, cg.CPUs, cg.Iterations, cg.Migrations, cg.SpreadPct, cg.MaxGapMS,
			float64(cg.RunNS)/1e9, float64(cg.WaitNS)/1e9)
		if cg.CrossLLCMigrations+cg.CrossNodeMigrations > 0 || cg.PageLocality > 0 {
			fmt.Fprintf(b, "%s: cross_llc=%d cross_node=%d page_locality=%.2f\n", label, cg.CrossLLCMigrations, cg.CrossNodeMigrations, cg.PageLocality)
		}
		writePerf(b, label, cg.IterationRate, cg.WorkRate, cg.ThroughputCV, cg.WakeLatency, cg.TimerLatency, cg.RequestLatency)
	}
	more(b, textListMax, len(s.Cgroups), "cgroup")
	writePerf(b, "all", s.IterationRate, s.WorkRate, s.ThroughputCV, s.WakeLatency, s.TimerLatency, s.RequestLatency)
}

// writePerf writes a cgroup's performance figures, when measured: one
// line for the rates, one per latency histogram.
func writePerf(b *strings.Builder, label string, rate, work, cv float64, wake, timer, request *payload.Latency) {
	if rate > 0 || work > 0 || cv > 0 {
		fmt.Fprintf(b, "%s: iteration_rate=%.1f/s work_rate=%.1f/s throughput_cv=%.3f\n", label, rate, work, cv)
	}
	for _, l := range []struct {
		name string
		l    *payload.Latency
	}{{"wake_latency", wake}, {"timer_latency", timer}, {"request_latency", request}} {
		if l.l != nil && l.l.Count > 0 {
			fmt.Fprintf(b, "%s: %s n=%d p50=%s p90=%s p99=%s p99.9=%s max=%s cv=%.2f\n", label, l.name, l.l.Count,
				fmtNS(l.l.P50NS), fmtNS(l.l.P90NS), fmtNS(l.l.P99NS), fmtNS(l.l.P999NS), fmtNS(l.l.MaxNS), l.l.CV)
		}
	}
}

// fmtNS writes a latency in µs.
func fmtNS(ns uint64) string { return fmt.Sprintf("%.1fus", float64(ns)/1e3) }

func schedDetached(r *payload.AssertResult) *payload.SchedDetach {
	if r.Scheduler == nil {
		return nil
	}
	return r.Scheduler.Detached
}

// writeScheduler says which scheduler ran and whether it stayed attached.
func writeScheduler(b *strings.Builder, r *payload.AssertResult) {
	si := r.Scheduler
	if si == nil {
		return
	}
	sum := si.SHA256
	if len(sum) > 16 {
		sum = sum[:16] + "..."
	}
	fmt.Fprintf(b, "scheduler: %s (sha256 %s), sched_ext ops %q, enable_seq %d, attached %.1f ms after it started\n",
		sanitize.String(si.Binary), sanitize.String(sum), sanitize.String(si.Ops), si.EnableSeq, si.AttachMS)
	if d := si.Detached; d != nil {
		fmt.Fprintf(b, "scheduler lost: %s at %.1f ms into the scenario (state %q, ops %q, enable_seq %d; process %s), the scenario ran %.1f ms more\n",
			sanitize.String(d.How), d.AtMS, sanitize.String(d.State), sanitize.String(d.Ops), d.EnableSeq, pick(d.Alive, "alive", "gone"), d.ForMS)
		if d.Kernel != "" {
			fmt.Fprintf(b, "kernel at %.6fs: %s\n", d.KernelS, sanitize.String(d.Kernel))
		}
		if d.ReattachedMS != 0 {
			fmt.Fprintf(b, "attached again at %.1f ms\n", d.ReattachedMS)
		}
	}
}

func pick[T any](cond bool, a, b T) T {
	if cond {
		return a
	}
	return b
}

func findingLine(f Finding, p painter) string {
	kind := f.Cause
	if f.Kind != "" {
		kind += "/" + f.Kind
	}
	src := ""
	if f.Source != "" {
		src = " (" + f.Source + ")"
	}
	st := strings.ToLower(string(f.Status))
	return fmt.Sprintf("%s %s: %s%s", p.paint(statusColor(f.Status), st), kind, sanitize.String(f.Message), sanitize.String(src))
}

func statusColor(s Status) string {
	switch s {
	case StatusPass:
		return "32"
	case StatusSkip:
		return "36"
	case StatusInconclusive:
		return "33"
	case StatusInfra:
		return "35"
	}
	return "31"
}

func writeTimeline(b *strings.Builder, v Verdict, p painter) {
	sc := v.Scenario
	if len(v.Steps) == 0 && sc.Starts == 0 && sc.EndMS == nil {
		return
	}
	p.section(b, "timeline")
	switch {
	case sc.Starts == 1:
		b.WriteString("scenario start\n")
	case sc.Starts > 1:
		fmt.Fprintf(b, "scenario start (%d SCST frames)\n", sc.Starts)
	}
	for _, s := range v.Steps {
		label := fmt.Sprintf("step %d", s.Index)
		if s.Index == 0 {
			label += " (baseline)"
		}
		end := "(no end)"
		if s.EndMS != nil {
			end = fmt.Sprintf("%dms", *s.EndMS)
			if s.EndFrom != "step_end" {
				end += " (" + strings.ReplaceAll(s.EndFrom, "_", " ") + ")"
			}
		}
		fmt.Fprintf(b, "%s: %dms -> %s ops=%d workers=%d cgroups=%d", label, s.StartMS, end, s.Ops, s.Workers, s.Cgroups)
		if s.EndIterations != nil {
			fmt.Fprintf(b, " iterations=%d", *s.EndIterations-min(*s.EndIterations, s.StartIterations))
			if s.Rate > 0 {
				fmt.Fprintf(b, " (%.1f/s)", s.Rate)
			}
		}
		b.WriteString("\n")
	}
	if v.StepsNotListed > 0 {
		fmt.Fprintf(b, "... and %d more %s\n", v.StepsNotListed, pluralWord(int64(v.StepsNotListed), "step"))
	}
	if sc.Pauses > 0 || sc.Resumes > 0 {
		fmt.Fprintf(b, "paused %d times, resumed %d times\n", sc.Pauses, sc.Resumes)
	}
	if sc.EndMS != nil {
		fmt.Fprintf(b, "scenario end: %dms, iterations=%d\n", *sc.EndMS, *sc.TotalIterations)
	}
}

func writeDiagnostics(b *strings.Builder, v Verdict, p painter) {
	p.section(b, "diagnostics")
	fmt.Fprintf(b, "stage: %s\n", v.Stage)
	if len(v.Phases) > 0 {
		fmt.Fprintf(b, "phases: %s\n", strings.Join(v.Phases, ", "))
	}
	if v.GuestExit != nil {
		fmt.Fprintf(b, "exit_code=%d%s\n", *v.GuestExit, errnoSuffix(*v.GuestExit))
	} else {
		b.WriteString("exit_code: none (no valid EXIT)\n")
	}
	if v.SchedExit != nil {
		fmt.Fprintf(b, "sched_exit_code=%d%s\n", *v.SchedExit, errnoSuffix(*v.SchedExit))
	}
	if v.Result != nil {
		writeScheduler(b, v.Result)
	}
	if e := v.VMEnd; e != nil {
		fmt.Fprintf(b, "vm: %s after %.2fs (ktstr-boot exit %d)%s\n", e.Reason, e.Elapsed, e.ExitCode, pick(e.RingCorrupt, "; its ring corrupt", ""))
	} else {
		b.WriteString("vm: no end record (stream not from a closed region)\n")
	}
	if d := v.FailureDump; d != nil {
		fmt.Fprintf(b, "failure dump: %s (%s)\n", sanitize.String(d.Path), sanitize.String(d.Reason))
		for _, l := range d.Summary {
			fmt.Fprintf(b, "  %s\n", sanitize.String(l))
		}
	}
	if m := v.Monitor; m != nil {
		fmt.Fprintf(b, "monitor: %d samples every %d ms, worst imbalance %.1f (max %.1f), deepest local DSQ %d (max %d)\n",
			m.Samples, m.IntervalMS, m.WorstImbalance, m.Thresholds.MaxImbalanceRatio, m.MaxLocalDSQDepth, m.Thresholds.MaxLocalDSQDepth)
	}
	c := v.Counts
	fmt.Fprintf(b, "records=%d entries=%d bad_crc=%d effects=%d kills=%d diags=%d lost_frames=%d lost_bytes=%d splats=%d\n",
		c.Records, c.Entries, c.BadCRC, c.Effects, c.Kills, c.Diags, c.LostFrames, c.LostBytes, c.Splats)
	if c.UnknownKinds > 0 {
		fmt.Fprintf(b, "records of unknown kind: %d\n", c.UnknownKinds)
	}
	for _, k := range slices.Sorted(maps.Keys(v.Diags)) {
		fmt.Fprintf(b, "diag %s=%d\n", sanitize.String(k), v.Diags[k])
	}
	for _, k := range slices.Sorted(maps.Keys(v.Effects)) {
		fmt.Fprintf(b, "effect %s=%d\n", sanitize.String(k), v.Effects[k])
	}
}

func errnoSuffix(code int32) string {
	if n := errnoName(code); n != "" {
		return " (" + n + ")"
	}
	return ""
}

// writeLog writes the last n lines of l and, when nHead > 0 and l kept
// them, its first nHead lines, with the count of the lines in between.
func writeLog(b *strings.Builder, p painter, title string, l *Log, n, nHead int) {
	tail := l.Tail
	if len(tail) > n {
		tail = tail[len(tail)-n:]
	}
	head := l.Head[:min(len(l.Head), nHead)]
	between := l.Lines - int64(len(head)) - int64(len(tail))
	title = fmt.Sprintf("%s: %s, %s", title, sanitize.String(l.Name), plural(l.Lines, "line"))
	switch {
	case len(head) > 0:
		title += fmt.Sprintf(", first %d and last %d", len(head), len(tail))
	case between > 0:
		title += fmt.Sprintf(", last %d", len(tail))
	}
	if l.DroppedInGuest > 0 {
		title += fmt.Sprintf(", %d more dropped in the guest", l.DroppedInGuest)
	}
	if l.Incomplete {
		title += ", last line incomplete"
	}
	p.section(b, title)
	for _, s := range head {
		b.WriteString(sanitize.String(s))
		b.WriteString("\n")
	}
	if len(head) > 0 && between > 0 {
		fmt.Fprintf(b, "[... %s not shown ...]\n", plural(between, "line"))
	}
	for _, s := range tail {
		b.WriteString(sanitize.String(s))
		b.WriteString("\n")
	}
}

// WriteJSON writes rep as one indented JSON object. The output depends
// only on the records and console files, so replaying a recording gives
// the same bytes.
func WriteJSON(w io.Writer, rep Report) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false)
	return enc.Encode(rep)
}

// guestList joins guest-given CPU lists, at most textListMax of them,
// each sanitised and cut.
func guestList(items []string) string {
	parts := make([]string, 0, min(len(items), textListMax))
	for _, it := range items[:min(len(items), textListMax)] {
		parts = append(parts, sanitize.String(cutText(it)))
	}
	out := strings.Join(parts, " | ")
	if n := len(items) - textListMax; n > 0 {
		out += fmt.Sprintf(" | and %d more", n)
	}
	return out
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
