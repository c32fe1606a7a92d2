package boot

import (
	"bytes"
	"fmt"
	"io"
	"sync"

	"github.com/ktstr-go/ktstr/internal/sanitize"
	"github.com/ktstr-go/ktstr/lib/wire"
)

// Frames reads the frame stream of a run that ktstr-boot drains itself
// (--exec, --shell: Config.Frames): it keeps the guest's exit status
// (the last CRC-valid EXIT) and writes the scheduler's output (SCLG
// lines) to Sched as it comes, each line sanitised, since the guest wrote
// it. Everything else is passed over. It holds at most one frame.
type Frames struct {
	Sched io.Writer // the scheduler's output; nil: dropped

	mu      sync.Mutex
	buf     []byte
	code    int32
	hasCode bool
	err     error
}

// Write takes the next bytes of the stream.
func (f *Frames) Write(p []byte) (int, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.err != nil {
		return len(p), nil // the rest is not frames; keep the drain going
	}
	f.buf = append(f.buf, p...)
	for len(f.buf) >= wire.HeaderSize {
		h, _ := wire.DecodeHeader(f.buf)
		if h.Length > wire.MaxPayload {
			f.err, f.buf = fmt.Errorf("frame of %d bytes, more than %d", h.Length, wire.MaxPayload), nil
			break
		}
		n := wire.HeaderSize + int(h.Length)
		if len(f.buf) < n {
			break
		}
		payload := f.buf[wire.HeaderSize:n]
		if wire.Checksum(payload) == h.CRC {
			f.frame(h.Type, payload)
		}
		f.buf = f.buf[:copy(f.buf, f.buf[n:])]
	}
	if cap(f.buf) > 1<<20 && len(f.buf) < 1<<16 {
		f.buf = append([]byte(nil), f.buf...) // do not pin one large frame's buffer
	}
	return len(p), nil
}

func (f *Frames) frame(t wire.Type, p []byte) {
	switch t {
	case wire.TypeExit:
		if code, err := wire.DecodeExitCode(t, p); err == nil {
			f.code, f.hasCode = code, true
		}
	case wire.TypeSchedLog:
		if f.Sched == nil {
			return
		}
		var b bytes.Buffer
		for _, l := range bytes.SplitAfter(p, []byte("\n")) {
			if len(l) == 0 {
				continue
			}
			b.WriteString(sanitize.Bytes(bytes.TrimRight(l, "\r\n")))
			b.WriteByte('\n')
		}
		f.Sched.Write(b.Bytes())
	}
}

// ExitCode returns the guest's exit status, if an EXIT frame came.
func (f *Frames) ExitCode() (int32, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.code, f.hasCode
}
