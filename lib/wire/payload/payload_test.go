package payload

import (
	"bytes"
	"encoding/hex"
	"errors"
	"os"
	"reflect"
	"regexp"
	"runtime"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/ktstr-go/ktstr/lib/wire"
	"github.com/vmihailenco/msgpack/v5"
)

var sampleResult = &AssertResult{
	Scenario: "steady",
	Outcomes: []Outcome{{Verdict: Pass}, {Verdict: Fail, Kind: KindStarved, Message: "worker 3 starved for 1.2s"}},
	Passes:   []PassDetail{{Check: "spread", Message: "2.9% <= 25%"}},
	Stats: ScenarioStats{
		Cgroups:    []CgroupStats{{Name: "cg0", Workers: 2, CPUs: 2, Iterations: 100, Migrations: 1, RunNS: 5e9, WaitNS: 1e6, SpreadPct: 2.5, MaxGapMS: 51.6}},
		Workers:    4,
		CPUs:       2,
		Migrations: 3, WorstSpreadPct: 2.9, WorstGapMS: 51.6, TotalIterations: 100762,
	},
	Measurements: map[string]float64{"p99_ns": 1250, "ratio": -0.5},
	InfoNotes:    []string{"note"},
	Scheduler: &SchedulerInfo{Binary: "scx_wrap", SHA256: "ab12", Ops: "simple", EnableSeq: 1, AttachMS: 812.5,
		Detached: &SchedDetach{AtMS: 2512.25, ForMS: 40, How: "disabled", State: "disabled", EnableSeq: 1,
			Kernel: `sched_ext: BPF scheduler "simple" disabled (unregistered from user space)`, KernelS: 9.5, Alive: true}},
	StatsAfterDetach: &ScenarioStats{Workers: 4, TotalIterations: 12},
}

var sampleRequest = &KernelOpRequest{RequestID: 7, Mode: ModeHot, Direction: DirWrite, Tag: "poke",
	Entries: []KernelOpEntry{
		{Target: Target{Kind: TargetSymbol, Symbol: "jiffies"}, Value: Value{Kind: ValueU64, U: 1 << 40}},
		{Target: Target{Kind: TargetPerCPUField, Symbol: "runqueues", Field: "nr_running", CPU: 1}, Value: Value{Kind: ValueU32, U: 5}},
		{Target: Target{Kind: TargetTaskField, PID: 42, StartTimeNS: 99, Field: "prio"}, Value: Value{Kind: ValueBytes, Bytes: []byte{1, 2}}},
		{Target: Target{Kind: TargetKVA, Addr: 0xffffffff81000000}, Value: Value{Kind: ValueOrU32, U: 0x80}},
	}}

var sampleReply = &KernelOpReply{RequestID: 7, Success: false, Reason: "symbol not found",
	ReadValues: []Value{{Kind: ValueU32, U: 3}, {Kind: ValueBytes, Bytes: []byte("ab")}}}

var sampleMetrics = &PayloadMetrics{PayloadIndex: 1, Payload: "fio", ExitCode: 0, Metrics: []Metric{
	{Name: "jobs.0.read.iops", Value: 12345.5, Unit: "IO/s", Polarity: HigherBetter},
	{Name: "lat_p99", Value: 3.25, Unit: "ms", Polarity: LowerBetter},
	{Name: "errors", Value: 0},
}}

var sampleRaw = &RawPayloadOutput{PayloadIndex: 1, Payload: "fio", ExitCode: 2, Stdout: "{\"jobs\":[]}\n", Stderr: "warning\n", Hint: "fio json"}

// codec is one structured payload type, for table tests and fuzzing.
type codec struct {
	t      wire.Type
	sample any
	decode func([]byte) (any, error)
	encode func(any) ([]byte, error)
}

var codecs = map[string]codec{
	"TEST": {wire.TypeTestResult, sampleResult,
		func(p []byte) (any, error) { return UnmarshalAssertResult(p) },
		func(v any) ([]byte, error) { return MarshalAssertResult(v.(*AssertResult)) }},
	"KORQ": {wire.TypeKernelOpRequest, sampleRequest,
		func(p []byte) (any, error) { return UnmarshalKernelOpRequest(p) },
		func(v any) ([]byte, error) { return MarshalKernelOpRequest(v.(*KernelOpRequest)) }},
	"KORP": {wire.TypeKernelOpReply, sampleReply,
		func(p []byte) (any, error) { return UnmarshalKernelOpReply(p) },
		func(v any) ([]byte, error) { return MarshalKernelOpReply(v.(*KernelOpReply)) }},
	"PMET": {wire.TypePayloadMetrics, sampleMetrics,
		func(p []byte) (any, error) { return UnmarshalPayloadMetrics(p) },
		func(v any) ([]byte, error) { return MarshalPayloadMetrics(v.(*PayloadMetrics)) }},
	"RAWO": {wire.TypeRawPayloadOutput, sampleRaw,
		func(p []byte) (any, error) { return UnmarshalRawPayloadOutput(p) },
		func(v any) ([]byte, error) { return MarshalRawPayloadOutput(v.(*RawPayloadOutput)) }},
}

func TestRoundTrip(t *testing.T) {
	for name, c := range codecs {
		t.Run(name, func(t *testing.T) {
			p, err := c.encode(c.sample)
			if err != nil {
				t.Fatalf("encode: %v", err)
			}
			got, err := c.decode(p)
			if err != nil {
				t.Fatalf("decode(%x): %v", p, err)
			}
			if diff := cmp.Diff(c.sample, got); diff != "" {
				t.Errorf("round trip mismatch (-want +got):\n%s", diff)
			}
			// the library's default encoder (wide ints, unsorted keys) is read too
			q, err := msgpack.Marshal(c.sample)
			if err != nil {
				t.Fatal(err)
			}
			if got, err = c.decode(q); err != nil {
				t.Fatalf("decode(msgpack.Marshal) = %v", err)
			}
			if diff := cmp.Diff(c.sample, got); diff != "" {
				t.Errorf("msgpack.Marshal round trip mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

// Encodings with known bytes, written by hand from the msgpack spec: a
// map with the keys in the struct's declaration order, smallest integers,
// empty optional keys left out.
func TestGolden(t *testing.T) {
	str := func(s string) string { return hex.EncodeToString(append([]byte{0xa0 | byte(len(s))}, s...)) }
	for _, tc := range []struct {
		name string
		v    any
		hex  string
	}{
		{"RAWO", &RawPayloadOutput{PayloadIndex: 1, Payload: "fio", Stdout: "ok"},
			"85" + str("payload_index") + "01" + str("payload") + str("fio") + str("exit_code") + "00" +
				str("stdout") + str("ok") + str("stderr") + str("")},
		{"PMET", &PayloadMetrics{ExitCode: -1, Metrics: []Metric{{Name: "x", Value: 1.5, Unit: "s"}}},
			"83" + str("payload_index") + "00" + str("exit_code") + "ff" + str("metrics") + "91" +
				"83" + str("name") + str("x") + str("value") + "cb3ff8000000000000" + str("unit") + str("s")},
		{"TEST", &AssertResult{Outcomes: []Outcome{{Verdict: Pass}}},
			"82" + str("outcomes") + "91" + "81" + str("verdict") + str("pass") +
				str("stats") + "86" + str("workers") + "00" + str("cpus") + "00" + str("migrations") + "00" +
				str("worst_spread_pct") + "cb0000000000000000" + str("worst_gap_ms") + "cb0000000000000000" + str("total_iterations") + "00"},
		{"KORP", &KernelOpReply{RequestID: 300, Success: true},
			"84" + str("request_id") + "cd012c" + str("success") + "c3" + str("reason") + str("") + str("read_values") + "c0"},
	} {
		c := codecs[tc.name]
		want, _ := hex.DecodeString(tc.hex)
		got, err := c.encode(tc.v)
		if err != nil || !bytes.Equal(got, want) {
			t.Errorf("%s: encode = %x, %v\n want %x", tc.name, got, err, want)
		}
		back, err := c.decode(want)
		if err != nil {
			t.Errorf("%s: decode(%x): %v", tc.name, want, err)
		} else if diff := cmp.Diff(tc.v, back); diff != "" {
			t.Errorf("%s: decode mismatch (-want +got):\n%s", tc.name, diff)
		}
	}
}

// mp builds msgpack by hand for the rejection table.
func mp(parts ...string) []byte {
	var b []byte
	for _, p := range parts {
		if strings.HasPrefix(p, "'") {
			s := p[1:]
			b = append(b, 0xa0|byte(len(s)))
			b = append(b, s...)
			continue
		}
		h, err := hex.DecodeString(p)
		if err != nil {
			panic(p)
		}
		b = append(b, h...)
	}
	return b
}

func TestRejects(t *testing.T) {
	for _, tc := range []struct {
		name  string
		codec string
		in    []byte
		size  bool   // wraps wire.ErrPayloadSize rather than ErrPayloadValue
		path  string // expected DecodeError.Path
		why   string // in the message
	}{
		{"empty", "TEST", nil, true, "", "empty"},
		{"nil", "TEST", mp("c0"), false, "", "want a map"},
		{"array", "TEST", mp("90"), false, "", "want a map"},
		{"missing outcomes", "TEST", mp("80"), false, "", `missing key "outcomes"`},
		{"trailing bytes", "TEST", mp("81", "'outcomes", "c0", "00"), false, "", "1 trailing bytes"},
		{"duplicate key", "TEST", mp("82", "'outcomes", "c0", "'outcomes", "c0"), false, "", "duplicate key"},
		{"unknown verdict", "TEST", mp("81", "'outcomes", "91", "81", "'verdict", "'maybe"), false, "outcomes[0].verdict", "unknown verdict"},
		{"string for array", "TEST", mp("81", "'outcomes", "'x"), false, "outcomes", "want an array"},
		{"huge array", "TEST", mp("81", "'outcomes", "dd7fffffff"), false, "outcomes", "more than 65536"},
		{"array longer than payload", "TEST", mp("81", "'outcomes", "dd00000100"), false, "outcomes", "announced"},
		{"huge string", "TEST", mp("81", "'scenario", "dbffffffff"), false, "scenario", "announced"},
		{"int for string", "TEST", mp("81", "'scenario", "05"), false, "scenario", "want a string"},
		{"float for int", "TEST", mp("82", "'outcomes", "c0", "'stats", "81", "'workers", "cb3ff0000000000000"), false, "stats.workers", "want an integer"},
		{"bad code", "TEST", mp("82", "'outcomes", "c0", "'x", "c1"), false, "", "invalid msgpack code"},
		{"non-string key", "TEST", mp("81", "01", "c0"), false, "", "want a string key"},
		{"duplicate map key", "TEST", mp("82", "'outcomes", "c0", "'measurements", "82", "'a", "01", "'a", "02"), false, "measurements", "duplicate key"},
		{"request_id 2^32", "KORP", mp("82", "'request_id", "cf0000000100000000", "'success", "c3"), false, "request_id", "out of range"},
		{"negative request_id", "KORP", mp("82", "'request_id", "ff", "'success", "c3"), false, "request_id", "out of range"},
		{"missing success", "KORP", mp("81", "'request_id", "01"), false, "", `missing key "success"`},
		{"reply too large", "KORP", append(mp("82", "'request_id", "01", "'success", "c3", "'x", "c6"), make([]byte, 1<<20)...), true, "", "more than"},
		{"bad mode", "KORQ", mp("83", "'request_id", "01", "'mode", "'warm", "'direction", "'read"), false, "mode", "unknown mode"},
		{"bad direction", "KORQ", mp("83", "'request_id", "01", "'mode", "'hot", "'direction", "'up"), false, "direction", "unknown direction"},
		{"bad target", "KORQ", mp("84", "'request_id", "01", "'mode", "'hot", "'direction", "'read", "'entries", "91", "82", "'target", "81", "'kind", "'pc", "'value", "81", "'kind", "'u32"),
			false, "entries[0].target.kind", "unknown target kind"},
		{"u32 value too big", "KORQ", mp("84", "'request_id", "01", "'mode", "'hot", "'direction", "'write", "'entries", "91", "82", "'target", "81", "'kind", "'kva", "'value", "82", "'kind", "'u32", "'u", "cf0000000100000000"),
			false, "entries[0].value.u", "out of range"},
		{"NaN metric", "PMET", mp("82", "'exit_code", "00", "'metrics", "91", "82", "'name", "'x", "'value", "cb7ff8000000000000"), false, "metrics[0].value", "not finite"},
		{"Inf metric", "PMET", mp("82", "'exit_code", "00", "'metrics", "91", "82", "'name", "'x", "'value", "cb7ff0000000000000"), false, "metrics[0].value", "not finite"},
		{"empty metric name", "PMET", mp("82", "'exit_code", "00", "'metrics", "91", "81", "'value", "01"), false, "metrics[0].name", "empty"},
		{"bad polarity", "PMET", mp("82", "'exit_code", "00", "'metrics", "91", "82", "'name", "'x", "'polarity", "'up"), false, "metrics[0].polarity", "unknown polarity"},
		{"bad UTF-8 name", "PMET", mp("82", "'exit_code", "00", "'metrics", "91", "81", "'name", "a1ff"), false, "metrics[0].name", "not UTF-8"},
		{"long unit", "PMET", mp("82", "'exit_code", "00", "'metrics", "91", "82", "'name", "'x", "'unit", "da0101"+strings.Repeat("61", 257)), false, "metrics[0].unit", "more than 256"},
		{"exit code out of range", "PMET", mp("81", "'exit_code", "ce80000000"), false, "exit_code", "out of range"},
		{"missing exit code", "RAWO", mp("81", "'stdout", "'x"), false, "", `missing key "exit_code"`},
		{"bad UTF-8 payload name", "RAWO", mp("82", "'exit_code", "00", "'payload", "a1ff"), false, "payload", "not UTF-8"},
		// Strings that are not UTF-8 are refused, as postcard refuses
		// them for ktstr's String fields (only RAWO's output is lossy).
		{"bad UTF-8 outcome message", "TEST", mp("81", "'outcomes", "91", "82", "'verdict", "'fail", "'message", "a3", "61ff62"), false, "outcomes[0].message", "not UTF-8"},
		{"bad UTF-8 scenario as bin", "TEST", mp("81", "'scenario", "c401", "9b"), false, "scenario", "not UTF-8"},
		{"bad UTF-8 measurement name", "TEST", mp("82", "'outcomes", "c0", "'measurements", "81", "a2", "c328", "01"), false, "measurements", "not UTF-8"},
		{"bad UTF-8 info note", "TEST", mp("82", "'outcomes", "c0", "'info_notes", "91", "a1", "80"), false, "info_notes[0]", "not UTF-8"},
		{"bad UTF-8 tag", "KORQ", mp("84", "'request_id", "01", "'mode", "'hot", "'direction", "'read", "'tag", "a2", "ed", "a0"), false, "tag", "not UTF-8"},
		{"bad UTF-8 symbol", "KORQ", mp("84", "'request_id", "01", "'mode", "'hot", "'direction", "'read", "'entries", "91", "82", "'target", "82", "'kind", "'symbol", "'symbol", "a1", "ff", "'value", "81", "'kind", "'u32"),
			false, "entries[0].target.symbol", "not UTF-8"},
		{"bad UTF-8 reason", "KORP", mp("83", "'request_id", "01", "'success", "c2", "'reason", "a1", "c0"), false, "reason", "not UTF-8"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := codecs[tc.codec]
			v, err := c.decode(tc.in)
			var de *DecodeError
			if !errors.As(err, &de) {
				t.Fatalf("decode(%x) = %+v, %v, want a *DecodeError", tc.in, v, err)
			}
			if !errors.Is(err, ErrDecode) || !errors.Is(err, wire.ErrPayload) {
				t.Errorf("error %v does not wrap ErrDecode and wire.ErrPayload", err)
			}
			if errors.Is(err, wire.ErrPayloadSize) != tc.size || errors.Is(err, wire.ErrPayloadValue) == tc.size {
				t.Errorf("error %v: size = %v, want %v", err, errors.Is(err, wire.ErrPayloadSize), tc.size)
			}
			if de.Type != c.t || de.Path != tc.path || !strings.Contains(err.Error(), tc.why) {
				t.Errorf("error %v: type %v path %q, want %v, %q, containing %q", err, de.Type, de.Path, c.t, tc.path, tc.why)
			}
		})
	}
}

// Lenient where a newer writer may add things.
func TestAccepts(t *testing.T) {
	r, err := UnmarshalAssertResult(mp("84", "'future", "82", "'a", "92", "c3", "d70100000000000000ff", "'b", "c7020061ff",
		"'outcomes", "c0", "'stats", "c0", "'scheduler", "c0"))
	if err != nil || r.Verdict() != Pass || len(r.Outcomes) != 0 || r.Scheduler != nil {
		t.Errorf("unknown keys and nil values: %+v, %v", r, err)
	}
	// negative fixint and int8 into int; uint16 into uint32; ints into floats; bin into string
	r, err = UnmarshalAssertResult(mp("83", "'outcomes", "90", "'stats", "83", "'workers", "d0f6", "'cpus", "ff", "'worst_gap_ms", "05",
		"'scenario", "c40161"))
	if err != nil || r.Stats.Workers != -10 || r.Stats.CPUs != -1 || r.Stats.WorstGapMS != 5 || r.Scenario != "a" || r.Outcomes != nil {
		t.Errorf("integer forms: %+v, %v", r, err)
	}
	k, err := UnmarshalKernelOpReply(mp("82", "'request_id", "cdffff", "'success", "c2"))
	if err != nil || k.RequestID != 0xffff {
		t.Errorf("uint16 request id: %+v, %v", k, err)
	}
	raw, err := UnmarshalRawPayloadOutput(mp("82", "'exit_code", "d2ffffff9c", "'stdout", "a4", "6f6bc0af"))
	if err != nil || raw.ExitCode != -100 || raw.Stdout != "ok\uFFFD\uFFFD" {
		t.Errorf("lossy stdout: %+v, %v", raw, err)
	}
}

// Nesting is bounded without recursion running away, whatever the payload
// announces, and announced lengths never drive allocation.
func TestHostileBounds(t *testing.T) {
	deep := append(mp("82", "'outcomes", "c0", "'x"), bytes.Repeat([]byte{0x91}, 1<<20)...)
	deep = append(deep, 0xc0)
	if _, err := UnmarshalAssertResult(deep); err == nil || !strings.Contains(err.Error(), "nested deeper") {
		t.Errorf("1 MiB of nested arrays: %v, want nesting error", err)
	}
	ok := append(mp("82", "'outcomes", "c0", "'x"), bytes.Repeat([]byte{0x91}, MaxDepth-1)...)
	if _, err := UnmarshalAssertResult(append(ok, 0xc0)); err != nil {
		t.Errorf("nesting of exactly MaxDepth: %v", err)
	}
	many := append(mp("82", "'outcomes", "c0", "'x", "dd00010001"), make([]byte, MaxElems+1)...)
	if _, err := UnmarshalAssertResult(many); err == nil || !strings.Contains(err.Error(), "more than 65536") {
		t.Errorf("MaxElems+1 entries: %v", err)
	}
	for _, p := range [][]byte{
		mp("81", "'outcomes", "dd01000000"),                        // 2^24 outcomes announced in 15 bytes
		mp("81", "'outcomes", "dd0000ffff"),                        // MaxElems-1 announced, none present
		mp("82", "'outcomes", "c0", "'measurements", "df7fffffff"), // a huge map
		mp("84", "'request_id", "01", "'mode", "'hot", "'direction", "'read", "'entries", "dd7fffffff"),
	} {
		var m0, m1 runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&m0)
		_, err := UnmarshalAssertResult(p)
		runtime.ReadMemStats(&m1)
		if err == nil {
			t.Errorf("decode(%x) succeeded", p)
		}
		if n := m1.TotalAlloc - m0.TotalAlloc; n > 64<<10 {
			t.Errorf("decode(%x) allocated %d bytes", p, n)
		}
	}
}

func TestVerdict(t *testing.T) {
	for _, tc := range []struct {
		in   []Verdict
		want Verdict
	}{
		{nil, Pass},
		{[]Verdict{Skip}, Skip},
		{[]Verdict{Skip, Pass}, Pass},
		{[]Verdict{Pass, Inconclusive, Skip}, Inconclusive},
		{[]Verdict{Inconclusive, Fail, Pass}, Fail},
		{[]Verdict{"garbled"}, "garbled"}, // ranks as Fail
	} {
		r := &AssertResult{}
		for _, v := range tc.in {
			r.Outcomes = append(r.Outcomes, Outcome{Verdict: v})
		}
		if got := r.Verdict(); got != tc.want {
			t.Errorf("Verdict(%v) = %q, want %q", tc.in, got, tc.want)
		}
	}
	if Verdict("garbled").Rank() != Fail.Rank() {
		t.Errorf("an unknown verdict ranks %d, want Fail's %d", Verdict("garbled").Rank(), Fail.Rank())
	}
}

func TestMetricsGet(t *testing.T) {
	if v, ok := sampleMetrics.Get("lat_p99"); !ok || v != 3.25 {
		t.Errorf("Get(lat_p99) = %v, %v", v, ok)
	}
	if _, ok := sampleMetrics.Get("missing"); ok {
		t.Errorf("Get(missing) found something")
	}
}

// Measurements encode with sorted keys: equal results give equal bytes.
func TestMeasurementsSorted(t *testing.T) {
	m := Measurements{}
	for _, k := range []string{"zeta", "alpha", "mu", "beta", "omega", "delta", "pi", "chi"} {
		m[k] = float64(len(k))
	}
	first, err := MarshalAssertResult(&AssertResult{Measurements: m})
	if err != nil {
		t.Fatal(err)
	}
	for range 20 {
		again, _ := MarshalAssertResult(&AssertResult{Measurements: m})
		if !bytes.Equal(first, again) {
			t.Fatalf("encoding changed between runs: %x then %x", first, again)
		}
	}
	head := mp("'measurements", "88") // the key, then a map of 8 entries
	want := mp("'alpha", "cb4014000000000000", "'beta", "cb4010000000000000", "'chi", "cb4008000000000000")
	if i := bytes.Index(first, head); i < 0 || !bytes.HasPrefix(first[i+len(head):], want) {
		t.Errorf("measurements not in key order: %x", first)
	}
}

// Every msgpack key of every payload structure is documented in doc.go
// and in ktstr-wire(5).
func TestKeysDocumented(t *testing.T) {
	var keys []string
	for _, v := range []any{AssertResult{}, Outcome{}, PassDetail{}, ScenarioStats{}, CgroupStats{}, Latency{}, SchedulerInfo{}, SchedDetach{},
		PayloadMetrics{}, Metric{}, RawPayloadOutput{}, KernelOpRequest{}, KernelOpEntry{}, Target{}, Value{}, KernelOpReply{}} {
		info := fieldsOf(reflect.TypeOf(v))
		for k := range info.byName {
			keys = append(keys, k)
		}
	}
	for _, file := range []string{"doc.go", "../../../man/man5/ktstr-wire.5"} {
		b, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		text := strings.ReplaceAll(string(b), `\-`, "-")
		for _, k := range keys {
			if !regexp.MustCompile(`\b` + k + `\b`).MatchString(text) {
				t.Errorf("%s does not mention the key %q", file, k)
			}
		}
	}
}
