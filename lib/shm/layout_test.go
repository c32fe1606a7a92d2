package shm

import (
	"errors"
	"testing"
)

// TestOffsets pins the header layout: alignment of every atomic field,
// one Line-sized slot per writer group, everything inside its page.
func TestOffsets(t *testing.T) {
	type field struct {
		name  string
		off   int
		size  int
		group string // who writes it, after creation
	}
	guest := []field{
		{"magic", offMagic, 4, "layout"},
		{"version", offVersion, 4, "layout"},
		{"header_size", offHeaderSize, 4, "layout"},
		{"flags", offFlags, 4, "layout"},
		{"size", offSize, 8, "layout"},
		{"tx_off", offTxOff, 8, "layout"},
		{"tx_cap", offTxCap, 8, "layout"},
		{"rx_off", offRxOff, 8, "layout"},
		{"rx_cap", offRxCap, 8, "layout"},
		{"tx_write", offTxWrite, 8, "tx producer"},
		{"tx_drop_frames", offTxDropFrames, 8, "tx producer"},
		{"tx_drop_bytes", offTxDropBytes, 8, "tx producer"},
		{"tx_read", offTxRead, 8, "tx consumer"},
		{"tx_beat", offTxBeat, 8, "tx consumer"},
		{"rx_write", offRxWrite, 8, "rx producer"},
		{"rx_read", offRxRead, 8, "rx consumer"},
		{"rx_beat", offRxBeat, 8, "rx consumer"},
		{"control", offControl, NumControl * controlSlotSize, "control"},
		{"guest_state", offGuest, 4, "guest state"},
	}
	slot := map[int]string{}
	end := 0
	for i, f := range guest {
		if a := min(f.size, 8); f.off%a != 0 {
			t.Errorf("%s at %#x is not %d-byte aligned", f.name, f.off, a)
		}
		if i > 0 && f.off < end {
			t.Errorf("%s at %#x overlaps the field before it (ends at %#x)", f.name, f.off, end)
		}
		end = f.off + f.size
		for s := f.off / Line; s <= (end-1)/Line; s++ {
			if g, ok := slot[s]; ok && g != f.group {
				t.Errorf("%s (%s) shares line slot %d with %s", f.name, f.group, s, g)
			}
			slot[s] = f.group
		}
	}
	if end != headerUsed || headerUsed > HeaderSize {
		t.Errorf("header ends at %#x, headerUsed = %#x, HeaderSize = %#x", end, headerUsed, HeaderSize)
	}
	for _, f := range []field{
		{"host_magic", hostMagic, 4, ""}, {"host_version", hostVersion, 4, ""}, {"host_size", hostSize, 8, ""},
		{"host_tx_off", hostTxOff, 8, ""}, {"host_tx_cap", hostTxCap, 8, ""}, {"host_rx_off", hostRxOff, 8, ""},
		{"host_rx_cap", hostRxCap, 8, ""}, {"closed", hostClosed, 4, ""}, {"reason", hostReason, 4, ""},
		{"exit_code", hostExitCode, 4, ""}, {"elapsed", hostElapsed, 8, ""}, {"boot_pid", hostBootPID, 4, ""},
		{"boot_start", hostBootStart, 8, ""}, {"nonce", hostNonce, 8, ""}, {"nonce+8", hostNonce + 8, 8, ""},
		{"host_tx_read", hostTxRead, 8, ""},
	} {
		if f.off%f.size != 0 || f.off+f.size > hostUsed || hostUsed > HostSize {
			t.Errorf("host page field %s at %#x (size %d) misplaced (hostUsed %#x)", f.name, f.off, f.size, hostUsed)
		}
	}
	if hostTxOff != hostSize+8 || hostRxCap != hostSize+32 {
		t.Errorf("host layout copy is not contiguous after host_size")
	}
}

func TestDefaultLayout(t *testing.T) {
	for _, tc := range []struct {
		size uint64
		want Layout
	}{
		{64 << 10, Layout{Size: 64 << 10, TxOff: 4096, TxCap: 32 << 10, RxOff: 4096 + 32<<10, RxCap: 4 << 10}},
		{DefaultSize, Layout{Size: 16 << 20, TxOff: 4096, TxCap: 8 << 20, RxOff: 4096 + 8<<20, RxCap: 1 << 20}},
		{2 << 30, Layout{Size: 2 << 30, TxOff: 4096, TxCap: 1 << 30, RxOff: 4096 + 1<<30, RxCap: 128 << 20}},
	} {
		got, err := DefaultLayout(tc.size)
		if err != nil || got != tc.want {
			t.Errorf("DefaultLayout(%#x) = %+v, %v, want %+v", tc.size, got, err, tc.want)
		}
	}
	for _, size := range []uint64{0, 1, 32 << 10, 64<<10 + 1, 3 << 20, 4 << 30, 1 << 63} {
		if l, err := DefaultLayout(size); !errors.Is(err, ErrBadHeader) {
			t.Errorf("DefaultLayout(%#x) = %+v, %v, want ErrBadHeader", size, l, err)
		}
	}
}

func TestValidate(t *testing.T) {
	good := Layout{Size: 64 << 10, TxOff: 4096, TxCap: 32 << 10, RxOff: 4096 + 32<<10, RxCap: 4 << 10}
	if err := good.Validate(); err != nil {
		t.Fatalf("%+v.Validate() = %v", good, err)
	}
	for _, tc := range []struct {
		name  string
		edit  func(*Layout)
		field string
	}{
		{"size zero", func(l *Layout) { l.Size = 0 }, "size"},
		{"size huge", func(l *Layout) { l.Size = 1 << 63 }, "size"},
		{"tx cap not power of two", func(l *Layout) { l.TxCap = 12288 }, "tx_cap"},
		{"tx cap zero", func(l *Layout) { l.TxCap = 0 }, "tx_cap"},
		{"tx cap too small", func(l *Layout) { l.TxCap = 2048 }, "tx_cap"},
		{"tx cap too large", func(l *Layout) { l.TxCap = 2 << 30 }, "tx_cap"},
		{"tx in header", func(l *Layout) { l.TxOff = 0 }, "tx_off"},
		{"tx unaligned", func(l *Layout) { l.TxOff = 4096 + 8 }, "tx_off"},
		{"tx beyond", func(l *Layout) { l.TxOff = 48 << 10 }, "tx_off"},
		{"tx offset wraps", func(l *Layout) { l.TxOff = 1<<64 - 4096 }, "tx_off"},
		{"rx beyond", func(l *Layout) { l.RxOff = 64 << 10 }, "rx_off"},
		{"rx cap past end", func(l *Layout) { l.RxCap = 32 << 10 }, "rx_off"},
		{"overlap", func(l *Layout) { l.RxOff = 8192 }, "rx_off"},
		{"same ring", func(l *Layout) { l.RxOff, l.RxCap = l.TxOff, l.TxCap }, "rx_off"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			l := good
			tc.edit(&l)
			err := l.Validate()
			var he *HeaderError
			if !errors.As(err, &he) || he.Field != tc.field || !errors.Is(err, ErrBadHeader) {
				t.Errorf("%+v.Validate() = %v, want a HeaderError on %s", l, err, tc.field)
			}
		})
	}
}
