package record

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/vmihailenco/msgpack/v5"
)

// samples is one record of every kind and name this version writes, with
// every field it writes set to something other than zero.
func samples() []*Record {
	big := bytes.Repeat([]byte{0xAB}, 70000) // bin32 in msgpack
	s := []*Record{
		{Kind: KindEntry, Seq: 3, AtNS: 1500, Tag: "SOUT", MsgType: 0x534F5554, CRCOK: true, Payload: []byte("hi")},
		{Kind: KindEntry, Seq: 4, AtNS: 1501, Tag: "TEST", MsgType: 0x54455354, Payload: big},
		{Kind: KindEntry, Seq: 5, AtNS: 1502, Tag: "SCST", MsgType: 0x53435354, CRCOK: true, Payload: []byte{}},
		{Kind: KindEffect, Seq: 6, AtNS: 2000, Effect: EffectKill, Tag: "SCDX", MsgType: 0x53434458, Count: 2, ExitCode: -1, HasExitCode: true},
		{Kind: KindEffect, Seq: 7, AtNS: 2000, Effect: EffectKill, Tag: "SCDX", MsgType: 0x53434458, Count: 3},
		{Kind: KindEffect, Seq: 8, Effect: EffectSysRdy, Tag: "SRDY", MsgType: 0x53524459},
		{Kind: KindEffect, Seq: 9, Effect: EffectSchedSwap, Tag: "SCSW", MsgType: 0x53435357},
		{Kind: KindEffect, Seq: 10, Effect: EffectSnapshotRequest, Tag: "SNRQ", MsgType: 0x534E5251, RequestID: 42, ReqKind: 1, ReqTag: "snap\u00e9"},
		{Kind: KindEffect, Seq: 11, Effect: EffectKernelOpRequest, Tag: "KORQ", MsgType: 0x4B4F5251, RequestID: 9, ReqTag: "op", Request: []byte{0x81, 0xa1, 'x', 1}},
		{Kind: KindEffect, Seq: 12, Effect: EffectKernPhysBase, Tag: "KADR", MsgType: 0x4B414452, Value: 0x3c00000},
		{Kind: KindEffect, Seq: 13, Effect: EffectKernVirtKASLR, Tag: "KADR", MsgType: 0x4B414452, Value: 0x1e000000},
		{Kind: KindEffect, Seq: 14, Effect: EffectScenarioStart, Tag: "SCST", MsgType: 0x53435354, StartNS: 77},
		{Kind: KindEffect, Seq: 15, Effect: EffectWatchdogPause, Tag: "SCPP", MsgType: 0x53435050, PauseNS: 1},
		{Kind: KindEffect, Seq: 16, Effect: EffectWatchdogResume, Tag: "SCRR", MsgType: 0x53435252, PauseNS: 5, PauseTotalNS: math.MaxUint64},
		{Kind: KindEffect, Seq: 17, Effect: EffectWatchdogDeadline, Tag: "SCEN", MsgType: 0x5343454E, DeadlineNS: math.MaxUint64},
		{Kind: KindEffect, Seq: 18, Effect: EffectCurrentStep, Tag: "STIM", MsgType: 0x5354494D, Step: 65535},
		{Kind: KindDiag, Seq: 19, AtNS: math.MaxInt64, Diag: DiagUnknownType, Tag: "0xdeadbeef", MsgType: 0xDEADBEEF, CRCOK: true, Length: 15, Message: "unknown"},
		{Kind: KindDiag, Seq: 20, Diag: DiagKASLRDivergence, Tag: "KADR", MsgType: 0x4B414452, Value: 0x400000, Message: "VirtKaslrDivergence"},
		{Kind: KindDiag, Seq: 21, Diag: DiagCRCMismatch, Tag: "SOUT", MsgType: 0x534F5554, Offset: 1 << 40, Length: 7, Message: "crc"},
		{Kind: KindDiag, Seq: 22, Diag: DiagPadNonzero, Tag: "SOUT", MsgType: 0x534F5554, Offset: 16, Length: 1, Pad: 0xFFFFFFFF, Message: "pad \"quoted\"\n\x01\x7f"},
		{Kind: KindDiag, Seq: 23, Diag: DiagOversized, Tag: "SOUT", MsgType: 0x534F5554, Offset: 32, Length: 0xFFFFFFFF, Pad: 1, Dropped: 99, Message: "big"},
		{Kind: KindDiag, Seq: 24, Diag: DiagTruncatedTail, Tag: "EXIT", MsgType: 0x45584954, Offset: 48, Length: 4, Dropped: 18, Message: "tail"},
		{Kind: KindDiag, Seq: 25, Diag: DiagResidualOverflow, Offset: 64, Dropped: 1 << 25, Message: "residual"},
	}
	for _, r := range s {
		r.V = Version
	}
	return s
}

// schemaKeys is the key table of doc.go and ktstr-records(5).
var schemaKeys = map[string]string{
	"entry":                    "tag msg_type crc_ok payload",
	"effect kill":              "effect tag msg_type count exit_code",
	"effect sys_rdy":           "effect tag msg_type",
	"effect sched_swap":        "effect tag msg_type",
	"effect snapshot_request":  "effect tag msg_type request_id req_kind req_tag",
	"effect kernel_op_request": "effect tag msg_type request_id req_tag request",
	"effect kern_phys_base":    "effect tag msg_type value",
	"effect kern_virt_kaslr":   "effect tag msg_type value",
	"effect scenario_start":    "effect tag msg_type start_ns",
	"effect watchdog_pause":    "effect tag msg_type pause_ns",
	"effect watchdog_resume":   "effect tag msg_type pause_ns pause_total_ns",
	"effect watchdog_deadline": "effect tag msg_type deadline_ns",
	"effect current_step":      "effect tag msg_type step",
	"diag unknown_type":        "diag message tag msg_type crc_ok length",
	"diag kaslr_divergence":    "diag message tag msg_type value",
	"diag crc_mismatch":        "diag message tag msg_type offset length pad",
	"diag pad_nonzero":         "diag message tag msg_type offset length pad",
	"diag oversized":           "diag message tag msg_type offset length pad dropped",
	"diag truncated_tail":      "diag message tag msg_type offset length pad dropped",
	"diag residual_overflow":   "diag message offset dropped",
}

func schemaName(r *Record) string {
	switch r.Kind {
	case KindEffect:
		return "effect " + r.Effect
	case KindDiag:
		return "diag " + r.Diag
	}
	return r.Kind
}

func encode(t *testing.T, json bool, rs ...*Record) []byte {
	t.Helper()
	var b bytes.Buffer
	w := NewWriter(&b, json)
	for _, r := range rs {
		if err := w.Write(r); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func decodeAll(t *testing.T, b []byte) []*Record {
	t.Helper()
	rd := NewReader(bytes.NewReader(b))
	var out []*Record
	for {
		r, err := rd.Read()
		if err == io.EOF {
			return out
		}
		if err != nil {
			t.Fatalf("Read: %v", err)
		}
		out = append(out, r)
	}
}

func TestRoundTrip(t *testing.T) {
	covered := map[string]bool{}
	for _, r := range samples() {
		covered[schemaName(r)] = true
	}
	for name := range schemaKeys {
		if !covered[name] {
			t.Errorf("no sample for %s", name)
		}
	}
	for _, form := range []string{"msgpack", "json"} {
		t.Run(form, func(t *testing.T) {
			in := samples()
			got := decodeAll(t, encode(t, form == "json", in...))
			if d := cmp.Diff(in, got); d != "" {
				t.Errorf("Read(Write(samples)) (-want +got):\n%s", d)
			}
		})
	}
}

// keysOf decodes one record of either form with an independent decoder
// (vmihailenco/msgpack, encoding/json) and returns its keys in order.
func keysOf(t *testing.T, b []byte, jsonForm bool) []string {
	t.Helper()
	if jsonForm {
		d := json.NewDecoder(bytes.NewReader(b))
		d.UseNumber()
		var keys []string
		if _, err := d.Token(); err != nil {
			t.Fatal(err)
		}
		for d.More() {
			k, err := d.Token()
			if err != nil {
				t.Fatal(err)
			}
			keys = append(keys, k.(string))
			var v any
			if err := d.Decode(&v); err != nil {
				t.Fatal(err)
			}
		}
		return keys
	}
	d := msgpack.NewDecoder(bytes.NewReader(b))
	n, err := d.DecodeMapLen()
	if err != nil {
		t.Fatal(err)
	}
	var keys []string
	for range n {
		k, err := d.DecodeString()
		if err != nil {
			t.Fatal(err)
		}
		keys = append(keys, k)
		if _, err := d.DecodeInterface(); err != nil {
			t.Fatal(err)
		}
	}
	return keys
}

func TestBothFormsCarryTheSchemaKeys(t *testing.T) {
	for _, r := range samples() {
		name := schemaName(r)
		t.Run(name, func(t *testing.T) {
			want := append([]string{"v", "kind", "seq", "at_ns"}, strings.Fields(schemaKeys[name])...)
			if r.Kind == KindEffect && r.Effect == EffectKill && !r.HasExitCode {
				want = slices.DeleteFunc(want, func(k string) bool { return k == "exit_code" })
			}
			mp := keysOf(t, encode(t, false, r), false)
			js := keysOf(t, encode(t, true, r), true)
			if d := cmp.Diff(want, mp); d != "" {
				t.Errorf("msgpack keys (-want +got):\n%s", d)
			}
			if d := cmp.Diff(want, js); d != "" {
				t.Errorf("JSON keys (-want +got):\n%s", d)
			}
		})
	}
}

// TestIndependentDecoders decodes both forms with other libraries and
// checks the values: what a third-party filter sees.
func TestIndependentDecoders(t *testing.T) {
	for _, r := range samples() {
		t.Run(schemaName(r), func(t *testing.T) {
			var mp map[string]any
			if err := msgpack.Unmarshal(encode(t, false, r), &mp); err != nil {
				t.Fatalf("msgpack.Unmarshal: %v", err)
			}
			var js map[string]any
			line := encode(t, true, r)
			if !bytes.HasSuffix(line, []byte("\n")) || bytes.Count(line, []byte("\n")) != 1 {
				t.Errorf("JSON form %q is not one line", line)
			}
			d := json.NewDecoder(bytes.NewReader(line))
			d.UseNumber()
			if err := d.Decode(&js); err != nil {
				t.Fatalf("json: %v", err)
			}
			for k, mv := range mp {
				jv := js[k]
				var ms, jstr string
				switch v := mv.(type) {
				case []byte:
					ms, jstr = base64.StdEncoding.EncodeToString(v), jv.(string)
				case bool:
					ms, jstr = strconv.FormatBool(v), strconv.FormatBool(jv.(bool))
				case string:
					ms, jstr = v, jv.(string)
				default: // a number
					ms, jstr = fmt.Sprint(v), string(jv.(json.Number))
				}
				if ms != jstr {
					t.Errorf("key %s: msgpack %v, JSON %v", k, ms, jstr)
				}
			}
			if v, _ := mp["kind"].(string); v != r.Kind {
				t.Errorf("kind = %v, want %s", mp["kind"], r.Kind)
			}
		})
	}
}

func TestGoldenJSON(t *testing.T) {
	// The JSON form is a contract (ktstr-records(5)): pin it byte for byte.
	tests := []struct {
		r    Record
		want string
	}{
		{Record{Kind: KindEntry, Seq: 3, AtNS: 1500, Tag: "SOUT", MsgType: 0x534F5554, CRCOK: true, Payload: []byte("hi")},
			`{"v":1,"kind":"entry","seq":3,"at_ns":1500,"tag":"SOUT","msg_type":1397708116,"crc_ok":true,"payload":"aGk="}`},
		{Record{Kind: KindEffect, Seq: 0, Effect: EffectKill, Tag: "SCDX", MsgType: 0x53434458, Count: 1, ExitCode: -1, HasExitCode: true},
			`{"v":1,"kind":"effect","seq":0,"at_ns":0,"effect":"kill","tag":"SCDX","msg_type":1396917336,"count":1,"exit_code":-1}`},
		{Record{Kind: KindDiag, Seq: 1, Diag: DiagResidualOverflow, Offset: 5, Dropped: 6, Message: "bad \xff\t"},
			`{"v":1,"kind":"diag","seq":1,"at_ns":0,"diag":"residual_overflow","message":"bad \ufffd\t","offset":5,"dropped":6}`},
	}
	for _, tt := range tests {
		got := strings.TrimSuffix(string(encode(t, true, &tt.r)), "\n")
		if got != tt.want {
			t.Errorf("JSON form:\n got %s\nwant %s", got, tt.want)
		}
		m, err := json.Marshal(&tt.r)
		if err != nil || string(m) != tt.want {
			t.Errorf("json.Marshal = %s, %v; want the Writer's form", m, err)
		}
	}
	// The msgpack form of the entry, pinned too.
	r := tests[0].r
	want := "88a17601a46b696e64a5656e747279a3736571" + "03" + "a561745f6e73cd05dc" + "a3746167a4534f5554" +
		"a86d73675f74797065ce534f5554" + "a66372635f6f6bc3" + "a77061796c6f6164c4026869"
	if got := bytesHex(encode(t, false, &r)); got != want {
		t.Errorf("msgpack form:\n got %s\nwant %s", got, want)
	}
}

func bytesHex(b []byte) string {
	const hex = "0123456789abcdef"
	var s strings.Builder
	for _, c := range b {
		s.WriteByte(hex[c>>4])
		s.WriteByte(hex[c&15])
	}
	return s.String()
}

func TestReaderAcceptsFilterOutput(t *testing.T) {
	// What jq and other tools write: pretty-printed objects across lines,
	// keys in any order, unknown keys (nested too), large numbers in float
	// notation (jq 1.6), CRLF, blank lines.
	in := "\n  {\n  \"kind\": \"entry\",\n  \"v\": 1,\n  \"seq\": 1.7e+18,\n \"extra\": {\"a\": [1, {\"}\": \"{\"}]},\r\n" +
		"  \"tag\": \"SO}UT\", \"msg_type\": 1397708116, \"crc_ok\": false, \"payload\": null\n}\n\n" +
		`{"v":1,"kind":"effect","seq":2,"at_ns":0,"effect":"watchdog_deadline","deadline_ns":18446744073709552000}` + "\r\n"
	got := decodeAll(t, []byte(in))
	want := []*Record{
		{V: 1, Kind: KindEntry, Seq: 1.7e18, Tag: "SO}UT", MsgType: 0x534F5554},
		{V: 1, Kind: KindEffect, Seq: 2, Effect: EffectWatchdogDeadline, DeadlineNS: math.MaxUint64},
	}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("Read (-want +got):\n%s", d)
	}
	// msgpack: unknown keys of any shape are skipped.
	var b bytes.Buffer
	e := msgpack.NewEncoder(&b)
	e.EncodeMapLen(4)
	e.EncodeString("v")
	e.EncodeInt(1)
	e.EncodeString("future")
	e.Encode(map[string]any{"x": []any{1.5, "s", []byte{1}, nil, map[string]any{"y": true}}})
	e.EncodeString("kind")
	e.EncodeString("diag")
	e.EncodeString("seq")
	e.EncodeUint(7)
	got = decodeAll(t, b.Bytes())
	if d := cmp.Diff([]*Record{{V: 1, Kind: KindDiag, Seq: 7}}, got); d != "" {
		t.Errorf("Read (-want +got):\n%s", d)
	}
}

func TestReaderErrors(t *testing.T) {
	entry := encode(t, false, samples()[0])
	line := encode(t, true, samples()[0])
	v2 := bytes.Replace(line, []byte(`"v":1`), []byte(`"v":2`), 1)
	tests := []struct {
		name       string
		in         []byte
		records    int
		unexpected bool // errors.Is(err, io.ErrUnexpectedEOF)
		substr     string
	}{
		{"msgpack truncated", entry[:len(entry)-1], 0, true, ""},
		{"msgpack truncated after one record", append(slices.Clone(entry), entry[:5]...), 1, true, ""},
		{"JSON truncated", line[:len(line)-3], 0, true, ""},
		{"schema version 2", v2, 0, false, "schema version 2"},
		{"no version", []byte(`{"kind":"entry"}`), 0, false, "schema version 0"},
		{"JSON garbage between records", append(slices.Clone(line), "x"...), 1, false, "starts with"},
		{"JSON bad syntax", []byte(`{"v":1,}`), 0, false, ""},
		{"JSON wrong type", []byte(`{"v":1,"seq":"3"}`), 0, false, "wrong type"},
		{"JSON fraction", []byte(`{"v":1,"seq":1.5}`), 0, false, "wrong type"},
		{"JSON out of range", []byte(`{"v":1,"step":65536}`), 0, false, ""},
		{"JSON bad base64", []byte(`{"v":1,"payload":"!!"}`), 0, false, "payload"},
		{"msgpack not a map", []byte{0x91, 0x01}, 0, false, "not a msgpack map"},
		{"msgpack too many keys", []byte{0xde, 0x01, 0x00}, 0, false, "at most 64"},
		{"msgpack key not a string", []byte{0x81, 0x01, 0x01}, 0, false, "not a string"},
		{"msgpack long key", append([]byte{0x81, 0xd9, 65}, bytes.Repeat([]byte{'k'}, 65)...), 0, false, "key of 65 bytes"},
		{"msgpack payload above the cap", []byte{0x81, 0xa7, 'p', 'a', 'y', 'l', 'o', 'a', 'd', 0xc6, 0x01, 0x00, 0x00, 0x01}, 0, false, "at most"},
		{"msgpack string above the cap", []byte{0x81, 0xa3, 't', 'a', 'g', 0xdb, 0x00, 0x10, 0x00, 0x01}, 0, false, "at most"},
		{"msgpack huge payload announced, short stream", []byte{0x81, 0xa7, 'p', 'a', 'y', 'l', 'o', 'a', 'd', 0xc6, 0x00, 0xff, 0xff, 0xff, 1, 2}, 0, true, ""},
		{"msgpack huge skipped array, short stream", []byte{0x81, 0xa1, 'z', 0xdd, 0xff, 0xff, 0xff, 0xff, 1}, 0, true, ""},
		{"msgpack wrong type", []byte{0x81, 0xa3, 's', 'e', 'q', 0xc3}, 0, false, "wrong type"},
		{"msgpack negative uint", []byte{0x81, 0xa8, 'm', 's', 'g', '_', 't', 'y', 'p', 'e', 0xff}, 0, false, "out of range"},
		{"msgpack invalid byte", []byte{0x81, 0xa1, 'v', 0xc1}, 0, false, "invalid msgpack byte"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rd := NewReader(bytes.NewReader(tt.in))
			n := 0
			var err error
			for {
				var r *Record
				r, err = rd.Read()
				if err != nil {
					break
				}
				_ = r
				n++
			}
			if err == io.EOF {
				t.Fatalf("Read gave io.EOF after %d records, want an error", n)
			}
			if n != tt.records {
				t.Errorf("records before the error = %d, want %d", n, tt.records)
			}
			var re *Error
			if !errors.As(err, &re) || !errors.Is(err, ErrFormat) || re.N != int64(tt.records) {
				t.Errorf("error %v: want *Error for record %d matching ErrFormat", err, tt.records)
			}
			if got := errors.Is(err, io.ErrUnexpectedEOF); got != tt.unexpected {
				t.Errorf("errors.Is(%v, io.ErrUnexpectedEOF) = %v, want %v", err, got, tt.unexpected)
			}
			if !strings.Contains(err.Error(), tt.substr) {
				t.Errorf("error %q does not contain %q", err, tt.substr)
			}
			if _, again := rd.Read(); again != err {
				t.Errorf("second Read error = %v, want the same %v", again, err)
			}
		})
	}
}

func TestEmptyStream(t *testing.T) {
	for _, in := range []string{"", " \n\t"} {
		if _, err := NewReader(strings.NewReader(in)).Read(); err != io.EOF {
			t.Errorf("Read(%q) error = %v, want io.EOF", in, err)
		}
	}
}

func TestEqualIgnoresTimes(t *testing.T) {
	a := &Record{Kind: KindEffect, Effect: EffectWatchdogResume, Seq: 4, AtNS: 10, PauseNS: 5, PauseTotalNS: 6, Payload: []byte{}}
	b := &Record{Kind: KindEffect, Effect: EffectWatchdogResume, Seq: 4, AtNS: 99, PauseNS: 7, PauseTotalNS: 8, DeadlineNS: 3, StartNS: 2}
	if !Equal(a, b) {
		t.Errorf("Equal(%+v, %+v) = false, want true: only times differ", a, b)
	}
	for name, mut := range map[string]func(*Record){
		"seq":     func(r *Record) { r.Seq++ },
		"effect":  func(r *Record) { r.Effect = EffectWatchdogPause },
		"payload": func(r *Record) { r.Payload = []byte{1} },
		"request": func(r *Record) { r.Request = []byte{1} },
		"crc_ok":  func(r *Record) { r.CRCOK = true },
		"value":   func(r *Record) { r.Value = 1 },
		"step":    func(r *Record) { r.Step = 1 },
	} {
		c := *b
		mut(&c)
		if Equal(a, &c) {
			t.Errorf("Equal after changing %s = true, want false", name)
		}
	}
}

func TestWriterReleasesLargeBuffers(t *testing.T) {
	w := NewWriter(io.Discard, true) // base64 goes through the buffer
	if err := w.Write(&Record{Kind: KindEntry, Payload: make([]byte, 2<<20)}); err != nil {
		t.Fatal(err)
	}
	if w.e.b != nil {
		t.Errorf("buffer of %d bytes kept after a 2 MiB payload", cap(w.e.b))
	}
}

func TestWriterSurfacesErrors(t *testing.T) {
	w := NewWriter(errWriter{}, true)
	var err error
	for i := 0; i < 10000 && err == nil; i++ {
		err = w.Write(samples()[0])
	}
	if err == nil {
		err = w.Flush()
	}
	if !errors.Is(err, io.ErrClosedPipe) {
		t.Errorf("error = %v, want io.ErrClosedPipe", err)
	}
}

type errWriter struct{}

func (errWriter) Write([]byte) (int, error) { return 0, io.ErrClosedPipe }
