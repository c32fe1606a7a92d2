package drain

import (
	"cmp"
	"errors"
	"fmt"
	"io"
	"runtime"
	"runtime/debug"
	"syscall"
	"time"

	"github.com/ktstr-go/ktstr/lib/shm"
	"github.com/ktstr-go/ktstr/lib/wire"
)

// Defaults for Options.
const (
	// DefaultMaxWrite is the largest single write: small enough that the
	// producer gets space back while the rest is still being written,
	// large enough that a write costs little per byte.
	DefaultMaxWrite = 1 << 20
	// DefaultPoll is the sleep between polls of an empty ring.
	DefaultPoll = time.Millisecond
	// DefaultMaxPoll is the sleep between polls once the ring has been
	// empty for longer than idleShort.
	DefaultMaxPoll = 4 * time.Millisecond

	spinFor   = 50 * time.Microsecond // busy-poll this long after the last data
	idleShort = 20 * time.Millisecond // then DefaultPoll, then after this long MaxPoll
	aliveEach = 100 * time.Millisecond
)

// Options for Run.
type Options struct {
	// Follow waits for more frames until the region is closed and empty;
	// otherwise Run copies what is there and returns.
	Follow bool
	// Stop, when closed, ends Run before its next write. What was written
	// is consumed, so a later Run continues with the next byte.
	Stop <-chan struct{}
	// BootAlive reports whether the ktstr-boot that owns the region is
	// still running; when it is gone without closing the region, Run ends
	// as if it had closed it with reason vmm_error. nil: always alive.
	BootAlive func() bool
	// Poll and MaxPoll are the sleeps between polls of an empty ring:
	// Poll for the first second, then MaxPoll (defaults DefaultPoll,
	// DefaultMaxPoll).
	Poll, MaxPoll time.Duration
	// MaxWrite caps one write (default DefaultMaxWrite).
	MaxWrite int
	// Beat is the heartbeat period (default shm.BeatInterval); negative:
	// no heartbeat, so a producer does not wait for this consumer.
	Beat time.Duration
	// HostFrames is ktstr-boot's host frames file (HostBlock); once the
	// region is closed its block goes before LOSS and VEND. "": none.
	HostFrames string
}

// Stats is what Run copied.
type Stats struct {
	Bytes      int64 // frame bytes written, the trailer not included
	Writes     int64
	DropFrames uint64 // the producer's drop counters at the end
	DropBytes  uint64
	Closed     bool // the region was closed and empty (or its owner gone)
	End        shm.End
	Hello      bool // the HELO frame was written first
	Trailer    bool // LOSS/VEND frames were appended
	Stopped    bool // Stop ended the run
	// RingCorrupt: the guest wrote ring positions no producer reaches,
	// and copying stopped there (the VEND says so).
	RingCorrupt bool
}

// Errors.
var (
	// ErrOutputClosed is returned when the writer's reader went away
	// (EPIPE).
	ErrOutputClosed = errors.New("drain: output closed")
	// ErrRegionFault is returned when reading the mapping faulted, for
	// example because the region file was truncated.
	ErrRegionFault = errors.New("drain: fault reading the region (file truncated?)")
)

// Run copies published bytes from the region's TX ring to w, unchanged.
// It advances the ring's read position by exactly what w accepted, after
// w accepted it: a Run that stops (Stop, an error) and a later Run over
// the same region together write every byte once, in order.
//
// It starts with a HELO frame carrying the region's nonce when it starts
// at the ring's first byte. With Follow it returns once the region is
// closed and empty, after appending the host trailer: ktstr-boot's host
// block (HostFrames, after an HBLK with the nonce), a LOSS frame when the
// producer dropped frames, then a VEND frame with how the VM ended, both
// with the nonce. Without Follow it
// returns when the ring is empty, appending LOSS if there were drops and
// VEND if the region is closed. While it runs it beats the ring's
// heartbeat, so the producer waits for space instead of dropping.
func Run(r *shm.Region, w io.Writer, opts Options) (st Stats, err error) {
	// A truncated region file turns reads of the mapping into SIGBUS;
	// make that an error instead of a crash.
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	defer func() {
		if p := recover(); p != nil {
			if re, ok := p.(runtime.Error); ok && isFault(re) {
				err = fmt.Errorf("%w: %v", ErrRegionFault, re)
				return
			}
			panic(p)
		}
	}()

	c := r.TX().NewConsumer()
	if opts.Beat >= 0 {
		stop := beat(c, opts.Beat)
		defer stop()
	}
	// The stream starts with the run's nonce, before the ring's first
	// byte (written with the first output, so a drain that fails first
	// writes nothing). A drain that resumes later in the ring (perhaps
	// mid-frame) writes none: its output continues a stream that has one.
	nonce := wire.Nonce(r.Nonce())
	hello := c.Position() == 0 && !nonce.IsZero()
	w = &helloWriter{w: w, st: &st, hello: hello, nonce: nonce}
	poll, maxPoll, maxWrite := opts.Poll, opts.MaxPoll, opts.MaxWrite
	if poll <= 0 {
		poll = DefaultPoll
	}
	if maxPoll < poll {
		maxPoll = max(DefaultMaxPoll, poll)
	}
	if maxWrite <= 0 {
		maxWrite = DefaultMaxWrite
	}
	var emptySince, lastAlive time.Time
	// corrupt is set once the guest wrote ring positions no producer
	// reaches: nothing more of the ring can be trusted, so copying stops.
	// With Follow the run still waits for the region to close and ends
	// the stream with the real trailer, its VEND flagged, so that a
	// reader learns what happened; the error is returned after it.
	var corrupt error
	for {
		select {
		case <-opts.Stop:
			st.Stopped = true
			return st, corrupt
		default:
		}
		var a []byte
		if corrupt == nil {
			var err error
			if a, _, err = c.Peek(); err != nil {
				corrupt, st.RingCorrupt = fmt.Errorf("drain: %w", err), true
				if _, closed := r.Closed(); !opts.Follow && !closed {
					return st, corrupt
				}
			}
		}
		if len(a) > 0 {
			// The bytes after a wrap come on the next turn.
			p := a[:min(len(a), maxWrite)]
			n, err := w.Write(p)
			n = max(0, min(n, len(p)))
			c.Advance(n)
			st.Bytes += int64(n)
			st.Writes++
			if err == nil && n < len(p) {
				err = io.ErrShortWrite
			}
			if err != nil {
				return st, outErr(err)
			}
			emptySince = time.Time{}
			continue
		}

		// Empty. Closed is set only once the VM can no longer write, so
		// an empty ring seen after it stays empty.
		now := time.Now()
		if emptySince.IsZero() {
			emptySince = now
		}
		end, closed := r.Closed()
		if !closed && opts.BootAlive != nil && now.Sub(lastAlive) >= aliveEach {
			lastAlive = now
			if !opts.BootAlive() {
				end, closed = shm.End{Reason: uint32(wire.EndVMMError), ExitCode: 4}, true
			}
		}
		if closed {
			if corrupt == nil {
				if a, _, err := c.Peek(); err != nil || len(a) > 0 {
					continue
				}
			}
			st.Closed, st.End = true, end
			if err := hostBlock(opts.HostFrames, wire.Nonce(r.Nonce()), w); err != nil {
				return st, err
			}
			return st, cmp.Or(trailer(r, w, &st, true), corrupt)
		}
		if !opts.Follow {
			return st, trailer(r, w, &st, false)
		}
		switch idle := now.Sub(emptySince); {
		case idle < spinFor:
			runtime.Gosched()
		case idle < idleShort:
			time.Sleep(poll)
		default:
			time.Sleep(maxPoll)
		}
	}
}

// beat runs the consumer's heartbeat every d (shm.BeatInterval if 0)
// until the returned function is called; it returns once the heartbeat
// goroutine has exited.
func beat(c *shm.Consumer, d time.Duration) (stop func()) {
	if d == 0 {
		d = shm.BeatInterval
	}
	c.Beat()
	done := make(chan struct{})
	exited := make(chan struct{})
	go func() {
		defer close(exited)
		t := time.NewTicker(d)
		defer t.Stop()
		for {
			select {
			case <-t.C:
				c.Beat()
			case <-done:
				return
			}
		}
	}()
	// stop waits for the goroutine: the caller may unmap the region next,
	// and a late Beat would then write to unmapped memory.
	return func() { close(done); <-exited }
}

// hostBlock writes ktstr-boot's block of host frames, if there is one.
func hostBlock(path string, nonce wire.Nonce, w io.Writer) error {
	if path == "" {
		return nil
	}
	b, err := HostBlock(path, nonce)
	if err != nil || len(b) == 0 {
		return err
	}
	_, err = w.Write(b)
	return outErr(err)
}

// trailer appends the host-origin frames: LOSS if the producer dropped
// anything, and VEND when the region is closed.
func trailer(r *shm.Region, w io.Writer, st *Stats, closed bool) error {
	st.DropFrames, st.DropBytes = r.Drops()
	var flags uint64
	if st.RingCorrupt {
		flags |= wire.VMEndRingCorrupt
	}
	b := Trailer(wire.Nonce(r.Nonce()), st.DropFrames, st.DropBytes, st.End, flags, closed)
	if len(b) == 0 {
		return nil
	}
	st.Trailer = true
	_, err := w.Write(b)
	return outErr(err)
}

// helloWriter writes the HELO frame before the first output, once.
type helloWriter struct {
	w     io.Writer
	st    *Stats
	hello bool
	nonce wire.Nonce
}

func (h *helloWriter) Write(p []byte) (int, error) {
	if h.hello {
		if _, err := h.w.Write(Hello(h.nonce)); err != nil {
			return 0, err
		}
		h.hello, h.st.Hello = false, true
	}
	return h.w.Write(p)
}

// Hello returns the frame Run writes first: HELO with the run's nonce.
func Hello(nonce wire.Nonce) []byte {
	return wire.AppendFrame(nil, wire.TypeHello, wire.AppendHello(nil, nonce))
}

// Trailer returns the frames Run appends, with the run's nonce: LOSS when
// frames or bytes is non-zero, then VEND (with flags, wire.VMEnd.Flags)
// when closed.
func Trailer(nonce wire.Nonce, frames, bytes uint64, end shm.End, flags uint64, closed bool) []byte {
	var b []byte
	if frames > 0 || bytes > 0 {
		b = wire.AppendFrame(b, wire.TypeLoss, wire.AppendLoss(nil, wire.Loss{Frames: frames, Bytes: bytes, Nonce: nonce}))
	}
	if closed {
		b = wire.AppendFrame(b, wire.TypeVMEnd, wire.AppendVMEnd(nil, wire.VMEnd{
			Reason: wire.EndReason(end.Reason), ExitCode: end.ExitCode, ElapsedNS: uint64(max(end.Elapsed, 0)), Flags: flags, Nonce: nonce}))
	}
	return b
}

func outErr(err error) error {
	if errors.Is(err, syscall.EPIPE) {
		return ErrOutputClosed
	}
	if err != nil {
		return fmt.Errorf("drain: write: %w", err)
	}
	return nil
}

// isFault reports whether a runtime error is a memory fault that
// debug.SetPanicOnFault turned into a panic.
func isFault(e runtime.Error) bool {
	type addressable interface{ Addr() uintptr }
	_, ok := e.(addressable)
	return ok
}
