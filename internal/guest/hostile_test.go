package guest

import (
	"path/filepath"
	"slices"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/ktstr-go/ktstr/lib/shm"
	"github.com/ktstr-go/ktstr/lib/wire"
)

func TestParseHostile(t *testing.T) {
	tests := []struct {
		in   string
		want []string // nil: an error
	}{
		{"all", []string{"crc", "pad", "unknown", "smuggle", "header", "flood", "forge", "escapes"}},
		{"all,ring", []string{"crc", "pad", "unknown", "smuggle", "header", "flood", "forge", "escapes", "ring"}},
		{"ring, crc", []string{"crc", "ring"}}, // running order, not the order given
		{"pad,pad", []string{"pad"}},
		{"oversized,truncated", nil},
		{"crc,nope", nil},
		{"", nil},
	}
	for _, tt := range tests {
		got, err := ParseHostile(tt.in)
		if tt.want == nil {
			if err == nil {
				t.Errorf("ParseHostile(%q) = %q, want an error", tt.in, got)
			}
			continue
		}
		if err != nil || !slices.Equal(got, tt.want) {
			t.Errorf("ParseHostile(%q) = %q, %v, want %q", tt.in, got, err, tt.want)
		}
	}
}

// TestHostileFrames runs hostile mode in this process (as --vmm host
// does) with the attacks that write frames, and counts what reached the
// TX ring by type and anomaly: the counts the verdict is checked against
// (TestHostileGuest in internal/e2e) are the ones the agent wrote.
func TestHostileFrames(t *testing.T) {
	l, _ := shm.DefaultLayout(shm.DefaultSize)
	r, err := shm.Create(filepath.Join(t.TempDir(), "region"), l)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	g, err := shm.OpenGuest(r.Mem())
	if err != nil {
		t.Fatal(err)
	}
	a := &agent{host: true, cfg: Config{Hostile: []string{"crc", "pad", "unknown", "smuggle", "flood", "forge", "escapes"}}, done: make(chan struct{})}
	a.attach(g)
	a.run()

	c := r.TX().NewConsumer()
	data, more, err := c.Peek()
	if err != nil || len(more) != 0 {
		t.Fatalf("Peek = %d+%d bytes, %v", len(data), len(more), err)
	}
	got := map[string]int{}
	var asm wire.Assembler
	asm.OnEvent = func(e wire.Event) { got[e.Kind.String()]++ }
	asm.Feed(data, func(f wire.Frame) { got[f.Type.String()]++ })
	asm.Close()
	n := HostileForge
	want := map[string]int{
		"crc_mismatch": 6 * HostileTorn,
		"pad_nonzero":  HostilePad,
		"SCDX":         HostileTorn, "EXIT": HostileTorn + 1, "STIM": HostileTorn,
		"TEST":       HostileTorn + 1, // and the forged pass
		"SRDY":       1 + HostileTorn + HostileSmuggle,
		"SNRQ":       HostileTorn + HostileFlood,
		"KORQ":       HostileFlood,
		"SCST":       HostileFlood,
		"SOUT":       HostilePad + 1, // and the escapes
		"SERR":       1,
		"SCLG":       1,
		"SCSW":       HostileSmuggle,
		"LIFE":       2,
		"0x00000000": HostileUnknown / 4, "0xffffffff": HostileUnknown / 4, "0x4556494c": HostileUnknown / 4, "0x12345678": HostileUnknown / 4,
		"HELO": 2 * n, "LOSS": 2 * n, "VEND": 3 * n, "SNRP": n, "KORP": n,
	}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("frames and anomalies by name (-want +got):\n%s", d)
	}
	if r.GuestState() != shm.GuestDone {
		t.Errorf("guest state %d, want done", r.GuestState())
	}
}
