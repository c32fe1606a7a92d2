package compare

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"github.com/ktstr-go/ktstr/internal/verdict"
	vt "github.com/ktstr-go/ktstr/internal/verdict/verdicttest"
	"github.com/ktstr-go/ktstr/lib/wire/payload"
)

// TestLoad: the three kinds of input give the same run: a verdict JSON
// report, a record stream (msgpack and JSON lines), a KTSTR_SAVE
// directory; anything else is an error.
func TestLoad(t *testing.T) {
	dir := t.TempDir()
	st := vt.Stats()
	st.IterationRate, st.WakeLatency = 1234, &payload.Latency{Count: 3, P50NS: 10, P99NS: 30, MaxNS: 30}
	s := vt.Base().Result(&payload.AssertResult{Scenario: "wake-latency", Outcomes: []payload.Outcome{vt.Pass()}, Stats: st}).Finish()
	write := func(name string, b []byte) string {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	v := verdict.Fold("r", verdict.DefaultConfig(), bytes.NewReader(s.Bytes(false))).Verdict()
	rep, _ := json.Marshal(verdict.Aggregate("two", []verdict.Verdict{v, v}))
	inputs := map[string]int{
		write("rep.json", rep):                             2,
		write("run.rec", s.Bytes(false)):                   1,
		write("run.jsonl", s.Bytes(true)):                  1,
		filepath.Dir(write("a/3/records", s.Bytes(false))): 1,
	}
	for in, n := range inputs {
		runs, err := Load(in)
		if err != nil || len(runs) != n {
			t.Fatalf("Load(%s) = %d runs, %v; want %d", in, len(runs), err, n)
		}
		r := runs[0]
		if r.Status != verdict.StatusPass || r.Result == nil || r.Result.Stats.IterationRate != 1234 || r.Result.Stats.WakeLatency.P99NS != 30 {
			t.Errorf("Load(%s): %s %+v", in, r.Status, r.Result)
		}
	}
	if runs, _ := Load(filepath.Join(dir, "a/3")); runs[0].Name != "a/3" {
		t.Errorf("a KTSTR_SAVE directory's run is named %q, want a/3", runs[0].Name)
	}
	for _, bad := range []string{filepath.Join(dir, "missing"), filepath.Join(dir, "a")} {
		if _, err := Load(bad); err == nil {
			t.Errorf("Load(%s) = nil error", bad)
		}
	}
	// Garbage folds to a run without a result, which Compare leaves out.
	runs, err := Load(write("garbage", []byte("not records")))
	if err != nil || len(runs) != 1 || runs[0].Result != nil {
		t.Errorf("garbage: %v %+v", err, runs)
	}
}
