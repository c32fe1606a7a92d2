package dispatch

import (
	"bytes"
	"io"
	"testing"

	"github.com/ktstr-go/ktstr/lib/record"
	"github.com/ktstr-go/ktstr/lib/wire"
)

// benchStream is n frames of size bytes each (header included), SOUT.
func benchStream(n, size int) []byte {
	p := bytes.Repeat([]byte("x"), size-wire.HeaderSize)
	var b []byte
	for range n {
		b = wire.AppendFrame(b, wire.TypeStdout, p)
	}
	return b
}

// BenchmarkRun is ktstr-dispatch's loop on 4 KiB frames, records to
// io.Discard; scripts/bench-dispatch measures the binary on 1 GiB.
func BenchmarkRun(b *testing.B) {
	for _, json := range []bool{false, true} {
		name := map[bool]string{false: "msgpack", true: "json"}[json]
		b.Run(name, func(b *testing.B) {
			in := benchStream(4096, 4096)
			b.SetBytes(int64(len(in)))
			b.ReportAllocs()
			for b.Loop() {
				if _, err := Run(bytes.NewReader(in), record.NewWriter(io.Discard, json), Options{}); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
