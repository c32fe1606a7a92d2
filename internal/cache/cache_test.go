package cache

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

func TestDir(t *testing.T) {
	shared := t.TempDir()
	if err := os.Chmod(shared, 0o1777); err != nil {
		t.Fatal(err)
	}
	theirs := filepath.Join(t.TempDir(), "theirs")
	os.Mkdir(theirs, 0o755)
	wantTheirs := theirs // not root: cannot give it away, so it is ours
	if os.Geteuid() == 0 {
		os.Chown(theirs, 65534, 65534)
		wantTheirs = ""
	}
	for _, tc := range []struct {
		name                   string
		ktstr, xdg, home, want string
		err                    bool
	}{
		{"KTSTR_CACHE first", "/k", "/x", "/h", "/k", false},
		{"XDG_CACHE_HOME next", "", "/x", "/h", "/x/ktstr", false},
		{"relative XDG_CACHE_HOME is ignored", "", "rel", "/h", "/h/.cache/ktstr", false},
		{"HOME last", "", "", "/h", "/h/.cache/ktstr", false},
		// It used to fall back to $TMPDIR/ktstr-cache.
		{"nothing: no cache", "", "", "", "", true},
		{"a world-writable cache is refused", shared, "", "/h", "", true},
		{"another user's cache is refused", theirs, "", "/h", wantTheirs, wantTheirs == ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Setenv("KTSTR_CACHE", tc.ktstr)
			t.Setenv("XDG_CACHE_HOME", tc.xdg)
			t.Setenv("HOME", tc.home)
			d, err := Dir()
			if (err != nil) != tc.err || d != tc.want {
				t.Errorf("Dir() = %q, %v; want %q (error %v)", d, err, tc.want, tc.err)
			}
			if tc.name == "nothing: no cache" && !errors.Is(err, ErrNoCache) {
				t.Errorf("Dir() error %v, want ErrNoCache", err)
			}
		})
	}
}

// TestScriptAgrees: scripts/cache-dir, the shell scripts' copy of the
// rule, names the same directory as Dir, or fails where Dir fails.
func TestScriptAgrees(t *testing.T) {
	script, err := filepath.Abs("../../scripts/cache-dir")
	if err != nil {
		t.Fatal(err)
	}
	shared := t.TempDir()
	os.Chmod(shared, 0o777)
	for _, env := range [][3]string{
		{"/k", "/x", "/h"}, {"", "/x", "/h"}, {"", "rel", "/h"}, {"", "", "/h"}, {"", "", ""}, {shared, "", "/h"},
	} {
		t.Setenv("KTSTR_CACHE", env[0])
		t.Setenv("XDG_CACHE_HOME", env[1])
		t.Setenv("HOME", env[2])
		want, werr := Dir()
		out, serr := exec.Command(script).Output()
		if got := strings.TrimSpace(string(out)); got != want || (werr == nil) != (serr == nil) {
			t.Errorf("KTSTR_CACHE=%q XDG_CACHE_HOME=%q HOME=%q: scripts/cache-dir = %q, %v; Dir = %q, %v", env[0], env[1], env[2], got, serr, want, werr)
		}
	}
}
