package wire

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
)

const (
	// HeaderSize is the size of a frame header.
	HeaderSize = 16
	// MaxPayload is ktstr's MAX_BULK_FRAME_PAYLOAD (V-A): a payload of
	// exactly MaxPayload bytes is accepted, one more is rejected.
	MaxPayload = 16 << 20
)

// Errors returned by the buffer and stream forms.
var (
	ErrShortHeader   = errors.New("wire: short frame header")
	ErrFrameTooLarge = errors.New("wire: frame too large")
	ErrShortPayload  = errors.New("wire: short frame payload")
)

// Header is the fixed 16-byte frame header.
//
//	offset size field
//	0      4    type    u32 LE
//	4      4    length  u32 LE, payload bytes that follow
//	8      4    crc32   u32 LE, CRC-32/IEEE of the payload only
//	12     4    pad     u32 LE, reserved; writers set 0
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
}

// Size is the encoded size of f.
func (f Frame) Size() int { return HeaderSize + len(f.Payload) }

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
	end := HeaderSize + int(h.Length)
	if len(b) < end {
		return Frame{}, 0, ErrShortPayload
	}
	p := b[HeaderSize:end:end]
	return Frame{Type: h.Type, Payload: p, CRCOK: Checksum(p) == h.CRC, Pad: h.Pad}, end, nil
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
		return &FrameError{Type: t, Length: uint32(min(len(payload), 0xFFFFFFFF)), Err: ErrFrameTooLarge}
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
type Decoder struct {
	r   io.Reader
	off int64
	hdr [HeaderSize]byte
}

// NewDecoder returns a Decoder reading from r.
func NewDecoder(r io.Reader) *Decoder { return &Decoder{r: r} }

// Decode reads the next frame. It returns io.EOF only at a clean frame
// boundary and io.ErrUnexpectedEOF for a truncated frame. The payload is
// freshly allocated and owned by the caller.
func (d *Decoder) Decode() (Frame, error) {
	n, err := io.ReadFull(d.r, d.hdr[:])
	if err != nil {
		if err == io.EOF && n == 0 {
			return Frame{}, io.EOF
		}
		if err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		return Frame{}, err
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
	return Frame{Type: h.Type, Payload: p, CRCOK: Checksum(p) == h.CRC, Pad: h.Pad}, nil
}

// readPayload reads exactly n bytes. Small payloads are read into one
// allocation; large ones grow with the bytes that actually arrive, so a
// header that lies about its length cannot make us allocate up front.
func readPayload(r io.Reader, n int) ([]byte, error) {
	const step = 64 << 10
	if n <= step {
		p := make([]byte, n)
		if _, err := io.ReadFull(r, p); err != nil {
			if err == io.EOF {
				err = io.ErrUnexpectedEOF
			}
			return nil, err
		}
		return p, nil
	}
	p := make([]byte, 0, step)
	for len(p) < n {
		if len(p) == cap(p) {
			p = append(p, make([]byte, min(cap(p), n-len(p)))...)[:len(p)]
		}
		m, err := r.Read(p[len(p):min(cap(p), n)])
		p = p[:len(p)+m]
		if err != nil && len(p) < n {
			if err == io.EOF {
				err = io.ErrUnexpectedEOF
			}
			return nil, err
		}
	}
	return p, nil
}
