package guest

import (
	"bytes"
	"fmt"
	"io"
	"strings"
	"sync"
	"time"

	"golang.org/x/sys/unix"

	"github.com/ktstr-go/ktstr/internal/schedlog"
	"github.com/ktstr-go/ktstr/lib/wire"
)

// Bounds on the scheduler output forwarded to the host. The first
// forwardLines lines (or forwardBytes bytes) go out as they come; after
// that the agent keeps only the last keptLines and sends them, after a
// note with the count of lines it dropped, when the output ends. A
// scheduler that prints without end so never floods the ring.
const (
	maxOutLine   = 4096
	forwardLines = 10000
	forwardBytes = 2 << 20
	keptLines    = 1000
	recentLines  = 5 // remembered for reports ("its last output")
)

// schedOutput forwards a scheduler's stdout and stderr to the host as
// SCLG lines, each labelled with its stream and stamped with the guest's
// CLOCK_MONOTONIC when the agent read it:
//
//	[    2.512345] stderr: libbpf: failed to open system Kconfig
//
// Lines of the two streams go out in the order the agent read them, so
// that with stdout on a pseudo-terminal (line-buffered by stdio, as on a
// developer's terminal) they keep the order the scheduler printed them.
type schedOutput struct {
	send func(wire.Type, []byte)
	now  func() time.Duration // the timestamp clock

	mu        sync.Mutex
	sentLines int
	sentBytes int
	held      []string // formatted lines over the budget, a ring
	heldNext  int
	dropped   int64 // lines over the budget no longer held
	recent    []string
	partial   map[string]string // an unterminated line per stream
	closed    bool

	wg   sync.WaitGroup
	done chan struct{} // closed when the output is fully forwarded
}

// monoNow is CLOCK_MONOTONIC: on Linux the time since boot, not counting
// suspend, close to the kernel log's timestamps.
func monoNow() time.Duration {
	var ts unix.Timespec
	unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts)
	return time.Duration(ts.Nano())
}

// newSchedOutput starts the SCLG block. now stamps the lines (nil:
// CLOCK_MONOTONIC).
func newSchedOutput(send func(wire.Type, []byte), now func() time.Duration) *schedOutput {
	if now == nil {
		now = monoNow
	}
	o := &schedOutput{send: send, now: now, partial: map[string]string{}, done: make(chan struct{})}
	send(wire.TypeSchedLog, []byte(schedlog.Start+"\n"))
	return o
}

// follow forwards r's lines as stream until r ends (end of file or an
// error; a pseudo-terminal's master reads EIO once the scheduler and its
// children closed it) and then closes r.
func (o *schedOutput) follow(stream string, r io.ReadCloser) {
	o.wg.Add(1)
	go func() {
		defer o.wg.Done()
		defer r.Close()
		var part []byte
		cut := false
		buf := make([]byte, 32<<10)
		for {
			n, err := r.Read(buf)
			var lines []string
			p := buf[:n]
			for len(p) > 0 {
				i := bytes.IndexByte(p, '\n')
				chunk := p
				if i >= 0 {
					chunk = p[:i]
				}
				if room := maxOutLine - len(part); len(chunk) > room {
					part = append(part, chunk[:max(room, 0)]...)
					cut = true
				} else {
					part = append(part, chunk...)
				}
				if i < 0 {
					break
				}
				lines = append(lines, lineText(part, cut))
				part, cut = part[:0], false
				p = p[i+1:]
			}
			if err != nil && (len(part) > 0 || cut) {
				lines = append(lines, lineText(part, cut))
				part = part[:0]
			}
			o.lines(stream, lines, string(part))
			if err != nil {
				return
			}
		}
	}()
}

func lineText(b []byte, cut bool) string {
	s := strings.ToValidUTF8(string(bytes.TrimSuffix(b, []byte{'\r'})), "\uFFFD")
	if cut {
		s += " [line cut]"
	}
	return s
}

// note adds a line of the agent's own (stream "ktstr").
func (o *schedOutput) note(format string, args ...any) {
	o.lines(schedlog.Ktstr, []string{fmt.Sprintf(format, args...)}, "")
}

// lines stamps and forwards the lines of one read, in one SCLG frame, or
// holds them once the budget is spent. partial is the stream's
// unterminated rest.
func (o *schedOutput) lines(stream string, lines []string, partial string) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if stream != schedlog.Ktstr {
		if partial == "" {
			delete(o.partial, stream)
		} else {
			o.partial[stream] = strings.ToValidUTF8(partial, "\uFFFD")
		}
	}
	if len(lines) == 0 || o.closed {
		return
	}
	stamp := schedlog.Stamp(o.now())
	var frame []byte
	for _, l := range lines {
		if stream != schedlog.Ktstr {
			o.recent = append(o.recent, l)
			if len(o.recent) > recentLines {
				o.recent = o.recent[1:]
			}
		}
		line := schedlog.Line(stamp, stream, l)
		if o.sentLines < forwardLines && o.sentBytes+len(line) <= forwardBytes {
			o.sentLines++
			o.sentBytes += len(line)
			frame = append(frame, line...)
			continue
		}
		if len(o.held) < keptLines {
			o.held = append(o.held, line)
			continue
		}
		o.held[o.heldNext] = line
		o.heldNext = (o.heldNext + 1) % keptLines
		o.dropped++
	}
	if len(frame) > 0 {
		o.send(wire.TypeSchedLog, frame)
	}
}

// recentOutput returns the last few lines the scheduler printed, the
// unterminated rest of a line included, oldest first.
func (o *schedOutput) recentOutput() []string {
	o.mu.Lock()
	defer o.mu.Unlock()
	out := append([]string(nil), o.recent...)
	for _, s := range []string{schedlog.Stdout, schedlog.Stderr} {
		if p := o.partial[s]; p != "" {
			out = append(out, p)
		}
	}
	if len(out) > recentLines {
		out = out[len(out)-recentLines:]
	}
	return out
}

// close waits up to grace for the streams to end, then sends what was
// held back, with the count of lines dropped, and the end marker. Later
// lines are discarded. It may be called more than once.
func (o *schedOutput) close(grace time.Duration) {
	ended := make(chan struct{})
	go func() {
		o.wg.Wait()
		close(ended)
	}()
	select {
	case <-ended:
	case <-time.After(grace):
		o.note("its output did not end within %v of its exit (a child process keeps it open?); the rest is not forwarded", grace)
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.closed {
		return
	}
	o.closed = true
	var frame []byte
	flush := func() {
		if len(frame) > 0 {
			o.send(wire.TypeSchedLog, frame)
			frame = nil
		}
	}
	if held := len(o.held); held > 0 {
		frame = append(frame, schedlog.Line(schedlog.Stamp(o.now()), schedlog.Ktstr,
			schedlog.Dropped(o.dropped, forwardLines, forwardBytes, held))...)
		for i := range held {
			if len(frame) >= 64<<10 {
				flush()
			}
			frame = append(frame, o.held[(o.heldNext+i)%held]...)
		}
		o.held = nil
	}
	frame = append(frame, schedlog.End+"\n"...)
	flush()
	close(o.done)
}
