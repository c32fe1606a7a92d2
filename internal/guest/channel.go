package guest

import (
	"sync"
	"time"

	"github.com/ktstr-go/ktstr/lib/shm"
	"github.com/ktstr-go/ktstr/lib/wire"
)

// Channel sends frames to the host through the region's TX ring.
type Channel struct {
	region *shm.Region
	tx     *shm.Producer
	mu     sync.Mutex
	buf    []byte
}

// ProducerWait bounds how long a frame waits for ring space before it is
// counted as dropped.
const ProducerWait = 10 * time.Second

// NewChannel returns a Channel over r.
func NewChannel(r *shm.Region) *Channel {
	return &Channel{region: r, tx: r.TX().NewProducer(ProducerWait)}
}

// Send writes one frame. Payloads above the frame cap or the ring are
// refused and counted as drops by the ring.
func (c *Channel) Send(t wire.Type, payload []byte) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.buf = wire.AppendFrame(c.buf[:0], t, payload)
	err := c.tx.Write(c.buf)
	if cap(c.buf) > 1<<20 {
		c.buf = nil
	}
	return err
}
