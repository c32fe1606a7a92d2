package verdict_test

import (
	"bytes"
	"sort"
	"testing"
	"time"

	"github.com/ktstr-go/ktstr/internal/dispatch"
	"github.com/ktstr-go/ktstr/internal/verdict"
	vt "github.com/ktstr-go/ktstr/internal/verdict/verdicttest"
	"github.com/ktstr-go/ktstr/lib/record"
	"github.com/ktstr-go/ktstr/lib/wire"
)

// frames turns a stream's entries back into the raw frames the guest
// (and ktstr-drain) wrote: a recording. A CRC-failed entry gets a wrong
// CRC; tail is appended as it is (a truncated last frame).
func frames(s *vt.Stream, tail []byte) []byte {
	var b []byte
	for _, r := range s.Records() {
		if r.Kind != record.KindEntry {
			continue
		}
		start := len(b)
		b = wire.AppendFrame(b, wire.Type(r.MsgType), r.Payload)
		if !r.CRCOK {
			b[start+8] ^= 0xff // the CRC field
		}
	}
	return append(b, tail...)
}

// replay runs a recording through ktstr-dispatch's gates with its own
// clock and read size, and folds the records into a JSON report.
func replay(t *testing.T, rec []byte, step time.Duration, readSize int, jsonLines bool) []byte {
	t.Helper()
	var recs bytes.Buffer
	w := record.NewWriter(&recs, jsonLines)
	now := time.Duration(0)
	_, err := dispatch.Run(bytes.NewReader(rec), w, dispatch.Options{
		Now:      func() time.Duration { now += step; return now },
		ReadSize: readSize,
	})
	if err != nil {
		t.Fatalf("dispatch.Run: %v", err)
	}
	v := verdict.Fold("replay", verdict.DefaultConfig(), &recs).Verdict()
	var out bytes.Buffer
	for _, format := range verdict.Formats {
		if err := verdict.Write(&out, format, verdict.Aggregate("replay", []verdict.Verdict{v}), verdict.TextOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	return out.Bytes()
}

// TestReplayIsDeterministic replays recordings of every scenario twice,
// with different clocks, read sizes and record encodings: the reports
// (JSON, and the others too) are byte-identical.
func TestReplayIsDeterministic(t *testing.T) {
	for _, name := range vt.Names() {
		sc := vt.Scenarios()[name]
		t.Run(name, func(t *testing.T) {
			rec := frames(sc.Stream, nil)
			a := replay(t, rec, time.Millisecond, 1<<20, false)
			b := replay(t, rec, 7*time.Millisecond+13, 5, true)
			if !bytes.Equal(a, b) {
				t.Fatalf("two replays differ:\n%s\n---\n%s", a, b)
			}
		})
	}
	t.Run("damaged recording", func(t *testing.T) {
		s := vt.Base().BadEntry(wire.TypeDmesg, []byte("torn")).Outcomes(vt.Pass()).Exit(0)
		rec := frames(s, []byte{0x54, 0x53, 0x45, 0x54, 9, 0, 0}) // a frame header cut short
		a := replay(t, rec, time.Millisecond, 1<<20, false)
		b := replay(t, rec, 3*time.Millisecond, 3, true)
		if !bytes.Equal(a, b) {
			t.Fatalf("two replays differ:\n%s\n---\n%s", a, b)
		}
		if !bytes.Contains(a, []byte(`"status": "ERROR"`)) || !bytes.Contains(a, []byte("truncated tail")) || !bytes.Contains(a, []byte("CRC")) {
			t.Errorf("damaged recording: want ERROR naming the truncated tail and the CRC failure:\n%s", a)
		}
	})
}

// TestAtNSIgnored changes only the records' at_ns: the verdict is equal.
func TestAtNSIgnored(t *testing.T) {
	for _, name := range vt.Names() {
		sc := vt.Scenarios()[name]
		a := foldScenario(t, name, sc, false)
		var buf bytes.Buffer
		w := record.NewWriter(&buf, false)
		for _, r := range sc.Stream.Records() {
			c := *r
			c.AtNS = r.AtNS*31 + 12345
			if err := w.Write(&c); err != nil {
				t.Fatal(err)
			}
		}
		w.Close()
		f := verdict.Fold(name, verdict.DefaultConfig(), &buf)
		for _, k := range sortedKeys(sc.Consoles) {
			f.AddConsole(k, bytes.NewReader([]byte(sc.Consoles[k])))
		}
		b := f.Verdict()
		ja, jb := render(t, "json", verdict.Aggregate(name, []verdict.Verdict{a})), render(t, "json", verdict.Aggregate(name, []verdict.Verdict{b}))
		if !bytes.Equal(ja, jb) {
			t.Errorf("%s: at_ns changed the verdict:\n%s\n---\n%s", name, ja, jb)
		}
	}
}

func sortedKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
