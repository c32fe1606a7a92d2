package cgroup

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestRemoveTakesChildren: a group with cgroups left in it (a killed
// worker's leaves) is removed with them.
func TestRemoveTakesChildren(t *testing.T) {
	mount := FindV2()
	b, err := os.ReadFile("/proc/self/cgroup")
	if mount == "" || err != nil {
		t.Skipf("no cgroup v2 (%q, %v)", mount, err)
	}
	own := ""
	for _, l := range strings.Split(string(b), "\n") {
		if p, ok := strings.CutPrefix(l, "0::"); ok {
			own = filepath.Join(mount, p)
		}
	}
	dir, err := os.MkdirTemp(own, "ktstr-test-")
	if own == "" || err != nil {
		t.Skipf("cgroup v2 not writable here: %v", err)
	}
	g := &Group{Dir: dir}
	for _, c := range []string{"a", "a/b", "c"} {
		if err := os.Mkdir(filepath.Join(dir, c), 0o755); err != nil {
			g.Remove(time.Second)
			t.Fatal(err)
		}
	}
	if err := g.Remove(2 * time.Second); err != nil {
		t.Fatalf("Remove: %v", err)
	}
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Errorf("%s still there: %v", dir, err)
	}
}
