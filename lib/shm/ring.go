package shm

import (
	"sync"
	"time"
)

// Ring is one single-producer, single-consumer byte ring in a region.
// Positions are free-running u64 byte counts (they only grow and wrap at
// 2^64); the byte at position p lives at data[p % size]. The producer
// publishes a frame by storing the new write position after all its bytes
// are in place, so a consumer never sees part of a frame.
type Ring struct {
	mem      []byte
	data     []byte
	size     uint64
	offWrite int
	offRead  int
	offDropF int
	offDropB int
}

// Cap returns the ring's capacity in bytes: the largest frame it carries.
func (g *Ring) Cap() uint64 { return g.size }

// Consumer reads a ring. It keeps its read position in its own memory and
// writes it back to the region after each Advance, so the other side can
// reuse the space and a restarted consumer continues where this one left
// off; a position the other side writes is only read at NewConsumer.
type Consumer struct {
	g    *Ring
	read uint64
}

// NewConsumer starts consuming at the ring's current read position.
func (g *Ring) NewConsumer() *Consumer {
	return &Consumer{g: g, read: load64(g.mem, g.offRead)}
}

// Position returns the consumer's read position.
func (c *Consumer) Position() uint64 { return c.read }

// Peek returns the published, unread bytes as at most two slices (the
// second is non-empty when they wrap). The slices alias the shared ring and
// stay valid until Advance. A write position more than one capacity ahead
// of (or behind) the read position is ErrCorrupt.
func (c *Consumer) Peek() (a, b []byte, err error) {
	w := load64(c.g.mem, c.g.offWrite)
	n := w - c.read
	if n > c.g.size {
		return nil, nil, ErrCorrupt
	}
	if n == 0 {
		return nil, nil, nil
	}
	start := c.read & (c.g.size - 1)
	if start+n <= c.g.size {
		return c.g.data[start : start+n], nil, nil
	}
	return c.g.data[start:], c.g.data[:n-(c.g.size-start)], nil
}

// Advance marks n peeked bytes consumed and publishes the new position.
func (c *Consumer) Advance(n int) {
	c.read += uint64(n)
	store64(c.g.mem, c.g.offRead, c.read)
}

// Producer writes whole frames into a ring. It is safe for concurrent use;
// frames from several goroutines are never interleaved.
type Producer struct {
	g  *Ring
	mu sync.Mutex
	// Wait bounds how long Write waits for space in a full ring before it
	// counts a drop. 0 means do not wait.
	Wait time.Duration
}

// NewProducer returns a producer for the ring that waits up to wait.
func (g *Ring) NewProducer(wait time.Duration) *Producer {
	return &Producer{g: g, Wait: wait}
}

// Write publishes one frame (any bytes; the ring does not parse them).
// While the ring is full it polls for space, up to p.Wait; then it counts
// the frame in the ring's drop counters and returns ErrFull. A frame larger
// than the ring is counted and refused with ErrTooLarge. Inconsistent
// positions give ErrCorrupt, counted as a drop too.
func (p *Producer) Write(frame []byte) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	g := p.g
	n := uint64(len(frame))
	if n > g.size {
		p.drop(n)
		return ErrTooLarge
	}
	var deadline time.Time
	sleep := 20 * time.Microsecond
	for {
		w := load64(g.mem, g.offWrite)
		used := w - load64(g.mem, g.offRead)
		if used > g.size {
			p.drop(n)
			return ErrCorrupt
		}
		if g.size-used >= n {
			start := w & (g.size - 1)
			k := copy(g.data[start:], frame)
			copy(g.data, frame[k:])
			store64(g.mem, g.offWrite, w+n)
			return nil
		}
		now := time.Now()
		if deadline.IsZero() {
			deadline = now.Add(p.Wait)
		}
		if !now.Before(deadline) {
			p.drop(n)
			return ErrFull
		}
		time.Sleep(min(sleep, deadline.Sub(now)))
		sleep = min(2*sleep, 5*time.Millisecond)
	}
}

func (p *Producer) drop(n uint64) {
	if p.g.offDropF < 0 {
		return
	}
	add64(p.g.mem, p.g.offDropF, 1)
	add64(p.g.mem, p.g.offDropB, n)
}
