package schedlog

import (
	"testing"
	"time"
)

// TestRoundTrip: what the agent writes, the verdict reads back.
func TestRoundTrip(t *testing.T) {
	l := Line(Stamp(2512345*time.Microsecond), Stderr, "libbpf: failed")
	if l != "[    2.512345] stderr: libbpf: failed\n" {
		t.Errorf("Line = %q", l)
	}
	if s, text := Split(l[:len(l)-1]); s != Stderr || text != "libbpf: failed" {
		t.Errorf("Split(%q) = %q, %q", l, s, text)
	}
	note := Dropped(12, 10000, 2<<20, 1000)
	if n, ok := ParseDropped(note); !ok || n != 12 {
		t.Errorf("ParseDropped(%q) = %d, %v", note, n, ok)
	}
}

func TestSplitOthers(t *testing.T) {
	for _, l := range []string{
		"scx_demo: attached",
		"[    2.512345] other: x", // not a stream
		"[ 2.5] stdout: x",        // not six digits
		"[    2.51234a] stdout: x",
		"[    2.512345] stdout:x",
		"[.512345] stdout: x",
	} {
		if s, text := Split(l); s != "" || text != l {
			t.Errorf("Split(%q) = %q, %q; want all text", l, s, text)
		}
	}
	if _, ok := ParseDropped("3 lines of output"); ok {
		t.Errorf("ParseDropped of another note succeeded")
	}
}
