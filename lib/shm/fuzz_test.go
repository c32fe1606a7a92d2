package shm

import (
	"encoding/binary"
	"errors"
	"os"
	"testing"
)

// FuzzRegion overlays fuzz bytes on the guest-visible header (layout,
// positions, counters, control slots) and on the host page of a valid
// 64 KiB region, then runs every host and guest operation. Whatever the
// bytes, opening gives a Region or a HeaderError, and no operation panics,
// hangs or returns more bytes than a ring holds.
func FuzzRegion(f *testing.F) {
	l, _ := DefaultLayout(64 << 10)
	pos := func(w, r uint64) []byte {
		b := make([]byte, offTxRead+8)
		binary.LittleEndian.PutUint64(b[offTxWrite:], w)
		binary.LittleEndian.PutUint64(b[offTxRead:], r)
		return b[offTxWrite:]
	}
	// Seeds: untouched; the corrupt positions of TestCorruptPositions; a
	// broken layout in each page; a frame of exactly the ring size.
	f.Add([]byte{}, uint16(0), []byte{}, []byte("frame"))
	f.Add(pos(32<<10+1, 0), uint16(offTxWrite), []byte{}, []byte("x"))
	f.Add(pos(5, 10), uint16(offTxWrite), []byte{}, []byte("x"))
	f.Add(pos(1<<63, 0), uint16(offTxWrite), []byte{}, []byte("x"))
	f.Add(pos(3, 1<<64-2<<20), uint16(offTxWrite), []byte{}, []byte("x"))
	f.Add(pos(1<<64-10, 1<<64-20), uint16(offTxWrite), []byte{}, []byte("wrap"))
	f.Add([]byte{0, 0x30, 0, 0}, uint16(offTxCap), []byte{0, 0x30}, make([]byte, 32<<10))
	f.Add([]byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff}, uint16(offSize), binary.LittleEndian.AppendUint64(nil, 1<<40), make([]byte, 4<<10))
	f.Add([]byte{0x10}, uint16(offRxOff+1), []byte{0, 0x10}, []byte("reply"))
	f.Fuzz(func(t *testing.T, hdr []byte, at uint16, host []byte, frame []byte) {
		if len(frame) > 40<<10 {
			frame = frame[:40<<10]
		}
		image := alignedBytes(int(l.FileSize()))
		InitGuestHeader(image[:l.Size], l)
		InitHostPage(image[l.Size:], l, os.Getpid())
		o := int(at) % HeaderSize
		copy(image[o:HeaderSize], hdr)
		copy(image[l.Size:l.Size+hostUsed], host)

		if r, err := openHost(image); err != nil {
			if !errors.Is(err, ErrBadHeader) {
				t.Fatalf("openHost = %v, want a HeaderError", err)
			}
		} else {
			hostOps(t, r, frame)
		}
		if g, err := OpenGuest(image[:l.Size]); err != nil {
			if !errors.Is(err, ErrBadHeader) {
				t.Fatalf("OpenGuest = %v, want a HeaderError", err)
			}
		} else {
			guestOps(t, g, frame)
		}
	})
}

// guestOps runs every guest operation over g.
func guestOps(t *testing.T, g *Region, frame []byte) {
	l := g.Layout()
	if l.TxOff+l.TxCap > uint64(len(g.Mem())) || l.RxOff+l.RxCap > uint64(len(g.Mem())) {
		t.Fatalf("OpenGuest accepted rings beyond the mapping: %+v", l)
	}
	p := g.TX().NewProducer(0)
	err := p.Write(frame)
	switch {
	case err == nil, errors.Is(err, ErrFull), errors.Is(err, ErrCorrupt), errors.Is(err, ErrTooLarge):
	default:
		t.Fatalf("TX Write = %v", err)
	}
	c := g.RX().NewConsumer()
	a, b, err := c.Peek()
	if err == nil {
		if n := uint64(len(a) + len(b)); n > l.RxCap {
			t.Fatalf("RX Peek returned %d bytes from a %d-byte ring", n, l.RxCap)
		}
		c.Advance(len(a) + len(b))
	} else if !errors.Is(err, ErrCorrupt) {
		t.Fatalf("RX Peek = %v", err)
	}
	c.Beat()
	for i := 0; i < NumControl; i++ {
		g.TakeControl(i)
	}
	g.SetGuestState(GuestDone)
	g.Drops()
}
