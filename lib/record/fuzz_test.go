package record

import (
	"bytes"
	"io"
	"runtime"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// FuzzReader: arbitrary bytes never panic, never allocate more than a
// fixed amount plus a multiple of the input, and what decodes comes back
// the same after one trip through the Writer (both forms).
func FuzzReader(f *testing.F) {
	for _, r := range samples() {
		if len(r.Payload) > 1000 {
			continue
		}
		for _, form := range []bool{false, true} {
			var b bytes.Buffer
			w := NewWriter(&b, form)
			w.Write(r)
			w.Close()
			f.Add(b.Bytes())
		}
	}
	f.Add([]byte(`{"v":1,"kind":"entry","extra":[{"}":"{"}],"seq":1.7e+18}`))
	f.Add([]byte{0x81, 0xa1, 'z', 0xdd, 0xff, 0xff, 0xff, 0xff, 0x91, 0x90})
	f.Add([]byte{0x81, 0xa7, 'p', 'a', 'y', 'l', 'o', 'a', 'd', 0xc6, 0x00, 0xff, 0xff, 0xff})
	f.Fuzz(func(t *testing.T, data []byte) {
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		rd := NewReader(bytes.NewReader(data))
		var recs []*Record
		for range 1000 {
			r, err := rd.Read()
			if err != nil {
				break
			}
			recs = append(recs, r)
		}
		runtime.ReadMemStats(&after)
		if got, limit := after.TotalAlloc-before.TotalAlloc, uint64(2<<20+64*len(data)); got > limit {
			t.Fatalf("reading %d bytes allocated %d bytes, more than %d", len(data), got, limit)
		}
		// ReadShared reads the same records, and stops where Read stopped.
		shared := NewReader(bytes.NewReader(data))
		for i := 0; i <= len(recs) && i < 1000; i++ {
			r, err := shared.ReadShared()
			if i == len(recs) {
				if err == nil {
					t.Fatalf("ReadShared read record %d, where Read stopped", i)
				}
				break
			}
			if err != nil {
				t.Fatalf("ReadShared: record %d: %v, where Read read it", i, err)
			}
			if d := cmp.Diff(recs[i], r); d != "" {
				t.Fatalf("record %d (-Read +ReadShared):\n%s", i, d)
			}
		}
		for _, form := range []bool{false, true} {
			once := trip(t, recs, form)
			twice := trip(t, once, form)
			if d := cmp.Diff(once, twice); d != "" {
				t.Fatalf("json=%v: a second trip changed the records (-once +twice):\n%s", form, d)
			}
		}
	})
}

// trip writes rs and reads them back.
func trip(t *testing.T, rs []*Record, form bool) []*Record {
	var b bytes.Buffer
	w := NewWriter(&b, form)
	for _, r := range rs {
		c := *r
		if err := w.Write(&c); err != nil {
			t.Fatal(err)
		}
	}
	w.Close()
	rd := NewReader(&b)
	var out []*Record
	for {
		r, err := rd.Read()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("json=%v: reading back what the Writer wrote: %v", form, err)
		}
		out = append(out, r)
	}
	if len(out) != len(rs) {
		t.Fatalf("json=%v: wrote %d records, read back %d", form, len(rs), len(out))
	}
	return out
}
