package main

import (
	"bytes"
	"strings"
	"testing"

	vt "github.com/ktstr-go/ktstr/internal/verdict/verdicttest"
)

func recoded(t *testing.T, in []byte, args ...string) ([]byte, int, string) {
	t.Helper()
	var out, errb bytes.Buffer
	code := run(append([]string{"recode"}, args...), bytes.NewReader(in), &out, &errb)
	return out.Bytes(), code, errb.String()
}

// TestRecode: each form becomes the other, byte for byte what the tools
// write, and -to forces one.
func TestRecode(t *testing.T) {
	s := vt.Base().Outcomes(vt.Pass()).Finish()
	mp, js := s.Bytes(false), s.Bytes(true)
	for _, tc := range []struct {
		name string
		in   []byte
		args []string
		want []byte
	}{
		{"msgpack to JSON", mp, nil, js},
		{"JSON to msgpack", js, nil, mp},
		{"msgpack kept", mp, []string{"-to", "msgpack"}, mp},
		{"JSON to JSON", js, []string{"-to=json"}, js},
		{"empty", nil, nil, nil},
	} {
		out, code, stderr := recoded(t, tc.in, tc.args...)
		if code != 0 || stderr != "" || !bytes.Equal(out, tc.want) {
			t.Errorf("%s: exit %d, stderr %q, output %.100q; want %.100q", tc.name, code, stderr, out, tc.want)
		}
	}
}

func TestRecodeErrors(t *testing.T) {
	for _, tc := range []struct {
		args  []string
		input []byte
		code  int
		msg   string
	}{
		{[]string{"x"}, nil, 2, "want no argument"},
		{[]string{"-to", "yaml"}, nil, 2, "want json or msgpack"},
		{[]string{"-bogus"}, nil, 2, "usage: recode"},
		{nil, []byte{0x05}, 1, "recode: record: record 0: record is not a msgpack map"},
		{nil, []byte(`{"v":1,"v":1}`), 1, `duplicate key "v"`},
		{nil, []byte(`{"v":2}`), 1, "schema version 2"},
	} {
		out, code, stderr := recoded(t, tc.input, tc.args...)
		if code != tc.code || !strings.Contains(stderr, tc.msg) || strings.Count(stderr, "\n") != 1 {
			t.Errorf("recode %q < %q: exit %d stderr %q (stdout %q); want %d and one line with %q", tc.args, tc.input, code, stderr, out, tc.code, tc.msg)
		}
	}
}
