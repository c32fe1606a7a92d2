package verdict_test

import (
	"fmt"
	"strings"
	"testing"

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
