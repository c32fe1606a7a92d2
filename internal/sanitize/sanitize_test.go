package sanitize

import (
	"strings"
	"testing"
	"unicode/utf8"
)

func TestString(t *testing.T) {
	tests := []struct{ in, want string }{
		{"", ""},
		{"plain ASCII text", "plain ASCII text"},
		{"héllo wörld 日本 🚀", "héllo wörld 日本 🚀"},
		{"\x1b]0;owned\x07", `\x1b]0;owned\x07`},                           // OSC: retitle the window
		{"\x1b[2J\x1b[HALL TESTS PASSED", `\x1b[2J\x1b[HALL TESTS PASSED`}, // clear the screen
		{"fail\nPASS run: all checks passed", `fail\x0aPASS run: all checks passed`},
		{"a\rb\tc\x00d\x7fe", `a\x0db\x09c\x00d\x7fe`},
		{"\u009b2J", `\u009b2J`},             // C1 CSI as a character
		{"\x9b2J", "\uFFFD2J"},               // C1 CSI as a raw byte: ill-formed UTF-8
		{"\xc2\x9b2J", `\u009b2J`},           // the same C1, well-formed
		{"\x85next line", "\uFFFDnext line"}, // raw NEL byte
		{"abc\u202edcba", `abc\u202edcba`},   // right-to-left override
		{"\u202a\u202b\u202c\u202d\u2066\u2067\u2068\u2069", `\u202a\u202b\u202c\u202d\u2066\u2067\u2068\u2069`},
		{"line\u2028sep\u2029para", `line\u2028sep\u2029para`},
		{"\u200e\u200f", "\u200e\u200f"}, // marks do not override: kept
		// Ill-formed UTF-8: one U+FFFD per maximal subpart (ktstr-wire(5)).
		{"a\xe2\x82b", "a\uFFFDb"},
		{"a\xf0\x9f\x9a\xff", "a\uFFFD\uFFFD"},
		{"\xed\xa0\x80", "\uFFFD\uFFFD\uFFFD"}, // a surrogate
		{"\xff\x1b", "\uFFFD\\x1b"},
		{`already \x1b escaped`, `already \x1b escaped`},
	}
	for _, tt := range tests {
		if got := String(tt.in); got != tt.want {
			t.Errorf("String(%q) = %q, want %q", tt.in, got, tt.want)
		}
		if got := Bytes([]byte(tt.in)); got != tt.want {
			t.Errorf("Bytes(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestStringNoAlloc(t *testing.T) {
	s := strings.Repeat("a clean kernel line [   1.234567] ", 10) + "héllo"
	if n := testing.AllocsPerRun(100, func() { String(s) }); n != 0 {
		t.Errorf("String of clean text: %v allocations, want 0", n)
	}
}

// checkSafe fails unless out is valid UTF-8 without a character String
// would escape, and String leaves it unchanged.
func checkSafe(t *testing.T, in, out string) {
	t.Helper()
	if !utf8.ValidString(out) {
		t.Fatalf("String(%q) = %q: not valid UTF-8", in, out)
	}
	for _, r := range out {
		if escaped(r) {
			t.Fatalf("String(%q) = %q: contains %U", in, out, r)
		}
	}
	if again := String(out); again != out {
		t.Fatalf("String(String(%q)) = %q, want %q", in, again, out)
	}
}

func FuzzString(f *testing.F) {
	for _, s := range []string{"", "ok", "\x1b[31mred", "\x9b", "\u202e", "\xe2\x80", "a\u2028b", "\xc2\x85"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, p []byte) {
		out := Bytes(p)
		checkSafe(t, string(p), out)
		// Printable ASCII and well-formed text without escapes come
		// through as they are.
		if utf8.Valid(p) && !needsEscape(string(p)) && out != string(p) {
			t.Fatalf("Bytes(%q) = %q, want it unchanged", p, out)
		}
	})
}
