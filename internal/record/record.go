// Package record is the record stream between ktstr-dispatch and
// ktstr-verdict (ktstr-records(5)): one record per verdict entry, side
// effect or diagnostic, as msgpack maps or JSON lines with the same keys.
//
// Every record has "v" (the schema version), "kind" ("entry", "effect" or
// "diag") and "seq" (the 0-based index of the frame in the input it comes
// from, counting every complete frame the assembler produced; a diagnostic
// that is not about one frame carries the index the next frame would get).
// "at_ns" is when the frame was read, in nanoseconds since the reader
// started; it is the only field that differs between two replays of the
// same recording.
package record

import (
	"bufio"
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"reflect"
	"strconv"

	"github.com/vmihailenco/msgpack/v5"
)

// Version is the schema version written in every record's "v".
const Version = 1

// Record kinds.
const (
	KindEntry  = "entry"
	KindEffect = "effect"
	KindDiag   = "diag"
)

// Effect names.
const (
	EffectKill             = "kill"
	EffectSysRdy           = "sys_rdy"
	EffectSchedSwap        = "sched_swap"
	EffectSnapshotRequest  = "snapshot_request"
	EffectKernelOpRequest  = "kernel_op_request"
	EffectKernPhysBase     = "kern_phys_base"
	EffectKernVirtKASLR    = "kern_virt_kaslr"
	EffectScenarioStart    = "scenario_start"
	EffectWatchdogPause    = "watchdog_pause"
	EffectWatchdogResume   = "watchdog_resume"
	EffectWatchdogDeadline = "watchdog_deadline"
	EffectCurrentStep      = "current_step"
)

// Diagnostic names.
const (
	DiagUnknownType      = "unknown_type"
	DiagCRCMismatch      = "crc_mismatch"
	DiagPadNonzero       = "pad_nonzero"
	DiagOversized        = "oversized"
	DiagResidualOverflow = "residual_overflow"
	DiagTruncatedTail    = "truncated_tail"
	DiagKASLRDivergence  = "kaslr_divergence"
)

// Record is one record. Which fields are meaningful depends on Kind; the
// encoders write only those (see ktstr-records(5)).
type Record struct {
	V    int    `json:"v"`
	Kind string `json:"kind"`
	Seq  int64  `json:"seq"`
	AtNS int64  `json:"at_ns"`

	// entry; also msg_type/tag/crc_ok/length on diagnostics about a frame
	Tag     string `json:"tag,omitempty"`
	MsgType uint32 `json:"msg_type"`
	CRCOK   bool   `json:"crc_ok"`
	Payload []byte `json:"payload,omitempty"`

	// effect
	Effect     string `json:"effect,omitempty"`
	Count      uint64 `json:"count,omitempty"`       // kill: kill events so far
	ExitCode   int32  `json:"exit_code,omitempty"`   // kill: the SCDX exit code
	RequestID  uint32 `json:"request_id,omitempty"`  // snapshot/kernel-op requests
	ReqKind    uint32 `json:"req_kind,omitempty"`    // snapshot request kind
	ReqTag     string `json:"req_tag,omitempty"`     // snapshot/kernel-op request tag
	Request    []byte `json:"request,omitempty"`     // kernel-op request payload, as received
	Value      uint64 `json:"value,omitempty"`       // kern_phys_base, kern_virt_kaslr
	StartNS    uint64 `json:"start_ns,omitempty"`    // scenario_start
	DeadlineNS uint64 `json:"deadline_ns,omitempty"` // watchdog_deadline, since run start
	PauseNS    uint64 `json:"pause_ns,omitempty"`    // watchdog_pause (start), watchdog_resume (length)
	Step       uint16 `json:"step,omitempty"`        // current_step

	// diag
	Diag    string `json:"diag,omitempty"`
	Offset  int64  `json:"offset,omitempty"`
	Length  uint32 `json:"length,omitempty"`
	Pad     uint32 `json:"pad,omitempty"`
	Dropped int64  `json:"dropped,omitempty"`
	Message string `json:"message,omitempty"`
}

// field is one key/value pair in encoding order.
type field struct {
	key string
	val any
}

// fields returns the keys written for r's kind, in a fixed order.
func (r *Record) fields() []field {
	f := []field{{"v", r.V}, {"kind", r.Kind}, {"seq", r.Seq}, {"at_ns", r.AtNS}}
	switch r.Kind {
	case KindEntry:
		f = append(f, field{"tag", r.Tag}, field{"msg_type", r.MsgType}, field{"crc_ok", r.CRCOK}, field{"payload", nonNil(r.Payload)})
	case KindEffect:
		f = append(f, field{"effect", r.Effect}, field{"tag", r.Tag}, field{"msg_type", r.MsgType})
		switch r.Effect {
		case EffectKill:
			f = append(f, field{"count", r.Count}, field{"exit_code", r.ExitCode})
		case EffectSnapshotRequest:
			f = append(f, field{"request_id", r.RequestID}, field{"req_kind", r.ReqKind}, field{"req_tag", r.ReqTag})
		case EffectKernelOpRequest:
			f = append(f, field{"request_id", r.RequestID}, field{"req_tag", r.ReqTag}, field{"request", nonNil(r.Request)})
		case EffectKernPhysBase, EffectKernVirtKASLR:
			f = append(f, field{"value", r.Value})
		case EffectScenarioStart:
			f = append(f, field{"start_ns", r.StartNS})
		case EffectWatchdogPause, EffectWatchdogResume:
			f = append(f, field{"pause_ns", r.PauseNS})
		case EffectWatchdogDeadline:
			f = append(f, field{"deadline_ns", r.DeadlineNS})
		case EffectCurrentStep:
			f = append(f, field{"step", r.Step})
		}
	case KindDiag:
		f = append(f, field{"diag", r.Diag}, field{"tag", r.Tag}, field{"msg_type", r.MsgType}, field{"crc_ok", r.CRCOK},
			field{"offset", r.Offset}, field{"length", r.Length}, field{"pad", r.Pad}, field{"dropped", r.Dropped}, field{"message", r.Message})
	}
	return f
}

func nonNil(b []byte) []byte {
	if b == nil {
		return []byte{}
	}
	return b
}

// Writer encodes records to a stream, msgpack or JSON lines, through a
// buffer: call Flush when a reader should see what was written so far.
type Writer struct {
	bw   *bufio.Writer
	json bool
	enc  *msgpack.Encoder
	line []byte
}

// NewWriter returns a Writer to w; jsonLines selects JSON lines.
func NewWriter(w io.Writer, jsonLines bool) *Writer {
	bw := bufio.NewWriterSize(w, 64<<10)
	wr := &Writer{bw: bw, json: jsonLines}
	if !jsonLines {
		wr.enc = msgpack.NewEncoder(bw)
		wr.enc.UseCompactInts(true)
	}
	return wr
}

// Write encodes one record; V is set to Version.
func (w *Writer) Write(r *Record) error {
	r.V = Version
	var err error
	if w.json {
		err = w.writeJSON(r)
	} else {
		err = w.writeMsgpack(r)
	}
	return err
}

// Flush writes buffered records to the underlying writer.
func (w *Writer) Flush() error { return w.bw.Flush() }

// Close flushes buffered records.
func (w *Writer) Close() error { return w.bw.Flush() }

func (w *Writer) writeMsgpack(r *Record) error {
	f := r.fields()
	if err := w.enc.EncodeMapLen(len(f)); err != nil {
		return err
	}
	for _, kv := range f {
		if err := w.enc.EncodeString(kv.key); err != nil {
			return err
		}
		var err error
		switch v := kv.val.(type) {
		case int:
			err = w.enc.EncodeInt(int64(v))
		case int32:
			err = w.enc.EncodeInt(int64(v))
		case int64:
			err = w.enc.EncodeInt(v)
		case uint16:
			err = w.enc.EncodeUint(uint64(v))
		case uint32:
			err = w.enc.EncodeUint(uint64(v))
		case uint64:
			err = w.enc.EncodeUint(v)
		case bool:
			err = w.enc.EncodeBool(v)
		case string:
			err = w.enc.EncodeString(v)
		case []byte:
			err = w.enc.EncodeBytes(v)
		default:
			err = fmt.Errorf("record: cannot encode %T", v)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

func (w *Writer) writeJSON(r *Record) error {
	b := append(w.line[:0], '{')
	for i, kv := range r.fields() {
		if i > 0 {
			b = append(b, ',')
		}
		b = strconv.AppendQuote(b, kv.key) // keys are plain ASCII
		b = append(b, ':')
		switch v := kv.val.(type) {
		case int:
			b = strconv.AppendInt(b, int64(v), 10)
		case int32:
			b = strconv.AppendInt(b, int64(v), 10)
		case int64:
			b = strconv.AppendInt(b, v, 10)
		case uint16:
			b = strconv.AppendUint(b, uint64(v), 10)
		case uint32:
			b = strconv.AppendUint(b, uint64(v), 10)
		case uint64:
			b = strconv.AppendUint(b, v, 10)
		case bool:
			b = strconv.AppendBool(b, v)
		case string:
			s, _ := json.Marshal(v) // valid JSON for any bytes (invalid UTF-8 becomes U+FFFD)
			b = append(b, s...)
		case []byte:
			b = append(b, '"')
			b = base64.StdEncoding.AppendEncode(b, v)
			b = append(b, '"')
		}
	}
	b = append(b, '}', '\n')
	w.line = b
	_, err := w.bw.Write(b)
	return err
}

// ErrFormat is wrapped by every error about a malformed record stream.
var ErrFormat = errors.New("record: malformed stream")

// Reader decodes records, detecting the format from the first byte: '{'
// (after optional whitespace) means JSON lines, anything else msgpack.
type Reader struct {
	br   *bufio.Reader
	json *json.Decoder
	mp   *msgpack.Decoder
	n    int64
}

// NewReader returns a Reader from r.
func NewReader(r io.Reader) *Reader {
	return &Reader{br: bufio.NewReaderSize(r, 64<<10)}
}

// Read returns the next record, or io.EOF at a clean end of stream.
func (rd *Reader) Read() (*Record, error) {
	if rd.json == nil && rd.mp == nil {
		for {
			c, err := rd.br.ReadByte()
			if err != nil {
				return nil, err // io.EOF: empty stream
			}
			if c == ' ' || c == '\n' || c == '\r' || c == '\t' {
				continue
			}
			rd.br.UnreadByte()
			if c == '{' {
				rd.json = json.NewDecoder(rd.br)
			} else {
				rd.mp = msgpack.NewDecoder(rd.br)
			}
			break
		}
	}
	var r Record
	var err error
	if rd.json != nil {
		err = rd.json.Decode(&r)
	} else {
		err = rd.readMsgpack(&r)
	}
	if err != nil {
		if err == io.EOF {
			return nil, io.EOF
		}
		return nil, fmt.Errorf("%w: record %d: %v", ErrFormat, rd.n, err)
	}
	if r.V != Version {
		return nil, fmt.Errorf("%w: record %d: schema version %d, this build reads %d", ErrFormat, rd.n, r.V, Version)
	}
	rd.n++
	return &r, nil
}

func (rd *Reader) readMsgpack(r *Record) error {
	n, err := rd.mp.DecodeMapLen()
	if err != nil {
		return err
	}
	if n < 0 || n > 64 {
		return fmt.Errorf("map of %d keys", n)
	}
	for i := 0; i < n; i++ {
		k, err := rd.mp.DecodeString()
		if err != nil {
			return err
		}
		if err := rd.decodeField(r, k); err != nil {
			return fmt.Errorf("key %q: %v", k, err)
		}
	}
	return nil
}

func (rd *Reader) decodeField(r *Record, k string) error {
	d := rd.mp
	var err error
	i64 := func(p *int64) { *p, err = d.DecodeInt64() }
	u64 := func(p *uint64) { *p, err = d.DecodeUint64() }
	switch k {
	case "v":
		var v int64
		i64(&v)
		r.V = int(v)
	case "kind":
		r.Kind, err = d.DecodeString()
	case "seq":
		i64(&r.Seq)
	case "at_ns":
		i64(&r.AtNS)
	case "tag":
		r.Tag, err = d.DecodeString()
	case "msg_type":
		r.MsgType, err = d.DecodeUint32()
	case "crc_ok":
		r.CRCOK, err = d.DecodeBool()
	case "payload":
		r.Payload, err = d.DecodeBytes()
	case "effect":
		r.Effect, err = d.DecodeString()
	case "count":
		u64(&r.Count)
	case "exit_code":
		r.ExitCode, err = d.DecodeInt32()
	case "request_id":
		r.RequestID, err = d.DecodeUint32()
	case "req_kind":
		r.ReqKind, err = d.DecodeUint32()
	case "req_tag":
		r.ReqTag, err = d.DecodeString()
	case "request":
		r.Request, err = d.DecodeBytes()
	case "value":
		u64(&r.Value)
	case "start_ns":
		u64(&r.StartNS)
	case "deadline_ns":
		u64(&r.DeadlineNS)
	case "pause_ns":
		u64(&r.PauseNS)
	case "step":
		r.Step, err = d.DecodeUint16()
	case "diag":
		r.Diag, err = d.DecodeString()
	case "offset":
		i64(&r.Offset)
	case "length":
		r.Length, err = d.DecodeUint32()
	case "pad":
		r.Pad, err = d.DecodeUint32()
	case "dropped":
		i64(&r.Dropped)
	case "message":
		r.Message, err = d.DecodeString()
	default:
		err = d.Skip() // unknown keys are ignored (forward compatibility)
	}
	return err
}

// Equal reports whether a and b are the same record apart from AtNS.
func Equal(a, b *Record) bool {
	x, y := *a, *b
	if !bytes.Equal(x.Payload, y.Payload) || !bytes.Equal(x.Request, y.Request) {
		return false
	}
	x.AtNS, y.AtNS = 0, 0
	x.Payload, y.Payload, x.Request, y.Request = nil, nil, nil, nil
	return reflect.DeepEqual(x, y)
}
