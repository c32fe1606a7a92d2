package boot

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
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
	for _, dep := range deps {
		d := dep.Src
		if !filepath.IsAbs(d) || dep.Dst != d {
			t.Errorf("dependency %+v: want the same absolute path on both sides", dep)
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
				r1, _ := filepath.EvalSymlinks(d.Src)
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

// patched copies a dynamic system binary with every occurrence of old
// (NUL-terminated) replaced by repl, padded with NULs to the same length:
// the binary a hostile or broken build would give.
func patched(t *testing.T, old, repl string) string {
	t.Helper()
	bin, err := exec.LookPath("ls")
	if err != nil {
		t.Skip("no ls binary to patch")
	}
	b, err := os.ReadFile(bin)
	if err != nil {
		t.Fatal(err)
	}
	if len(repl) > len(old) {
		t.Fatalf("replacement %q longer than %q", repl, old)
	}
	from := append([]byte(old), 0)
	if !bytes.Contains(b, from) {
		t.Skipf("%s does not contain %q", bin, old)
	}
	to := append([]byte(repl), make([]byte, len(old)-len(repl)+1)...)
	out := filepath.Join(t.TempDir(), "sched")
	if err := os.WriteFile(out, bytes.ReplaceAll(b, from, to), 0o755); err != nil {
		t.Fatal(err)
	}
	return out
}

// TestELFDepsRefusesHostFiles: metadata that points outside the library
// directories is refused with an error naming the entry, never packed.
// The old walker copied PT_INTERP verbatim (/etc/passwd went into the
// initramfs) and followed DT_NEEDED "../bin/sh" from /lib64 to /bin/sh.
func TestELFDepsRefusesHostFiles(t *testing.T) {
	for _, tc := range []struct {
		name, old, repl, want string
	}{
		{"interp outside the library directories", "/lib64/ld-linux-x86-64.so.2", "/etc/passwd", `PT_INTERP "/etc/passwd"`},
		{"interp not clean", "/lib64/ld-linux-x86-64.so.2", "/lib64/../etc/passwd", `PT_INTERP "/lib64/../etc/passwd"`},
		{"interp not a shared object", "/lib64/ld-linux-x86-64.so.2", "/lib/os-release", `PT_INTERP "/lib/os-release"`},
		{"needed with a path", "libc.so.6", "../bin/sh", `DT_NEEDED "../bin/sh" is not a plain file name`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			bin := patched(t, tc.old, tc.repl)
			deps, err := ELFDeps(bin)
			if err == nil || !errors.Is(err, ErrELFDep) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("ELFDeps(patched %s -> %s) = %v, %v; want an ErrELFDep naming %s", tc.old, tc.repl, deps, err, tc.want)
			}
		})
	}
}

// cc builds C source with the given flags, skipping without a compiler.
func cc(t *testing.T, out, src string, flags ...string) {
	t.Helper()
	gcc, err := exec.LookPath("cc")
	if err != nil {
		t.Skip("no C compiler")
	}
	c := out + ".c"
	if err := os.WriteFile(c, []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	args := append([]string{"-o", out, c}, flags...)
	if b, err := exec.Command(gcc, args...).CombinedOutput(); err != nil {
		t.Skipf("cc %v: %v\n%s", args, err, b)
	}
}

// TestELFDepsRunpath: a library next to the binary (DT_RUNPATH $ORIGIN)
// is packed where $ORIGIN points in the guest; a DT_RUNPATH outside the
// library directories and the binary's directory is refused, and so is a
// "library" that is not an ELF shared object.
func TestELFDepsRunpath(t *testing.T) {
	dir := t.TempDir()
	lib := filepath.Join(dir, "libfoo.so")
	cc(t, lib, "int foo(void) { return 1; }\n", "-shared", "-fPIC")
	main := "int foo(void); int main(void) { return foo(); }\n"

	good := filepath.Join(dir, "good")
	cc(t, good, main, "-L"+dir, "-lfoo", "-Wl,--enable-new-dtags,-rpath,$ORIGIN")
	deps, err := ELFDeps(good)
	if err != nil {
		t.Fatalf("ELFDeps($ORIGIN runpath): %v", err)
	}
	if !slices.Contains(deps, Dep{Src: lib, Dst: "/ktstr/bin/libfoo.so"}) {
		t.Errorf("ELFDeps = %v, want libfoo.so packed as /ktstr/bin/libfoo.so", deps)
	}

	evil := filepath.Join(dir, "evil")
	cc(t, evil, main, "-L"+dir, "-lfoo", "-Wl,--enable-new-dtags,-rpath,/etc:$ORIGIN")
	if _, err := ELFDeps(evil); err == nil || !strings.Contains(err.Error(), `DT_RUNPATH entry "/etc"`) {
		t.Errorf("ELFDeps(runpath /etc) = %v, want an error naming the entry", err)
	}

	if err := os.WriteFile(lib, []byte("not a library\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := ELFDeps(good); err == nil || !errors.Is(err, ErrELFDep) || !strings.Contains(err.Error(), `DT_NEEDED "libfoo.so"`) {
		t.Errorf("ELFDeps(libfoo.so not an ELF) = %v, want an ErrELFDep naming the entry", err)
	}
}

// TestRunRefusesDynamicInit: a dynamically linked ktstr-boot would make
// the guest panic ("No working init found"); Run refuses it before
// anything is made, naming the loader.
func TestRunRefusesDynamicInit(t *testing.T) {
	dyn, err := exec.LookPath("ls")
	if err != nil {
		t.Skip("no ls binary")
	}
	dir := filepath.Join(t.TempDir(), "run")
	_, err = Run(Config{VMM: "qemu", Kernel: dyn, Self: dyn, RunDir: dir})
	if !errors.Is(err, ErrDynamicInit) || !strings.Contains(err.Error(), "CGO_ENABLED=0") {
		t.Fatalf("Run with a dynamic /init: %v, want ErrDynamicInit", err)
	}
	if _, err := os.Stat(dir); err == nil {
		t.Errorf("Run made the run directory before refusing")
	}
}
