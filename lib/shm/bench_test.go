package shm

import (
	"testing"
)

// BenchmarkRing4K writes 4 KiB frames into the TX ring and consumes them
// in the same goroutine: the cost of the ring itself, without a second
// process or a system call.
func BenchmarkRing4K(b *testing.B) {
	tr := newTestRegion(b, DefaultSize)
	p := tr.guest.TX().NewProducer(0)
	c := tr.host.TX().NewConsumer()
	frame := make([]byte, 4096)
	b.SetBytes(int64(len(frame)))
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		if err := p.Write(frame); err != nil {
			b.Fatal(err)
		}
		if i%1024 == 1023 {
			a, _, _ := c.Peek()
			c.Advance(len(a))
		}
	}
}
