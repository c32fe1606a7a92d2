package e2e

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// TestBuildKernelKey: make kernel KSRC=... caches a build of the user's
// own tree by its commit and a hash of its uncommitted changes (tracked
// and untracked, not ignored files): any change gives another key,
// undoing it gives the old key back, a commit gives a new commit and a
// clean tree. (build-kernel --print-key prints the key without
// building; building a kernel takes minutes, the key is what decides.)
func TestBuildKernelKey(t *testing.T) {
	for _, b := range []string{"git", "make"} {
		if _, err := exec.LookPath(b); err != nil {
			t.Skipf("%s not installed", b)
		}
	}
	tree := t.TempDir()
	cacheDir := t.TempDir()
	os.Chmod(cacheDir, 0o755)
	write := func(name, text string) {
		t.Helper()
		if err := os.WriteFile(filepath.Join(tree, name), []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	run := func(dir string, env []string, name string, args ...string) (string, error) {
		t.Helper()
		cmd := exec.Command(name, args...)
		cmd.Dir = dir
		cmd.Env = append(os.Environ(), env...)
		out, err := cmd.CombinedOutput()
		return strings.TrimSpace(string(out)), err
	}
	git := func(args ...string) {
		t.Helper()
		if out, err := run(tree, []string{"GIT_AUTHOR_NAME=t", "GIT_AUTHOR_EMAIL=t@t", "GIT_COMMITTER_NAME=t", "GIT_COMMITTER_EMAIL=t@t"}, "git", args...); err != nil {
			t.Fatalf("git %v: %v\n%s", args, err, out)
		}
	}
	key := func(src string) string {
		t.Helper()
		out, err := run(repoRoot(t), []string{"KSRC=" + src, "KTSTR_CACHE=" + cacheDir}, filepath.Join(repoRoot(t), "scripts", "build-kernel"), "--print-key")
		if err != nil {
			t.Fatalf("build-kernel --print-key: %v\n%s", err, out)
		}
		return out
	}
	write("Makefile", "kernelversion:\n\t@echo 6.99.0-test\n")
	write("Kconfig", "config X\n\tbool\n")
	write("a.c", "int a;\n")
	write(".gitignore", "*.o\n")
	git("init", "-q")
	git("add", ".")
	git("commit", "-q", "-m", "one")
	k1 := key(tree)
	if !regexp.MustCompile(`^ksrc-6\.99\.0-test-[0-9a-f]{12}-clean-[0-9a-f]{12}$`).MatchString(k1) {
		t.Fatalf("key %q: want ksrc-VERSION-COMMIT-clean-FRAGMENT", k1)
	}
	write("a.c", "int a = 1;\n")
	k2 := key(tree)
	write("a.c", "int a = 2;\n")
	k3 := key(tree)
	write("a.c", "int a;\n")
	k4 := key(tree)
	write("new.c", "int b;\n")
	k5 := key(tree)
	os.Remove(filepath.Join(tree, "new.c"))
	write("built.o", "object")
	k6 := key(tree)
	if k2 == k1 || k3 == k2 || k3 == k1 || k4 != k1 || k5 == k1 || k6 != k1 {
		t.Errorf("keys: clean %s, changed %s, changed again %s, undone %s, untracked %s, ignored %s", k1, k2, k3, k4, k5, k6)
	}
	commit := strings.Split(k1, "-")[3]
	write("a.c", "int a = 3;\n")
	git("commit", "-q", "-am", "two")
	k7 := key(tree)
	if k7 == k1 || !strings.Contains(k7, "-clean-") || strings.Contains(k7, commit) {
		t.Errorf("key after a commit %s (before %s): want a new commit, clean", k7, k1)
	}
	// A tree that is not a git checkout: its files' paths, sizes and
	// modification times.
	os.RemoveAll(filepath.Join(tree, ".git"))
	n1 := key(tree)
	write("a.c", "int a = 44;\n")
	if n2 := key(tree); !strings.Contains(n1, "-nogit-") || n2 == n1 {
		t.Errorf("keys without git %s, %s: want nogit and a change", n1, n2)
	}
	// Not a kernel tree.
	out, err := run(repoRoot(t), []string{"KSRC=" + t.TempDir(), "KTSTR_CACHE=" + cacheDir}, filepath.Join(repoRoot(t), "scripts", "build-kernel"), "--print-key")
	if err == nil || !strings.Contains(out, "is not a kernel tree") {
		t.Errorf("KSRC=empty directory: %v %q", err, out)
	}
}
