package main

import (
	"bytes"
	"errors"
	"io"
	"strings"
	"testing"

	"github.com/ktstr-go/ktstr/internal/verdict"
	vt "github.com/ktstr-go/ktstr/internal/verdict/verdicttest"
	"github.com/ktstr-go/ktstr/lib/record"
	"github.com/ktstr-go/ktstr/lib/wire"
	"github.com/ktstr-go/ktstr/lib/wire/payload"
)

func readAll(t *testing.T, b []byte) []*record.Record {
	t.Helper()
	rd := record.NewReader(bytes.NewReader(b))
	var out []*record.Record
	for {
		r, err := rd.Read()
		if errors.Is(err, io.EOF) {
			return out
		}
		if err != nil {
			t.Fatalf("filter output unreadable: %v", err)
		}
		out = append(out, r)
	}
}

func filtered(t *testing.T, s *vt.Stream, args ...string) ([]byte, int, string) {
	t.Helper()
	var out, errb bytes.Buffer
	code := run(append([]string{"max-gap"}, args...), bytes.NewReader(s.Bytes(false)), &out, &errb)
	return out.Bytes(), code, errb.String()
}

func TestMaxGap(t *testing.T) {
	// The stats of verdicttest: worst gap 51.5ms, cg1 20.25ms.
	tests := []struct {
		limit  string
		status verdict.Status
		fails  []string
	}{
		{"60", verdict.StatusPass, nil},
		{"51.5", verdict.StatusPass, nil},
		{"40", verdict.StatusFail, []string{"worst gap 51.5ms exceeds the 40ms limit (max-gap filter)"}},
		{"10", verdict.StatusFail, []string{"worst gap 51.5ms exceeds the 10ms limit (max-gap filter)",
			"cgroup cg1: gap 20.2ms exceeds the 10ms limit (max-gap filter)"}},
	}
	for _, tc := range tests {
		t.Run(tc.limit, func(t *testing.T) {
			in := vt.Base().Outcomes(vt.Pass()).Finish()
			out, code, stderr := filtered(t, in, tc.limit)
			if code != 0 || stderr != "" {
				t.Fatalf("exit %d, stderr %q", code, stderr)
			}
			got := readAll(t, out)
			want := in.Records()
			if len(got) != len(want) {
				t.Fatalf("%d records out, %d in", len(got), len(want))
			}
			for i := range want {
				if want[i].MsgType == uint32(wire.TypeTestResult) && tc.fails != nil {
					continue
				}
				c := *want[i]
				c.V = record.Version
				if !record.Equal(got[i], &c) {
					t.Errorf("record %d changed:\n got %+v\nwant %+v", i, got[i], &c)
				}
			}
			v := verdict.Fold("t", verdict.DefaultConfig(), bytes.NewReader(out)).Verdict()
			if v.Status != tc.status {
				t.Fatalf("verdict %s, want %s: %s", v.Status, tc.status, v.Reason)
			}
			var msgs []string
			for _, f := range v.Findings {
				if f.Cause == verdict.CauseAssertion {
					msgs = append(msgs, f.Message)
					if f.Kind != payload.KindStuck {
						t.Errorf("kind %q, want %q", f.Kind, payload.KindStuck)
					}
				}
			}
			if strings.Join(msgs, "|") != strings.Join(tc.fails, "|") {
				t.Errorf("failures %q, want %q", msgs, tc.fails)
			}
		})
	}
}

func TestMaxGapLeavesOthersAlone(t *testing.T) {
	big := vt.Stats()
	big.WorstGapMS = 999
	p, _ := payload.MarshalAssertResult(&payload.AssertResult{Outcomes: []payload.Outcome{vt.Pass()}, Stats: big})
	// A CRC-failed TEST and a TEST that does not decode pass unchanged.
	in := vt.New().BadEntry(wire.TypeTestResult, p).Entry(wire.TypeTestResult, []byte{0xc1}).Exit(0)
	out, code, _ := filtered(t, in, "1")
	if code != 0 {
		t.Fatalf("exit %d", code)
	}
	got := readAll(t, out)
	for i, r := range in.Records() {
		c := *r
		c.V = record.Version
		if !record.Equal(got[i], &c) {
			t.Errorf("record %d changed", i)
		}
	}
}

func TestMaxGapKeepsUnknownKeys(t *testing.T) {
	// A result with a key this build does not know keeps it.
	var b bytes.Buffer
	res := map[string]any{"outcomes": []any{}, "stats": map[string]any{"worst_gap_ms": 80.0}, "future_key": "kept"}
	enc := newEncoder(&b)
	if err := enc.Encode(res); err != nil {
		t.Fatal(err)
	}
	out, code, _ := filtered(t, vt.New().Entry(wire.TypeTestResult, b.Bytes()), "50")
	if code != 0 {
		t.Fatalf("exit %d", code)
	}
	got := readAll(t, out)
	if !bytes.Contains(got[0].Payload, []byte("future_key")) || !bytes.Contains(got[0].Payload, []byte("max-gap filter")) {
		t.Errorf("payload %q lost the unknown key or the new outcome", got[0].Payload)
	}
}

// TestMaxGapJSON: JSON lines in, JSON lines out, the result failed the
// same way.
func TestMaxGapJSON(t *testing.T) {
	in := vt.Base().Outcomes(vt.Pass()).Finish()
	var out, errb bytes.Buffer
	if code := run([]string{"max-gap", "40"}, bytes.NewReader(in.Bytes(true)), &out, &errb); code != 0 {
		t.Fatalf("exit %d, stderr %q", code, errb.String())
	}
	if !bytes.HasPrefix(out.Bytes(), []byte(`{"v":1,`)) || bytes.Count(out.Bytes(), []byte("\n")) != len(in.Records()) {
		t.Fatalf("output is not %d JSON lines: %.200q", len(in.Records()), out.Bytes())
	}
	v := verdict.Fold("t", verdict.DefaultConfig(), &out).Verdict()
	if v.Status != verdict.StatusFail || !strings.Contains(v.Reason, "max-gap filter") {
		t.Errorf("verdict %s %q, want the filter's failure", v.Status, v.Reason)
	}
}

func TestMaxGapErrors(t *testing.T) {
	tests := []struct {
		args  []string
		input []byte
		code  int
		msg   string
	}{
		{nil, nil, 2, "want one argument"},
		{[]string{"1", "2"}, nil, 2, "want one argument"},
		{[]string{"fast"}, nil, 2, "want a number"},
		{[]string{"-5"}, nil, 2, ""},
		{[]string{"NaN"}, nil, 2, "want a number"},
		{[]string{"40"}, append(vt.New().Exit(0).Bytes(true), "{"...), 1, "record 1"},
		{[]string{"40"}, []byte{0x81, 0xa1}, 1, "record 0"},
		{[]string{"40"}, []byte{0x05}, 1, "want a map"},
		{[]string{"40"}, nil, 0, ""},
	}
	for _, tc := range tests {
		var out, errb bytes.Buffer
		code := run(append([]string{"max-gap"}, tc.args...), bytes.NewReader(tc.input), &out, &errb)
		if code != tc.code || !strings.Contains(errb.String(), tc.msg) {
			t.Errorf("max-gap %q < %q: exit %d stderr %q; want %d and %q", tc.args, tc.input, code, errb.String(), tc.code, tc.msg)
		}
	}
}

func FuzzFilter(f *testing.F) {
	f.Add(vt.Base().Outcomes(vt.Pass()).Finish().Bytes(false))
	f.Add([]byte{0x81, 0xa4, 'k', 'i', 'n', 'd', 0xa5, 'e', 'n', 't', 'r', 'y'})
	f.Fuzz(func(t *testing.T, data []byte) {
		var out, errb bytes.Buffer
		code := run([]string{"max-gap", "10"}, bytes.NewReader(data), &out, &errb)
		if code == 0 {
			// What it wrote must read back as records.
			readAll(t, out.Bytes())
		}
	})
}
