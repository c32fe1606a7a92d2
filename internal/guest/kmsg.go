package guest

import (
	"bytes"
	"errors"
	"strconv"
	"time"

	"golang.org/x/sys/unix"
)

// kmsgRecord is one kernel log record.
type kmsgRecord struct {
	At   time.Duration // the kernel's timestamp, since boot
	Text string
}

// kmsgSource gives the kernel log records written since the last call.
type kmsgSource interface {
	read() []kmsgRecord
}

// kmsg reads /dev/kmsg without blocking, from the records written after
// it was opened.
type kmsg struct {
	fd  int
	buf []byte
}

// openKmsg opens /dev/kmsg at its end.
func openKmsg() (*kmsg, error) {
	fd, err := unix.Open("/dev/kmsg", unix.O_RDONLY|unix.O_NONBLOCK|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, err
	}
	if _, err := unix.Seek(fd, 0, unix.SEEK_END); err != nil {
		unix.Close(fd)
		return nil, err
	}
	return &kmsg{fd: fd, buf: make([]byte, 8192)}, nil
}

// read returns the records written since the last read. Each read(2)
// returns one record; EAGAIN means none is left, EPIPE that the ring
// overwrote some (the next read goes on with the oldest left).
func (k *kmsg) read() []kmsgRecord {
	var out []kmsgRecord
	for range 4096 {
		n, err := unix.Read(k.fd, k.buf)
		if errors.Is(err, unix.EPIPE) || errors.Is(err, unix.EINTR) {
			continue
		}
		if err != nil || n <= 0 {
			break
		}
		if r, ok := parseKmsg(k.buf[:n]); ok {
			out = append(out, r)
		}
	}
	return out
}

func (k *kmsg) close() { unix.Close(k.fd) }

// parseKmsg parses one /dev/kmsg record: "prio,seq,usec,flags[,...];text\n"
// followed by " KEY=value" lines (the dictionary), which are dropped.
func parseKmsg(b []byte) (kmsgRecord, bool) {
	head, text, ok := bytes.Cut(b, []byte{';'})
	if !ok {
		return kmsgRecord{}, false
	}
	f := bytes.Split(head, []byte{','})
	if len(f) < 3 {
		return kmsgRecord{}, false
	}
	us, err := strconv.ParseUint(string(f[2]), 10, 63)
	if err != nil {
		return kmsgRecord{}, false
	}
	text, _, _ = bytes.Cut(text, []byte{'\n'})
	return kmsgRecord{At: time.Duration(us) * time.Microsecond, Text: string(text)}, true
}

// kmsgNote writes one line of the agent's into the kernel log (level 6,
// info), where it gets the kernel's timestamp: "ktstr-agent: up" and
// "ktstr-agent: SRDY sent" place the agent's start-up on the guest's
// clock beside the kernel's own messages (scripts/bench-boot-breakdown
// reads them from a --verbose console; a quiet console does not print
// them). A failure is ignored: these are measurements, not the run.
func kmsgNote(text string) {
	fd, err := unix.Open("/dev/kmsg", unix.O_WRONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return
	}
	unix.Write(fd, []byte("<6>ktstr-agent: "+text+"\n"))
	unix.Close(fd)
}
