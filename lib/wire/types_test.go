package wire

import (
	"bufio"
	"encoding/binary"
	"os"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

// Every type's value spells its tag in hex, and the bytes on the wire are
// the tag reversed (ktstr pins EXIT -> "TIXE").
func TestTypeTagSpellsValue(t *testing.T) {
	for _, info := range Types {
		t.Run(info.Name, func(t *testing.T) {
			tag := info.Type.Tag()
			if len(tag) != 4 {
				t.Fatalf("Tag(%#x) = %q, want four letters", uint32(info.Type), tag)
			}
			if got := binary.BigEndian.Uint32([]byte(tag)); got != uint32(info.Type) {
				t.Errorf("tag %q spells %#x, want %#x", tag, got, uint32(info.Type))
			}
			le := binary.LittleEndian.AppendUint32(nil, uint32(info.Type))
			if rev := reverse(tag); string(le) != rev {
				t.Errorf("LE bytes of %v = %q, want %q", info.Type, le, rev)
			}
			if s := info.Type.String(); s != tag {
				t.Errorf("String() = %q, want %q", s, tag)
			}
		})
	}
}

func reverse(s string) string {
	b := []byte(s)
	for i, j := 0, len(b)-1; i < j; i, j = i+1, j-1 {
		b[i], b[j] = b[j], b[i]
	}
	return string(b)
}

// ktstr's test pins the exact bytes of EXIT, SRDY and SCSW on the wire.
func TestTypeWireBytes(t *testing.T) {
	for _, tc := range []struct {
		t    Type
		wire string
	}{
		{TypeExit, "TIXE"},
		{TypeSysRdy, "YDRS"},
		{TypeSchedSwapNotify, "WSCS"},
	} {
		b := AppendFrame(nil, tc.t, nil)
		if got := string(b[:4]); got != tc.wire {
			t.Errorf("AppendFrame(%v) starts %q, want %q", tc.t, got, tc.wire)
		}
	}
}

func TestTypesTable(t *testing.T) {
	want := []string{"STIM", "STEN", "SCST", "SCEN", "SCPP", "SCRR", "EXIT", "TEST", "SCDX", "CRSH",
		"PMET", "RAWO", "PRAW", "WPRF", "SNRQ", "SNRP", "KORQ", "KORP", "SRDY", "SCSW",
		"SOUT", "SERR", "SCLG", "LIFE", "EXCX", "DMSG", "PROB", "HELO", "LOSS", "VEND", "HBLK", "HDMP", "HMON"}
	if len(Types) != len(want) {
		t.Fatalf("len(Types) = %d, want %d (27 ktstr V-A types + HELO, LOSS, VEND, HBLK, HDMP, HMON)", len(Types), len(want))
	}
	seen := map[Type]bool{}
	for i, info := range Types {
		if got := info.Type.Tag(); got != want[i] {
			t.Errorf("Types[%d] = %s, want %s", i, got, want[i])
		}
		if seen[info.Type] {
			t.Errorf("Types[%d]: %v listed twice", i, info.Type)
		}
		seen[info.Type] = true
		if got, ok := Lookup(info.Type); !ok || got != info {
			t.Errorf("Lookup(%v) = %+v, %v, want %+v, true", info.Type, got, ok, info)
		}
		if host := i >= 27; info.Host != host || (info.Dir == HostOrigin) != host {
			t.Errorf("%v: Host = %v, Dir = %v", info.Type, info.Host, info.Dir)
		}
	}
}

// ktstr's from_wire returns None for anything not in the table, KADR and
// 0 included.
func TestLookupUnknown(t *testing.T) {
	for _, v := range []Type{0, TypeKernAddrs, 0xFFFFFFFF, 0x54445341 /* TDSA */, Type(0x45584954 + 1)} {
		if info, ok := Lookup(v); ok {
			t.Errorf("Lookup(%#x) = %+v, true, want unknown", uint32(v), info)
		}
		if Known(v) {
			t.Errorf("Known(%#x) = true", uint32(v))
		}
		if v.Internal() {
			t.Errorf("(%#x).Internal() = true", uint32(v))
		}
	}
}

func TestTypeString(t *testing.T) {
	for _, tc := range []struct {
		t    Type
		want string
	}{
		{TypeExit, "EXIT"},
		{TypeKernAddrs, "KADR"},
		{TypeVMEnd, "VEND"},
		{0, "0x00000000"},
		{0x41424344, "0x41424344"}, // spells ABCD but is not a known type
		{0xdeadbeef, "0xdeadbeef"},
	} {
		if got := tc.t.String(); got != tc.want {
			t.Errorf("Type(%#x).String() = %q, want %q", uint32(tc.t), got, tc.want)
		}
	}
	if got := Type(0x00414243).Tag(); got != "" {
		t.Errorf("Tag(0x00414243) = %q, want empty", got)
	}
}

// ktstr: parsed_entries_match_is_coordinator_internal_classifier (SNRQ and
// SRDY are internal, TEST is not), extended to the whole V-A set.
func TestInternal(t *testing.T) {
	internal := map[Type]bool{TypeSnapshotRequest: true, TypeSnapshotReply: true, TypeKernelOpRequest: true,
		TypeKernelOpReply: true, TypeSysRdy: true, TypeSchedSwapNotify: true}
	for _, info := range Types {
		if got := info.Type.Internal(); got != internal[info.Type] {
			t.Errorf("%v.Internal() = %v, want %v", info.Type, got, internal[info.Type])
		}
	}
	b := AppendFrame(nil, TypeSnapshotRequest, make([]byte, SnapshotRequestSize))
	b = AppendFrame(b, TypeSysRdy, nil)
	b = AppendFrame(b, TypeTestResult, []byte{0x80})
	frames, _ := ParseStream(b, 0)
	want := []bool{true, true, false}
	if len(frames) != len(want) {
		t.Fatalf("ParseStream: %d frames, want %d", len(frames), len(want))
	}
	for i, f := range frames {
		if f.Type.Internal() != want[i] {
			t.Errorf("frame %d (%v): Internal() = %v, want %v", i, f.Type, f.Type.Internal(), want[i])
		}
	}
	for _, info := range Types {
		dir := GuestToHost
		switch info.Type {
		case TypeSnapshotReply, TypeKernelOpReply:
			dir = HostToGuest
		case TypeHello, TypeLoss, TypeVMEnd, TypeHostBlock, TypeHostDump, TypeMonitor:
			dir = HostOrigin
		}
		if info.Dir != dir {
			t.Errorf("%v: Dir = %v, want %v", info.Type, info.Dir, dir)
		}
	}
}

// The message tables in doc.go and in ktstr-wire(5) list every type with
// its value and wire bytes.
func TestDocTables(t *testing.T) {
	row := regexp.MustCompile(`([A-Z]{4})\s+0x([0-9A-F]{8})\s+([0-9A-F]{2}) ([0-9A-F]{2}) ([0-9A-F]{2}) ([0-9A-F]{2})`)
	for _, file := range []string{"doc.go", "../../man/man5/ktstr-wire.5"} {
		t.Run(file, func(t *testing.T) {
			f, err := os.Open(file)
			if err != nil {
				t.Skipf("cannot read %s: %v", file, err)
			}
			defer f.Close()
			rows := map[string]string{}
			sc := bufio.NewScanner(f)
			for sc.Scan() {
				line := strings.ReplaceAll(sc.Text(), `\ `, " ")
				if m := row.FindStringSubmatch(line); m != nil {
					rows[m[1]] = strings.Join(m[2:], " ")
				}
			}
			for _, info := range append(Types, Info{Type: TypeKernAddrs}) {
				tag := info.Type.Tag()
				le := binary.LittleEndian.AppendUint32(nil, uint32(info.Type))
				want := strings.ToUpper(strconv.FormatUint(uint64(info.Type), 16))
				for _, c := range le {
					want += " " + strings.ToUpper(hex2(c))
				}
				if got, ok := rows[tag]; !ok {
					t.Errorf("%s: no row for %s", file, tag)
				} else if got != want {
					t.Errorf("%s: row %s = %q, want %q", file, tag, got, want)
				}
			}
		})
	}
}

func hex2(c byte) string {
	s := strconv.FormatUint(uint64(c), 16)
	if len(s) < 2 {
		s = "0" + s
	}
	return s
}
