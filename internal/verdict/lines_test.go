package verdict_test

import (
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
