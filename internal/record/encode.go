package record

import (
	"bufio"
	"encoding/base64"
	"encoding/binary"
	"io"
	"strconv"
	"unicode/utf8"
)

// Writer encodes records to a stream, msgpack maps or JSON lines, through
// a buffer: call Flush when a reader should see what was written so far.
type Writer struct {
	bw *bufio.Writer
	e  encoder
}

// NewWriter returns a Writer to w; jsonLines selects JSON lines.
func NewWriter(w io.Writer, jsonLines bool) *Writer {
	return &Writer{bw: bufio.NewWriterSize(w, 64<<10), e: encoder{json: jsonLines, deferTail: true}}
}

// Write encodes one record, with the keys of its kind and name, and sets
// r.V to Version.
func (w *Writer) Write(r *Record) error {
	r.V = Version
	w.e.b, w.e.tail = w.e.b[:0], nil
	w.e.record(r, Version)
	if w.e.json {
		w.e.b = append(w.e.b, '\n')
	}
	_, err := w.bw.Write(w.e.b)
	if err == nil && w.e.tail != nil {
		_, err = w.bw.Write(w.e.tail) // the payload, without copying it into b first
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

// encoder appends one record in either form. Both forms come from the
// same calls, so they carry the same keys in the same order.
type encoder struct {
	b    []byte
	tail []byte // msgpack: the bytes of the last value, written after b
	// deferTail lets tail outlive end (Writer.Write writes it); otherwise
	// end appends it to b.
	deferTail bool
	json      bool
	n         int // keys written in this record
	at        int // msgpack: index of the map header byte
}

// record appends r. The key lists here are the schema (doc.go).
func (e *encoder) record(r *Record, v int) {
	e.begin()
	e.int("v", int64(v))
	e.str("kind", r.Kind)
	e.int("seq", r.Seq)
	e.int("at_ns", r.AtNS)
	switch r.Kind {
	case KindEntry:
		e.str("tag", r.Tag)
		e.uint("msg_type", uint64(r.MsgType))
		e.bool("crc_ok", r.CRCOK)
		e.bytes("payload", r.Payload)
	case KindEffect:
		e.str("effect", r.Effect)
		e.str("tag", r.Tag)
		e.uint("msg_type", uint64(r.MsgType))
		switch r.Effect {
		case EffectKill:
			e.uint("count", r.Count)
			if r.HasExitCode {
				e.int("exit_code", int64(r.ExitCode))
			}
		case EffectSnapshotRequest:
			e.uint("request_id", uint64(r.RequestID))
			e.uint("req_kind", uint64(r.ReqKind))
			e.str("req_tag", r.ReqTag)
		case EffectKernelOpRequest:
			e.uint("request_id", uint64(r.RequestID))
			e.str("req_tag", r.ReqTag)
			e.bytes("request", r.Request)
		case EffectKernPhysBase, EffectKernVirtKASLR:
			e.uint("value", r.Value)
		case EffectScenarioStart:
			e.uint("start_ns", r.StartNS)
		case EffectWatchdogPause:
			e.uint("pause_ns", r.PauseNS)
		case EffectWatchdogResume:
			e.uint("pause_ns", r.PauseNS)
			e.uint("pause_total_ns", r.PauseTotalNS)
		case EffectWatchdogDeadline:
			e.uint("deadline_ns", r.DeadlineNS)
		case EffectCurrentStep:
			e.uint("step", uint64(r.Step))
		}
	case KindDiag:
		e.str("diag", r.Diag)
		e.str("message", r.Message)
		switch {
		case IsRefusal(r.Diag): // unknown_type and the other gate refusals
			e.str("tag", r.Tag)
			e.uint("msg_type", uint64(r.MsgType))
			e.bool("crc_ok", r.CRCOK)
			e.uint("length", uint64(r.Length))
		case r.Diag == DiagKASLRDivergence:
			e.str("tag", r.Tag)
			e.uint("msg_type", uint64(r.MsgType))
			e.uint("value", r.Value)
		case r.Diag == DiagCRCMismatch, r.Diag == DiagPadNonzero:
			e.str("tag", r.Tag)
			e.uint("msg_type", uint64(r.MsgType))
			e.int("offset", r.Offset)
			e.uint("length", uint64(r.Length))
			e.uint("pad", uint64(r.Pad))
		case r.Diag == DiagResidualOverflow:
			e.int("offset", r.Offset)
			e.int("dropped", r.Dropped)
		default: // oversized, truncated_tail, and names from later versions
			e.str("tag", r.Tag)
			e.uint("msg_type", uint64(r.MsgType))
			e.int("offset", r.Offset)
			e.uint("length", uint64(r.Length))
			e.uint("pad", uint64(r.Pad))
			e.int("dropped", r.Dropped)
		}
	}
	e.end()
}

func (e *encoder) begin() {
	e.n = 0
	e.at = len(e.b)
	if e.json {
		e.b = append(e.b, '{')
	} else {
		e.b = append(e.b, 0x80) // fixmap; the count is patched in end
	}
}

func (e *encoder) end() {
	if e.tail != nil && !e.deferTail {
		e.b, e.tail = append(e.b, e.tail...), nil
	}
	if e.json {
		e.b = append(e.b, '}')
		return
	}
	if e.n > 15 {
		panic("record: more than 15 keys in a record") // the schema has at most 12
	}
	e.b[e.at] = 0x80 | byte(e.n)
}

func (e *encoder) key(k string) {
	if e.tail != nil { // a key after a deferred value: not in this schema, but stay correct
		e.b, e.tail = append(e.b, e.tail...), nil
	}
	if e.json {
		if e.n > 0 {
			e.b = append(e.b, ',')
		}
		e.b = append(e.b, '"')
		e.b = append(e.b, k...) // keys are plain ASCII
		e.b = append(e.b, '"', ':')
	} else {
		e.b = appendMsgpackStr(e.b, k)
	}
	e.n++
}

func (e *encoder) int(k string, v int64) {
	e.key(k)
	if e.json {
		e.b = strconv.AppendInt(e.b, v, 10)
		return
	}
	if v >= 0 {
		e.b = appendMsgpackUint(e.b, uint64(v))
		return
	}
	switch {
	case v >= -32:
		e.b = append(e.b, byte(v))
	case v >= -128:
		e.b = append(e.b, 0xd0, byte(v))
	case v >= -32768:
		e.b = binary.BigEndian.AppendUint16(append(e.b, 0xd1), uint16(v))
	case v >= -1<<31:
		e.b = binary.BigEndian.AppendUint32(append(e.b, 0xd2), uint32(v))
	default:
		e.b = binary.BigEndian.AppendUint64(append(e.b, 0xd3), uint64(v))
	}
}

func (e *encoder) uint(k string, v uint64) {
	e.key(k)
	if e.json {
		e.b = strconv.AppendUint(e.b, v, 10)
		return
	}
	e.b = appendMsgpackUint(e.b, v)
}

func (e *encoder) bool(k string, v bool) {
	e.key(k)
	switch {
	case e.json && v:
		e.b = append(e.b, "true"...)
	case e.json:
		e.b = append(e.b, "false"...)
	case v:
		e.b = append(e.b, 0xc3)
	default:
		e.b = append(e.b, 0xc2)
	}
}

func (e *encoder) str(k, v string) {
	e.key(k)
	if e.json {
		e.b = appendJSONString(e.b, v)
	} else {
		e.b = appendMsgpackStr(e.b, v)
	}
}

func (e *encoder) bytes(k string, v []byte) {
	e.key(k)
	if e.json {
		e.b = append(e.b, '"')
		e.b = base64.StdEncoding.AppendEncode(e.b, v)
		e.b = append(e.b, '"')
		return
	}
	n := len(v)
	switch {
	case n <= 0xff:
		e.b = append(e.b, 0xc4, byte(n))
	case n <= 0xffff:
		e.b = binary.BigEndian.AppendUint16(append(e.b, 0xc5), uint16(n))
	default:
		e.b = binary.BigEndian.AppendUint32(append(e.b, 0xc6), uint32(n))
	}
	if n >= 512 {
		e.tail = v // written by Writer.Write after b, or appended by the next key or end
		return
	}
	e.b = append(e.b, v...)
}

func appendMsgpackUint(b []byte, v uint64) []byte {
	switch {
	case v <= 0x7f:
		return append(b, byte(v))
	case v <= 0xff:
		return append(b, 0xcc, byte(v))
	case v <= 0xffff:
		return binary.BigEndian.AppendUint16(append(b, 0xcd), uint16(v))
	case v <= 0xffffffff:
		return binary.BigEndian.AppendUint32(append(b, 0xce), uint32(v))
	}
	return binary.BigEndian.AppendUint64(append(b, 0xcf), v)
}

func appendMsgpackStr(b []byte, s string) []byte {
	n := len(s)
	switch {
	case n <= 31:
		b = append(b, 0xa0|byte(n))
	case n <= 0xff:
		b = append(b, 0xd9, byte(n))
	case n <= 0xffff:
		b = binary.BigEndian.AppendUint16(append(b, 0xda), uint16(n))
	default:
		b = binary.BigEndian.AppendUint32(append(b, 0xdb), uint32(n))
	}
	return append(b, s...)
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
