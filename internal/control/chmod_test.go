package control

import (
	"os"
	"path/filepath"
	"testing"
)

// TestChmodSocketDoesNotFollowLinks: the mode change after bind applies to
// the socket itself; a link or a file put in its place is refused and
// what it points to keeps its mode.
func TestChmodSocketDoesNotFollowLinks(t *testing.T) {
	dir := t.TempDir()
	victim := filepath.Join(dir, "victim")
	if err := os.WriteFile(victim, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	link := filepath.Join(dir, "link.sock")
	if err := os.Symlink(victim, link); err != nil {
		t.Fatal(err)
	}
	if err := chmodSocket(link, 0o600); err == nil {
		t.Errorf("chmodSocket(link to a file) succeeded")
	}
	if err := chmodSocket(victim, 0o600); err == nil {
		t.Errorf("chmodSocket(regular file) succeeded")
	}
	if fi, _ := os.Stat(victim); fi.Mode().Perm() != 0o644 {
		t.Errorf("the link's target has mode %v, want it untouched (0644)", fi.Mode().Perm())
	}
}
