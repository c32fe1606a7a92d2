package payload

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"reflect"
	"strconv"
	"strings"
	"sync"
	"unicode/utf8"

	"github.com/ktstr-go/ktstr/lib/wire"
	"github.com/vmihailenco/msgpack/v5"
)

// Bounds on what a decoder accepts, whatever the size of the frame.
const (
	// MaxDepth is the deepest nesting of maps and arrays accepted.
	MaxDepth = 32
	// MaxElems is the largest number of entries in one map or array.
	MaxElems = 1 << 16
)

// ErrDecode is wrapped by every decode error of this package.
var ErrDecode = errors.New("payload: cannot decode")

// DecodeError reports a payload that does not decode: where and why.
//
// It wraps ErrDecode and also wire.ErrPayloadSize (the payload is too
// large for its type) or wire.ErrPayloadValue (anything else), so a caller
// can treat every bad payload, fixed or structured, with
// errors.Is(err, wire.ErrPayload).
type DecodeError struct {
	Type wire.Type // the frame type whose payload this is
	// Path locates the bad value, as in "outcomes[2].verdict"; empty when
	// the payload as a whole is bad.
	Path   string
	Offset int // byte offset in the payload where decoding stopped; -1 when the value decoded but is not allowed
	Reason string
	Err    error // wire.ErrPayloadSize or wire.ErrPayloadValue
}

func (e *DecodeError) Error() string {
	var b strings.Builder
	b.WriteString("payload: cannot decode ")
	b.WriteString(e.Type.String())
	if e.Path != "" {
		b.WriteString(" at ")
		b.WriteString(e.Path)
	}
	if e.Offset >= 0 {
		b.WriteString(" (offset ")
		b.WriteString(strconv.Itoa(e.Offset))
		b.WriteString(")")
	}
	b.WriteString(": ")
	b.WriteString(e.Reason)
	return b.String()
}

func (e *DecodeError) Unwrap() []error {
	if e.Err == nil {
		return []error{ErrDecode, wire.ErrPayloadValue}
	}
	return []error{ErrDecode, e.Err}
}

// marshal encodes v as a msgpack map: struct fields in declaration order
// (empty optional ones left out), Go maps with sorted keys, integers in
// their smallest encoding, so that equal values give equal bytes.
func marshal(v any) ([]byte, error) {
	var buf bytes.Buffer
	enc := msgpack.NewEncoder(&buf)
	enc.UseCompactInts(true)
	enc.SetSortMapKeys(true)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// unmarshal decodes p, which must be exactly one msgpack map, into the
// struct v points to, and checks that every key of required is present.
// Every string, and every key of a map, must be valid UTF-8, as postcard
// requires of ktstr's String fields.
func unmarshal(t wire.Type, p []byte, v any, required ...string) error {
	return (&decoder{typ: t, p: p}).decode(v, required)
}

// unmarshalLossy is unmarshal for payloads whose strings may hold
// ill-formed UTF-8 (RAWO's captured output): strings are taken as they
// are and the caller makes them valid.
func unmarshalLossy(t wire.Type, p []byte, v any, required ...string) error {
	return (&decoder{typ: t, p: p, lossy: true}).decode(v, required)
}

// decode is unmarshal's body.
//
// The decoder is strict where the wire is hostile and lenient where a
// newer writer may add things: unknown keys are skipped (but must be
// well-formed msgpack), a nil value gives the zero value, and an empty
// array, map or binary gives nil. It rejects anything that does not fit
// the Go type (an integer out of its field's range, a float for an
// integer, a duplicate key), nesting deeper than MaxDepth, more than
// MaxElems entries in one map or array, any length that is longer than
// the bytes left, and trailing bytes. It never allocates more than the
// payload's entries can describe.
func (d *decoder) decode(v any, required []string) error {
	p := d.p
	rv := reflect.ValueOf(v).Elem()
	if len(p) == 0 {
		return d.fail(wire.ErrPayloadSize, "empty payload")
	}
	if c := p[0]; !(c >= 0x80 && c <= 0x8f || c == 0xde || c == 0xdf) {
		return d.fail(nil, fmt.Sprintf("want a map, got %s", codeName(c)))
	}
	if err := d.value(rv); err != nil {
		return err
	}
	if d.pos != len(p) {
		return d.fail(nil, fmt.Sprintf("%d trailing bytes", len(p)-d.pos))
	}
	for _, k := range required {
		if !d.topSeen[k] {
			return d.fail(nil, fmt.Sprintf("missing key %q", k))
		}
	}
	return nil
}

type decoder struct {
	typ     wire.Type
	p       []byte
	pos     int
	depth   int
	path    []string
	topSeen map[string]bool
	lossy   bool // strings need not be UTF-8 (unmarshalLossy)
}

// text checks that b, a string's bytes, is UTF-8.
func (d *decoder) text(b []byte) error {
	if !d.lossy && !utf8.Valid(b) {
		return d.failf("not UTF-8")
	}
	return nil
}

func (d *decoder) fail(kind error, reason string) error {
	if kind == nil {
		kind = wire.ErrPayloadValue
	}
	return &DecodeError{Type: d.typ, Path: strings.Join(d.path, ""), Offset: d.pos, Reason: reason, Err: kind}
}

func (d *decoder) failf(format string, args ...any) error {
	return d.fail(nil, fmt.Sprintf(format, args...))
}

func (d *decoder) left() int { return len(d.p) - d.pos }

func (d *decoder) need(n uint64) error {
	if uint64(d.left()) < n {
		return d.failf("%d bytes announced, %d left", n, d.left())
	}
	return nil
}

func (d *decoder) take(n uint64) ([]byte, error) {
	if err := d.need(n); err != nil {
		return nil, err
	}
	b := d.p[d.pos : d.pos+int(n)]
	d.pos += int(n)
	return b, nil
}

func (d *decoder) readByte() (byte, error) {
	if d.left() < 1 {
		return 0, d.failf("unexpected end of payload")
	}
	c := d.p[d.pos]
	d.pos++
	return c, nil
}

// uintN reads an n-byte big-endian unsigned integer.
func (d *decoder) uintN(n int) (uint64, error) {
	b, err := d.take(uint64(n))
	if err != nil {
		return 0, err
	}
	switch n {
	case 1:
		return uint64(b[0]), nil
	case 2:
		return uint64(binary.BigEndian.Uint16(b)), nil
	case 4:
		return uint64(binary.BigEndian.Uint32(b)), nil
	}
	return binary.BigEndian.Uint64(b), nil
}

// Container and string lengths by code.
func (d *decoder) mapLen(c byte) (int, bool, error) {
	switch {
	case c >= 0x80 && c <= 0x8f:
		return int(c & 0x0f), true, nil
	case c == 0xde:
		n, err := d.uintN(2)
		return int(n), true, err
	case c == 0xdf:
		n, err := d.uintN(4)
		return int(n), true, err
	}
	return 0, false, nil
}

func (d *decoder) arrayLen(c byte) (int, bool, error) {
	switch {
	case c >= 0x90 && c <= 0x9f:
		return int(c & 0x0f), true, nil
	case c == 0xdc:
		n, err := d.uintN(2)
		return int(n), true, err
	case c == 0xdd:
		n, err := d.uintN(4)
		return int(n), true, err
	}
	return 0, false, nil
}

// strLen accepts str and, when bin is true, bin codes.
func (d *decoder) strLen(c byte, bin bool) (int, bool, error) {
	switch {
	case c >= 0xa0 && c <= 0xbf:
		return int(c & 0x1f), true, nil
	case c == 0xd9, bin && c == 0xc4:
		n, err := d.uintN(1)
		return int(n), true, err
	case c == 0xda, bin && c == 0xc5:
		n, err := d.uintN(2)
		return int(n), true, err
	case c == 0xdb, bin && c == 0xc6:
		n, err := d.uintN(4)
		return int(n), true, err
	}
	return 0, false, nil
}

// enter checks a container of n entries, each taking per values of at
// least one byte, and goes one level deeper.
func (d *decoder) enter(n, per int) error {
	if n > MaxElems {
		return d.failf("%d entries, more than %d", n, MaxElems)
	}
	if err := d.need(uint64(n) * uint64(per)); err != nil {
		return err
	}
	if d.depth >= MaxDepth {
		return d.failf("nested deeper than %d", MaxDepth)
	}
	d.depth++
	return nil
}

// value decodes the next msgpack value into v.
func (d *decoder) value(v reflect.Value) error {
	c, err := d.readByte()
	if err != nil {
		return err
	}
	if c == 0xc0 { // nil: the zero value
		v.SetZero()
		return nil
	}
	switch v.Kind() {
	case reflect.Pointer: // an optional struct: decode the value into a new one
		d.pos--
		v.Set(reflect.New(v.Type().Elem()))
		return d.value(v.Elem())
	case reflect.Struct:
		return d.structValue(c, v)
	case reflect.Map:
		return d.mapValue(c, v)
	case reflect.Slice:
		if v.Type().Elem().Kind() == reflect.Uint8 {
			n, ok, err := d.strLen(c, true)
			if err != nil {
				return err
			}
			if !ok {
				return d.failf("want binary, got %s", codeName(c))
			}
			b, err := d.take(uint64(n))
			if err != nil {
				return err
			}
			if n == 0 {
				v.SetZero()
			} else {
				v.SetBytes(bytes.Clone(b))
			}
			return nil
		}
		return d.sliceValue(c, v)
	case reflect.String:
		n, ok, err := d.strLen(c, true)
		if err != nil {
			return err
		}
		if !ok {
			return d.failf("want a string, got %s", codeName(c))
		}
		b, err := d.take(uint64(n))
		if err != nil {
			return err
		}
		if err := d.text(b); err != nil {
			return err
		}
		v.SetString(string(b))
		return nil
	case reflect.Bool:
		switch c {
		case 0xc2:
			v.SetBool(false)
		case 0xc3:
			v.SetBool(true)
		default:
			return d.failf("want a bool, got %s", codeName(c))
		}
		return nil
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		u, neg, ok, err := d.integer(c)
		if err != nil {
			return err
		}
		if !ok {
			return d.failf("want an integer, got %s", codeName(c))
		}
		if neg || v.OverflowUint(u) {
			return d.failf("integer %s out of range for %v", intString(u, neg), v.Type())
		}
		v.SetUint(u)
		return nil
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		u, neg, ok, err := d.integer(c)
		if err != nil {
			return err
		}
		if !ok {
			return d.failf("want an integer, got %s", codeName(c))
		}
		i := int64(u)
		if !neg && u > math.MaxInt64 || v.OverflowInt(i) {
			return d.failf("integer %s out of range for %v", intString(u, neg), v.Type())
		}
		v.SetInt(i)
		return nil
	case reflect.Float32, reflect.Float64:
		var f float64
		switch c {
		case 0xca:
			u, err := d.uintN(4)
			if err != nil {
				return err
			}
			f = float64(math.Float32frombits(uint32(u)))
		case 0xcb:
			u, err := d.uintN(8)
			if err != nil {
				return err
			}
			f = math.Float64frombits(u)
		default:
			u, neg, ok, err := d.integer(c)
			if err != nil {
				return err
			}
			if !ok {
				return d.failf("want a number, got %s", codeName(c))
			}
			if neg {
				f = float64(int64(u))
			} else {
				f = float64(u)
			}
		}
		if v.Kind() == reflect.Float32 && v.OverflowFloat(f) {
			return d.failf("float %g out of range for float32", f)
		}
		v.SetFloat(f)
		return nil
	}
	return d.failf("cannot decode into %v", v.Type())
}

// integer reads an integer of any msgpack encoding: its magnitude as u
// and whether it is negative (then int64(u) is its value).
func (d *decoder) integer(c byte) (u uint64, neg, ok bool, err error) {
	switch {
	case c <= 0x7f:
		return uint64(c), false, true, nil
	case c >= 0xe0:
		return uint64(int64(int8(c))), true, true, nil
	case c >= 0xcc && c <= 0xcf: // uint 8, 16, 32, 64
		u, err = d.uintN(1 << (c - 0xcc))
		return u, false, true, err
	case c >= 0xd0 && c <= 0xd3: // int 8, 16, 32, 64
		n := 1 << (c - 0xd0)
		u, err = d.uintN(n)
		if err != nil {
			return 0, false, true, err
		}
		shift := 64 - 8*n
		i := int64(u<<shift) >> shift // sign-extend
		return uint64(i), i < 0, true, nil
	}
	return 0, false, false, nil
}

func intString(u uint64, neg bool) string {
	if neg {
		return strconv.FormatInt(int64(u), 10)
	}
	return strconv.FormatUint(u, 10)
}

func (d *decoder) structValue(c byte, v reflect.Value) error {
	n, ok, err := d.mapLen(c)
	if err != nil {
		return err
	}
	if !ok {
		return d.failf("want a map for %v, got %s", v.Type(), codeName(c))
	}
	if err := d.enter(n, 2); err != nil {
		return err
	}
	top := d.depth == 1
	if top {
		d.topSeen = make(map[string]bool, n)
	}
	info := fieldsOf(v.Type())
	v.SetZero()
	var seen uint64
	for range n {
		key, err := d.key()
		if err != nil {
			return err
		}
		i, known := info.byName[key]
		if !known {
			if err := d.skip(); err != nil {
				return err
			}
			continue
		}
		if seen&(1<<i) != 0 {
			return d.failf("duplicate key %q", key)
		}
		seen |= 1 << i
		if top {
			d.topSeen[key] = true
		}
		d.path = append(d.path, pathKey(len(d.path), key))
		if err := d.value(v.Field(info.index[i])); err != nil {
			return err
		}
		d.path = d.path[:len(d.path)-1]
	}
	d.depth--
	return nil
}

func pathKey(depth int, key string) string {
	if depth == 0 {
		return key
	}
	return "." + key
}

func (d *decoder) key() (string, error) {
	c, err := d.readByte()
	if err != nil {
		return "", err
	}
	n, ok, err := d.strLen(c, false)
	if err != nil {
		return "", err
	}
	if !ok {
		return "", d.failf("want a string key, got %s", codeName(c))
	}
	b, err := d.take(uint64(n))
	return string(b), err
}

func (d *decoder) mapValue(c byte, v reflect.Value) error {
	if v.Type().Key().Kind() != reflect.String {
		return d.failf("cannot decode into %v", v.Type())
	}
	n, ok, err := d.mapLen(c)
	if err != nil {
		return err
	}
	if !ok {
		return d.failf("want a map, got %s", codeName(c))
	}
	if err := d.enter(n, 2); err != nil {
		return err
	}
	if n == 0 {
		v.SetZero()
		d.depth--
		return nil
	}
	m := reflect.MakeMapWithSize(v.Type(), n)
	for range n {
		key, err := d.key()
		if err != nil {
			return err
		}
		if err := d.text([]byte(key)); err != nil {
			return err
		}
		k := reflect.ValueOf(key).Convert(v.Type().Key())
		if m.MapIndex(k).IsValid() {
			return d.failf("duplicate key %q", key)
		}
		d.path = append(d.path, "["+strconv.Quote(key)+"]")
		e := reflect.New(v.Type().Elem()).Elem()
		if err := d.value(e); err != nil {
			return err
		}
		d.path = d.path[:len(d.path)-1]
		m.SetMapIndex(k, e)
	}
	v.Set(m)
	d.depth--
	return nil
}

func (d *decoder) sliceValue(c byte, v reflect.Value) error {
	n, ok, err := d.arrayLen(c)
	if err != nil {
		return err
	}
	if !ok {
		return d.failf("want an array, got %s", codeName(c))
	}
	if err := d.enter(n, 1); err != nil {
		return err
	}
	if n == 0 {
		v.SetZero()
		d.depth--
		return nil
	}
	s := reflect.MakeSlice(v.Type(), n, n)
	for i := range n {
		d.path = append(d.path, "["+strconv.Itoa(i)+"]")
		if err := d.value(s.Index(i)); err != nil {
			return err
		}
		d.path = d.path[:len(d.path)-1]
	}
	v.Set(s)
	d.depth--
	return nil
}

// skip checks and passes over one value of any type (an unknown key's).
func (d *decoder) skip() error {
	c, err := d.readByte()
	if err != nil {
		return err
	}
	if n, ok, err := d.mapLen(c); ok || err != nil {
		if err != nil {
			return err
		}
		return d.skipN(n, 2)
	}
	if n, ok, err := d.arrayLen(c); ok || err != nil {
		if err != nil {
			return err
		}
		return d.skipN(n, 1)
	}
	if n, ok, err := d.strLen(c, true); ok || err != nil {
		if err != nil {
			return err
		}
		_, err = d.take(uint64(n))
		return err
	}
	if _, _, ok, err := d.integer(c); ok || err != nil {
		return err
	}
	var n uint64
	switch c {
	case 0xc0, 0xc2, 0xc3: // nil, false, true
		return nil
	case 0xca:
		n = 4
	case 0xcb:
		n = 8
	case 0xd4, 0xd5, 0xd6, 0xd7, 0xd8: // fixext 1, 2, 4, 8, 16, plus the type byte
		n = 1 + 1<<(c-0xd4)
	case 0xc7, 0xc8, 0xc9: // ext 8, 16, 32
		l, err := d.uintN(1 << (c - 0xc7))
		if err != nil {
			return err
		}
		n = 1 + l
	default: // 0xc1 is never used
		return d.failf("invalid msgpack code %s", codeName(c))
	}
	_, err = d.take(n)
	return err
}

func (d *decoder) skipN(n, per int) error {
	if err := d.enter(n, per); err != nil {
		return err
	}
	for range n * per {
		if err := d.skip(); err != nil {
			return err
		}
	}
	d.depth--
	return nil
}

func codeName(c byte) string {
	switch {
	case c <= 0x7f || c >= 0xe0 || c >= 0xcc && c <= 0xd3:
		return "an integer"
	case c <= 0x8f || c == 0xde || c == 0xdf:
		return "a map"
	case c <= 0x9f || c == 0xdc || c == 0xdd:
		return "an array"
	case c <= 0xbf || c >= 0xd9 && c <= 0xdb:
		return "a string"
	case c == 0xc0:
		return "nil"
	case c == 0xc2 || c == 0xc3:
		return "a bool"
	case c >= 0xc4 && c <= 0xc6:
		return "binary"
	case c == 0xca || c == 0xcb:
		return "a float"
	case c == 0xc1:
		return "code 0xc1"
	}
	return "an extension"
}

// structInfo maps msgpack keys to field indexes.
type structInfo struct {
	byName map[string]int // key -> position in index
	index  []int          // field index in the struct
}

var fieldCache sync.Map // reflect.Type -> *structInfo

func fieldsOf(t reflect.Type) *structInfo {
	if i, ok := fieldCache.Load(t); ok {
		return i.(*structInfo)
	}
	info := &structInfo{byName: map[string]int{}}
	for i := range t.NumField() {
		f := t.Field(i)
		if !f.IsExported() {
			continue
		}
		name, _, _ := strings.Cut(f.Tag.Get("msgpack"), ",")
		if name == "-" {
			continue
		}
		if name == "" {
			name = f.Name
		}
		info.byName[name] = len(info.index)
		info.index = append(info.index, i)
	}
	if len(info.index) > 64 {
		panic("payload: struct " + t.String() + " has more than 64 fields")
	}
	i, _ := fieldCache.LoadOrStore(t, info)
	return i.(*structInfo)
}

// invalid reports a value that decoded but is not allowed.
func invalid(t wire.Type, path, format string, args ...any) error {
	return &DecodeError{Type: t, Path: path, Offset: -1, Reason: fmt.Sprintf(format, args...), Err: wire.ErrPayloadValue}
}
