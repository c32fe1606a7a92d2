package kvm

import (
	"errors"
	"testing"
)

// FuzzDecodeExit feeds arbitrary kvm_run union bytes to the decoders:
// they must never slice outside the page, and what they return must lie
// within it.
func FuzzDecodeExit(f *testing.F) {
	f.Add([]byte{IOOut, 1, 0xf8, 0x03, 1, 0, 0, 0, 0x00, 0x02, 0, 0, 0, 0, 0, 0})
	f.Add([]byte{IOIn, 4, 0xfc, 0x0c, 0xff, 0xff, 0xff, 0xff, 0xf0, 0x0f, 0, 0, 0, 0, 0, 0})
	f.Add(make([]byte, 8+8*16))
	f.Fuzz(func(t *testing.T, u []byte) {
		if len(u) > 256 {
			u = u[:256]
		}
		c := fakeVCPU(ExitIO, u)
		if io, err := c.IO(); err == nil {
			if len(io.Data) != int(io.Size)*int(io.Count) || io.Size == 0 {
				t.Fatalf("IO() = %d data bytes for size %d count %d", len(io.Data), io.Size, io.Count)
			}
		} else if !errors.Is(err, ErrBadExit) {
			t.Fatalf("IO() error %v", err)
		}
		if m, err := c.MMIO(); err == nil && len(m.Data) > 8 {
			t.Fatalf("MMIO() = %d data bytes", len(m.Data))
		}
		if n := len(c.InternalError().Data); n > 16 {
			t.Fatalf("InternalError() = %d words", n)
		}
		if n := len(c.SystemEvent().Data); n > 16 {
			t.Fatalf("SystemEvent() = %d words", n)
		}
		c.FailEntry()
	})
}
