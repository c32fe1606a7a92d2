package record

import (
	"bufio"
	"encoding/base64"
	"io"
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
	bw := bufio.NewWriterSize(w, 64<<10)
	e := encoder{json: jsonLines}
	if !jsonLines {
		e.mp = msgp.NewEncoder(bw) // straight into the buffer; a large payload goes past it
	}
	return &Writer{bw: bw, e: e}
}

// Write encodes one record, with the keys of its kind and name (the
// package comment's table), and sets r.V to Version.
func (w *Writer) Write(r *Record) error {
	r.V = Version
	if !w.e.json {
		return w.e.record(r)
	}
	w.e.b = w.e.b[:0]
	w.e.record(r)
	w.e.b = append(w.e.b, '\n')
	_, err := w.bw.Write(w.e.b)
	if cap(w.e.b) > 1<<20 {
		w.e.b = nil // do not pin the buffer of one large payload
	}
	return err
}

// Flush writes buffered records to the underlying writer.
func (w *Writer) Flush() error { return w.bw.Flush() }

// Close flushes buffered records. It does not close the underlying writer.
func (w *Writer) Close() error { return w.bw.Flush() }

// encoder writes one record in either form from the schema tables, so
// both forms carry the same keys in the same order: msgpack through the
// library's Encoder, JSON appended to b.
type encoder struct {
	json bool
	b    []byte           // JSON: the record so far
	mp   *msgpack.Encoder // msgpack
	n    int              // JSON: keys written
	err  error            // msgpack: the first write error
}

// record encodes r; "v" is always Version.
func (e *encoder) record(r *Record) error {
	keys := keyList(r)
	n := 0
	for _, i := range keys {
		if present(r, i) {
			n++
		}
	}
	e.n, e.err = 0, nil
	if e.json {
		e.b = append(e.b, '{')
	} else {
		e.check(e.mp.EncodeMapLen(n))
	}
	for _, i := range keys {
		f := &fields[i]
		switch p := f.ptr(r).(type) {
		case *int: // v
			e.int(f.key, Version)
		case *int64:
			e.int(f.key, *p)
		case *exitCode:
			if p.HasExitCode {
				e.int(f.key, int64(p.ExitCode))
			}
		case *uint64:
			e.uint(f.key, *p)
		case *uint32:
			e.uint(f.key, uint64(*p))
		case *uint16:
			e.uint(f.key, uint64(*p))
		case *bool:
			e.bool(f.key, *p)
		case *string:
			e.str(f.key, *p)
		case *[]byte:
			e.bytes(f.key, *p)
		default:
			panic("record: field " + f.key + " of a type the encoder does not know")
		}
	}
	if e.json {
		e.b = append(e.b, '}')
	}
	return e.err
}

func (e *encoder) check(err error) {
	if e.err == nil {
		e.err = err
	}
}

func (e *encoder) key(k string) {
	if !e.json {
		e.check(e.mp.EncodeString(k))
		return
	}
	if e.n > 0 {
		e.b = append(e.b, ',')
	}
	e.n++
	e.b = append(e.b, '"')
	e.b = append(e.b, k...) // keys are plain ASCII
	e.b = append(e.b, '"', ':')
}

func (e *encoder) int(k string, v int64) {
	e.key(k)
	if e.json {
		e.b = strconv.AppendInt(e.b, v, 10)
		return
	}
	e.check(e.mp.EncodeInt(v))
}

func (e *encoder) uint(k string, v uint64) {
	e.key(k)
	if e.json {
		e.b = strconv.AppendUint(e.b, v, 10)
		return
	}
	e.check(e.mp.EncodeUint(v))
}

func (e *encoder) bool(k string, v bool) {
	e.key(k)
	if e.json {
		e.b = strconv.AppendBool(e.b, v)
		return
	}
	e.check(e.mp.EncodeBool(v))
}

func (e *encoder) str(k, v string) {
	e.key(k)
	if e.json {
		e.b = appendJSONString(e.b, v)
		return
	}
	e.check(e.mp.EncodeString(v))
}

// bytes writes v as bin (never nil: an empty payload is an empty bin) or
// a base64 string.
func (e *encoder) bytes(k string, v []byte) {
	e.key(k)
	if e.json {
		e.b = append(e.b, '"')
		e.b = base64.StdEncoding.AppendEncode(e.b, v)
		e.b = append(e.b, '"')
		return
	}
	e.check(e.mp.EncodeBytesLen(len(v)))
	_, err := e.mp.Writer().Write(v)
	e.check(err)
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
