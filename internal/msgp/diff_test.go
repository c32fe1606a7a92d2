package msgp

import (
	"bufio"
	"bytes"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"testing"
	"testing/iotest"

	"github.com/vmihailenco/msgpack/v5"
)

// The Decoder reads headers and integers itself (for speed) rather than
// through the library's Decode calls. These tests hold it to the
// library: any value the Decoder accepts, the library reads the same
// way, token for token, ending at the same byte; and a stream cut into
// one-byte reads through a 16-byte buffer reads like the whole buffer.

// walk reads one value of any shape with the Decoder, appending a token
// per header or scalar.
func walk(d *Decoder, toks []string) ([]string, error) {
	f, c, err := d.Peek()
	if err != nil {
		return toks, err
	}
	switch f {
	case Nil:
		return append(toks, "nil"), d.Nil()
	case Bool:
		b, err := d.Bool()
		return append(toks, "bool "+strconv.FormatBool(b)), err
	case Uint, Int:
		i, err := d.Int()
		return append(toks, "int "+i.String()), err
	case Float:
		x, err := d.Float()
		return append(toks, "float "+strconv.FormatFloat(x, 'g', -1, 64)), err
	case Str:
		s, err := d.Str()
		return append(toks, "str "+strconv.Quote(s)), err
	case Bin:
		b, err := d.Bin()
		return append(toks, "bin "+hex.EncodeToString(b)), err
	case Ext:
		return append(toks, "ext"), d.Skip()
	case Array, Map:
		var n int
		if f == Array {
			n, err = d.ArrayLen()
		} else {
			n, err = d.MapLen()
		}
		if err != nil {
			return toks, err
		}
		toks = append(toks, fmt.Sprintf("%s %d", f, n))
		if f == Map {
			n *= 2
		}
		for range n {
			if toks, err = walk(d, toks); err != nil {
				return toks, err
			}
		}
		d.Leave()
		return toks, nil
	}
	return toks, fmt.Errorf("code %#x", c)
}

// walkLib reads one value with the library's own calls.
func walkLib(d *msgpack.Decoder, toks []string, depth int) ([]string, error) {
	if depth > 64 {
		return toks, errors.New("too deep")
	}
	c, err := d.PeekCode()
	if err != nil {
		return toks, err
	}
	switch f := FamilyOf(c); f {
	case Nil:
		return append(toks, "nil"), d.DecodeNil()
	case Bool:
		b, err := d.DecodeBool()
		return append(toks, "bool "+strconv.FormatBool(b)), err
	case Uint:
		u, err := d.DecodeUint64()
		return append(toks, "int "+strconv.FormatUint(u, 10)), err
	case Int:
		i, err := d.DecodeInt64()
		return append(toks, "int "+strconv.FormatInt(i, 10)), err
	case Float:
		x, err := d.DecodeFloat64()
		return append(toks, "float "+strconv.FormatFloat(x, 'g', -1, 64)), err
	case Str:
		s, err := d.DecodeString()
		return append(toks, "str "+strconv.Quote(s)), err
	case Bin:
		b, err := d.DecodeBytes()
		return append(toks, "bin "+hex.EncodeToString(b)), err
	case Ext:
		return append(toks, "ext"), d.Skip()
	case Array, Map:
		var n int
		if f == Array {
			n, err = d.DecodeArrayLen()
		} else {
			n, err = d.DecodeMapLen()
		}
		if err != nil {
			return toks, err
		}
		toks = append(toks, fmt.Sprintf("%s %d", f, n))
		if f == Map {
			n *= 2
		}
		for range n {
			if toks, err = walkLib(d, toks, depth+1); err != nil {
				return toks, err
			}
		}
		return toks, nil
	}
	return toks, fmt.Errorf("code %#x", c)
}

var diffLimits = Limits{Depth: 32, Elems: 1 << 16}

func checkAgainstLibrary(t *testing.T, p []byte) {
	d := NewBytes(p, diffLimits)
	ours, err := walk(d, nil)
	if err != nil {
		return // refused: the bounds and TestBoundsBeforeAllocation judge that
	}
	r := bytes.NewReader(p)
	lib, err := walkLib(msgpack.NewDecoder(r), nil, 0)
	if err != nil {
		t.Fatalf("%x: the Decoder read %q, the library failed: %v", p, ours, err)
	}
	if fmt.Sprint(ours) != fmt.Sprint(lib) {
		t.Fatalf("%x:\nDecoder %q\nlibrary %q", p, ours, lib)
	}
	if end := len(p) - r.Len(); end != d.Offset() {
		t.Fatalf("%x: the Decoder ends at %d, the library at %d", p, d.Offset(), end)
	}
	// The same bytes as a stream, one byte per read, through bufio's
	// smallest buffer: every header crosses refills somewhere.
	s := NewStream(bufio.NewReaderSize(iotest.OneByteReader(bytes.NewReader(p)), 16), diffLimits)
	streamed, err := walk(s, nil)
	if err != nil || fmt.Sprint(streamed) != fmt.Sprint(ours) {
		t.Fatalf("%x: as a stream %q, %v; as a buffer %q", p, streamed, err, ours)
	}
}

func TestHeadersAgreeWithTheLibrary(t *testing.T) {
	var buf bytes.Buffer
	e := msgpack.NewEncoder(&buf)
	// Every header width of every family, at its edges.
	for _, n := range []int{0, 1, 15, 16, 31, 32, 255, 256, 65535, 65536} {
		buf.Reset()
		e.EncodeString(string(bytes.Repeat([]byte("s"), n)))
		checkAgainstLibrary(t, bytes.Clone(buf.Bytes()))
		buf.Reset()
		e.EncodeBytes(bytes.Repeat([]byte{0xc1}, n))
		checkAgainstLibrary(t, bytes.Clone(buf.Bytes()))
		buf.Reset()
		e.EncodeArrayLen(n)
		for range n {
			e.EncodeNil()
		}
		checkAgainstLibrary(t, bytes.Clone(buf.Bytes()))
		buf.Reset()
		e.EncodeMapLen(n)
		for i := range n {
			e.EncodeInt(int64(i))
			e.EncodeBool(i%2 == 0)
		}
		checkAgainstLibrary(t, bytes.Clone(buf.Bytes()))
	}
	for _, v := range []int64{0, 1, 127, 128, 255, 256, 65535, 65536, 1<<32 - 1, 1 << 32, 1<<63 - 1, -1, -32, -33, -128, -129, -32768, -32769, -1 << 31, -1<<31 - 1, -1 << 63} {
		buf.Reset()
		e.EncodeInt(v)
		checkAgainstLibrary(t, bytes.Clone(buf.Bytes()))
	}
	// Explicit widths the library's encoder would not choose.
	for _, h := range []string{"cc05", "cd0005", "ce00000005", "cf0000000000000005", "cfffffffffffffffff",
		"d0fb", "d1fffb", "d2fffffffb", "d3fffffffffffffffb", "d005", "ca3fc00000", "cb3ff8000000000000",
		"d9026869", "da00026869", "db000000026869", "c4020102", "c500020102", "c6000000020102",
		"dc0002c2c3", "dd00000002c2c3", "de0001a16101", "df00000001a16101", "d40102", "c7010102"} {
		checkAgainstLibrary(t, unhex(h))
	}
}

func FuzzHeadersAgreeWithTheLibrary(f *testing.F) {
	for _, tc := range hostile {
		f.Add(unhex(tc.in))
	}
	f.Add(unhex("82 a1 61 93 01 c0 d4 0102 a1 62 c4 02 6162"))
	f.Add(unhex("93 cd0100 d1ff00 cb3ff8000000000000"))
	f.Fuzz(func(t *testing.T, p []byte) { checkAgainstLibrary(t, p) })
}
