package record

import (
	"bufio"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"strconv"

	"github.com/ktstr-go/ktstr/lib/wire"
)

// Limits a Reader enforces on what it reads.
const (
	MaxKeys       = 64                   // keys in one record
	MaxKeyLen     = 64                   // bytes in one key
	MaxString     = 1 << 20              // bytes in one string value
	MaxBytes      = wire.MaxPayload      // bytes in one byte-string value (payload, request)
	MaxJSONRecord = 4*MaxBytes/3 + 1<<20 // bytes in one JSON record: a base64 payload and room to spare
)

// ErrFormat is matched (errors.Is) by every error about a malformed
// record stream.
var ErrFormat = errors.New("record: malformed stream")

// Error is a malformed record. It matches ErrFormat, and
// io.ErrUnexpectedEOF when the stream ended inside the record.
type Error struct {
	N   int64 // 0-based index of the record in the stream
	Err error
}

func (e *Error) Error() string { return fmt.Sprintf("record: record %d: %v", e.N, e.Err) }

// Unwrap returns ErrFormat and the cause.
func (e *Error) Unwrap() []error { return []error{ErrFormat, e.Err} }

// Reader decodes a record stream in either form.
type Reader struct {
	br   *bufio.Reader
	form byte // 0 not yet known, 'j' JSON lines, 'm' msgpack
	n    int64
	line []byte // JSON: the current record
	err  error  // sticky
}

// NewReader returns a Reader from r.
func NewReader(r io.Reader) *Reader {
	return &Reader{br: bufio.NewReaderSize(r, 64<<10)}
}

// Read returns the next record. It returns io.EOF only at a clean end of
// stream (between records); any other error is an *Error and every later
// call returns it again.
func (rd *Reader) Read() (*Record, error) {
	if rd.err != nil {
		return nil, rd.err
	}
	r, err := rd.read()
	if err != nil {
		if err != io.EOF {
			err = &Error{N: rd.n, Err: err}
		}
		rd.err = err
		return nil, err
	}
	rd.n++
	return r, nil
}

func (rd *Reader) read() (*Record, error) {
	if rd.form == 0 {
		c, err := rd.skipSpace()
		if err != nil {
			return nil, err
		}
		rd.form = 'm'
		if c == '{' {
			rd.form = 'j'
		}
	}
	var r Record
	if rd.form == 'j' {
		b, err := rd.scanJSON()
		if err != nil {
			return nil, err
		}
		if err := decodeJSON(b, &r); err != nil {
			return nil, err
		}
	} else {
		if _, err := rd.br.Peek(1); err != nil {
			return nil, err // io.EOF between records
		}
		if err := (&mpDecoder{br: rd.br}).record(&r); err != nil {
			return nil, err
		}
	}
	if r.V != Version {
		return nil, fmt.Errorf("schema version %d, this build reads %d", r.V, Version)
	}
	return &r, nil
}

// skipSpace skips JSON white space and returns the next byte, unread.
func (rd *Reader) skipSpace() (byte, error) {
	for {
		c, err := rd.br.ReadByte()
		if err != nil {
			return 0, err
		}
		if c != ' ' && c != '\n' && c != '\r' && c != '\t' {
			rd.br.UnreadByte()
			return c, nil
		}
	}
}

// scanJSON returns the bytes of the next top-level JSON object, found by
// counting braces outside strings; json.Unmarshal validates the rest. A
// record that would exceed MaxJSONRecord is an error before it is read.
func (rd *Reader) scanJSON() ([]byte, error) {
	c, err := rd.skipSpace()
	if err != nil {
		return nil, err
	}
	if c != '{' {
		return nil, fmt.Errorf("JSON record starts with %q, want '{'", c)
	}
	b := rd.line[:0]
	depth, inStr, esc := 0, false, false
	for {
		chunk, err := rd.br.Peek(max(rd.br.Buffered(), 1))
		if len(chunk) == 0 {
			if err == io.EOF {
				err = io.ErrUnexpectedEOF
			}
			return nil, err
		}
		i, done := 0, false
		for ; i < len(chunk) && !done; i++ {
			c := chunk[i]
			switch {
			case esc:
				esc = false
			case inStr:
				switch c {
				case '\\':
					esc = true
				case '"':
					inStr = false
				}
			case c == '"':
				inStr = true
			case c == '{' || c == '[':
				depth++
			case c == '}' || c == ']':
				depth--
				done = depth == 0
			}
		}
		if len(b)+i > MaxJSONRecord {
			return nil, fmt.Errorf("JSON record longer than %d bytes", MaxJSONRecord)
		}
		b = append(b, chunk[:i]...)
		rd.br.Discard(i)
		if done {
			if cap(b) <= 1<<20 {
				rd.line = b
			}
			return b, nil
		}
	}
}

// decodeJSON decodes one JSON object into r. Keys match exactly (unlike
// encoding/json's struct decoding), the last of duplicate keys wins, and
// unknown keys are ignored, as in the msgpack form.
func decodeJSON(b []byte, r *Record) error {
	var m map[string]json.RawMessage
	if err := json.Unmarshal(b, &m); err != nil {
		return err
	}
	if len(m) > MaxKeys {
		return fmt.Errorf("%d keys, at most %d", len(m), MaxKeys)
	}
	for k, raw := range m {
		if err := setField(r, k, jsonValue(raw)); err != nil {
			return fmt.Errorf("key %q: %w", k, err)
		}
	}
	return nil
}

// value is one decoded value of either form, read as the key requires.
type value interface {
	int(bits int) (int64, error)
	uint(bits int) (uint64, error)
	bool() (bool, error)
	str() (string, error)
	bytes() ([]byte, error)
	skip() error
}

// setField stores the value of key k; the schema's keys and types, as
// written by encoder.record.
func setField(r *Record, k string, v value) error {
	var err error
	u32 := func(p *uint32) {
		var x uint64
		x, err = v.uint(32)
		*p = uint32(x)
	}
	switch k {
	case "v":
		var x int64
		x, err = v.int(32)
		r.V = int(x)
	case "kind":
		r.Kind, err = v.str()
	case "seq":
		r.Seq, err = v.int(64)
	case "at_ns":
		r.AtNS, err = v.int(64)
	case "tag":
		r.Tag, err = v.str()
	case "msg_type":
		u32(&r.MsgType)
	case "crc_ok":
		r.CRCOK, err = v.bool()
	case "payload":
		r.Payload, err = v.bytes()
	case "effect":
		r.Effect, err = v.str()
	case "count":
		r.Count, err = v.uint(64)
	case "exit_code":
		var x int64
		x, err = v.int(32)
		r.ExitCode, r.HasExitCode = int32(x), err == nil
	case "request_id":
		u32(&r.RequestID)
	case "req_kind":
		u32(&r.ReqKind)
	case "req_tag":
		r.ReqTag, err = v.str()
	case "request":
		r.Request, err = v.bytes()
	case "value":
		r.Value, err = v.uint(64)
	case "start_ns":
		r.StartNS, err = v.uint(64)
	case "deadline_ns":
		r.DeadlineNS, err = v.uint(64)
	case "pause_ns":
		r.PauseNS, err = v.uint(64)
	case "pause_total_ns":
		r.PauseTotalNS, err = v.uint(64)
	case "step":
		var x uint64
		x, err = v.uint(16)
		r.Step = uint16(x)
	case "diag":
		r.Diag, err = v.str()
	case "offset":
		r.Offset, err = v.int(64)
	case "length":
		u32(&r.Length)
	case "pad":
		u32(&r.Pad)
	case "dropped":
		r.Dropped, err = v.int(64)
	case "message":
		r.Message, err = v.str()
	default:
		err = v.skip() // unknown keys are ignored (forward compatibility)
	}
	return err
}

var (
	errType  = errors.New("wrong type")
	errRange = errors.New("number out of range")
)

// jsonValue is a raw JSON value.
type jsonValue json.RawMessage

func (j jsonValue) number() (string, error) {
	if len(j) == 0 || !(j[0] == '-' || j[0] >= '0' && j[0] <= '9') {
		return "", errType
	}
	return string(j), nil
}

// float parses a number written in float notation (jq 1.6 writes large
// integers as 1.7e+18); it must be integral.
func (j jsonValue) float(s string) (float64, error) {
	f, err := strconv.ParseFloat(s, 64)
	if err != nil || f != math.Trunc(f) {
		return 0, errType
	}
	return f, nil
}

func (j jsonValue) int(bits int) (int64, error) {
	s, err := j.number()
	if err != nil {
		return 0, err
	}
	x, err := strconv.ParseInt(s, 10, bits)
	if err == nil {
		return x, nil
	}
	f, err := j.float(s)
	if err != nil {
		return 0, err
	}
	lim := math.Ldexp(1, bits-1)
	if f < -lim || f >= lim {
		return 0, errRange
	}
	return int64(f), nil
}

func (j jsonValue) uint(bits int) (uint64, error) {
	s, err := j.number()
	if err != nil {
		return 0, err
	}
	x, err := strconv.ParseUint(s, 10, bits)
	if err == nil {
		return x, nil
	}
	f, err := j.float(s)
	if err != nil {
		return 0, err
	}
	lim := math.Ldexp(1, bits)
	switch {
	case f < 0:
		return 0, errRange
	case f >= lim && bits == 64 && f == lim:
		return math.MaxUint64, nil // u64::MAX printed as a double rounds up to 2^64
	case f >= lim:
		return 0, errRange
	}
	return uint64(f), nil
}

func (j jsonValue) bool() (bool, error) {
	switch string(j) {
	case "true":
		return true, nil
	case "false":
		return false, nil
	}
	return false, errType
}

func (j jsonValue) str() (string, error) {
	if string(j) == "null" {
		return "", nil
	}
	if len(j) == 0 || j[0] != '"' {
		return "", errType
	}
	var s string
	if err := json.Unmarshal(j, &s); err != nil {
		return "", err
	}
	if len(s) > MaxString {
		return "", fmt.Errorf("string of %d bytes, at most %d", len(s), MaxString)
	}
	return s, nil
}

func (j jsonValue) bytes() ([]byte, error) {
	if string(j) == "null" {
		return nil, nil
	}
	if len(j) < 2 || j[0] != '"' || j[len(j)-1] != '"' {
		return nil, errType
	}
	b, err := base64.StdEncoding.AppendDecode([]byte{}, j[1:len(j)-1])
	if err != nil {
		return nil, err
	}
	if len(b) > MaxBytes {
		return nil, fmt.Errorf("%d bytes, at most %d", len(b), MaxBytes)
	}
	return b, nil
}

func (j jsonValue) skip() error { return nil }

// mpDecoder reads msgpack without trusting any length: strings and byte
// strings are capped and grow only with bytes read, and unknown values are
// skipped iteratively (no recursion, no allocation).
type mpDecoder struct {
	br  *bufio.Reader
	tmp [8]byte
}

// msgpack value families.
const (
	mpNil = iota
	mpBool
	mpUint
	mpInt
	mpFloat
	mpStr
	mpBin
	mpArray
	mpMap
	mpExt
)

// head is a decoded msgpack header: the family and, for numbers and
// bools, the value; for str, bin, ext the byte length; for array and map
// the element count.
type head struct {
	kind int
	u    uint64 // uint, bool (0/1), length or count
	i    int64  // int
}

func (d *mpDecoder) be(n int) (uint64, error) {
	if _, err := io.ReadFull(d.br, d.tmp[:n]); err != nil {
		return 0, err
	}
	switch n {
	case 1:
		return uint64(d.tmp[0]), nil
	case 2:
		return uint64(binary.BigEndian.Uint16(d.tmp[:])), nil
	case 4:
		return uint64(binary.BigEndian.Uint32(d.tmp[:])), nil
	}
	return binary.BigEndian.Uint64(d.tmp[:]), nil
}

func (d *mpDecoder) head() (head, error) {
	c, err := d.br.ReadByte()
	if err != nil {
		if err == io.EOF {
			err = io.ErrUnexpectedEOF // Read has checked that a record starts
		}
		return head{}, err
	}
	var h head
	sized := func(kind, n int) {
		h.kind = kind
		h.u, err = d.be(n)
	}
	switch {
	case c <= 0x7f:
		return head{kind: mpUint, u: uint64(c)}, nil
	case c <= 0x8f:
		return head{kind: mpMap, u: uint64(c & 0x0f)}, nil
	case c <= 0x9f:
		return head{kind: mpArray, u: uint64(c & 0x0f)}, nil
	case c <= 0xbf:
		return head{kind: mpStr, u: uint64(c & 0x1f)}, nil
	case c >= 0xe0:
		return head{kind: mpInt, i: int64(int8(c))}, nil
	}
	switch c {
	case 0xc0:
		h.kind = mpNil
	case 0xc2, 0xc3:
		h.kind, h.u = mpBool, uint64(c-0xc2)
	case 0xc4, 0xc5, 0xc6:
		sized(mpBin, 1<<(c-0xc4))
	case 0xc7, 0xc8, 0xc9:
		sized(mpExt, 1<<(c-0xc7))
		h.u++ // the ext type byte
	case 0xca:
		h.kind, h.u = mpFloat, 4
	case 0xcb:
		h.kind, h.u = mpFloat, 8
	case 0xcc, 0xcd, 0xce, 0xcf:
		sized(mpUint, 1<<(c-0xcc))
	case 0xd0, 0xd1, 0xd2, 0xd3:
		n := 1 << (c - 0xd0)
		var u uint64
		u, err = d.be(n)
		h.kind = mpInt
		switch n {
		case 1:
			h.i = int64(int8(u))
		case 2:
			h.i = int64(int16(u))
		case 4:
			h.i = int64(int32(u))
		default:
			h.i = int64(u)
		}
	case 0xd4, 0xd5, 0xd6, 0xd7, 0xd8:
		h.kind, h.u = mpExt, 1+1<<(c-0xd4)
	case 0xd9, 0xda, 0xdb:
		sized(mpStr, 1<<(c-0xd9))
	case 0xdc, 0xdd:
		sized(mpArray, 2<<(c-0xdc))
	case 0xde, 0xdf:
		sized(mpMap, 2<<(c-0xde))
	default: // 0xc1 is never used
		return head{}, fmt.Errorf("invalid msgpack byte %#02x", c)
	}
	if err == io.EOF {
		err = io.ErrUnexpectedEOF
	}
	return h, err
}

func (d *mpDecoder) record(r *Record) error {
	h, err := d.head()
	if err != nil {
		return err
	}
	if h.kind != mpMap {
		return errors.New("record is not a msgpack map")
	}
	if h.u > MaxKeys {
		return fmt.Errorf("%d keys, at most %d", h.u, MaxKeys)
	}
	for range h.u {
		kh, err := d.head()
		if err != nil {
			return err
		}
		if kh.kind != mpStr {
			return errors.New("map key is not a string")
		}
		if kh.u > MaxKeyLen {
			return fmt.Errorf("key of %d bytes, at most %d", kh.u, MaxKeyLen)
		}
		k, err := d.read(kh.u)
		if err != nil {
			return err
		}
		if err := setField(r, string(k), mpValue{d}); err != nil {
			return fmt.Errorf("key %q: %w", k, err)
		}
	}
	return nil
}

// read reads n bytes, growing the buffer with the bytes that arrive.
func (d *mpDecoder) read(n uint64) ([]byte, error) {
	const step = 64 << 10
	b := make([]byte, 0, min(n, step))
	for uint64(len(b)) < n {
		k := int(min(n-uint64(len(b)), step))
		b = append(b, make([]byte, k)...)
		if _, err := io.ReadFull(d.br, b[len(b)-k:]); err != nil {
			if err == io.EOF {
				err = io.ErrUnexpectedEOF
			}
			return nil, err
		}
	}
	return b, nil
}

// discard skips n bytes.
func (d *mpDecoder) discard(n uint64) error {
	for n > 0 {
		k := int(min(n, 1<<30))
		m, err := d.br.Discard(k)
		n -= uint64(m)
		if err != nil {
			if err == io.EOF {
				err = io.ErrUnexpectedEOF
			}
			return err
		}
	}
	return nil
}

// mpValue reads the next msgpack value as a key requires.
type mpValue struct{ d *mpDecoder }

func (v mpValue) number() (head, error) {
	h, err := v.d.head()
	if err != nil {
		return h, err
	}
	if h.kind != mpUint && h.kind != mpInt {
		return h, errType
	}
	return h, nil
}

func (v mpValue) int(bits int) (int64, error) {
	h, err := v.number()
	if err != nil {
		return 0, err
	}
	lo, hi := int64(-1)<<(bits-1), int64(uint64(1)<<(bits-1)-1)
	if h.kind == mpUint {
		if h.u > uint64(hi) {
			return 0, errRange
		}
		return int64(h.u), nil
	}
	if h.i < lo || h.i > hi {
		return 0, errRange
	}
	return h.i, nil
}

func (v mpValue) uint(bits int) (uint64, error) {
	h, err := v.number()
	if err != nil {
		return 0, err
	}
	if h.kind == mpInt {
		if h.i < 0 {
			return 0, errRange
		}
		h.u = uint64(h.i)
	}
	if bits < 64 && h.u >= 1<<bits {
		return 0, errRange
	}
	return h.u, nil
}

func (v mpValue) bool() (bool, error) {
	h, err := v.d.head()
	if err != nil {
		return false, err
	}
	if h.kind != mpBool {
		return false, errType
	}
	return h.u == 1, nil
}

// raw reads a str or bin value of at most limit bytes; nil reads as empty.
func (v mpValue) raw(limit uint64) ([]byte, error) {
	h, err := v.d.head()
	if err != nil {
		return nil, err
	}
	switch h.kind {
	case mpNil:
		return nil, nil
	case mpStr, mpBin:
	default:
		return nil, errType
	}
	if h.u > limit {
		return nil, fmt.Errorf("%d bytes, at most %d", h.u, limit)
	}
	return v.d.read(h.u)
}

func (v mpValue) str() (string, error) {
	b, err := v.raw(MaxString)
	return string(b), err
}

func (v mpValue) bytes() ([]byte, error) { return v.raw(MaxBytes) }

// skip skips one value of any shape, iteratively.
func (v mpValue) skip() error {
	for pending := uint64(1); pending > 0; pending-- {
		h, err := v.d.head()
		if err != nil {
			return err
		}
		switch h.kind {
		case mpStr, mpBin, mpExt, mpFloat:
			if err := v.d.discard(h.u); err != nil {
				return err
			}
		case mpArray:
			pending += h.u // at most 2^32 per header; each element is at least one byte
		case mpMap:
			pending += 2 * h.u
		}
	}
	return nil
}
