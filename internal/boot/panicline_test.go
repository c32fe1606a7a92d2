package boot

import (
	"os"
	"path/filepath"
	"testing"
)

// The guest writes the console: its "Kernel panic" line reaches
// ktstr-boot's stderr and must not carry terminal escapes.
func TestPanicLineSanitized(t *testing.T) {
	path := filepath.Join(t.TempDir(), "console.log")
	console := "[    1.0] ok\n[    2.0] Kernel panic - not syncing: \x1b]0;pwned\x07\x1b[2J\x9bALL TESTS PASSED\u202e\n"
	if err := os.WriteFile(path, []byte(console), 0o600); err != nil {
		t.Fatal(err)
	}
	want := `Kernel panic - not syncing: \x1b]0;pwned\x07\x1b[2J` + "\uFFFDALL TESTS PASSED\\u202e"
	if got := panicLine(path); got != want {
		t.Errorf("panicLine = %q, want %q", got, want)
	}
}
