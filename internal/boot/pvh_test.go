package boot

import (
	"bytes"
	"encoding/binary"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ktstr-go/ktstr/internal/cache"
)

// versionedBzImage writes a file with a bzImage setup header whose version
// string is ver.
func versionedBzImage(t *testing.T, ver string) string {
	t.Helper()
	b := make([]byte, 0x400)
	copy(b[0x202:], "HdrS")
	binary.LittleEndian.PutUint16(b[0x20e:], 0x100) // the string at 0x300
	copy(b[0x300:], ver+"\x00")
	p := filepath.Join(t.TempDir(), "bzImage")
	if err := os.WriteFile(p, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestBzImageVersion(t *testing.T) {
	const ver = "6.12.117 (root@host) #1 SMP PREEMPT_DYNAMIC Tue Dec  1 09:20:00 UTC 2026"
	if v, err := bzImageVersion(versionedBzImage(t, ver)); err != nil || v != ver {
		t.Errorf("bzImageVersion = %q, %v; want %q", v, err, ver)
	}
	notBz := filepath.Join(t.TempDir(), "x")
	os.WriteFile(notBz, bytes.Repeat([]byte{1}, 0x400), 0o644)
	if _, err := bzImageVersion(notBz); err == nil || !strings.Contains(err.Error(), "HdrS") {
		t.Errorf("a file without a setup header: %v", err)
	}
}

// TestPVHImage on the kernel make kernel built (skipped without one):
// its vmlinux is bootable in its place when it has the PVH note, and a
// bzImage of another build (its stamp changed) never gets it.
func TestPVHImage(t *testing.T) {
	c, err := cache.Dir()
	if err != nil {
		t.Skip(err)
	}
	k := filepath.Join(c, "kernel", "bzImage")
	v := DefaultVmlinux(k)
	if v == "" {
		t.Skip("no kernel with a vmlinux in the cache (make kernel)")
	}
	ver, err := bzImageVersion(k)
	if err != nil {
		t.Fatal(err)
	}
	got, err := PVHImage(k, v)
	switch {
	case err != nil && strings.Contains(err.Error(), "no PVH entry"):
		t.Logf("the cached kernel predates CONFIG_PVH: %v", err)
	case err != nil || got != v:
		t.Fatalf("PVHImage(%s, %s) = %q, %v; want the vmlinux", k, v, got, err)
	}
	if err == nil {
		other := versionedBzImage(t, strings.Replace(ver, "#", "#9", 1))
		if got, err := PVHImage(other, v); err == nil || !strings.Contains(err.Error(), "not the kernel's build") {
			t.Errorf("another build's bzImage: %q, %v; want refused", got, err)
		}
	}
	if _, err := PVHImage(k, ""); err == nil {
		t.Error("no vmlinux: accepted")
	}
	if _, err := PVHImage(k, k); err == nil {
		t.Error("a bzImage as the vmlinux: accepted")
	}
}
