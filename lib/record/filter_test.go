package record

import (
	"bytes"
	"errors"
	"io"
	"strings"
	"testing"
)

func TestFilter(t *testing.T) {
	in := samples()[:8]
	mp := encode(t, false, in...)
	js := encode(t, true, in...)
	dropEntries := func(r *Record) (bool, error) { return r.Kind != KindEntry, nil }
	for _, tc := range []struct {
		name string
		f    Filter
		in   []byte
		want []byte
	}{
		{"copy msgpack", Filter{}, mp, mp},
		{"copy JSON", Filter{}, js, js},
		{"to JSON", Filter{JSON: func(bool) bool { return true }}, mp, js},
		{"the other form", Filter{JSON: func(in bool) bool { return !in }}, js, mp},
		{"drop", Filter{Keep: dropEntries}, js, encode(t, true, in[3:]...)},
		{"empty", Filter{}, nil, nil},
	} {
		var out bytes.Buffer
		if err := tc.f.Copy(&out, bytes.NewReader(tc.in)); err != nil || !bytes.Equal(out.Bytes(), tc.want) {
			t.Errorf("%s: Copy = %v, output %.80q, want %.80q", tc.name, err, out.Bytes(), tc.want)
		}
	}
	boom := errors.New("boom")
	f := Filter{Keep: func(r *Record) (bool, error) {
		if r.Seq == 5 {
			return false, boom
		}
		return true, nil
	}}
	var out bytes.Buffer
	if err := f.Copy(&out, bytes.NewReader(js)); !errors.Is(err, boom) || !strings.HasPrefix(err.Error(), "record 2: ") {
		t.Errorf("Copy with a failing Keep = %v, want boom at record 2", err)
	}
	if err := (Filter{}).Copy(&out, bytes.NewReader(js[:len(js)-5])); !errors.Is(err, ErrFormat) {
		t.Errorf("Copy of a cut stream = %v, want ErrFormat", err)
	}
}

// TestFilterStreams: a record that came in goes out before more input
// comes (the test would hang if Copy waited with it buffered).
func TestFilterStreams(t *testing.T) {
	inR, inW := io.Pipe()
	outR, outW := io.Pipe()
	done := make(chan error)
	go func() { done <- (Filter{}).Copy(outW, inR) }()
	line := encode(t, true, samples()[0])
	go inW.Write(line)
	got := make([]byte, len(line))
	if _, err := io.ReadFull(outR, got); err != nil || !bytes.Equal(got, line) {
		t.Fatalf("read %q, %v; want %q", got, err, line)
	}
	inW.Close()
	if err := <-done; err != nil {
		t.Errorf("Copy = %v", err)
	}
}
