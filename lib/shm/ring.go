package shm

import (
	"sync"
	"time"
)

// Heartbeat timing. A consumer that wants its producer to wait for space
// calls Consumer.Beat at least every BeatInterval, also while it is
// blocked passing bytes on; a producer that sees neither the heartbeat
// nor the read position change for its Grace decides that nobody is
// attached and stops waiting.
const (
	BeatInterval = 50 * time.Millisecond
	DefaultGrace = 1 * time.Second
)

// Ring is one single-producer, single-consumer byte ring in a region.
// Positions are free-running u64 byte counts (they only grow, and wrap at
// 2^64); the byte at position p lives at data[p % cap]. The producer
// publishes a frame by storing the new write position after all its bytes
// are in place, so a consumer never sees part of a frame; the consumer
// frees space by storing the new read position after it is done with the
// bytes.
type Ring struct {
	name     string
	mem      []byte // guest-visible part: positions, beat and counters live in its header
	host     []byte // host page, when this side keeps a copy of the read position there
	data     []byte
	size     uint64
	offWrite int
	offRead  int
	offBeat  int
	offDropF int
	offDropB int
	hostRead int
}

// Cap returns the ring's capacity in bytes: the largest frame it carries.
func (g *Ring) Cap() uint64 { return g.size }

// Name returns "tx" or "rx".
func (g *Ring) Name() string { return g.name }

// Consumer reads a ring. It keeps its read position in its own memory:
// positions the other side writes are loaded, never trusted beyond one
// ring's capacity. After each Advance it stores the position back so the
// producer can reuse the space and a restarted consumer continues where
// this one stopped. One Consumer per ring at a time.
type Consumer struct {
	g      *Ring
	read   uint64
	peeked uint64
}

// NewConsumer starts consuming at the ring's read position. On the host
// side of the TX ring that is the copy in the host page, which the guest
// cannot change; it is written back to the guest-visible header at once,
// in case an earlier consumer stopped between its two stores.
func (g *Ring) NewConsumer() *Consumer {
	c := &Consumer{g: g}
	if g.host != nil {
		c.read = load64(g.host, g.hostRead)
		store64(g.mem, g.offRead, c.read)
	} else {
		c.read = load64(g.mem, g.offRead)
	}
	return c
}

// Position returns the consumer's read position.
func (c *Consumer) Position() uint64 { return c.read }

// Peek returns the published, unread bytes as at most two slices (the
// second is non-empty when they wrap past the end of the ring). The slices
// alias the shared ring and stay valid until Advance. A write position
// more than one capacity ahead of (or behind) the read position gives a
// *PositionError, which wraps ErrCorrupt.
//
// The write position is loaded atomically before any byte is looked at,
// so every byte of the published frames is visible.
func (c *Consumer) Peek() (a, b []byte, err error) {
	g := c.g
	w := load64(g.mem, g.offWrite)
	n := w - c.read
	if n > g.size {
		c.peeked = 0
		return nil, nil, &PositionError{Ring: g.name, Read: c.read, Write: w, Cap: g.size}
	}
	c.peeked = n
	if n == 0 {
		return nil, nil, nil
	}
	start := c.read & (g.size - 1)
	if n <= g.size-start {
		return g.data[start : start+n : start+n], nil, nil
	}
	return g.data[start:g.size:g.size], g.data[: n-(g.size-start) : n-(g.size-start)], nil
}

// Advance marks the first n peeked bytes consumed and publishes the new
// read position: first to the host page (when this consumer keeps a copy
// there), then to the header the producer reads. Call it only once the
// bytes are no longer needed: the producer may overwrite them at once.
// Advancing past what the last Peek returned is a programming error and
// panics.
func (c *Consumer) Advance(n int) {
	if n <= 0 {
		return
	}
	if uint64(n) > c.peeked {
		panic("shm: Consumer.Advance beyond the bytes Peek returned")
	}
	c.peeked -= uint64(n)
	c.read += uint64(n)
	if c.g.host != nil {
		store64(c.g.host, c.g.hostRead, c.read)
	}
	store64(c.g.mem, c.g.offRead, c.read)
}

// Beat tells the producer that a consumer is attached (see BeatInterval).
// It may be called from another goroutine than the one calling Peek and
// Advance.
func (c *Consumer) Beat() { add64(c.g.mem, c.g.offBeat, 1) }

// Producer writes whole frames into a ring. It is safe for concurrent use;
// frames from several goroutines are never interleaved. It keeps its write
// position in its own memory, so the other side cannot redirect its
// writes. One Producer per ring.
type Producer struct {
	// Wait bounds how long Write waits for space in a full ring while a
	// consumer is attached. 0 means do not wait.
	Wait time.Duration
	// Grace is how long Write waits without a sign of a consumer (a
	// heartbeat or a moving read position) before it decides that none is
	// attached. 0 means DefaultGrace.
	Grace time.Duration

	g     *Ring
	mu    sync.Mutex
	write uint64
	// stuck is set when a wait gave up; until the read position moves
	// away from stuckRead, Write does not wait again, so a consumer that
	// hangs costs one Wait, not one per frame.
	stuck     bool
	stuckRead uint64
}

// NewProducer returns a producer for the ring that waits up to wait for
// space. It continues from the ring's current write position.
func (g *Ring) NewProducer(wait time.Duration) *Producer {
	return &Producer{g: g, Wait: wait, write: load64(g.mem, g.offWrite)}
}

// Write publishes one frame (any bytes; the ring does not parse them): it
// copies the bytes into the ring, wrapping at the end, and only then
// stores the new write position. An empty frame is a no-op.
//
// When the frame does not fit, Write waits for the consumer to free space
// while a consumer shows signs of life (see Grace), at most Wait in all.
// If it still does not fit, Write counts the frame in the ring's drop
// counters and returns ErrFull. A frame larger than the ring is counted
// and refused with ErrTooLarge; a read position that no consumer can
// reach is counted and gives a *PositionError (ErrCorrupt). The producer
// never overwrites unread bytes.
func (p *Producer) Write(frame []byte) error {
	n := uint64(len(frame))
	p.mu.Lock()
	defer p.mu.Unlock()
	g := p.g
	if n > g.size {
		p.drop(n)
		return ErrTooLarge
	}
	if n == 0 {
		return nil
	}
	read := load64(g.mem, g.offRead)
	if err := p.check(read); err != nil {
		p.drop(n)
		return err
	}
	if g.size-(p.write-read) < n {
		if err := p.wait(n, read); err != nil {
			p.drop(n)
			return err
		}
	}
	p.stuck = false
	start := p.write & (g.size - 1)
	k := copy(g.data[start:], frame)
	copy(g.data, frame[k:])
	p.write += n
	store64(g.mem, g.offWrite, p.write)
	return nil
}

// check validates a read position loaded from the shared header.
func (p *Producer) check(read uint64) error {
	if p.write-read > p.g.size {
		return &PositionError{Ring: p.g.name, Read: read, Write: p.write, Cap: p.g.size}
	}
	return nil
}

// wait polls until n bytes are free, the consumer looks absent for Grace,
// or Wait has passed.
func (p *Producer) wait(n, read uint64) error {
	g := p.g
	if p.Wait <= 0 || (p.stuck && read == p.stuckRead) {
		return ErrFull
	}
	grace := p.Grace
	if grace <= 0 {
		grace = DefaultGrace
	}
	start := time.Now()
	seen := start
	beat := load64(g.mem, g.offBeat)
	sleep := 50 * time.Microsecond
	for {
		time.Sleep(sleep)
		sleep = min(2*sleep, 2*time.Millisecond)
		r := load64(g.mem, g.offRead)
		if err := p.check(r); err != nil {
			return err
		}
		if g.size-(p.write-r) >= n {
			return nil
		}
		now := time.Now()
		if b := load64(g.mem, g.offBeat); b != beat || r != read {
			beat, read, seen = b, r, now
		}
		if now.Sub(start) >= p.Wait || now.Sub(seen) >= grace {
			p.stuck, p.stuckRead = true, r
			return ErrFull
		}
	}
}

func (p *Producer) drop(n uint64) {
	if p.g.offDropF == offNone {
		return
	}
	add64(p.g.mem, p.g.offDropF, 1)
	add64(p.g.mem, p.g.offDropB, n)
}
