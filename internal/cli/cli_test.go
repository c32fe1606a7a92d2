package cli

import (
	"strings"
	"testing"
)

// A diagnostic is one line that cannot steer the terminal, whatever text
// it carries (an error may quote what the guest wrote).
func TestErrorfOneSafeLine(t *testing.T) {
	tests := []struct{ msg, want string }{
		{"plain", "tool: plain\n"},
		{"two\nlines", "tool: two lines\n"},
		{"title \x1b]0;pwned\x07 clear \x1b[2J", `tool: title \x1b]0;pwned\x07 clear \x1b[2J` + "\n"},
		{"csi \x9b2J rlo \u202e ls \u2028 cr \r", "tool: csi \uFFFD2J rlo \\u202e ls \\u2028 cr \\x0d\n"},
	}
	for _, tt := range tests {
		var b strings.Builder
		Errorf(&b, "tool", "%s", tt.msg)
		if b.String() != tt.want {
			t.Errorf("Errorf(%q) wrote %q, want %q", tt.msg, b.String(), tt.want)
		}
	}
}
