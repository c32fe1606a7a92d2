package record

import (
	"bufio"
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"slices"
	"strconv"

	"github.com/ktstr-go/ktstr/internal/msgp"
	"github.com/ktstr-go/ktstr/lib/wire"
)

// Limits a Reader enforces on what it reads.
const (
	MaxDepth      = 32                   // nesting of maps and arrays in a record (itself one)
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

// limits are a record's bounds in the msgpack layer. The entries of a
// skipped array or map are not counted: each costs the bytes it takes
// and nothing is kept of it; the record's own map is bounded by MaxKeys.
var limits = msgp.Limits{Depth: MaxDepth, Str: MaxString, Bin: MaxBytes}

// Indexes in fields of the byte strings, which ReadShared reuses.
var (
	iPayload = fieldIndex["payload"]
	iRequest = fieldIndex["request"]
)

// Reader decodes a record stream in either form.
type Reader struct {
	br   *bufio.Reader
	mp   *msgp.Decoder // reads br
	form byte          // 0 not yet known, 'j' JSON lines, 'm' msgpack
	n    int64
	line []byte // JSON: the current record
	err  error  // sticky
	// ReadShared's record, whose Payload and Request buffers it reuses.
	shared Record
}

// NewReader returns a Reader from r.
func NewReader(r io.Reader) *Reader {
	br := bufio.NewReaderSize(r, 64<<10)
	return &Reader{br: br, mp: msgp.NewStream(br, limits)}
}

// JSON reports whether the stream is in the JSON-lines form; it is known
// once Read has been called (false before). A filter writes in the form
// it read.
func (rd *Reader) JSON() bool { return rd.form == 'j' }

// Buffered returns how many bytes the Reader has read ahead but not yet
// decoded. When it is 0 the next Read may wait for its input: a filter
// flushes its Writer then, so that the pipeline streams without flushing
// every record.
func (rd *Reader) Buffered() int { return rd.br.Buffered() }

// Read returns the next record. It returns io.EOF only at a clean end of
// stream (between records); any other error is an *Error and every later
// call returns it again.
func (rd *Reader) Read() (*Record, error) {
	r := new(Record)
	return r, rd.readInto(r)
}

// ReadShared is Read without an allocation per record: the Record it
// returns, and the bytes of its Payload and Request, belong to the
// Reader and are overwritten by the next call. A caller that keeps a
// record, or any of its byte slices, past the next call copies it.
func (rd *Reader) ReadShared() (*Record, error) {
	pay, req := rd.shared.Payload, rd.shared.Request
	if cap(pay) > 1<<20 {
		pay = nil // do not pin the buffer of one large payload
	}
	if cap(req) > 1<<20 {
		req = nil
	}
	rd.shared = Record{Payload: pay[:0], Request: req[:0]}
	if err := rd.readInto(&rd.shared); err != nil {
		return nil, err
	}
	return &rd.shared, nil
}

// readInto decodes the next record into r, whose Payload and Request may
// hold buffers to reuse.
func (rd *Reader) readInto(r *Record) error {
	if rd.err != nil {
		return rd.err
	}
	err := rd.read(r)
	if err != nil {
		if err != io.EOF {
			err = &Error{N: rd.n, Err: err}
		}
		rd.err = err
		return err
	}
	rd.n++
	return nil
}

func (rd *Reader) read(r *Record) error {
	if rd.form == 0 {
		c, err := rd.skipSpace()
		if err != nil {
			return err
		}
		rd.form = 'm'
		if c == '{' {
			rd.form = 'j'
		}
	}
	var known uint64
	if rd.form == 'j' {
		b, keys, err := rd.scanJSON()
		if err != nil {
			return err
		}
		if known, err = decodeJSON(b, keys, r); err != nil {
			return err
		}
	} else {
		if _, err := rd.br.Peek(1); err != nil {
			return err // io.EOF between records
		}
		var err error
		known, err = decodeMsgpack(rd.mp, r)
		rd.mp.Sync() // rd.br is read between records
		if err != nil {
			return err
		}
	}
	// A byte string the record does not carry is nil, whatever buffer r
	// brought along to be reused.
	if known&(1<<iPayload) == 0 {
		r.Payload = nil
	}
	if known&(1<<iRequest) == 0 {
		r.Request = nil
	}
	if r.V != Version {
		return fmt.Errorf("schema version %d, this build reads %d", r.V, Version)
	}
	return nil
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

// skipBufferedSpace discards the white space already buffered (the
// newline after a record), without waiting for more, so that Buffered
// says whether another record is waiting.
func (rd *Reader) skipBufferedSpace() {
	for rd.br.Buffered() > 0 {
		c, _ := rd.br.Peek(1)
		if c[0] != ' ' && c[0] != '\n' && c[0] != '\r' && c[0] != '\t' {
			return
		}
		rd.br.Discard(1)
	}
}

// scanJSON returns the bytes of the next top-level JSON object and how
// many keys it has; json.Unmarshal validates the rest. A record that
// would exceed MaxJSONRecord is an error before it is read.
func (rd *Reader) scanJSON() ([]byte, int, error) {
	c, err := rd.skipSpace()
	if err != nil {
		return nil, 0, err
	}
	if c != '{' {
		return nil, 0, fmt.Errorf("JSON record starts with %q, want '{'", c)
	}
	b := rd.line[:0]
	var sc jsonScan
	for {
		chunk, err := rd.br.Peek(max(rd.br.Buffered(), 1))
		if len(chunk) == 0 {
			if err == io.EOF {
				err = io.ErrUnexpectedEOF
			}
			return nil, 0, err
		}
		i, done := 0, false
		for ; i < len(chunk) && !done; i++ {
			done = sc.step(chunk[i])
		}
		if len(b)+i > MaxJSONRecord {
			return nil, 0, fmt.Errorf("JSON record longer than %d bytes", MaxJSONRecord)
		}
		b = append(b, chunk[:i]...)
		rd.br.Discard(i)
		if done {
			if cap(b) <= 1<<20 {
				rd.line = b
			}
			rd.skipBufferedSpace()
			return b, sc.keys, nil
		}
	}
}

// jsonScan follows JSON text a byte at a time, by counting braces and
// brackets outside strings: where the outermost value ends, and how many
// keys the outermost object has (the colons one level deep).
type jsonScan struct {
	depth      int
	inStr, esc bool
	keys       int
}

// step takes the next byte and reports whether it ends the outermost value.
func (s *jsonScan) step(c byte) bool {
	switch {
	case s.esc:
		s.esc = false
	case s.inStr:
		switch c {
		case '\\':
			s.esc = true
		case '"':
			s.inStr = false
		}
	case c == '"':
		s.inStr = true
	case c == '{' || c == '[':
		s.depth++
	case c == '}' || c == ']':
		s.depth--
		return s.depth == 0
	case c == ':' && s.depth == 1:
		s.keys++
	}
	return false
}

// jsonKeys counts the keys of the JSON object b.
func jsonKeys(b []byte) int {
	var sc jsonScan
	for _, c := range b {
		if sc.step(c) {
			break
		}
	}
	return sc.keys
}

// decodeJSON decodes one JSON object of keys keys into r, by the rules of
// the msgpack form: keys match exactly (unlike encoding/json's struct
// decoding), a key given twice is an error, unknown keys are ignored.
// It returns the fields it set, a bit each by index in fields.
func decodeJSON(b []byte, keys int, r *Record) (uint64, error) {
	if keys > MaxKeys {
		return 0, fmt.Errorf("%d keys, at most %d", keys, MaxKeys)
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal(b, &m); err != nil {
		return 0, err
	}
	if len(m) != keys {
		return 0, duplicateJSON(b)
	}
	var known uint64
	for k, raw := range m {
		i, ok := fieldIndex[k]
		if !ok {
			continue // unknown keys are ignored (forward compatibility)
		}
		known |= 1 << i
		if err := set(fields[i].ptr(r), jsonValue(raw)); err != nil {
			return 0, fmt.Errorf("key %q: %w", k, err)
		}
	}
	return known, nil
}

// duplicateJSON names the first key the object b carries twice.
func duplicateJSON(b []byte) error {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.Token() // the opening brace
	var s seen
	for dec.More() {
		t, err := dec.Token()
		if err != nil {
			return err
		}
		k, _ := t.(string)
		if _, err := s.add([]byte(k)); err != nil {
			return err
		}
		var raw json.RawMessage
		if err := dec.Decode(&raw); err != nil {
			return err
		}
	}
	return errors.New("a key given twice")
}

// decodeMsgpack decodes one msgpack map into r and returns the fields it
// set, a bit each by index in fields.
func decodeMsgpack(d *msgp.Decoder, r *Record) (uint64, error) {
	s, err := decodeMsgpackKeys(d, r)
	return s.known, err
}

func decodeMsgpackKeys(d *msgp.Decoder, r *Record) (seen, error) {
	var s seen
	f, _, err := d.Peek()
	if err != nil {
		return s, err
	}
	if f != msgp.Map {
		return s, fmt.Errorf("record is not a msgpack map (want a map, got %s)", f)
	}
	n, err := d.MapLen()
	if err != nil {
		return s, err
	}
	if n > MaxKeys {
		return s, fmt.Errorf("%d keys, at most %d", n, MaxKeys)
	}
	for range n {
		k, err := d.Key(MaxKeyLen)
		if err != nil {
			if te := (*msgp.TypeError)(nil); errors.As(err, &te) {
				return s, errors.New("map key is not a string")
			}
			return s, err
		}
		i, err := s.add(k)
		if err != nil {
			return s, err
		}
		if i < 0 {
			if err := d.Skip(); err != nil {
				return s, err
			}
			continue
		}
		if err := set(fields[i].ptr(r), mpValue{d}); err != nil {
			return s, fmt.Errorf("key %q: %w", fields[i].key, err) // k's bytes are gone: set read on
		}
	}
	d.Leave()
	return s, nil
}

// seen is the keys of one record so far: a key given twice, known or not,
// is an error (ktstr-records(5)), so that two readers can never see two
// different records.
type seen struct {
	known   uint64   // by index in fields
	unknown []string // at most MaxKeys
	next    int      // the field after the last known one
}

// add notes key k and returns its index in fields, -1 if unknown. The
// field after the last one is tried first: fields is in the order of an
// entry's keys, and most records are entries.
func (s *seen) add(k []byte) (int, error) {
	i, ok := s.next, s.next < len(fields) && string(k) == fields[s.next].key
	if !ok {
		i, ok = fieldIndex[string(k)]
	}
	switch {
	case !ok && !slices.Contains(s.unknown, string(k)):
		if len(s.unknown) == MaxKeys {
			return 0, fmt.Errorf("more than %d keys", MaxKeys)
		}
		s.unknown = append(s.unknown, string(k))
		return -1, nil
	case !ok || s.known&(1<<i) != 0:
		return 0, fmt.Errorf("duplicate key %q", k)
	}
	s.known |= 1 << i
	s.next = i + 1
	return i, nil
}

// value is one decoded value of either form, read as its key requires.
type value interface {
	int(bits int) (int64, error)
	uint(bits int) (uint64, error)
	bool() (bool, error)
	str() (string, error)
	bytes(dst []byte) ([]byte, error) // into dst[:0] when it has room
}

// set stores v in the field p points to (fields' ptr), as its type says.
func set(p any, v value) error {
	var err error
	switch p := p.(type) {
	case *int:
		var x int64
		x, err = v.int(32)
		*p = int(x)
	case *int64:
		*p, err = v.int(64)
	case *exitCode:
		var x int64
		x, err = v.int(32)
		p.ExitCode, p.HasExitCode = int32(x), err == nil
	case *uint64:
		*p, err = v.uint(64)
	case *uint32:
		var x uint64
		x, err = v.uint(32)
		*p = uint32(x)
	case *uint16:
		var x uint64
		x, err = v.uint(16)
		*p = uint16(x)
	case *bool:
		*p, err = v.bool()
	case *string:
		*p, err = v.str()
	case *[]byte:
		*p, err = v.bytes(*p)
	default:
		panic("record: a field of a type the decoder does not know")
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

func (j jsonValue) bytes(dst []byte) ([]byte, error) {
	if string(j) == "null" {
		return nil, nil
	}
	if len(j) < 2 || j[0] != '"' || j[len(j)-1] != '"' {
		return nil, errType
	}
	if dst == nil {
		dst = []byte{}
	}
	b, err := base64.StdEncoding.AppendDecode(dst[:0], j[1:len(j)-1])
	if err != nil {
		return nil, err
	}
	if len(b) > MaxBytes {
		return nil, fmt.Errorf("%d bytes, at most %d", len(b), MaxBytes)
	}
	return b, nil
}

// mpValue reads the next msgpack value as a key requires.
type mpValue struct{ d *msgp.Decoder }

// typeErr turns the layer's wrong-family error into this package's.
func typeErr(err error) error {
	if err == nil {
		return nil
	}
	if te := (*msgp.TypeError)(nil); errors.As(err, &te) {
		if te.Got == msgp.Invalid {
			return fmt.Errorf("invalid msgpack byte %#02x", te.Code)
		}
		return errType
	}
	return err
}

func (v mpValue) int(bits int) (int64, error) {
	i, err := v.d.Int()
	if err != nil {
		return 0, typeErr(err)
	}
	x, ok := i.Int(bits)
	if !ok {
		return 0, errRange
	}
	return x, nil
}

func (v mpValue) uint(bits int) (uint64, error) {
	i, err := v.d.Int()
	if err != nil {
		return 0, typeErr(err)
	}
	x, ok := i.Uint(bits)
	if !ok {
		return 0, errRange
	}
	return x, nil
}

func (v mpValue) bool() (bool, error) {
	b, err := v.d.Bool()
	return b, typeErr(err)
}

// str reads a str or bin value; nil reads as empty. The names a record
// carries (kinds, tags, effects, diagnostics) are the same few strings
// over and over: those come from a fixed table rather than a new string
// each.
func (v mpValue) str() (string, error) {
	b, err := v.d.StrView()
	if err != nil {
		return "", typeErr(err)
	}
	if s, ok := names[string(b)]; ok {
		return s, nil
	}
	return string(b), nil
}

// names are the strings str returns without allocating: every kind,
// effect, diagnostic and known tag. The table is fixed: nothing a stream
// carries is added to it.
var names = func() map[string]string {
	m := map[string]string{}
	for _, l := range [][]string{{KindEntry, KindEffect, KindDiag}, Effects, Diags} {
		for _, s := range l {
			m[s] = s
		}
	}
	for _, t := range wire.Types {
		m[t.Type.String()] = t.Type.String()
	}
	return m
}()

func (v mpValue) bytes(dst []byte) ([]byte, error) {
	b, err := v.d.AppendBin(dst)
	return b, typeErr(err)
}
