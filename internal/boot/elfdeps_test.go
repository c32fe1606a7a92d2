package boot

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

func TestELFDepsDynamic(t *testing.T) {
	bin, err := exec.LookPath("ls")
	if err != nil {
		t.Skip("no ls binary to inspect")
	}
	deps, err := ELFDeps(bin)
	if err != nil {
		t.Fatalf("ELFDeps(%s): %v", bin, err)
	}
	var haveLibc, haveInterp bool
	for _, d := range deps {
		if !filepath.IsAbs(d) {
			t.Errorf("dependency %q is not absolute", d)
		}
		if _, err := os.Stat(d); err != nil {
			t.Errorf("dependency %q does not exist: %v", d, err)
		}
		haveLibc = haveLibc || strings.HasPrefix(filepath.Base(d), "libc.so")
		haveInterp = haveInterp || strings.Contains(d, "ld-linux")
	}
	if !haveLibc || !haveInterp {
		t.Errorf("ELFDeps(%s) = %v, want libc and the dynamic loader", bin, deps)
	}
	// ldd agrees on the set of libraries (ldd lists more only for vdso).
	out, err := exec.Command("ldd", bin).Output()
	if err != nil {
		t.Skipf("ldd: %v", err)
	}
	for _, line := range strings.Split(string(out), "\n") {
		f := strings.Fields(line)
		if len(f) >= 3 && f[1] == "=>" && strings.HasPrefix(f[2], "/") {
			found := false
			for _, d := range deps {
				r1, _ := filepath.EvalSymlinks(d)
				r2, _ := filepath.EvalSymlinks(f[2])
				found = found || r1 == r2
			}
			if !found {
				t.Errorf("ldd lists %s, ELFDeps does not", f[2])
			}
		}
	}
}

func TestELFDepsStaticAndErrors(t *testing.T) {
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	// The test binary may be dynamic (cgo for -race); only check it parses.
	if _, err := ELFDeps(self); err != nil {
		t.Errorf("ELFDeps(test binary): %v", err)
	}
	notELF := filepath.Join(t.TempDir(), "x")
	os.WriteFile(notELF, []byte("#!/bin/sh\n"), 0o755)
	if _, err := ELFDeps(notELF); err == nil {
		t.Error("ELFDeps(shell script) = nil error")
	}
}
