package verdict_test

import (
	"bytes"
	"fmt"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/ktstr-go/ktstr/internal/verdict"
	vt "github.com/ktstr-go/ktstr/internal/verdict/verdicttest"
)

func TestConsoleLines(t *testing.T) {
	long := strings.Repeat("x", 10000)
	tests := []struct {
		name       string
		text       string
		lines      int64
		incomplete bool
		last       string
	}{
		{"empty", "", 0, false, ""},
		{"one line", "a\n", 1, false, "a"},
		{"last line incomplete", "a\nb", 2, true, "b"},
		{"crlf", "a\r\nb\r\n", 2, false, "b"},
		{"long line cut", long + "\nz\n", 2, false, "z"},
		// One U+FFFD per maximal ill-formed subpart (ktstr-wire(5)).
		{"invalid utf-8", "ok\n\xff\xfe bad \xe2\x82!\n", 2, false, "\uFFFD\uFFFD bad \uFFFD!"},
		{"escapes", "ok\n\x1b[2Jbad\u202e\n", 2, false, `\x1b[2Jbad\u202e`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := verdict.NewFolder("t", verdict.DefaultConfig())
			f.AddConsole("console.log", strings.NewReader(tc.text))
			l := f.Verdict().Logs.Console[0]
			if l.Lines != tc.lines || l.Incomplete != tc.incomplete {
				t.Errorf("lines=%d incomplete=%v, want %d %v", l.Lines, l.Incomplete, tc.lines, tc.incomplete)
			}
			if tc.lines > 0 && l.Tail[len(l.Tail)-1] != tc.last {
				t.Errorf("last line %q, want %q", l.Tail[len(l.Tail)-1], tc.last)
			}
			for _, s := range l.Tail {
				if len(s) > 4200 {
					t.Errorf("line of %d bytes kept, want it cut", len(s))
				}
			}
		})
	}
}

// TestTailsBounded: a huge log keeps only its last lines.
func TestTailsBounded(t *testing.T) {
	var b strings.Builder
	for i := 0; i < 5000; i++ {
		b.WriteString("line ")
		b.WriteString(strings.Repeat("y", i%50))
		b.WriteString("\n")
	}
	b.WriteString("the end\n")
	v := fold(vt.New().SchedLog(b.String()).Dmesg(b.String()), verdict.DefaultConfig())
	for _, l := range []*verdict.Log{v.Logs.Sched, v.Logs.Kernel} {
		if l.Lines != 5001 || len(l.Tail) != verdict.TailLines || l.Tail[len(l.Tail)-1] != "the end" {
			t.Errorf("%s: lines=%d tail=%d last=%q, want 5001, %d, the end", l.Name, l.Lines, len(l.Tail), l.Tail[len(l.Tail)-1], verdict.TailLines)
		}
	}
}

// TestConsolePanicTail: the console with the panic keeps more lines.
func TestConsolePanicTail(t *testing.T) {
	var b strings.Builder
	for i := 0; i < 1000; i++ {
		b.WriteString("boot noise\n")
	}
	b.WriteString("PANIC: boom\n")
	f := verdict.NewFolder("t", verdict.DefaultConfig())
	f.AddConsole("com2.log", strings.NewReader(b.String()))
	f.AddConsole("console.log", strings.NewReader(b.String()[:11*500]))
	v := f.Verdict()
	if n := len(v.Logs.Console[0].Tail); n <= verdict.TailLines {
		t.Errorf("panic console tail %d lines, want more than %d", n, verdict.TailLines)
	}
	if n := len(v.Logs.Console[1].Tail); n != verdict.TailLines {
		t.Errorf("other console tail %d lines, want %d", n, verdict.TailLines)
	}
}

// TestSchedLogHeadAndTail: a long scheduler log keeps its first and last
// lines and says how many lay between, and how many the guest dropped;
// the text report shows both ends.
func TestSchedLogHeadAndTail(t *testing.T) {
	var b strings.Builder
	b.WriteString("===SCHED_OUTPUT_START===\n")
	for i := range 5000 {
		fmt.Fprintf(&b, "[    1.%06d] stdout: line %d\n", i, i)
	}
	b.WriteString("[    2.000000] ktstr: 1234 lines of output dropped (over the 10000-line or 2097152-byte budget); the last 1000 follow\n")
	b.WriteString("[    2.000001] stderr: EXIT: runtime error (scx_bpf_error)\n===SCHED_OUTPUT_END===\n")
	v := fold(vt.New().SchedLog(b.String()).SchedExit(1).Exit(1), verdict.DefaultConfig())
	l := v.Logs.Sched
	if l.Lines != 5002 || len(l.Head) != verdict.HeadLines || len(l.Tail) != verdict.TailLines || l.Omitted != 5002-verdict.HeadLines-verdict.TailLines {
		t.Fatalf("lines=%d head=%d tail=%d omitted=%d", l.Lines, len(l.Head), len(l.Tail), l.Omitted)
	}
	if l.Head[0] != "[    1.000000] stdout: line 0" || l.Tail[len(l.Tail)-1] != "[    2.000001] stderr: EXIT: runtime error (scx_bpf_error)" {
		t.Errorf("head starts %q, tail ends %q", l.Head[0], l.Tail[len(l.Tail)-1])
	}
	if l.DroppedInGuest != 1234 {
		t.Errorf("dropped_in_guest = %d, want 1234", l.DroppedInGuest)
	}
	var out strings.Builder
	if err := verdict.WriteText(&out, verdict.Aggregate("t", []verdict.Verdict{v}), verdict.TextOptions{}); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"5002 lines, first 20 and last 200, 1234 more dropped in the guest", "stdout: line 19\n[... 4782 lines not shown ...]\n"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("text report lacks %q", want)
		}
	}
	if !strings.Contains(v.Reason, "EXIT: runtime error (scx_bpf_error)") || strings.Contains(v.Reason, "stderr:") {
		t.Errorf("reason %q: want the EXIT line without its label", v.Reason)
	}
}

// TestSchedLogLabels: scans read the text of labelled lines; the agent's
// own notes (ktstr) are not the scheduler's output.
func TestSchedLogLabels(t *testing.T) {
	log := "[    3.000000] ktstr: sending SIGINT to scx_x: EXIT: not this\n" +
		"[    3.000100] stderr: DEBUG DUMP\n" +
		"[    3.000200] stderr: scx_x[12] triggered exit kind 1024:\n" +
		"[    3.000300] stderr:   runnable task stall (kworker/0:1[9] failed to run for 5.1s)\n" +
		"[ bad] stdout: not a label\n"
	v := fold(vt.New().SchedLog(log).SchedExit(1), verdict.DefaultConfig())
	if want := "runnable task stall (kworker/0:1[9] failed to run for 5.1s)"; v.BugSummary != want {
		t.Errorf("bug summary %q, want %q", v.BugSummary, want)
	}
	if strings.Contains(v.Reason, "not this") {
		t.Errorf("reason %q comes from the agent's note", v.Reason)
	}
}

// TestOutputSplitAnywhere: the guest's output gives the same verdict
// however its SOUT entries cut it: the scan that keeps most lines as
// bytes (and looks closer only at lines with one of the words the fold
// reads) must find every word, whether a line lies inside one entry,
// spans several, or is cut at maxLine.
func TestOutputSplitAnywhere(t *testing.T) {
	junk := "\xff\xfe\x00\x1b[2J \xe2\x82"
	texts := map[string]string{
		"exit":     "[     1.000000] stdout: scx_demo: EXIT: runtime error (scx_bpf_error called)\n",
		"scx err":  "scx_demo: scx_bpf_error (\"bad\")\n" + junk + "EXIT: x\n",
		"panic":    junk + "\n  PANIC: it broke\n",
		"block":    "before\n===SCHED_OUTPUT_START===\nscx_demo: in the block\n[     1.000000] ktstr: 5 lines of output dropped\n===SCHED_OUTPUT_END===\nafter\n",
		"libbpf":   "libbpf: prog 'x': BPF program load failed: Permission denied\n",
		"dump":     "scx_demo[1] triggered exit kind 1024:\n\n  runtime error (the body)\nmore\n",
		"long cut": strings.Repeat("y", 5000) + "PANIC: past the cut\nEXIT" + strings.Repeat("z", 4100) + "EXIT: kept\n",
		"no words": "cpu 1: nr_queued 3 slice_us 20000 exiting\n" + junk + "\n",
	}
	all := ""
	for _, k := range []string{"no words", "exit", "scx err", "block", "libbpf", "dump", "long cut", "panic"} {
		all += texts[k]
	}
	texts["all"] = all
	// The text as the guest's output (SOUT) or as the scheduler's log
	// (SCLG), in entries of size bytes; the counts of records differ.
	foldText := func(text string, size int, sclg bool) verdict.Verdict {
		s := vt.New().Boot()
		for len(text) > 0 {
			n := min(size, len(text))
			if sclg {
				s.SchedLog(text[:n])
			} else {
				s.Stdout(text[:n])
			}
			text = text[n:]
		}
		// The scheduler died: the findings say what its output said.
		data := s.SchedExit(1).Outcomes(vt.Pass()).Finish().Bytes(false)
		v := verdict.Fold("t", verdict.DefaultConfig(), bytes.NewReader(data)).Verdict()
		v.Counts = verdict.Counts{}
		return v
	}
	for name, text := range texts {
		for _, sclg := range []bool{false, true} {
			// The reference: every line read as text, as if each could matter.
			old := verdict.SetEveryLineMatters(true)
			want := foldText(text, len(text), sclg)
			verdict.SetEveryLineMatters(old)
			for _, size := range []int{1, 2, 3, 5, 7, 16, 64, 100, 4096, len(text)} {
				if d := cmp.Diff(want, foldText(text, size, sclg)); d != "" {
					t.Errorf("%s (SCLG %v): entries of %d bytes (-every line as text +scanned):\n%s", name, sclg, size, d)
				}
			}
		}
	}
	// The words do count: the panic fails the run; the block, with the
	// harness's note in it, is the scheduler's log.
	if v := foldText(all, len(all), false); v.Status != verdict.StatusFail || v.Cause != verdict.CauseCrash {
		t.Errorf("all words as output: %s (%s), want FAIL (crash: the PANIC line)", v.Status, v.Cause)
	}
	v := foldText(all, len(all), true)
	if l := v.Logs.Sched; l == nil || l.DroppedInGuest != 5 || len(l.Tail) != 2 || l.Tail[0] != "scx_demo: in the block" {
		t.Errorf("all words as the scheduler's log: %+v, want the block's two lines, 5 dropped", l)
	}
}
