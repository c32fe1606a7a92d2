package boot

import (
	"bytes"
	"compress/gzip"
	"encoding/binary"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ktstr-go/ktstr/internal/cache"
)

// fakeBzImage is the smallest file embeddedConfig reads as a bzImage:
// a setup header (protocol 2.15, one setup sector) and a gzip payload
// holding kernel, which may carry an IKCFG_ST ... IKCFG_ED block.
func fakeBzImage(t *testing.T, kernel []byte) string {
	t.Helper()
	var payload bytes.Buffer
	zw := gzip.NewWriter(&payload)
	zw.Write(kernel)
	zw.Close()
	img := make([]byte, 1024)
	img[0x1f1] = 1
	copy(img[0x202:], "HdrS")
	binary.LittleEndian.PutUint16(img[0x206:], 0x20f)
	binary.LittleEndian.PutUint32(img[0x248:], 0)
	binary.LittleEndian.PutUint32(img[0x24c:], uint32(payload.Len()))
	img = append(img, payload.Bytes()...)
	p := filepath.Join(t.TempDir(), "bzImage")
	if err := os.WriteFile(p, img, 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// ikconfig is what CONFIG_IKCONFIG puts in a kernel: the configuration
// gzip-compressed between two markers, here amid other bytes (a marker
// split over the reader's chunks included).
func ikconfig(config string) []byte {
	var z bytes.Buffer
	zw := gzip.NewWriter(&z)
	zw.Write([]byte(config))
	zw.Close()
	var k bytes.Buffer
	k.Write(bytes.Repeat([]byte{0x90}, 128<<10-3)) // the marker straddles the first chunk's end
	k.WriteString("IKCFG_ST")
	k.Write(z.Bytes())
	k.WriteString("IKCFG_ED")
	k.Write(bytes.Repeat([]byte{0xcc}, 1000))
	return k.Bytes()
}

func TestEmbeddedConfig(t *testing.T) {
	const cfg = "# comment\nCONFIG_SCHED_CLASS_EXT=y\nCONFIG_NR_CPUS=64\n# CONFIG_KASAN is not set\n"
	tests := []struct {
		name    string
		kernel  []byte
		want    map[string]string
		wantErr bool
	}{
		{"ikconfig", ikconfig(cfg), map[string]string{"CONFIG_SCHED_CLASS_EXT": "y", "CONFIG_NR_CPUS": "64"}, false},
		{"no ikconfig", bytes.Repeat([]byte{1}, 300<<10), nil, true},
		{"marker without gzip", []byte("xxIKCFG_STnot gzip"), nil, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			b, err := embeddedConfig(fakeBzImage(t, tc.kernel))
			if (err != nil) != tc.wantErr {
				t.Fatalf("embeddedConfig: %v, want error %v", err, tc.wantErr)
			}
			if err != nil {
				return
			}
			got := parseKconfig(b)
			if len(got) != len(tc.want) {
				t.Errorf("options %v, want %v", got, tc.want)
			}
			for k, v := range tc.want {
				if got[k] != v {
					t.Errorf("%s=%q, want %q", k, got[k], v)
				}
			}
		})
	}
	// Not a bzImage, or a payload that is not gzip: no embedded config.
	junk := filepath.Join(t.TempDir(), "junk")
	os.WriteFile(junk, bytes.Repeat([]byte{0}, 4096), 0o644)
	if _, err := embeddedConfig(junk); err == nil {
		t.Error("embeddedConfig of zeros: no error")
	}
}

func TestCheckSchedExtFake(t *testing.T) {
	with := fakeBzImage(t, ikconfig("CONFIG_SCHED_CLASS_EXT=y\n"))
	if err := CheckSchedExt(with); err != nil {
		t.Errorf("CheckSchedExt(with sched_ext) = %v", err)
	}
	without := fakeBzImage(t, ikconfig("# CONFIG_SCHED_CLASS_EXT is not set\nCONFIG_BPF=y\n"))
	err := CheckSchedExt(without)
	if !errors.Is(err, ErrNoSchedExt) || !strings.Contains(err.Error(), "CONFIG_SCHED_CLASS_EXT is not set") || !strings.Contains(err.Error(), "embedded") {
		t.Errorf("CheckSchedExt(without) = %v, want ErrNoSchedExt naming the option and the embedded config", err)
	}
	// No configuration anywhere: nothing to say.
	if err := CheckSchedExt(fakeBzImage(t, []byte("plain kernel"))); err != nil {
		t.Errorf("CheckSchedExt(no config) = %v, want nil", err)
	}
}

// TestCheckSchedExtCached: the project's kernel carries its configuration
// (gzip, IKCONFIG) and has sched_ext, the same options as the config file
// next to it; Debian's cloud kernel (zstd, no IKCONFIG) has not, which its
// config-VERSION file says.
func TestCheckSchedExtCached(t *testing.T) {
	c, err := cache.Dir()
	if err != nil {
		t.Skipf("no cache directory: %v", err)
	}
	ran := false
	if k := filepath.Join(c, "kernel", "bzImage"); exists(k) {
		ran = true
		opts, src, ok := KernelOptions(k)
		if !ok || !strings.Contains(src, "embedded") || opts[SchedExtOption] != "y" {
			t.Errorf("KernelOptions(%s) = %d options from %q, %v; want the embedded config with sched_ext", k, len(opts), src, ok)
		}
		if f, ok := KernelConfig(k); ok {
			b, _ := os.ReadFile(f.Src)
			file := parseKconfig(b)
			if len(file) != len(opts) || file["CONFIG_NR_CPUS"] != opts["CONFIG_NR_CPUS"] {
				t.Errorf("embedded config has %d options, %s %d", len(opts), f.Src, len(file))
			}
		}
		if err := CheckSchedExt(k); err != nil {
			t.Errorf("CheckSchedExt(%s) = %v", k, err)
		}
	}
	if k := filepath.Join(c, "debian", "vmlinuz"); exists(k) {
		ran = true
		err := CheckSchedExt(k)
		if !errors.Is(err, ErrNoSchedExt) || !strings.Contains(err.Error(), "config-") {
			t.Errorf("CheckSchedExt(%s) = %v, want ErrNoSchedExt from its config file", k, err)
		}
	}
	if !ran {
		t.Skip("no cached kernel (make kernel, or scripts/fetch-kernel)")
	}
}

func exists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}
