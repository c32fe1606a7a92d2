package shm

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// Region layout constants. See the package documentation for the picture.
const (
	Magic      = 0x4D48534B // "KSHM" as little-endian bytes
	HostMagic  = 0x5453484B // "KHST" as little-endian bytes
	Version    = 2
	HeaderSize = 4096 // guest-visible header page
	HostSize   = 4096 // host-only trailer page
	// MinRing and MaxRing bound a ring's capacity (a power of two).
	MinRing = 4096
	MaxRing = 1 << 30
	// MinSize and MaxSize bound the guest-visible size of a region.
	MinSize = HeaderSize + 2*MinRing
	MaxSize = 2*MaxRing + HeaderSize
	// DefaultSize is the guest-visible size ktstr-boot uses: 16 MiB, a
	// power of two as ivshmem requires.
	DefaultSize = 16 << 20
	// Line is the spacing of the header's groups: two 64-byte cache
	// lines, so that the adjacent-line prefetcher of x86 cores does not
	// pull one side's line along with the other's.
	Line = 128
)

// Offsets in the guest-visible header. Each group of fields that one side
// writes sits alone in its own Line-sized slot; the layout fields are
// written once, by the host, before the guest starts.
const (
	offMagic      = 0x00 // u32
	offVersion    = 0x04 // u32
	offHeaderSize = 0x08 // u32
	offFlags      = 0x0C // u32, reserved 0
	offSize       = 0x10 // u64 guest-visible size
	offTxOff      = 0x18 // u64
	offTxCap      = 0x20 // u64
	offRxOff      = 0x28 // u64
	offRxCap      = 0x30 // u64

	offTxWrite      = 1 * Line    // u64, guest: TX producer position
	offTxDropFrames = 1*Line + 8  // u64, guest
	offTxDropBytes  = 1*Line + 16 // u64, guest
	offTxRead       = 2 * Line    // u64, host: TX consumer position
	offTxBeat       = 2*Line + 8  // u64, host: TX consumer heartbeat
	offRxWrite      = 3 * Line    // u64, host: RX producer position
	offRxRead       = 4 * Line    // u64, guest: RX consumer position
	offRxBeat       = 4*Line + 8  // u64, guest: RX consumer heartbeat
	offControl      = 5 * Line    // NumControl u32 slots
	offGuest        = 6 * Line    // u32 guest state, guest writes
	headerUsed      = 6*Line + 4  // bytes of the header page in use
	offNone         = -1          // a field a ring does not have
	controlSlotSize = 4
)

// Control slots, one u32 each at offControl + 4*index. The host sets a
// slot from 0 to a value with compare-and-swap; the side it is meant for
// acts and swaps it back to 0. Only the low byte carries a value.
const (
	CtlDump     = 0 // 'D': write "D" to /proc/sysrq-trigger
	CtlStall    = 1 // 'S': debugging stall request
	CtlShutdown = 2 // 0xD3: graceful shutdown requested
	CtlSignal0  = 4 // signal slot 0 (host to guest), e.g. 0xBF "map writes done"
	CtlSignal1  = 5 // signal slot 1 (guest to host), e.g. 2 "probes ready"
	NumControl  = 8
)

// Guest states at offGuest, written by the guest agent.
const (
	GuestNone    = 0
	GuestRunning = 1 // the agent has mapped the region
	GuestDone    = 2 // the agent finished and is about to power off (never set after an SCDX: the host's early kill ends that VM)
)

// Offsets in the host-only trailer page (after the guest-visible part).
const (
	hostMagic     = 0x00 // u32
	hostVersion   = 0x04 // u32
	hostSize      = 0x08 // u64 guest-visible size, then the ring offsets and capacities
	hostTxOff     = 0x10
	hostTxCap     = 0x18
	hostRxOff     = 0x20
	hostRxCap     = 0x28
	hostClosed    = 0x40 // u32: 1 once ktstr-boot is done with the VM
	hostReason    = 0x44 // u32 wire.EndReason
	hostExitCode  = 0x48 // i32 ktstr-boot's exit status
	hostElapsed   = 0x50 // u64 ns from boot start to VM end
	hostBootPID   = 0x58 // u32
	hostBootStart = 0x60 // u64: the creator's start time (ProcessStart); 0 unknown
	hostNonce     = 0x68 // 16 bytes: the run's nonce (Region.Nonce)
	hostTxRead    = 0x80 // u64: the TX consumer position, authoritative copy
	hostUsed      = 0x88
)

// Errors.
var (
	ErrBadHeader = errors.New("shm: bad region header")
	ErrCorrupt   = errors.New("shm: corrupt ring positions")
	ErrTooLarge  = errors.New("shm: frame larger than the ring")
	ErrFull      = errors.New("shm: ring full")
)

// HeaderError says which header field failed validation.
type HeaderError struct {
	Field string
	Value uint64
	Why   string
}

func (e *HeaderError) Error() string {
	return fmt.Sprintf("shm: bad region header: %s = %#x: %s", e.Field, e.Value, e.Why)
}

func (e *HeaderError) Unwrap() error { return ErrBadHeader }

// PositionError reports ring positions that no honest producer and
// consumer can reach: more unread bytes than the ring holds.
type PositionError struct {
	Ring  string // "tx" or "rx"
	Read  uint64
	Write uint64
	Cap   uint64
}

func (e *PositionError) Error() string {
	return fmt.Sprintf("shm: corrupt ring positions: %s ring: write %#x - read %#x = %#x unread bytes, capacity %#x",
		e.Ring, e.Write, e.Read, e.Write-e.Read, e.Cap)
}

func (e *PositionError) Unwrap() error { return ErrCorrupt }

// Layout places the two rings in the guest-visible part of a region.
type Layout struct {
	Size  uint64 // guest-visible size (header page + rings + slack)
	TxOff uint64 // guest-to-host ring
	TxCap uint64
	RxOff uint64 // host-to-guest ring
	RxCap uint64
}

// DefaultLayout splits a guest-visible size (a power of two, at least
// 64 KiB) into the header page, a guest-to-host ring of half the size
// and a host-to-guest ring of 1/16 of the size after it.
func DefaultLayout(size uint64) (Layout, error) {
	if size < 64<<10 || size&(size-1) != 0 || size > 2*MaxRing {
		return Layout{}, &HeaderError{Field: "size", Value: size, Why: "want a power of two from 64 KiB to 2 GiB"}
	}
	l := Layout{Size: size, TxOff: HeaderSize, TxCap: size / 2}
	l.RxOff = l.TxOff + l.TxCap
	l.RxCap = size / 16
	return l, l.Validate()
}

// Validate checks that the layout is self-consistent: the size is within
// bounds, the rings are powers of two within bounds, page-aligned, inside
// the region, after the header, and do not overlap.
func (l Layout) Validate() error {
	if l.Size < MinSize || l.Size > MaxSize {
		return &HeaderError{"size", l.Size, fmt.Sprintf("want %d to %d bytes", MinSize, MaxSize)}
	}
	check := func(name string, off, c uint64) error {
		if c < MinRing || c > MaxRing || c&(c-1) != 0 {
			return &HeaderError{name + "_cap", c, "want a power of two from 4 KiB to 1 GiB"}
		}
		if off%4096 != 0 || off < HeaderSize {
			return &HeaderError{name + "_off", off, "want page-aligned, after the header"}
		}
		if off > l.Size || c > l.Size-off {
			return &HeaderError{name + "_off", off, "ring ends beyond the region"}
		}
		return nil
	}
	if err := check("tx", l.TxOff, l.TxCap); err != nil {
		return err
	}
	if err := check("rx", l.RxOff, l.RxCap); err != nil {
		return err
	}
	// Both rings end within Size, so these sums cannot overflow.
	if l.TxOff < l.RxOff+l.RxCap && l.RxOff < l.TxOff+l.TxCap {
		return &HeaderError{"rx_off", l.RxOff, "rings overlap"}
	}
	return nil
}

// FileSize is the size of a region file for l: the guest-visible part
// plus the host-only trailer page.
func (l Layout) FileSize() int64 { return int64(l.Size) + HostSize }

var le = binary.LittleEndian

func putLayout(b []byte, l Layout) {
	le.PutUint64(b[0:], l.Size)
	le.PutUint64(b[8:], l.TxOff)
	le.PutUint64(b[16:], l.TxCap)
	le.PutUint64(b[24:], l.RxOff)
	le.PutUint64(b[32:], l.RxCap)
}

func getLayout(b []byte) Layout {
	return Layout{le.Uint64(b[0:]), le.Uint64(b[8:]), le.Uint64(b[16:]), le.Uint64(b[24:]), le.Uint64(b[32:])}
}
