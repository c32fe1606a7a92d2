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
