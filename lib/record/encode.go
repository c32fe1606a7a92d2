package record

import (
	"bufio"
	"io"
	"slices"
	"strconv"
	"unicode/utf8"

	"github.com/vmihailenco/msgpack/v5"

	"github.com/ktstr-go/ktstr/internal/msgp"
)

// Writer encodes records to a stream, msgpack maps or JSON lines, through
// a buffer: call Flush when a reader should see what was written so far.
type Writer struct {
	bw *bufio.Writer
	e  encoder
}

// NewWriter returns a Writer to w; jsonLines selects JSON lines.
func NewWriter(w io.Writer, jsonLines bool) *Writer {
	wr := &Writer{bw: bufio.NewWriterSize(w, 64<<10), e: encoder{json: jsonLines}}
	if !jsonLines {
		wr.e.mp = msgp.NewEncoder(&wr.e.b)
	}
	return wr
}

// Write encodes one record, with the keys of its kind and name (the
// package comment's table), and sets r.V to Version.
func (w *Writer) Write(r *Record) error {
	r.V = Version
	w.e.b, w.e.tail = w.e.b[:0], nil
	w.e.record(r)
	if w.e.json {
		w.e.b = append(w.e.b, '\n')
	}
	_, err := w.bw.Write(w.e.b)
	if err == nil && w.e.tail != nil {
		_, err = w.bw.Write(w.e.tail) // a large payload, without copying it into b first
	}
	w.e.tail = nil
	if cap(w.e.b) > 1<<20 {
		w.e.b = nil // do not pin the buffer of one large payload
	}
	return err
}

// Flush writes buffered records to the underlying writer.
func (w *Writer) Flush() error { return w.bw.Flush() }

// Close flushes buffered records. It does not close the underlying writer.
func (w *Writer) Close() error { return w.bw.Flush() }

// buffer is a record being encoded: the library's Encoder appends to it
// (which cannot fail), and the Writer writes it out whole.
type buffer []byte

func (b *buffer) Write(p []byte) (int, error) {
	*b = append(*b, p...)
	return len(p), nil
}

func (b *buffer) WriteByte(c byte) error {
	*b = append(*b, c)
	return nil
}

// encoder writes one record in either form from the schema tables, so
// both forms carry the same keys in the same order: msgpack through the
// library's Encoder, JSON by hand, both appended to b.
type encoder struct {
	json bool
	b    buffer           // the record so far
	tail []byte           // msgpack: a large byte string that follows b
	mp   *msgpack.Encoder // msgpack: appends to b
	n    int              // JSON: keys written

	// The key list of the last record, for the next of the same kind
	// and name (most records are log entries, one after the other).
	kind, name string
	keys       []int
}

// keyBytes are the fields' keys encoded once: by the library's Encoder
// (msgpack) and as a JSON member name.
var keyBytes [len(fields)]struct{ mp, json []byte }

func init() {
	for i, f := range fields {
		var b buffer
		msgp.NewEncoder(&b).EncodeString(f.key)
		keyBytes[i].mp = b
		keyBytes[i].json = []byte(`"` + f.key + `":`) // keys are plain ASCII
	}
}

// record encodes r; "v" is always Version.
func (e *encoder) record(r *Record) {
	keys := e.keyList(r)
	n := len(keys)
	if !r.HasExitCode && slices.Contains(keys, iExitCode) {
		n--
	}
	e.n = 0
	if e.json {
		e.b = append(e.b, '{')
	} else {
		e.mp.EncodeMapLen(n)
	}
	for _, i := range keys {
		switch p := fields[i].ptr(r).(type) {
		case *int: // v
			e.int(i, Version)
		case *int64:
			e.int(i, *p)
		case *exitCode:
			if p.HasExitCode {
				e.int(i, int64(p.ExitCode))
			}
		case *uint64:
			e.uint(i, *p)
		case *uint32:
			e.uint(i, uint64(*p))
		case *uint16:
			e.uint(i, uint64(*p))
		case *bool:
			e.bool(i, *p)
		case *string:
			e.str(i, *p)
		case *[]byte:
			e.bytes(i, *p)
		default:
			panic("record: field " + fields[i].key + " of a type the encoder does not know")
		}
	}
	if e.json {
		e.b = append(e.b, '}')
	}
}

// keyList is keyList(r), remembered for the next record of the same
// kind and name.
func (e *encoder) keyList(r *Record) []int {
	name := r.Effect
	if r.Kind == KindDiag {
		name = r.Diag
	}
	if e.keys == nil || r.Kind != e.kind || name != e.name {
		e.kind, e.name, e.keys = r.Kind, name, keyList(r)
	}
	return e.keys
}

// key writes the key of fields[i].
func (e *encoder) key(i int) {
	if e.tail != nil { // a key after a large byte string: not in this schema, but stay correct
		e.b, e.tail = append(e.b, e.tail...), nil
	}
	if !e.json {
		e.b = append(e.b, keyBytes[i].mp...)
		return
	}
	if e.n > 0 {
		e.b = append(e.b, ',')
	}
	e.n++
	e.b = append(e.b, keyBytes[i].json...)
}

func (e *encoder) int(i int, v int64) {
	e.key(i)
	if e.json {
		e.b = strconv.AppendInt(e.b, v, 10)
		return
	}
	e.mp.EncodeInt(v)
}

func (e *encoder) uint(i int, v uint64) {
	e.key(i)
	if e.json {
		e.b = strconv.AppendUint(e.b, v, 10)
		return
	}
	e.mp.EncodeUint(v)
}

func (e *encoder) bool(i int, v bool) {
	e.key(i)
	if e.json {
		e.b = strconv.AppendBool(e.b, v)
		return
	}
	e.mp.EncodeBool(v)
}

func (e *encoder) str(i int, v string) {
	e.key(i)
	if e.json {
		e.b = appendJSONString(e.b, v)
		return
	}
	e.mp.EncodeString(v)
}

// bytes writes v as bin (never nil: an empty payload is an empty bin) or
// a base64 string.
func (e *encoder) bytes(i int, v []byte) {
	e.key(i)
	if e.json {
		e.b = append(e.b, '"')
		e.b = appendBase64(e.b, v)
		e.b = append(e.b, '"')
		return
	}
	e.mp.EncodeBytesLen(len(v))
	if len(v) >= 512 {
		e.tail = v // written by Writer.Write after b, or appended by the next key
		return
	}
	e.b = append(e.b, v...)
}

// appendJSONString appends s as a JSON string. Bytes that are not valid
// UTF-8 become U+FFFD, as encoding/json does, so every line is valid JSON.
func appendJSONString(b []byte, s string) []byte {
	const hex = "0123456789abcdef"
	b = append(b, '"')
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			switch {
			case c == '"' || c == '\\':
				b = append(b, '\\', c)
			case c >= 0x20 && c != 0x7f:
				b = append(b, c)
			case c == '\n':
				b = append(b, '\\', 'n')
			case c == '\r':
				b = append(b, '\\', 'r')
			case c == '\t':
				b = append(b, '\\', 't')
			default:
				b = append(b, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
			}
			i++
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && size == 1:
			b = append(b, `\ufffd`...)
		case r == '\u2028' || r == '\u2029': // valid JSON, but not in JavaScript strings
			b = append(b, '\\', 'u', '2', '0', '2', hex[r&0xf])
		default:
			b = append(b, s[i:i+size]...)
		}
		i += size
	}
	return append(b, '"')
}
