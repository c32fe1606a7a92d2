package shm

import (
	"bytes"
	"errors"
	"math/rand/v2"
	"runtime"
	"sync"
	"testing"
	"time"
)

// consume reads everything published in c's ring and advances past it.
func consume(t testing.TB, c *Consumer) []byte {
	t.Helper()
	var out []byte
	for {
		a, b, err := c.Peek()
		if err != nil {
			t.Fatalf("Peek = %v", err)
		}
		if len(a) == 0 {
			return out
		}
		out = append(append(out, a...), b...)
		c.Advance(len(a) + len(b))
	}
}

func pattern(n int, seed byte) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = seed + byte(i*7)
	}
	return b
}

// TestRingWrap writes frames of chosen sizes through a 32 KiB ring from
// several start positions, including just below 2^64, and reads them back.
func TestRingWrap(t *testing.T) {
	const ringCap = 32 << 10
	for _, tc := range []struct {
		name  string
		start uint64
		sizes []int
	}{
		{"small", 0, []int{1, 16, 100, 4096}},
		{"exactly the ring", 0, []int{ringCap, ringCap, 1, ringCap - 1}},
		{"wrap mid frame", 0, []int{ringCap - 10, 20, ringCap - 5, ringCap}},
		{"wrap at the edge", 0, []int{ringCap / 2, ringCap / 2, ringCap / 2}},
		{"start below 2^64", 1<<64 - 100, []int{50, 80, ringCap, 3, ringCap - 3}},
		{"start at 2^64-1", 1<<64 - 1, []int{1, 2, ringCap}},
		{"start mid ring", 12345, []int{ringCap, 7, ringCap - 7}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tr := newTestRegion(t, 64<<10)
			tr.setTxPositions(tc.start)
			p := tr.guest.TX().NewProducer(0)
			c := tr.host.TX().NewConsumer()
			for i, n := range tc.sizes {
				f := pattern(n, byte(i))
				if err := p.Write(f); err != nil {
					t.Fatalf("Write(frame %d, %d bytes) = %v", i, n, err)
				}
				if got := consume(t, c); !bytes.Equal(got, f) {
					t.Fatalf("frame %d: read %d bytes, want the %d written", i, len(got), n)
				}
			}
			if fr, by := tr.host.Drops(); fr != 0 || by != 0 {
				t.Errorf("Drops() = %d, %d, want 0, 0", fr, by)
			}
		})
	}
}

// TestRingFull fills the ring and checks that the producer refuses, counts
// and never overwrites unread bytes.
func TestRingFull(t *testing.T) {
	tr := newTestRegion(t, 64<<10)
	g := tr.guest.TX()
	p := g.NewProducer(0)
	c := tr.host.TX().NewConsumer()
	full := pattern(int(g.Cap()), 1)
	if err := p.Write(full); err != nil {
		t.Fatalf("Write(a frame of exactly the ring size) = %v", err)
	}
	if err := p.Write([]byte{1}); !errors.Is(err, ErrFull) {
		t.Errorf("Write into a full ring = %v, want ErrFull", err)
	}
	if err := p.Write(make([]byte, g.Cap()+1)); !errors.Is(err, ErrTooLarge) {
		t.Errorf("Write(ring size + 1) = %v, want ErrTooLarge", err)
	}
	if err := p.Write(nil); err != nil {
		t.Errorf("Write(nil) = %v, want nil", err)
	}
	if fr, by := tr.host.Drops(); fr != 2 || by != 1+g.Cap()+1 {
		t.Errorf("Drops() = %d, %d, want 2, %d", fr, by, g.Cap()+2)
	}
	// Consuming half frees exactly half.
	a, _, _ := c.Peek()
	if !bytes.Equal(a, full) {
		t.Fatalf("the full ring does not hold the frame")
	}
	c.Advance(len(a) / 2)
	if err := p.Write(make([]byte, len(a)/2+1)); !errors.Is(err, ErrFull) {
		t.Errorf("Write(half + 1) with half free = %v, want ErrFull", err)
	}
	if err := p.Write(pattern(len(a)/2, 9)); err != nil {
		t.Errorf("Write(half) with half free = %v", err)
	}
	want := append(append([]byte{}, full[len(full)/2:]...), pattern(len(a)/2, 9)...)
	if got := consume(t, c); !bytes.Equal(got, want) {
		t.Errorf("after the wrap: read %d bytes, not the %d expected", len(got), len(want))
	}
}

// TestRingRXHasNoDropCounters: a full RX ring refuses without touching the
// TX drop counters.
func TestRingRXHasNoDropCounters(t *testing.T) {
	tr := newTestRegion(t, 64<<10)
	p := tr.host.RX().NewProducer(0)
	if err := p.Write(make([]byte, tr.host.RX().Cap()+1)); !errors.Is(err, ErrTooLarge) {
		t.Errorf("RX Write(too large) = %v, want ErrTooLarge", err)
	}
	if fr, by := tr.host.Drops(); fr != 0 || by != 0 {
		t.Errorf("Drops() after an RX refusal = %d, %d, want 0, 0", fr, by)
	}
	if err := p.Write([]byte("reply")); err != nil {
		t.Fatal(err)
	}
	if got := consume(t, tr.guest.RX().NewConsumer()); string(got) != "reply" {
		t.Errorf("guest read %q from RX, want %q", got, "reply")
	}
}

// TestCorruptPositions: positions no honest pair reaches give a
// PositionError on either side, never a read or write out of place.
func TestCorruptPositions(t *testing.T) {
	for _, tc := range []struct {
		name        string
		write, read uint64
	}{
		{"write one past capacity", 32<<10 + 1, 0},
		{"write behind read", 5, 10},
		{"write far ahead", 1 << 63, 0},
		{"read wraps", 3, 1<<64 - 2<<20},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tr := newTestRegion(t, 64<<10)
			store64(tr.host.host, hostTxRead, tc.read)
			store64(tr.host.mem, offTxWrite, tc.write)
			c := tr.host.TX().NewConsumer()
			a, b, err := c.Peek()
			var pe *PositionError
			if !errors.As(err, &pe) || !errors.Is(err, ErrCorrupt) || a != nil || b != nil {
				t.Errorf("Peek = %d+%d bytes, %v, want a PositionError", len(a), len(b), err)
			}
			c.Advance(0)
			if pe != nil && (pe.Read != tc.read || pe.Write != tc.write || pe.Ring != "tx") {
				t.Errorf("PositionError = %+v, want read %#x write %#x", pe, tc.read, tc.write)
			}
			// The same positions on the producer side: the guest's
			// producer refuses and counts.
			store64(tr.host.mem, offTxRead, tc.read)
			p := tr.guest.TX().NewProducer(time.Hour)
			if err := p.Write([]byte("x")); !errors.As(err, &pe) {
				t.Errorf("Write = %v, want a PositionError", err)
			}
			if fr, _ := tr.host.Drops(); fr != 1 {
				t.Errorf("drops = %d, want 1", fr)
			}
		})
	}
}

// TestConsumerRestart: a new consumer continues from the host page's copy
// of the read position, whatever the guest wrote into the header's copy.
func TestConsumerRestart(t *testing.T) {
	tr := newTestRegion(t, 64<<10)
	p := tr.guest.TX().NewProducer(0)
	for i := 0; i < 3; i++ {
		if err := p.Write(pattern(1000, byte(i))); err != nil {
			t.Fatal(err)
		}
	}
	c := tr.host.TX().NewConsumer()
	a, _, _ := c.Peek()
	c.Advance(1500)
	// A hostile guest rewinds the header's read position.
	store64(tr.host.mem, offTxRead, 0)
	c2 := tr.host.TX().NewConsumer()
	if c2.Position() != 1500 {
		t.Fatalf("restarted consumer at %d, want 1500", c2.Position())
	}
	if got := load64(tr.host.mem, offTxRead); got != 1500 {
		t.Errorf("NewConsumer left the header's read position at %d, want 1500", got)
	}
	if got := consume(t, c2); !bytes.Equal(got, a[1500:]) {
		t.Errorf("restarted consumer read %d bytes, want the remaining %d", len(got), len(a)-1500)
	}
}

func TestAdvanceBeyondPeekPanics(t *testing.T) {
	tr := newTestRegion(t, 64<<10)
	tr.guest.TX().NewProducer(0).Write([]byte("abc"))
	c := tr.host.TX().NewConsumer()
	c.Peek()
	defer func() {
		if recover() == nil {
			t.Errorf("Advance(4) after peeking 3 bytes did not panic")
		}
	}()
	c.Advance(4)
}

// TestProducerWaitsForLiveConsumer: a full ring makes the producer wait
// while the consumer beats, even past Grace without progress, until the
// consumer frees space.
func TestProducerWaitsForLiveConsumer(t *testing.T) {
	tr := newTestRegion(t, 64<<10)
	p := tr.guest.TX().NewProducer(time.Hour)
	p.Grace = 250 * time.Millisecond
	cap := int(tr.guest.TX().Cap())
	if err := p.Write(make([]byte, cap)); err != nil {
		t.Fatal(err)
	}
	c := tr.host.TX().NewConsumer()
	done := make(chan error)
	go func() { done <- p.Write([]byte("next")) }()
	// Beat for four Grace periods without consuming, then consume. The
	// beats come as fast as the goroutine runs, so a loaded machine
	// does not open a gap of a whole Grace between two of them.
	for start := time.Now(); time.Since(start) < 4*p.Grace; {
		c.Beat()
		runtime.Gosched()
	}
	select {
	case err := <-done:
		t.Fatalf("Write returned %v while the consumer was beating", err)
	default:
	}
	c.Peek()
	c.Advance(cap)
	if err := <-done; err != nil {
		t.Fatalf("Write after the consumer freed space = %v", err)
	}
	if got := consume(t, c); string(got) != "next" {
		t.Errorf("read %q, want %q", got, "next")
	}
}

// TestProducerGivesUpWithoutConsumer: with no heartbeat and no progress
// the producer drops after Grace, and does not wait again until the
// consumer moves.
func TestProducerGivesUpWithoutConsumer(t *testing.T) {
	tr := newTestRegion(t, 64<<10)
	p := tr.guest.TX().NewProducer(time.Hour)
	p.Grace = 20 * time.Millisecond
	cap := int(tr.guest.TX().Cap())
	if err := p.Write(make([]byte, cap)); err != nil {
		t.Fatal(err)
	}
	if err := p.Write([]byte("lost")); !errors.Is(err, ErrFull) {
		t.Fatalf("Write with no consumer = %v, want ErrFull", err)
	}
	if !p.stuck {
		t.Fatalf("the producer did not remember that it gave up")
	}
	p.Grace = time.Hour // would hang if the producer waited again
	if err := p.Write([]byte("lost too")); !errors.Is(err, ErrFull) {
		t.Fatalf("second Write with no consumer = %v, want ErrFull", err)
	}
	if fr, by := tr.host.Drops(); fr != 2 || by != 12 {
		t.Errorf("Drops() = %d, %d, want 2, 12", fr, by)
	}
	// The consumer moves: the producer writes again.
	c := tr.host.TX().NewConsumer()
	c.Peek()
	c.Advance(cap)
	if err := p.Write([]byte("kept")); err != nil || p.stuck {
		t.Fatalf("Write after the consumer moved = %v (stuck %v)", err, p.stuck)
	}
}

// TestConcurrent runs a producer and a consumer goroutine over a region on
// the Go heap, so the race detector checks that every frame byte is
// written before the write position that publishes it, and read before the
// read position that frees it.
func TestConcurrent(t *testing.T) {
	tr := newTestRegion(t, 64<<10)
	tr.setTxPositions(1<<64 - 50000) // wrap the counters too
	g := tr.guest.TX()
	rng := rand.New(rand.NewPCG(3, 4))
	var frames [][]byte
	total := 0
	for total < 4<<20 {
		var n int
		switch rng.IntN(10) {
		case 0:
			n = int(g.Cap())
		case 1, 2:
			n = rng.IntN(int(g.Cap())) + 1
		default:
			n = rng.IntN(300) + 1
		}
		frames = append(frames, pattern(n, byte(len(frames))))
		total += n
	}
	want := bytes.Join(frames, nil)

	p := g.NewProducer(time.Minute)
	p.Grace = time.Minute
	var wg sync.WaitGroup
	wg.Add(2)
	var writeErr error
	wrote := make(chan struct{})
	go func() {
		defer wg.Done()
		defer close(wrote)
		for _, f := range frames {
			if err := p.Write(f); err != nil {
				writeErr = err
				return
			}
		}
	}()
	got := make([]byte, 0, len(want))
	go func() {
		defer wg.Done()
		c := tr.host.TX().NewConsumer()
		buf := make([]byte, 3001)
		for len(got) < len(want) {
			a, _, err := c.Peek()
			if err != nil {
				t.Errorf("Peek = %v", err)
				return
			}
			if len(a) == 0 {
				select {
				case <-wrote:
					if a, _, _ := c.Peek(); len(a) == 0 {
						return
					}
				default:
				}
				c.Beat()
				time.Sleep(10 * time.Microsecond)
				continue
			}
			// Copy out in odd-sized pieces, advancing after each.
			n := copy(buf[:1+len(got)%len(buf)], a)
			got = append(got, buf[:n]...)
			c.Advance(n)
		}
	}()
	wg.Wait()
	if writeErr != nil {
		t.Fatalf("Write = %v", writeErr)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("read %d bytes that differ from the %d written", len(got), len(want))
	}
}
