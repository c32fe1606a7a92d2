package msgp

import (
	"bufio"
	"bytes"
	"encoding/hex"
	"errors"
	"io"
	"math"
	"runtime"
	"strings"
	"testing"

	"github.com/vmihailenco/msgpack/v5"
)

func unhex(s string) []byte {
	b, err := hex.DecodeString(strings.ReplaceAll(s, " ", ""))
	if err != nil {
		panic(s)
	}
	return b
}

func TestFamilyOf(t *testing.T) {
	want := func(c int) Family {
		switch {
		case c <= 0x7f:
			return Uint
		case c <= 0x8f:
			return Map
		case c <= 0x9f:
			return Array
		case c <= 0xbf:
			return Str
		case c >= 0xe0:
			return Int
		}
		return map[int]Family{0xc0: Nil, 0xc1: Invalid, 0xc2: Bool, 0xc3: Bool, 0xc4: Bin, 0xc5: Bin, 0xc6: Bin,
			0xc7: Ext, 0xc8: Ext, 0xc9: Ext, 0xca: Float, 0xcb: Float, 0xcc: Uint, 0xcd: Uint, 0xce: Uint, 0xcf: Uint,
			0xd0: Int, 0xd1: Int, 0xd2: Int, 0xd3: Int, 0xd4: Ext, 0xd5: Ext, 0xd6: Ext, 0xd7: Ext, 0xd8: Ext,
			0xd9: Str, 0xda: Str, 0xdb: Str, 0xdc: Array, 0xdd: Array, 0xde: Map, 0xdf: Map}[c]
	}
	for c := range 256 {
		if got := FamilyOf(byte(c)); got != want(c) {
			t.Errorf("FamilyOf(%#02x) = %v, want %v", c, got, want(c))
		}
	}
}

func TestIntegers(t *testing.T) {
	for _, tc := range []struct {
		in       string
		s        string
		u32, i32 bool // fits
	}{
		{"00", "0", true, true},
		{"7f", "127", true, true},
		{"ff", "-1", false, true},
		{"d0 80", "-128", false, true},
		{"d3 8000000000000000", "-9223372036854775808", false, false},
		{"cf ffffffffffffffff", "18446744073709551615", false, false},
		{"ce ffffffff", "4294967295", true, false},
		{"d2 7fffffff", "2147483647", true, true},
		{"d2 80000000", "-2147483648", false, true},
		{"cf 0000000080000000", "2147483648", true, false},
	} {
		d := NewBytes(unhex(tc.in), Limits{Depth: 1})
		i, err := d.Int()
		if err != nil || i.String() != tc.s || d.Left() != 0 {
			t.Errorf("Int(%s) = %v, %v (left %d), want %s", tc.in, i, err, d.Left(), tc.s)
			continue
		}
		if _, ok := i.Uint(32); ok != tc.u32 {
			t.Errorf("Int(%s).Uint(32) fits = %v, want %v", tc.in, ok, tc.u32)
		}
		if _, ok := i.Int(32); ok != tc.i32 {
			t.Errorf("Int(%s).Int(32) fits = %v, want %v", tc.in, ok, tc.i32)
		}
	}
	if u, ok := (Integer{u: math.MaxUint64}).Uint(64); !ok || u != math.MaxUint64 {
		t.Errorf("MaxUint64.Uint(64) = %d, %v", u, ok)
	}
	var te *TypeError
	if _, err := NewBytes(unhex("cb 3ff0000000000000"), Limits{Depth: 1}).Int(); !errors.As(err, &te) || te.Got != Float ||
		err.Error() != "want an integer, got a float" {
		t.Errorf("Int(float) = %v, want a *TypeError", err)
	}
	if x, err := NewBytes(unhex("cf ffffffffffffffff"), Limits{Depth: 1}).Float(); err != nil || x != math.MaxUint64 {
		t.Errorf("Float(uint64 max) = %v, %v", x, err)
	}
}

// hostile are headers that announce far more than follows them.
var hostile = []struct {
	name, in string
	why      string // in the error for a buffer
}{
	{"array of 2^32-1", "dd ffffffff 01", "more than"},
	{"array of 2^24 in 5 bytes", "dd 01000000", "more than"},
	{"array just under Elems, empty", "dc ffff", "bytes announced"},
	{"map of 2^32-1", "df ffffffff", "more than"},
	{"str of 4 GiB", "db ffffffff 61", "bytes announced"},
	{"bin of 4 GiB", "c6 ffffffff 61", "bytes announced"},
	{"ext of 4 GiB", "c9 ffffffff 01", "bytes announced"},
	{"deep arrays", strings.Repeat("91", 4096) + "c0", "nested deeper"},
}

// TestBoundsBeforeAllocation: whatever a header announces, nothing is
// allocated by it, in a buffer or on a stream.
func TestBoundsBeforeAllocation(t *testing.T) {
	lim := Limits{Depth: 32, Elems: 1 << 16}
	for _, tc := range hostile {
		for _, stream := range []bool{false, true} {
			p := unhex(tc.in)
			var ops = map[string]func(*Decoder) error{
				"Skip":     func(d *Decoder) error { return d.Skip() },
				"Str":      func(d *Decoder) error { _, err := d.Str(); return err },
				"Bin":      func(d *Decoder) error { _, err := d.Bin(); return err },
				"ArrayLen": func(d *Decoder) error { _, err := d.ArrayLen(); return err },
				"MapLen":   func(d *Decoder) error { _, err := d.MapLen(); return err },
			}
			for name, op := range ops {
				var d *Decoder
				if stream {
					d = NewStream(bufio.NewReader(bytes.NewReader(p)), lim)
				} else {
					d = NewBytes(p, lim)
				}
				var m0, m1 runtime.MemStats
				runtime.GC()
				runtime.ReadMemStats(&m0)
				err := op(d)
				runtime.ReadMemStats(&m1)
				if n := m1.TotalAlloc - m0.TotalAlloc; n > 4*streamStep { // a stream reads a step at a time (the race detector doubles it)
					t.Errorf("%s: %s (stream %v) allocated %d bytes", tc.name, name, stream, n)
				}
				var te *TypeError
				if errors.As(err, &te) {
					continue // not this op's family
				}
				if err == nil && name != "ArrayLen" && name != "MapLen" {
					t.Errorf("%s: %s (stream %v) succeeded", tc.name, name, stream)
				}
				if !stream && name == "Skip" && (err == nil || !strings.Contains(err.Error(), tc.why)) {
					t.Errorf("%s: Skip = %v, want an error containing %q", tc.name, err, tc.why)
				}
			}
		}
	}
}

// TestStreamGrowsWithBytesRead: a string within the limits but longer than
// the stream allocates only about what arrived.
func TestStreamGrowsWithBytesRead(t *testing.T) {
	p := append(unhex("c6 00f00000"), make([]byte, 100)...) // 15 MiB announced, 100 bytes there
	d := NewStream(bufio.NewReader(bytes.NewReader(p)), Limits{Depth: 1, Bin: 16 << 20})
	var m0, m1 runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&m0)
	_, err := d.Bin()
	runtime.ReadMemStats(&m1)
	if !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Errorf("Bin = %v, want io.ErrUnexpectedEOF", err)
	}
	if n := m1.TotalAlloc - m0.TotalAlloc; n > 256<<10 {
		t.Errorf("allocated %d bytes for 100 that arrived", n)
	}
	if _, err := NewStream(bufio.NewReader(bytes.NewReader(unhex("c6 00f00001"))), Limits{Depth: 1, Bin: 15 << 20}).Bin(); err == nil ||
		err.Error() != "15728641 bytes, at most 15728640" {
		t.Errorf("Bin over the limit = %v", err)
	}
}

func TestLimits(t *testing.T) {
	for _, tc := range []struct {
		name string
		lim  Limits
		in   string
		op   func(*Decoder) error
		want string
	}{
		{"depth exactly", Limits{Depth: 3}, "91 91 91 c0", (*Decoder).Skip, ""},
		{"depth over", Limits{Depth: 3}, "91 91 91 91 c0", (*Decoder).Skip, "nested deeper than 3"},
		{"elems exactly", Limits{Depth: 1, Elems: 2}, "92 c0 c0", (*Decoder).Skip, ""},
		{"elems over", Limits{Depth: 1, Elems: 2}, "93 c0 c0 c0", (*Decoder).Skip, "3 entries, more than 2"},
		{"map entries take two bytes", Limits{Depth: 1}, "82 a1 61 01", (*Decoder).Skip, "4 bytes announced, 3 left"},
		{"key over", Limits{Depth: 1}, "a3 6b 6b 6b", func(d *Decoder) error { _, err := d.Key(2); return err }, "key of 3 bytes, at most 2"},
		{"key not a string", Limits{Depth: 1}, "01", func(d *Decoder) error { _, err := d.Key(2); return err }, "want a string key, got an integer"},
		{"str over", Limits{Depth: 1, Str: 2}, "c4 03 616263", func(d *Decoder) error { _, err := d.Str(); return err }, "3 bytes, at most 2"},
		{"invalid code", Limits{Depth: 2}, "91 c1", (*Decoder).Skip, "invalid msgpack code 0xc1"},
		{"truncated int", Limits{Depth: 1}, "cd 01", (*Decoder).Skip, "unexpected EOF"},
		{"fixext", Limits{Depth: 1}, "d4 01 02", (*Decoder).Skip, ""},
		{"ext short", Limits{Depth: 1}, "c7 05 01 0203", (*Decoder).Skip, "5 bytes announced, 2 left"},
	} {
		err := tc.op(NewBytes(unhex(tc.in), tc.lim))
		if got := fmtErr(err); got != tc.want {
			t.Errorf("%s: %s(%s) = %q, want %q", tc.name, "op", tc.in, got, tc.want)
		}
	}
}

func fmtErr(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

// TestSkipLeavesTheNextValue: Skip consumes exactly one value.
func TestSkipLeavesTheNextValue(t *testing.T) {
	var b bytes.Buffer
	e := NewEncoder(&b)
	e.Encode(map[string]any{"a": []any{1, "x", []byte{1, 2}, nil, true, 1.5, map[string]any{"b": int64(-300)}}, "c": uint64(math.MaxUint64)})
	e.EncodeExtHeader(5, 3)
	b.Write([]byte{1, 2, 3})
	e.EncodeString("next")
	for _, stream := range []bool{false, true} {
		var d *Decoder
		if stream {
			d = NewStream(bufio.NewReader(bytes.NewReader(b.Bytes())), Limits{Depth: 4})
		} else {
			d = NewBytes(b.Bytes(), Limits{Depth: 4})
		}
		if err := d.Skip(); err != nil {
			t.Fatalf("Skip map: %v", err)
		}
		if err := d.Skip(); err != nil {
			t.Fatalf("Skip ext: %v", err)
		}
		if s, err := d.Str(); err != nil || s != "next" {
			t.Errorf("after two Skips: %q, %v, want \"next\"", s, err)
		}
	}
}

// FuzzSkip: Skip never panics, and on what it accepts it agrees with the
// library's own Skip about where the value ends.
func FuzzSkip(f *testing.F) {
	for _, tc := range hostile {
		f.Add(unhex(tc.in))
	}
	f.Add(unhex("82 a1 61 93 01 c0 d4 0102 a1 62 c4 02 6162"))
	f.Fuzz(func(t *testing.T, p []byte) {
		d := NewBytes(p, Limits{Depth: 32, Elems: 1 << 16})
		if err := d.Skip(); err != nil {
			return
		}
		lib := msgpack.NewDecoder(bytes.NewReader(p))
		r := bytes.NewReader(p)
		lib.Reset(r)
		if err := lib.Skip(); err != nil {
			t.Fatalf("Skip(%x) ok up to %d, the library's Skip: %v", p, d.Offset(), err)
		}
		if end := len(p) - r.Len(); end != d.Offset() {
			t.Fatalf("Skip(%x) ends at %d, the library's at %d", p, d.Offset(), end)
		}
	})
}
