package wire

import (
	"fmt"
	"hash/crc32"
	"runtime"
	"testing"
)

var sink uint32

// benchStream returns about 4 MiB of frames with payloads of size bytes,
// cut into 64 KiB chunks as a pipe would deliver them.
func benchStream(size int) (chunks [][]byte, total, frames int) {
	payload := make([]byte, size)
	for i := range payload {
		payload[i] = byte(i*31 + 7)
	}
	var stream []byte
	for len(stream) < 4<<20 {
		stream = AppendFrame(stream, TypeStdout, payload)
		frames++
	}
	for off := 0; off < len(stream); off += 64 << 10 {
		chunks = append(chunks, stream[off:min(off+64<<10, len(stream))])
	}
	return chunks, len(stream), frames
}

// BenchmarkAssembler feeds 64 KiB chunks of 4 KiB and 64-byte frames to
// an Assembler, next to crc32.ChecksumIEEE over the same chunks: the CRC
// every frame needs anyway is the speed of light. allocs/frame counts
// every allocation of the run, divided by the frames delivered.
func BenchmarkAssembler(b *testing.B) {
	for _, size := range []int{4096, 64} {
		chunks, total, frames := benchStream(size)
		for _, borrow := range []bool{false, true} {
			name := "assembler"
			if borrow {
				name = "assembler-borrow"
			}
			b.Run(fmt.Sprintf("payload=%d/%s", size, name), func(b *testing.B) {
				b.SetBytes(int64(total))
				b.ReportAllocs()
				a := Assembler{Borrow: borrow}
				delivered := 0
				emit := func(f Frame) { delivered++ }
				var m0, m1 runtime.MemStats
				runtime.ReadMemStats(&m0)
				for b.Loop() {
					for _, c := range chunks {
						a.Feed(c, emit)
					}
				}
				runtime.ReadMemStats(&m1)
				if delivered%frames != 0 || a.Pending() != 0 {
					b.Fatalf("delivered %d frames, pending %d", delivered, a.Pending())
				}
				b.ReportMetric(float64(m1.Mallocs-m0.Mallocs)/float64(delivered), "allocs/frame")
			})
		}
		b.Run(fmt.Sprintf("payload=%d/crc32", size), func(b *testing.B) {
			b.SetBytes(int64(total))
			for b.Loop() {
				for _, c := range chunks {
					sink ^= crc32.ChecksumIEEE(c)
				}
			}
		})
	}
}

// BenchmarkParseStream is the one-shot parser over the same 4 MiB.
func BenchmarkParseStream(b *testing.B) {
	for _, size := range []int{4096, 64} {
		chunks, total, _ := benchStream(size)
		var stream []byte
		for _, c := range chunks {
			stream = append(stream, c...)
		}
		b.Run(fmt.Sprintf("payload=%d", size), func(b *testing.B) {
			b.SetBytes(int64(total))
			b.ReportAllocs()
			for b.Loop() {
				fs, _ := ParseStream(stream, 0)
				sink ^= uint32(len(fs))
			}
		})
	}
}
