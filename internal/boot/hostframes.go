package boot

import (
	"fmt"
	"os"
	"sync"

	"github.com/ktstr-go/ktstr/internal/drain"
	"github.com/ktstr-go/ktstr/lib/wire"
)

// hostFrames appends the frames of what ktstr-boot saw itself (HDMP,
// HMON) to host.frames next to the region, which ktstr-drain copies into
// the stream once the region is closed. The file exists from the start,
// even empty, so that ktstr-drain always writes its HBLK for a run of
// ktstr-boot. Writes past drain.MaxHostFrames are dropped and counted.
type hostFrames struct {
	mu      sync.Mutex
	f       *os.File
	size    int64
	dropped int
}

// add appends one frame in a single write; false when it was dropped.
func (h *hostFrames) add(t wire.Type, p []byte) bool {
	if h == nil {
		return false
	}
	b := wire.AppendFrame(nil, t, p)
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.f == nil || h.size+int64(len(b)) > drain.MaxHostFrames {
		h.dropped++
		return false
	}
	n, err := h.f.Write(b)
	h.size += int64(n)
	return err == nil
}

// close closes the file; frames added later are dropped.
func (h *hostFrames) close() error {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.f == nil {
		return nil
	}
	err := h.f.Close()
	h.f = nil
	if h.dropped > 0 {
		err = fmt.Errorf("host frames: %d dropped past %d bytes", h.dropped, drain.MaxHostFrames)
	}
	return err
}
