package qemu

import (
	"bytes"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// TestArgsEscapeCommas: a run directory with a comma in its path must not
// split QEMU's option lists; every path inside one has its commas doubled.
func TestArgsEscapeCommas(t *testing.T) {
	c := Config{Kernel: "/r,d/k", Initrd: "/r,d/initramfs.cpio", Cmdline: "a,b", CPUs: 1, MemoryMB: 128,
		Region: "/r,d/region", RegionSize: 1 << 20}
	args := c.Args()
	for _, want := range []string{
		"memory-backend-file,id=ktstr,mem-path=/r,,d/region,share=on,size=1048576",
		"file,id=com1,path=/proc/self/fd/3", "file,id=com2,path=/proc/self/fd/4",
		"/r,d/k", "/r,d/initramfs.cpio", "a,b", // taken whole by QEMU
	} {
		if !slices.Contains(args, want) {
			t.Errorf("Args() = %q, want it to contain %q", args, want)
		}
	}
}

// TestSerialPipes runs a stand-in for QEMU that writes to the serial
// ports' paths as QEMU does: everything reaches the writers, in order,
// before Done closes.
func TestSerialPipes(t *testing.T) {
	fake := filepath.Join(t.TempDir(), "fake-qemu")
	script := `#!/bin/sh
for a; do
	case $a in
	file,id=com1,path=*) con=${a#*path=} ;;
	file,id=com2,path=*) com2=${a#*path=} ;;
	esac
done
i=0
while [ $i -lt 2000 ]; do echo "console line $i"; i=$((i+1)); done > "$con"
echo "com2 line" > "$com2"
`
	if err := os.WriteFile(fake, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	var con, com2 bytes.Buffer
	vm, err := Start(Config{Binary: fake, Console: &con, COM2: &com2, Stderr: os.Stderr})
	if err != nil {
		t.Fatal(err)
	}
	<-vm.Done()
	if vm.Err() != nil {
		t.Fatalf("fake QEMU: %v", vm.Err())
	}
	lines := strings.Split(strings.TrimSuffix(con.String(), "\n"), "\n")
	if len(lines) != 2000 || lines[0] != "console line 0" || lines[1999] != "console line 1999" {
		t.Errorf("console: %d lines (%q ... %q), want 2000 in order", len(lines), lines[0], lines[len(lines)-1])
	}
	if com2.String() != "com2 line\n" {
		t.Errorf("com2 = %q", com2.String())
	}
}
