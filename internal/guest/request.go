package guest

import (
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/ktstr-go/ktstr/lib/shm"
	"github.com/ktstr-go/ktstr/lib/wire"
)

// replies reads the host-to-guest ring: the host's SNRP and KORP replies.
// One request is in flight at a time (as in ktstr); replies with another
// request id are stale (an earlier request timed out) and skipped.
type replies struct {
	mu     sync.Mutex
	rx     *shm.Consumer
	asm    wire.Assembler
	nextID uint32
	logf   func(string, ...any)
}

func newReplies(r *shm.Region, logf func(string, ...any)) *replies {
	return &replies{rx: r.RX().NewConsumer(), logf: logf}
}

// errTimeout is returned when no matching reply arrives in time.
var errTimeout = errors.New("no reply from the host")

// id returns the next request id, never 0.
func (p *replies) id() uint32 {
	p.nextID++
	if p.nextID == 0 {
		p.nextID = 1
	}
	return p.nextID
}

// snapshot sends an SNRQ for tag and waits for its SNRP.
func (p *replies) snapshot(send func(wire.Type, []byte), kind uint32, tag string, timeout time.Duration) (wire.SnapshotReply, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	id := p.id()
	send(wire.TypeSnapshotRequest, wire.AppendSnapshotRequest(nil, wire.SnapshotRequest{RequestID: id, Kind: kind, Tag: tag}))
	var got *wire.SnapshotReply
	err := p.wait(timeout, func(f wire.Frame) bool {
		if f.Type != wire.TypeSnapshotReply || !f.CRCOK {
			p.logf("skipping %v reply frame (crc ok %v) while waiting for snapshot %d", f.Type, f.CRCOK, id)
			return false
		}
		r, err := wire.DecodeSnapshotReply(f.Payload)
		if err != nil || r.RequestID != id {
			p.logf("skipping stale or bad snapshot reply (id %d, want %d): %v", r.RequestID, id, err)
			return false
		}
		got = &r
		return true
	})
	if err != nil {
		return wire.SnapshotReply{}, err
	}
	return *got, nil
}

// wait reads reply frames until match accepts one or timeout passes,
// beating the ring's heartbeat meanwhile.
func (p *replies) wait(timeout time.Duration, match func(wire.Frame) bool) error {
	deadline := time.Now().Add(timeout)
	done := false
	for !done {
		p.rx.Beat()
		a, b, err := p.rx.Peek()
		if err != nil {
			return fmt.Errorf("reply ring: %w", err)
		}
		if len(a) == 0 {
			if time.Now().After(deadline) {
				return errTimeout
			}
			time.Sleep(2 * time.Millisecond)
			continue
		}
		n := len(a) + len(b)
		for _, seg := range [][]byte{a, b} {
			p.asm.Feed(seg, func(f wire.Frame) {
				if !done && match(f) {
					done = true
				}
			})
		}
		p.rx.Advance(n)
	}
	return nil
}
