package record

import (
	"bytes"
	"io"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// TestBufferedAtRecordEnd: once a record is read from a pipe that has
// nothing more, Buffered is 0, so a filter flushes before it waits (the
// newline after a JSON record does not count); JSON tells the form.
func TestBufferedAtRecordEnd(t *testing.T) {
	for _, json := range []bool{false, true} {
		var b bytes.Buffer
		w := NewWriter(&b, json)
		w.Write(samples()[0])
		w.Close()
		if json {
			b.WriteString(" \r\n") // white space a filter such as jq may add
		}
		pr, pw := io.Pipe()
		go func() { pw.Write(b.Bytes()) }() // then the writer waits: no EOF yet
		rd := NewReader(pr)
		if _, err := rd.Read(); err != nil {
			t.Fatal(err)
		}
		if n := rd.Buffered(); n != 0 {
			t.Errorf("json=%v: Buffered = %d after the only record", json, n)
		}
		if rd.JSON() != json {
			t.Errorf("JSON() = %v, want %v", rd.JSON(), json)
		}
		pw.Close()
	}
}

// TestReadShared: ReadShared gives the records Read gives, in both forms,
// a byte string the record does not carry is nil whatever the record
// before carried, and it allocates nothing per record once its buffers
// have grown.
func TestReadShared(t *testing.T) {
	for _, json := range []bool{false, true} {
		in := encode(t, json, samples()...)
		want := decodeAll(t, in)
		rd := NewReader(bytes.NewReader(in))
		for i := 0; ; i++ {
			r, err := rd.ReadShared()
			if err == io.EOF {
				if i != len(want) {
					t.Fatalf("json=%v: %d records, want %d", json, i, len(want))
				}
				break
			}
			if err != nil {
				t.Fatalf("json=%v: ReadShared: %v", json, err)
			}
			if d := cmp.Diff(want[i], r); d != "" {
				t.Errorf("json=%v: record %d (-Read +ReadShared):\n%s", json, i, d)
			}
		}
	}

	entry := &Record{Kind: KindEntry, Tag: "SOUT", MsgType: 0x534F5554, CRCOK: true, Payload: bytes.Repeat([]byte("x"), 4000)}
	var recs []*Record
	for range 200 {
		recs = append(recs, entry)
	}
	rd := NewReader(bytes.NewReader(encode(t, false, recs...)))
	if _, err := rd.ReadShared(); err != nil {
		t.Fatal(err)
	}
	allocs := testing.AllocsPerRun(100, func() {
		if r, err := rd.ReadShared(); err != nil || len(r.Payload) != 4000 || r.Tag != "SOUT" {
			t.Fatalf("ReadShared = %+v, %v", r, err)
		}
	})
	if allocs > 0.1 {
		t.Errorf("ReadShared: %.2f allocations per record, want none", allocs)
	}
}
