package record

import (
	"bytes"
	"io"
	"testing"
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
