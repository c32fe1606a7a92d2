package payload

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"reflect"
	"strconv"
	"strings"
	"sync"
	"unicode/utf8"

	"github.com/ktstr-go/ktstr/internal/msgp"
	"github.com/ktstr-go/ktstr/lib/wire"
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
	if err := msgp.NewEncoder(&buf).Encode(v); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// limits are the bounds on a payload, besides its length.
var limits = msgp.Limits{Depth: MaxDepth, Elems: MaxElems}

// unmarshal decodes p, which must be exactly one msgpack map, into the
// struct v points to, and checks that every key of required is present.
// Every string, and every key of a map, must be valid UTF-8, as postcard
// requires of ktstr's String fields.
func unmarshal(t wire.Type, p []byte, v any, required ...string) error {
	return (&decoder{typ: t, d: msgp.NewBytes(p, limits)}).decode(v, required)
}

// unmarshalLossy is unmarshal for payloads whose strings may hold
// ill-formed UTF-8 (RAWO's captured output): strings are taken as they
// are and the caller makes them valid.
func unmarshalLossy(t wire.Type, p []byte, v any, required ...string) error {
	return (&decoder{typ: t, d: msgp.NewBytes(p, limits), lossy: true}).decode(v, required)
}

// decoder maps one payload onto a Go value through the bounded msgpack
// layer, by reflection over the msgpack struct tags.
//
// It is strict where the wire is hostile and lenient where a newer writer
// may add things: unknown keys are skipped (but must be well-formed
// msgpack), a nil value gives the zero value, and an empty array, map or
// binary gives nil. It rejects anything that does not fit the Go type (an
// integer out of its field's range, a float for an integer), a key that
// a map carries twice, nesting deeper than MaxDepth, more than MaxElems
// entries in one map or array, any length that is longer than the bytes
// left, and trailing bytes. It never allocates more than the payload's
// entries can describe: msgp checks every length first.
type decoder struct {
	typ   wire.Type
	d     *msgp.Decoder
	path  []step // where the value being decoded is
	lossy bool   // strings need not be UTF-8 (unmarshalLossy)
}

func (d *decoder) decode(v any, required []string) error {
	rv := reflect.ValueOf(v).Elem()
	f, _, err := d.d.Peek()
	if err != nil {
		return d.fail(wire.ErrPayloadSize, "empty payload")
	}
	if f != msgp.Map {
		return d.failf("want a map, got %s", f)
	}
	seen, err := d.structValue(rv)
	if err != nil {
		return err
	}
	if n := d.d.Left(); n != 0 {
		return d.failf("%d trailing bytes", n)
	}
	info := fieldsOf(rv.Type())
	for _, k := range required {
		if seen&(1<<info.byName[k]) == 0 {
			return d.failf("missing key %q", k)
		}
	}
	return nil
}

// text checks that b, a string's bytes, is UTF-8.
func (d *decoder) text(b string) error {
	if !d.lossy && !utf8.ValidString(b) {
		return d.failf("not UTF-8")
	}
	return nil
}

func (d *decoder) fail(kind error, reason string) error {
	if kind == nil {
		kind = wire.ErrPayloadValue
	}
	return &DecodeError{Type: d.typ, Path: d.where(), Offset: d.d.Offset(), Reason: reason, Err: kind}
}

func (d *decoder) failf(format string, args ...any) error {
	return d.fail(nil, fmt.Sprintf(format, args...))
}

// layer turns an error of the msgpack layer into a *DecodeError.
func (d *decoder) layer(err error) error {
	if errors.Is(err, io.ErrUnexpectedEOF) {
		return d.failf("unexpected end of payload")
	}
	return d.failf("%v", err)
}

// value decodes the next msgpack value into v.
func (d *decoder) value(v reflect.Value) error {
	f, _, err := d.d.Peek()
	if err != nil {
		return d.layer(err)
	}
	if f == msgp.Nil { // the zero value
		v.SetZero()
		return d.check(d.d.Nil())
	}
	switch v.Kind() {
	case reflect.Pointer: // an optional struct: decode the value into a new one
		v.Set(reflect.New(v.Type().Elem()))
		return d.value(v.Elem())
	case reflect.Struct:
		_, err := d.structValue(v)
		return err
	case reflect.Map:
		return d.mapValue(v)
	case reflect.Slice:
		if v.Type().Elem().Kind() == reflect.Uint8 {
			b, err := d.d.Bin()
			if len(b) == 0 {
				v.SetZero()
			} else {
				v.SetBytes(b)
			}
			return d.check(err)
		}
		return d.sliceValue(v)
	case reflect.String:
		s, err := d.d.Str()
		if err != nil {
			return d.layer(err)
		}
		if err := d.text(s); err != nil {
			return err
		}
		v.SetString(s)
		return nil
	case reflect.Bool:
		b, err := d.d.Bool()
		v.SetBool(b)
		return d.check(err)
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		i, err := d.d.Int()
		if err != nil {
			return d.layer(err)
		}
		u, ok := i.Uint(v.Type().Bits())
		if !ok {
			return d.failf("integer %v out of range for %v", i, v.Type())
		}
		v.SetUint(u)
		return nil
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		i, err := d.d.Int()
		if err != nil {
			return d.layer(err)
		}
		x, ok := i.Int(v.Type().Bits())
		if !ok {
			return d.failf("integer %v out of range for %v", i, v.Type())
		}
		v.SetInt(x)
		return nil
	case reflect.Float32, reflect.Float64:
		x, err := d.d.Float()
		if err != nil {
			return d.layer(err)
		}
		if v.Kind() == reflect.Float32 && v.OverflowFloat(x) {
			return d.failf("float %g out of range for float32", x)
		}
		v.SetFloat(x)
		return nil
	}
	return d.failf("cannot decode into %v", v.Type())
}

// check turns a layer error, if any, into a *DecodeError.
func (d *decoder) check(err error) error {
	if err != nil {
		return d.layer(err)
	}
	return nil
}

// structValue decodes a map into the struct v and returns which of its
// fields (by structInfo position) the map carried.
func (d *decoder) structValue(v reflect.Value) (uint64, error) {
	n, err := d.d.MapLen()
	if te := (*msgp.TypeError)(nil); errors.As(err, &te) {
		return 0, d.failf("want a map for %v, got %s", v.Type(), te.Got)
	}
	if err != nil {
		return 0, d.layer(err)
	}
	info := fieldsOf(v.Type())
	v.SetZero()
	var seen uint64
	var unknown map[string]bool // unknown keys, made on the first
	for range n {
		key, err := d.d.Key(0)
		if err != nil {
			return 0, d.layer(err)
		}
		i, known := info.byName[string(key)]
		switch {
		case !known && !unknown[string(key)]:
			if unknown == nil {
				unknown = map[string]bool{}
			}
			unknown[string(key)] = true
			if err := d.d.Skip(); err != nil {
				return 0, d.layer(err)
			}
			continue
		case !known || seen&(1<<i) != 0:
			return 0, d.failf("duplicate key %q", key)
		}
		seen |= 1 << i
		d.path = append(d.path, step{key: info.names[i]})
		if err := d.value(v.Field(info.index[i])); err != nil {
			return 0, err
		}
		d.path = d.path[:len(d.path)-1]
	}
	d.d.Leave()
	return seen, nil
}

// A step is one level of the path to a value: a struct field, a map key
// or an array index. The path is rendered only for an error.
type step struct {
	key   string // a field's or a map's key
	index int    // an array index
	kind  byte   // 0 a field, '[' a map key, '#' an index
}

// where renders the path: "outcomes[2].verdict", `measurements["x"]`.
func (d *decoder) where() string {
	var b strings.Builder
	for i, s := range d.path {
		switch {
		case s.kind == '#':
			b.WriteString("[" + strconv.Itoa(s.index) + "]")
		case s.kind == '[':
			b.WriteString("[" + strconv.Quote(s.key) + "]")
		case i > 0:
			b.WriteString("." + s.key)
		default:
			b.WriteString(s.key)
		}
	}
	return b.String()
}

func (d *decoder) key() (string, error) {
	b, err := d.d.Key(0)
	if err != nil {
		return "", d.layer(err)
	}
	return string(b), nil
}

func (d *decoder) mapValue(v reflect.Value) error {
	if v.Type().Key().Kind() != reflect.String {
		return d.failf("cannot decode into %v", v.Type())
	}
	n, err := d.d.MapLen()
	if err != nil {
		return d.layer(err)
	}
	if n == 0 {
		v.SetZero()
		d.d.Leave()
		return nil
	}
	m := reflect.MakeMapWithSize(v.Type(), n)
	for range n {
		key, err := d.key()
		if err != nil {
			return err
		}
		if err := d.text(key); err != nil {
			return err
		}
		k := reflect.ValueOf(key).Convert(v.Type().Key())
		if m.MapIndex(k).IsValid() {
			return d.failf("duplicate key %q", key)
		}
		d.path = append(d.path, step{key: key, kind: '['})
		e := reflect.New(v.Type().Elem()).Elem()
		if err := d.value(e); err != nil {
			return err
		}
		d.path = d.path[:len(d.path)-1]
		m.SetMapIndex(k, e)
	}
	v.Set(m)
	d.d.Leave()
	return nil
}

func (d *decoder) sliceValue(v reflect.Value) error {
	n, err := d.d.ArrayLen()
	if err != nil {
		return d.layer(err)
	}
	if n == 0 {
		v.SetZero()
		d.d.Leave()
		return nil
	}
	s := reflect.MakeSlice(v.Type(), n, n)
	for i := range n {
		d.path = append(d.path, step{index: i, kind: '#'})
		if err := d.value(s.Index(i)); err != nil {
			return err
		}
		d.path = d.path[:len(d.path)-1]
	}
	v.Set(s)
	d.d.Leave()
	return nil
}

// structInfo maps msgpack keys to field indexes.
type structInfo struct {
	byName map[string]int // key -> position in index and names
	index  []int          // field index in the struct
	names  []string       // key
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
		info.names = append(info.names, name)
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
