package scenario

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strconv"
	"strings"
)

// pathError is a decoding error at a place in the document: the path is
// built from the inside out as the error travels up (at), so the
// innermost decoder needs to know nothing of where it sits.
type pathError struct {
	segs []string // outermost first: "steps", "[2]", "ops", "[0]", "cpuset"
	msg  string
}

func (e *pathError) Error() string {
	if p := e.path(); p != "" {
		return p + ": " + e.msg
	}
	return e.msg
}

// path formats the segments: keys joined by dots, indexes in brackets.
func (e *pathError) path() string {
	var b strings.Builder
	for _, s := range e.segs {
		if b.Len() > 0 && !strings.HasPrefix(s, "[") {
			b.WriteByte('.')
		}
		b.WriteString(s)
	}
	return b.String()
}

// at puts err at seg (a key, or an index as "[i]") of the value it came
// from. A nil err stays nil.
func at(seg string, err error) error {
	if err == nil {
		return nil
	}
	var pe *pathError
	if errors.As(err, &pe) {
		return &pathError{segs: append([]string{seg}, pe.segs...), msg: pe.msg}
	}
	return &pathError{segs: []string{seg}, msg: describeJSONError(err)}
}

func index(i int) string { return "[" + strconv.Itoa(i) + "]" }

// errf is an error at the value being decoded (no path yet).
func errf(format string, args ...any) error {
	return &pathError{msg: fmt.Sprintf(format, args...)}
}

// describeJSONError turns encoding/json's errors into the format's words:
// what was found and what is wanted.
func describeJSONError(err error) string {
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) {
		msg := fmt.Sprintf("%s: want %s", te.Value, jsonKind(te.Type.Kind().String()))
		if te.Field != "" {
			msg = te.Field + ": " + msg
		}
		return msg
	}
	var se *json.SyntaxError
	if errors.As(err, &se) {
		return fmt.Sprintf("not valid JSON at byte %d: %v", se.Offset, se)
	}
	return strings.TrimPrefix(strings.TrimPrefix(err.Error(), "json: "), "workload: ")
}

func jsonKind(goKind string) string {
	switch goKind {
	case "int", "int64", "int32", "uint64", "uint32", "uint":
		return "an integer"
	case "float64":
		return "a number"
	case "string":
		return "a string"
	case "bool":
		return "true or false"
	case "slice":
		return "a list"
	case "struct", "map":
		return "an object"
	}
	return "a " + goKind
}

// fields maps each key an object may have to where its value goes.
type fields map[string]any

// decodeObject decodes the JSON object b into the targets of f, key by
// key in sorted order, so the first error is always the same one. A key
// not in f is an error listing the allowed ones: a typo never silently
// changes a test. It returns the keys present. Each value is decoded
// strictly (unknown fields of nested plain structs are errors too), and
// an error is put at its key.
func decodeObject(b []byte, f fields) (map[string]bool, error) {
	var m map[string]json.RawMessage
	if err := json.Unmarshal(b, &m); err != nil || m == nil {
		return nil, errf("%s: want an object", short(b))
	}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	present := map[string]bool{}
	for _, k := range keys {
		dst, ok := f[k]
		if !ok {
			return nil, at(k, errf("unknown field (allowed: %s)", strings.Join(sortedKeys(f), ", ")))
		}
		if err := strict(m[k], dst); err != nil {
			return nil, at(k, err)
		}
		present[k] = true
	}
	return present, nil
}

// strict decodes one value into dst, refusing unknown fields of plain
// structs within it.
func strict(b []byte, dst any) error {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	return dec.Decode(dst)
}

// decodeList decodes the JSON list b element by element, each at its
// index, into at most max elements.
func decodeList[T any](b []byte, max int, out *[]T) error {
	var raw []json.RawMessage
	if err := json.Unmarshal(b, &raw); err != nil {
		return errf("%s: want a list", short(b))
	}
	if len(raw) > max {
		return errf("%d elements, at most %d allowed", len(raw), max)
	}
	*out = make([]T, len(raw))
	for i, r := range raw {
		if err := strict(r, &(*out)[i]); err != nil {
			return at(index(i), err)
		}
	}
	return nil
}

// listOf is a list field whose elements are decoded one at a time, so an
// error names the element's index.
type listOf[T any] struct {
	dst *[]T
	max int
}

func (l listOf[T]) UnmarshalJSON(b []byte) error { return decodeList(b, l.max, l.dst) }

func sortedKeys(f fields) []string {
	out := make([]string, 0, len(f))
	for k := range f {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

// short quotes a value for an error message, cut to 40 bytes.
func short(b []byte) string {
	s := strings.TrimSpace(string(b))
	if len(s) > 40 {
		s = s[:37] + "..."
	}
	return s
}
