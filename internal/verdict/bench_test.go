package verdict_test

import (
	"bytes"
	"fmt"
	"io"
	"testing"

	"github.com/ktstr-go/ktstr/internal/verdict"
	vt "github.com/ktstr-go/ktstr/internal/verdict/verdicttest"
)

// BenchmarkFold folds a passing run's records (msgpack) into a verdict.
func BenchmarkFold(b *testing.B) {
	data := vt.Base().Outcomes(vt.Pass()).Finish().Bytes(false)
	cfg := verdict.DefaultConfig()
	b.SetBytes(int64(len(data)))
	for b.Loop() {
		verdict.Fold("b", cfg, bytes.NewReader(data)).Verdict()
	}
}

// BenchmarkFoldKernelLog folds 10,000 lines of kernel log: the cost of
// the splat scan.
func BenchmarkFoldKernelLog(b *testing.B) {
	s := vt.New()
	for i := 0; i < 10000; i++ {
		s.Dmesg("[   12.345678] virtio_net virtio1 eth0: renamed from an ordinary kernel message, nothing to see")
	}
	data := s.Outcomes(vt.Pass()).Finish().Bytes(false)
	cfg := verdict.DefaultConfig()
	b.SetBytes(int64(len(data)))
	for b.Loop() {
		verdict.Fold("b", cfg, bytes.NewReader(data)).Verdict()
	}
}

// BenchmarkReports renders one run in every format.
func BenchmarkReports(b *testing.B) {
	v := verdict.Fold("b", verdict.DefaultConfig(), bytes.NewReader(vt.Base().Outcomes(vt.Pass()).Finish().Bytes(false))).Verdict()
	rep := verdict.Aggregate("b", []verdict.Verdict{v})
	for b.Loop() {
		for _, f := range verdict.Formats {
			verdict.Write(io.Discard, f, rep, verdict.TextOptions{})
		}
	}
}

// BenchmarkFoldDisabled folds 40,000 distinct sched_ext "disabled"
// lines, a hostile guest's kernel log: linear time (it was quadratic).
func BenchmarkFoldDisabled(b *testing.B) {
	s := vt.New()
	for i := 0; i < 40000; i++ {
		s.Dmesg(fmt.Sprintf("sched_ext: BPF scheduler \"s%d\" disabled (runtime error)", i))
	}
	data := s.Finish().Bytes(false)
	cfg := verdict.DefaultConfig()
	b.SetBytes(int64(len(data)))
	for b.Loop() {
		verdict.Fold("b", cfg, bytes.NewReader(data)).Verdict()
	}
}

// soutStream is n SOUT entries of 4080 bytes each (the payload of a 4 KiB
// frame), as JSON lines or msgpack: text, lines like a scheduler's
// statistics in the guest agent's labelled form (every line with ':'
// and '_', which the scan of the output looks at more closely), or
// binary, random bytes (much of it ill-formed UTF-8, a line every 256
// bytes on average).
func soutStream(n int, binary bool, jsonLines bool) []byte {
	s := vt.New()
	x := uint64(0x9e3779b97f4a7c15)
	rnd := func() uint64 {
		x ^= x << 13
		x ^= x >> 7
		x ^= x << 17
		return x
	}
	var text []byte
	for i := 0; len(text) < n*4080; i++ {
		text = fmt.Appendf(text, "[%5d.%06d] stdout: scx_demo: cpu %2d load %3d.%02d nr_queued %4d slice_us %5d vtime %d\n",
			i/1000, i%1000*1000, rnd()%64, rnd()%1000, rnd()%100, rnd()%5000, rnd()%20000, rnd())
	}
	for i := 0; i < n; i++ {
		p := text[i*4080 : (i+1)*4080]
		if binary {
			p = make([]byte, 4080)
			for j := range p {
				p[j] = byte(rnd())
			}
		}
		s.Stdout(string(p))
	}
	return s.Finish().Bytes(jsonLines)
}

func benchFoldSOUT(b *testing.B, binary, jsonLines bool) {
	data := soutStream(2048, binary, jsonLines)
	cfg := verdict.DefaultConfig()
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	for b.Loop() {
		verdict.Fold("b", cfg, bytes.NewReader(data)).Verdict()
	}
}

// BenchmarkFoldSOUTText folds 8 MiB of text SOUT entries (msgpack).
func BenchmarkFoldSOUTText(b *testing.B) { benchFoldSOUT(b, false, false) }

// BenchmarkFoldSOUTBinary folds 8 MiB of binary SOUT entries (msgpack).
func BenchmarkFoldSOUTBinary(b *testing.B) { benchFoldSOUT(b, true, false) }

// BenchmarkFoldSOUTTextJSON folds the text SOUT entries as JSON lines.
func BenchmarkFoldSOUTTextJSON(b *testing.B) { benchFoldSOUT(b, false, true) }
