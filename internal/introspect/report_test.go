package introspect

import (
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

var update = flag.Bool("update", false, "rewrite testdata golden files")

func TestCaptureGolden(t *testing.T) {
	im := newImage(t, 4)
	im.populate()
	// The scheduler has exited with an error: exit info filled.
	ei := directMap + 0x530000
	im.put32(kExitKind, 1026)
	im.put32(ei, 1026)
	im.put64(ei+8, ^uint64(0))
	im.put64(ei+16, directMap+0x531000)
	im.put64(ei+24, directMap+0x532000)
	im.putBytes(directMap+0x531000, []byte("runnable task stall\x00"))
	im.putBytes(directMap+0x532000, []byte("stuck[200] failed to run for 4.000s\x00"))
	regs := []Regs{
		{RIP: 0xffffffff81001234, RSP: 0xffffc90000003f00, CR0: cr0PG | 1, CR3: 0x1200000, CR4: 0x20, EFER: 0xd01, Halted: true},
		{RIP: 0x401000, RSP: 0x7ffc0000, CR0: cr0PG | 1, CR3: Hex(0x1200000 | cr3PTIUser), RFLAGS: 0x202},
	}
	r := im.guest().Capture(regs)
	r.Tag = "golden"
	got, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	got = append(got, '\n')
	path := filepath.Join("testdata", "report.golden.json")
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if d := cmp.Diff(string(want), string(got)); d != "" {
		t.Errorf("report (-want +got):\n%s", d)
	}
	var back Report
	if err := json.Unmarshal(got, &back); err != nil {
		t.Fatalf("the report does not decode: %v", err)
	}
	if d := cmp.Diff(*r, back); d != "" {
		t.Errorf("report after a JSON round trip (-before +after):\n%s", d)
	}
	sum := strings.Join(r.Summary(), "\n")
	for _, w := range []string{
		"sched_ext: SCX_OPS_ENABLED, ops simple, exit SCX_EXIT_ERROR_STALL (stuck[200] failed to run for 4.000s)",
		"CPU 1: running worker-t[101], nr_running 1, scx nr_running 1, local DSQ 10",
		"CPU 2: running swapper/0[0], nr_running 2, scx nr_running 2, local DSQ 20, stuck[200] runnable for 1000 jiffies",
		"stuck CPU 2: stuck[200] runnable for 1000 jiffies without running",
	} {
		if !strings.Contains(sum, w) {
			t.Errorf("summary lacks %q:\n%s", w, sum)
		}
	}
}

func TestCaptureDegrades(t *testing.T) {
	im := newImage(t, 4)
	im.populate()
	// CPU 1's current task pointer is wild; the rest still reads.
	im.put64(pcpuBase+0x10000+rqOff+rqCurr, 0xdead000000000000)
	r := im.guest().Capture(nil)
	if len(r.CPUs) != imgCPUs {
		t.Fatalf("%d CPUs, want %d", len(r.CPUs), imgCPUs)
	}
	if c := r.CPUs[1]; len(c.Errors) != 1 || !strings.Contains(c.Errors[0], "curr task") || c.NrRunning != 1 {
		t.Errorf("CPU 1 = %+v, want nr_running 1 and one curr task error", c)
	}
	if c := r.CPUs[0]; len(c.Errors) != 0 || c.CurrComm != "swapper/0" {
		t.Errorf("CPU 0 = %+v, want swapper/0 and no errors", c)
	}
	// Without vmlinux: registers only, and why.
	r = New(im.mem, nil).Capture([]Regs{{RIP: 1}})
	if len(r.VCPUs) != 1 || len(r.CPUs) != 0 || len(r.Errors) != 1 || !strings.Contains(r.Errors[0], "no vmlinux") {
		t.Errorf("without vmlinux: %+v", r)
	}
}
