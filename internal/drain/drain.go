// Package drain copies the guest-to-host ring of a region to a writer,
// byte-exact, advancing the ring's read position only by what the writer
// accepted. It is the logic of ktstr-drain.
package drain

import (
	"errors"
	"fmt"
	"io"
	"syscall"
	"time"

	"github.com/ktstr-go/ktstr/lib/shm"
	"github.com/ktstr-go/ktstr/lib/wire"
)

// Options for Run.
type Options struct {
	// Follow waits for more frames until the region is closed and empty;
	// otherwise Run copies what is there and returns.
	Follow bool
	// Stop, when closed, ends a follow early (after the current write).
	Stop <-chan struct{}
	// BootAlive reports whether the ktstr-boot that owns the region is
	// still running; when it is gone without closing the region, Run ends
	// as if it had closed it with reason vmm_error. nil: always alive.
	BootAlive func() bool
	// MaxIdle is the longest sleep between polls (default 1 ms).
	MaxIdle time.Duration
}

// Stats is what Run copied.
type Stats struct {
	Bytes      int64
	Writes     int64
	DropFrames uint64 // the producer's drop counters at the end
	DropBytes  uint64
	Closed     bool
	End        shm.End
	Trailer    bool // LOSS/VEND frames were appended
}

// ErrOutputClosed is returned when the writer's reader went away.
var ErrOutputClosed = errors.New("drain: output closed")

// Run copies published frames from the region's TX ring to w. With
// Follow it returns once the region is closed and empty, after appending
// the host trailer: a LOSS frame when the producer dropped frames, then a
// VEND frame with how the VM ended. Without Follow it returns when the
// ring is empty, appending a LOSS frame if there were drops.
func Run(r *shm.Region, w io.Writer, opts Options) (Stats, error) {
	var st Stats
	c := r.TX().NewConsumer()
	maxIdle := opts.MaxIdle
	if maxIdle <= 0 {
		maxIdle = time.Millisecond
	}
	idle := 0
	write := func(p []byte) error {
		if len(p) == 0 {
			return nil
		}
		n, err := w.Write(p)
		c.Advance(n)
		st.Bytes += int64(n)
		st.Writes++
		if err != nil {
			if errors.Is(err, syscall.EPIPE) {
				return ErrOutputClosed
			}
			return err
		}
		return nil
	}
	for {
		a, b, err := c.Peek()
		if err != nil {
			return st, fmt.Errorf("drain: region TX ring at read position %d: %w", c.Position(), err)
		}
		if len(a) > 0 {
			if err := write(a); err != nil {
				return st, err
			}
			if err := write(b); err != nil {
				return st, err
			}
			idle = 0
			continue
		}
		// Empty. Check closed first, then look again: the VM is gone
		// once closed is set, so an empty ring after it stays empty.
		end, closed := r.Closed()
		if !closed && opts.BootAlive != nil && !opts.BootAlive() {
			end, closed = shm.End{Reason: uint32(wire.EndVMMError), ExitCode: 4}, true
		}
		if closed {
			if a, _, err := c.Peek(); err != nil || len(a) > 0 {
				continue
			}
			st.Closed, st.End = true, end
			return st, trailer(r, w, &st, true)
		}
		if !opts.Follow {
			return st, trailer(r, w, &st, false)
		}
		select {
		case <-opts.Stop:
			return st, nil
		default:
		}
		idle++
		if idle < 64 {
			continue // a short spin catches back-to-back frames cheaply
		}
		time.Sleep(min(time.Duration(idle-63)*20*time.Microsecond, maxIdle))
	}
}

// trailer appends the host-origin frames: LOSS if the producer dropped
// anything, and VEND when the region is closed.
func trailer(r *shm.Region, w io.Writer, st *Stats, closed bool) error {
	st.DropFrames, st.DropBytes = r.Drops()
	var b []byte
	if st.DropFrames > 0 || st.DropBytes > 0 {
		b = wire.AppendFrame(b, wire.TypeLoss, wire.AppendLoss(nil, wire.Loss{Frames: st.DropFrames, Bytes: st.DropBytes}))
	}
	if closed {
		b = wire.AppendFrame(b, wire.TypeVMEnd, wire.AppendVMEnd(nil, wire.VMEnd{
			Reason: wire.EndReason(st.End.Reason), ExitCode: st.End.ExitCode, ElapsedNS: uint64(max(st.End.Elapsed, 0))}))
	}
	if len(b) == 0 {
		return nil
	}
	st.Trailer = true
	_, err := w.Write(b)
	if errors.Is(err, syscall.EPIPE) {
		return ErrOutputClosed
	}
	return err
}
