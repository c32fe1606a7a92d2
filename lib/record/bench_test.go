package record

import (
	"bytes"
	"io"
	"runtime"
	"testing"
)

// benchRecords is a run's worth of records: mostly log entries of about
// 100 bytes, with effects, diagnostics and one TEST of 2 KiB among them.
func benchRecords() []*Record {
	var rs []*Record
	line := bytes.Repeat([]byte("[    2.512345] worker 3: iteration done\n"), 3)
	for i := range 1000 {
		r := &Record{Kind: KindEntry, Seq: int64(i), AtNS: int64(i) * 1500, Tag: "SOUT", MsgType: 0x534F5554, CRCOK: true, Payload: line}
		switch {
		case i == 900:
			r.Tag, r.MsgType, r.Payload = "TEST", 0x54455354, bytes.Repeat([]byte{0xAB}, 2048)
		case i%50 == 1:
			r = &Record{Kind: KindEffect, Seq: int64(i), AtNS: int64(i) * 1500, Effect: EffectCurrentStep, Tag: "STIM", MsgType: 0x5354494D, Step: uint16(i / 50)}
		case i%100 == 2:
			r = &Record{Kind: KindDiag, Seq: int64(i), Diag: DiagCRCMismatch, Tag: "SOUT", MsgType: 0x534F5554, Offset: int64(i) * 128, Length: 120, Message: "payload does not match its CRC"}
		}
		rs = append(rs, r)
	}
	return rs
}

func benchStream(b *testing.B, json bool) ([]byte, int) {
	var buf bytes.Buffer
	w := NewWriter(&buf, json)
	rs := benchRecords()
	for _, r := range rs {
		if err := w.Write(r); err != nil {
			b.Fatal(err)
		}
	}
	w.Close()
	return buf.Bytes(), len(rs)
}

// BenchmarkRead decodes a stream of 1000 records; it reports the time and
// the allocations per record.
func BenchmarkRead(b *testing.B) {
	for _, form := range []string{"msgpack", "json"} {
		b.Run(form, func(b *testing.B) {
			in, n := benchStream(b, form == "json")
			b.SetBytes(int64(len(in)))
			var m0, m1 runtime.MemStats
			runtime.ReadMemStats(&m0)
			for b.Loop() {
				rd := NewReader(bytes.NewReader(in))
				for {
					_, err := rd.Read()
					if err == io.EOF {
						break
					}
					if err != nil {
						b.Fatal(err)
					}
				}
			}
			runtime.ReadMemStats(&m1)
			records := float64(b.N) * float64(n)
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/records, "ns/record")
			b.ReportMetric(float64(m1.Mallocs-m0.Mallocs)/records, "allocs/record")
		})
	}
}

// BenchmarkWrite encodes the same 1000 records.
func BenchmarkWrite(b *testing.B) {
	for _, form := range []string{"msgpack", "json"} {
		b.Run(form, func(b *testing.B) {
			rs := benchRecords()
			in, _ := benchStream(b, form == "json")
			b.SetBytes(int64(len(in)))
			w := NewWriter(io.Discard, form == "json")
			for b.Loop() {
				for _, r := range rs {
					if err := w.Write(r); err != nil {
						b.Fatal(err)
					}
				}
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(rs)), "ns/record")
		})
	}
}

// BenchmarkWriteEntry4K encodes entries with 4080-byte payloads, what
// ktstr-dispatch writes for 4 KiB SOUT frames.
func BenchmarkWriteEntry4K(b *testing.B) {
	for _, form := range []string{"msgpack", "json"} {
		b.Run(form, func(b *testing.B) {
			r := &Record{Kind: KindEntry, Seq: 12345, AtNS: 123456789, Tag: "SOUT", MsgType: 0x534F5554, CRCOK: true, Payload: bytes.Repeat([]byte("0123456789abcdef"), 255)}
			w := NewWriter(io.Discard, form == "json")
			b.SetBytes(4096) // a frame's bytes
			for b.Loop() {
				w.Write(r)
			}
		})
	}
}
