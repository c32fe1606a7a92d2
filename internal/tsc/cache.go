package tsc

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// bootIDPath names this boot of the host; tests point it elsewhere.
var bootIDPath = "/proc/sys/kernel/random/boot_id"

// The frequencies a cache file may hold, in kHz: anything else is a
// damaged or foreign file, measured over.
const minKHz, maxKHz = 100_000, 100_000_000

// cacheMagic starts a cache file's one line: "ktstr-tsc 1 BOOT_ID KHZ".
const cacheMagic = "ktstr-tsc 1"

// CachedKHz returns the counter's frequency recorded in file for this
// boot of the host, or measures it with KHz(span) and records it there.
// A constant counter's rate does not change while the host runs, so one
// measurement per boot is enough, and the next runs skip its span (20 ms
// on a quiet host, up to MaxSpan on a busy one, spinning a CPU the guest
// about to start would use). fromCache says which it was. A file of
// another boot, or one that does not parse, is measured over; one that
// cannot be written is no error (the value is still returned). file ""
// only measures.
func CachedKHz(file string, span time.Duration) (khz uint64, fromCache bool, err error) {
	boot, _ := os.ReadFile(bootIDPath)
	id := string(bytes.TrimSpace(boot))
	if file != "" && id != "" {
		if v, ok := readCache(file, id); ok {
			return v, true, nil
		}
	}
	if khz, err = KHz(span); err != nil {
		return 0, false, err
	}
	if file != "" && id != "" && !strings.ContainsAny(id, " \n") {
		writeCache(file, id, khz)
	}
	return khz, false, nil
}

func readCache(file, id string) (uint64, bool) {
	b, err := os.ReadFile(file)
	if err != nil || len(b) > 256 {
		return 0, false
	}
	rest, ok := strings.CutPrefix(string(b), cacheMagic+" ")
	f := strings.Fields(rest)
	if !ok || len(f) != 2 || f[0] != id {
		return 0, false
	}
	v, err := strconv.ParseUint(f[1], 10, 64)
	if err != nil || v < minKHz || v > maxKHz {
		return 0, false
	}
	return v, true
}

// writeCache replaces file whole (a temporary file renamed over it), so
// that a concurrent run reads the old line or the new one.
func writeCache(file, id string, khz uint64) {
	dir := filepath.Dir(file)
	if os.MkdirAll(dir, 0o755) != nil {
		return
	}
	tmp, err := os.CreateTemp(dir, ".tsc-*")
	if err != nil {
		return
	}
	_, err = fmt.Fprintf(tmp, "%s %s %d\n", cacheMagic, id, khz)
	if cerr := tmp.Close(); err == nil && cerr == nil {
		if os.Rename(tmp.Name(), file) == nil {
			return
		}
	}
	os.Remove(tmp.Name())
}
