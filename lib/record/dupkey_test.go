package record

import (
	"bytes"
	"strings"
	"testing"
)

// TestDuplicateKeys: a record that carries a key twice is refused in both
// forms, whether the key is known or not (ktstr-records(5)); before, the
// last one won, so a filter that took the first saw another record.
func TestDuplicateKeys(t *testing.T) {
	for _, tc := range []struct {
		name string
		in   []byte
	}{
		{"JSON known", []byte(`{"v":1,"kind":"entry","crc_ok":false,"crc_ok":true}`)},
		{"JSON unknown", []byte(`{"v":1,"kind":"entry","x":1,"x":2}`)},
		{"JSON escaped", []byte(`{"v":1,"kind":"entry","\u0076":1}`)},
		{"msgpack known", []byte{0x83, 0xa1, 'v', 0x01, 0xa3, 't', 'a', 'g', 0xa1, 'A', 0xa3, 't', 'a', 'g', 0xa1, 'B'}},
		{"msgpack unknown", []byte{0x83, 0xa1, 'v', 0x01, 0xa1, 'x', 0xc0, 0xa1, 'x', 0xc0}},
	} {
		_, err := NewReader(bytes.NewReader(tc.in)).Read()
		if err == nil || !strings.Contains(err.Error(), "duplicate key") {
			t.Errorf("%s: Read(%q) = %v, want a duplicate key error", tc.name, tc.in, err)
		}
	}
}

// TestNestingBounded: an unknown key's value nested deeper than MaxDepth is
// refused; exactly MaxDepth is read.
func TestNestingBounded(t *testing.T) {
	rec := func(depth int) []byte {
		b := []byte{0x82, 0xa1, 'v', 0x01, 0xa1, 'x'}
		b = append(b, bytes.Repeat([]byte{0x91}, depth-1)...) // the record is one level
		return append(b, 0xc0)
	}
	if _, err := NewReader(bytes.NewReader(rec(MaxDepth))).Read(); err != nil {
		t.Errorf("nesting of MaxDepth: %v", err)
	}
	if _, err := NewReader(bytes.NewReader(rec(MaxDepth + 1))).Read(); err == nil || !strings.Contains(err.Error(), "nested deeper than 32") {
		t.Errorf("nesting of MaxDepth+1: %v, want an error", err)
	}
}
