package tsc

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// withBootID points bootIDPath at a file holding id for the test.
func withBootID(t *testing.T, id string) {
	t.Helper()
	p := filepath.Join(t.TempDir(), "boot_id")
	if err := os.WriteFile(p, []byte(id+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	old := bootIDPath
	bootIDPath = p
	t.Cleanup(func() { bootIDPath = old })
}

func needCounter(t *testing.T) {
	t.Helper()
	if !supported {
		t.Skip("not an x86-64 host")
	}
	if err := constant(); err != nil {
		t.Skipf("host counter: %v", err)
	}
}

// TestCachedKHzMeasuresOncePerBoot: the first call measures and records
// the value with the boot's id; the next returns it from the file; a new
// boot (another id) measures again and records that boot.
func TestCachedKHzMeasuresOncePerBoot(t *testing.T) {
	needCounter(t)
	file := filepath.Join(t.TempDir(), "sub", "tsc")
	withBootID(t, "boot-a")
	v1, cached, err := CachedKHz(file, 5*time.Millisecond)
	if err != nil || cached {
		t.Fatalf("first call: %d, cached %v, %v; want a measurement", v1, cached, err)
	}
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatalf("nothing recorded: %v", err)
	}
	if want := "ktstr-tsc 1 boot-a " + strconv.FormatUint(v1, 10) + "\n"; string(b) != want {
		t.Fatalf("recorded %q, want %q", b, want)
	}
	v2, cached, err := CachedKHz(file, 5*time.Millisecond)
	if err != nil || !cached || v2 != v1 {
		t.Fatalf("second call: %d, cached %v, %v; want %d from the file", v2, cached, err, v1)
	}
	withBootID(t, "boot-b")
	_, cached, err = CachedKHz(file, 5*time.Millisecond)
	if err != nil || cached {
		t.Fatalf("after a reboot: cached %v, %v; want a measurement", cached, err)
	}
	if b, _ := os.ReadFile(file); !strings.HasPrefix(string(b), "ktstr-tsc 1 boot-b ") {
		t.Fatalf("after a reboot the file holds %q", b)
	}
}

// TestCachedKHzIgnoresBadFiles: a file that does not parse, holds a
// frequency no counter has, or is too long is measured over, never
// returned.
func TestCachedKHzIgnoresBadFiles(t *testing.T) {
	needCounter(t)
	withBootID(t, "boot-a")
	for _, content := range []string{
		"garbage",
		"ktstr-tsc 1 boot-a\n",
		"ktstr-tsc 1 boot-a 12\n",
		"ktstr-tsc 1 boot-a 999999999999\n",
		"ktstr-tsc 1 boot-a -5\n",
		"ktstr-tsc 2 boot-a 2100000\n",
		"ktstr-tsc 1 boot-a 2100000 extra\n",
		"ktstr-tsc 1 boot-a 2100000\n" + strings.Repeat(" ", 300),
	} {
		file := filepath.Join(t.TempDir(), "tsc")
		if err := os.WriteFile(file, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
		v, cached, err := CachedKHz(file, 5*time.Millisecond)
		if err != nil || cached || v < minKHz || v > maxKHz {
			t.Errorf("file %q: %d, cached %v, %v; want a fresh measurement", content, v, cached, err)
		}
	}
}

// TestCachedKHzUnwritable: where the file cannot be written the value is
// still measured and returned; with no file nothing is written anywhere.
func TestCachedKHzUnwritable(t *testing.T) {
	needCounter(t)
	withBootID(t, "boot-a")
	dir := t.TempDir()
	blocker := filepath.Join(dir, "not-a-dir")
	if err := os.WriteFile(blocker, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	v, cached, err := CachedKHz(filepath.Join(blocker, "tsc"), 5*time.Millisecond)
	if err != nil || cached || v == 0 {
		t.Fatalf("unwritable: %d, cached %v, %v", v, cached, err)
	}
	if _, _, err := CachedKHz("", 5*time.Millisecond); err != nil {
		t.Fatal(err)
	}
	if es, _ := os.ReadDir(dir); len(es) != 1 {
		t.Errorf("the directory holds %d entries, want only the blocker", len(es))
	}
}
