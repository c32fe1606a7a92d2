package wire

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"math"
	"slices"
)

const (
	// HeaderSize is the size of a frame header.
	HeaderSize = 16
	// MaxPayload is ktstr's MAX_BULK_FRAME_PAYLOAD (V-A): a payload of
	// exactly MaxPayload bytes is accepted, one more is rejected.
	MaxPayload = 16 << 20
)

// Errors returned by the buffer and stream forms. ErrFrameTooLarge comes
// wrapped in a *FrameError that says where and what.
var (
	ErrShortHeader   = errors.New("wire: short frame header")
	ErrFrameTooLarge = errors.New("wire: frame too large")
	ErrShortPayload  = errors.New("wire: short frame payload")
)

// Header is the fixed 16-byte frame header; see the package documentation
// for its layout.
type Header struct {
	Type   Type
	Length uint32
	CRC    uint32
	Pad    uint32
}

// DecodeHeader reads a header from the first HeaderSize bytes of b.
func DecodeHeader(b []byte) (Header, error) {
	if len(b) < HeaderSize {
		return Header{}, ErrShortHeader
	}
	return Header{
		Type:   Type(binary.LittleEndian.Uint32(b[0:])),
		Length: binary.LittleEndian.Uint32(b[4:]),
		CRC:    binary.LittleEndian.Uint32(b[8:]),
		Pad:    binary.LittleEndian.Uint32(b[12:]),
	}, nil
}

// AppendHeader appends the encoded header to b.
func AppendHeader(b []byte, h Header) []byte {
	b = binary.LittleEndian.AppendUint32(b, uint32(h.Type))
	b = binary.LittleEndian.AppendUint32(b, h.Length)
	b = binary.LittleEndian.AppendUint32(b, h.CRC)
	return binary.LittleEndian.AppendUint32(b, h.Pad)
}

// Checksum is the frame CRC: CRC-32/IEEE (reflected 0xEDB88320, init and
// final XOR 0xFFFFFFFF), the same as Rust's crc32fast::hash.
func Checksum(payload []byte) uint32 { return crc32.ChecksumIEEE(payload) }

// Frame is one message: its type, its payload and whether the payload
// matched the header's CRC. A frame with a bad CRC is still a frame; each
// consumer decides what to do with it.
type Frame struct {
	Type    Type
	Payload []byte
	CRCOK   bool
	// Pad is the header's reserved field as read; writers set it to 0.
	Pad uint32
	// CRC is the header's CRC field as read. It equals
	// Checksum(Payload) exactly when CRCOK is true.
	CRC uint32
}

// Size is the encoded size of f.
func (f Frame) Size() int { return HeaderSize + len(f.Payload) }

// Header returns the header f was read with: its type, payload length,
// CRC field and pad. AppendHeader(b, f.Header()) followed by f.Payload
// gives back the bytes the frame came from, bad CRC and non-zero pad
// included. The length is only meaningful for payloads that fit a u32,
// which every frame read from the wire does.
func (f Frame) Header() Header {
	return Header{Type: f.Type, Length: uint32(len(f.Payload)), CRC: f.CRC, Pad: f.Pad}
}

// AppendFrame appends a well-formed frame (CRC computed, pad 0) to b. It
// panics if the payload is longer than a u32 can describe; callers sending
// guest data check MaxPayload first.
func AppendFrame(b []byte, t Type, payload []byte) []byte {
	if uint64(len(payload)) > 0xFFFFFFFF {
		panic("wire: payload longer than u32")
	}
	b = AppendHeader(b, Header{Type: t, Length: uint32(len(payload)), CRC: Checksum(payload)})
	return append(b, payload...)
}

// ParseFrame decodes the frame at the start of b and returns it with the
// number of bytes it used. The payload aliases b. A length above MaxPayload
// gives ErrFrameTooLarge, a short buffer ErrShortHeader or ErrShortPayload.
// A CRC mismatch is not an error: the frame comes back with CRCOK false.
func ParseFrame(b []byte) (Frame, int, error) {
	h, err := DecodeHeader(b)
	if err != nil {
		return Frame{}, 0, err
	}
	if h.Length > MaxPayload {
		return Frame{}, 0, &FrameError{Offset: 0, Type: h.Type, Length: h.Length, Err: ErrFrameTooLarge}
	}
	if uint64(len(b)-HeaderSize) < uint64(h.Length) {
		return Frame{}, 0, ErrShortPayload
	}
	end := HeaderSize + int(h.Length)
	p := b[HeaderSize:end:end]
	return Frame{Type: h.Type, Payload: p, CRCOK: Checksum(p) == h.CRC, Pad: h.Pad, CRC: h.CRC}, end, nil
}

// FrameError carries the context of a rejected frame.
type FrameError struct {
	Offset int64 // stream offset of the frame header
	Type   Type
	Length uint32
	Err    error
}

func (e *FrameError) Error() string {
	return fmt.Sprintf("%v (type %v, length %d, offset %d)", e.Err, e.Type, e.Length, e.Offset)
}

func (e *FrameError) Unwrap() error { return e.Err }

// Encoder writes frames to a stream, header and payload in one write.
type Encoder struct {
	w   io.Writer
	buf []byte
}

// NewEncoder returns an Encoder writing to w.
func NewEncoder(w io.Writer) *Encoder { return &Encoder{w: w} }

// Encode writes one frame of type t. Payloads above MaxPayload are refused
// with ErrFrameTooLarge.
func (e *Encoder) Encode(t Type, payload []byte) error {
	if len(payload) > MaxPayload {
		return &FrameError{Type: t, Length: uint32(min(uint64(len(payload)), math.MaxUint32)), Err: ErrFrameTooLarge}
	}
	e.buf = AppendFrame(e.buf[:0], t, payload)
	_, err := e.w.Write(e.buf)
	if cap(e.buf) > 1<<20 {
		e.buf = nil // do not pin a large buffer
	}
	return err
}

// Decoder reads frames from a stream strictly: a frame above MaxPayload is
// an error, not a resync (use Assembler for ktstr's lenient resyncing).
// Errors are sticky: once Decode has failed it returns the same error.
type Decoder struct {
	r   io.Reader
	off int64
	err error
	hdr [HeaderSize]byte
}

// NewDecoder returns a Decoder reading from r.
func NewDecoder(r io.Reader) *Decoder { return &Decoder{r: r} }

// Decode reads the next frame. It returns io.EOF only at a clean frame
// boundary and io.ErrUnexpectedEOF for a truncated frame (in the header or
// in the payload). The payload is freshly allocated and owned by the
// caller; an empty payload is nil.
func (d *Decoder) Decode() (Frame, error) {
	if d.err != nil {
		return Frame{}, d.err
	}
	f, err := d.decode()
	if err != nil {
		d.err = err
	}
	return f, err
}

func (d *Decoder) decode() (Frame, error) {
	if _, err := io.ReadFull(d.r, d.hdr[:]); err != nil {
		return Frame{}, err // io.EOF only when no byte was read
	}
	h, _ := DecodeHeader(d.hdr[:])
	if h.Length > MaxPayload {
		return Frame{}, &FrameError{Offset: d.off, Type: h.Type, Length: h.Length, Err: ErrFrameTooLarge}
	}
	p, err := readPayload(d.r, int(h.Length))
	if err != nil {
		return Frame{}, err
	}
	d.off += HeaderSize + int64(h.Length)
	return Frame{Type: h.Type, Payload: p, CRCOK: Checksum(p) == h.CRC, Pad: h.Pad, CRC: h.CRC}, nil
}

// Offset returns the stream offset of the next frame header.
func (d *Decoder) Offset() int64 { return d.off }

// readPayload reads exactly n bytes. Small payloads are read into one
// allocation; large ones grow with the bytes that actually arrive, so a
// header that lies about its length cannot make us allocate up front.
func readPayload(r io.Reader, n int) ([]byte, error) {
	const step = 64 << 10
	if n == 0 {
		return nil, nil
	}
	if n <= step {
		p := make([]byte, n)
		if _, err := io.ReadFull(r, p); err != nil {
			return nil, unexpected(err)
		}
		return p, nil
	}
	p := make([]byte, 0, step)
	for len(p) < n {
		if len(p) == cap(p) {
			// Double, never past n: growth follows the bytes received.
			p = slices.Grow(p, min(cap(p), n-len(p)))
		}
		m, err := io.ReadFull(r, p[len(p):min(cap(p), n)])
		p = p[:len(p)+m]
		if err != nil {
			return nil, unexpected(err)
		}
	}
	return p, nil
}

// unexpected turns io.EOF inside a frame into io.ErrUnexpectedEOF.
func unexpected(err error) error {
	if err == io.EOF {
		return io.ErrUnexpectedEOF
	}
	return err
}
