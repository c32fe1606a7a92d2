package wire

import (
	"bytes"
	"encoding/hex"
	"errors"
	"io"
	"runtime"
	"strings"
	"testing"
	"testing/iotest"

	"github.com/google/go-cmp/cmp"
)

// CRC-32/IEEE vectors, computed independently (Python's zlib.crc32, the
// same function as Rust's crc32fast::hash).
func TestChecksumGolden(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want uint32
	}{
		{"123456789", 0xCBF43926}, // the CRC-32/ISO-HDLC check value
		{"", 0},                   // an empty payload has CRC 0
		{"a", 0xE8B7BE43},
		{"abc", 0x352441C2},
		{"The quick brown fox jumps over the lazy dog", 0x414FA339},
		{"\x00\x00\x00\x00", 0x2144DF1C},
		{"\xff\xff\xff\xff", 0xFFFFFFFF},
	} {
		if got := Checksum([]byte(tc.in)); got != tc.want {
			t.Errorf("Checksum(%q) = %#08x, want %#08x", tc.in, got, tc.want)
		}
	}
}

// Frames with known bytes (built independently with Python's struct and
// zlib).
var goldenFrames = []struct {
	name    string
	t       Type
	payload []byte
	hex     string
}{
	{"exit 0", TypeExit, []byte{0, 0, 0, 0}, "54495845" + "04000000" + "1cdf4421" + "00000000" + "00000000"},
	{"exit -1", TypeExit, []byte{0xff, 0xff, 0xff, 0xff}, "54495845" + "04000000" + "ffffffff" + "00000000" + "ffffffff"},
	{"scenario start", TypeScenarioStart, nil, "54534353" + "00000000" + "00000000" + "00000000"},
	{"stdout", TypeStdout, []byte("hello\n"), "54554f53" + "06000000" + "20303a36" + "00000000" + "68656c6c6f0a"},
}

func TestFrameGolden(t *testing.T) {
	for _, tc := range goldenFrames {
		t.Run(tc.name, func(t *testing.T) {
			want, _ := hex.DecodeString(tc.hex)
			if got := AppendFrame(nil, tc.t, tc.payload); !bytes.Equal(got, want) {
				t.Errorf("AppendFrame(%v, %x) = %x, want %x", tc.t, tc.payload, got, want)
			}
			f, n, err := ParseFrame(want)
			if err != nil || n != len(want) {
				t.Fatalf("ParseFrame(%x) = _, %d, %v, want %d, nil", want, n, err, len(want))
			}
			if f.Type != tc.t || !bytes.Equal(f.Payload, tc.payload) || !f.CRCOK || f.Pad != 0 {
				t.Errorf("ParseFrame(%x) = %+v", want, f)
			}
			if got := append(AppendHeader(nil, f.Header()), f.Payload...); !bytes.Equal(got, want) {
				t.Errorf("re-encoded %x, want %x", got, want)
			}
		})
	}
}

func TestHeaderRoundTrip(t *testing.T) {
	h := Header{Type: 0x01020304, Length: 0x05060708, CRC: 0x090a0b0c, Pad: 0x0d0e0f10}
	b := AppendHeader(nil, h)
	if want := "04030201" + "08070605" + "0c0b0a09" + "100f0e0d"; hex.EncodeToString(b) != want {
		t.Errorf("AppendHeader = %x, want %s (all fields little-endian)", b, want)
	}
	got, err := DecodeHeader(b)
	if err != nil || got != h {
		t.Errorf("DecodeHeader(%x) = %+v, %v, want %+v", b, got, err, h)
	}
	if _, err := DecodeHeader(b[:15]); !errors.Is(err, ErrShortHeader) {
		t.Errorf("DecodeHeader(15 bytes) error = %v, want ErrShortHeader", err)
	}
}

func TestParseFrameErrors(t *testing.T) {
	good := AppendFrame(nil, TypeStdout, []byte("abc"))
	big := AppendHeader(nil, Header{Type: TypeTestResult, Length: MaxPayload + 1})
	badCRC := AppendHeader(nil, Header{Type: TypeExit, Length: 1, CRC: 7, Pad: 9})
	badCRC = append(badCRC, 1)
	for _, tc := range []struct {
		name string
		in   []byte
		want error
	}{
		{"empty", nil, ErrShortHeader},
		{"15 bytes", good[:15], ErrShortHeader},
		{"header only", good[:16], ErrShortPayload},
		{"short payload", good[:18], ErrShortPayload},
		{"over the cap", big, ErrFrameTooLarge},
	} {
		if _, _, err := ParseFrame(tc.in); !errors.Is(err, tc.want) {
			t.Errorf("ParseFrame(%s) error = %v, want %v", tc.name, err, tc.want)
		}
	}
	_, _, err := ParseFrame(big)
	var fe *FrameError
	if !errors.As(err, &fe) || fe.Type != TypeTestResult || fe.Length != MaxPayload+1 {
		t.Errorf("ParseFrame(oversized) error = %#v, want *FrameError with type and length", err)
	}
	f, n, err := ParseFrame(append(badCRC, good...))
	if err != nil || n != 17 || f.CRCOK || f.CRC != 7 || f.Pad != 9 {
		t.Errorf("ParseFrame(bad CRC) = %+v, %d, %v, want CRCOK false, CRC 7, pad 9, 17 bytes", f, n, err)
	}
}

func TestEncoder(t *testing.T) {
	var buf bytes.Buffer
	w := &countingWriter{w: &buf}
	enc := NewEncoder(w)
	for _, tc := range goldenFrames {
		if err := enc.Encode(tc.t, tc.payload); err != nil {
			t.Fatalf("Encode(%v): %v", tc.t, err)
		}
	}
	var want []byte
	for _, tc := range goldenFrames {
		b, _ := hex.DecodeString(tc.hex)
		want = append(want, b...)
	}
	if !bytes.Equal(buf.Bytes(), want) {
		t.Errorf("Encoder wrote %x, want %x", buf.Bytes(), want)
	}
	if w.n != len(goldenFrames) {
		t.Errorf("Encoder made %d writes for %d frames, want one each", w.n, len(goldenFrames))
	}
	err := enc.Encode(TypeWprofTrace, make([]byte, MaxPayload+1))
	if !errors.Is(err, ErrFrameTooLarge) {
		t.Errorf("Encode(MaxPayload+1) error = %v, want ErrFrameTooLarge", err)
	}
}

type countingWriter struct {
	w io.Writer
	n int
}

func (c *countingWriter) Write(p []byte) (int, error) { c.n++; return c.w.Write(p) }

func TestDecoderStream(t *testing.T) {
	var stream []byte
	for _, tc := range goldenFrames {
		stream = AppendFrame(stream, tc.t, tc.payload)
	}
	readers := map[string]func([]byte) io.Reader{
		"whole":    func(b []byte) io.Reader { return bytes.NewReader(b) },
		"one byte": func(b []byte) io.Reader { return iotest.OneByteReader(bytes.NewReader(b)) },
		"data+EOF": func(b []byte) io.Reader { return iotest.DataErrReader(bytes.NewReader(b)) },
	}
	for name, mk := range readers {
		t.Run(name, func(t *testing.T) {
			d := NewDecoder(mk(stream))
			for i, tc := range goldenFrames {
				f, err := d.Decode()
				if err != nil {
					t.Fatalf("Decode #%d: %v", i, err)
				}
				if f.Type != tc.t || !bytes.Equal(f.Payload, tc.payload) || !f.CRCOK {
					t.Errorf("Decode #%d = %+v, want %v %x", i, f, tc.t, tc.payload)
				}
			}
			if d.Offset() != int64(len(stream)) {
				t.Errorf("Offset() = %d, want %d", d.Offset(), len(stream))
			}
			if _, err := d.Decode(); err != io.EOF {
				t.Errorf("Decode at end = %v, want io.EOF", err)
			}
		})
	}
}

// io.EOF only at a clean boundary: every cut inside a frame, in the header
// or in the payload, is io.ErrUnexpectedEOF.
func TestDecoderTruncated(t *testing.T) {
	first := AppendFrame(nil, TypeExit, []byte{1, 0, 0, 0})
	frame := AppendFrame(nil, TypeStdout, []byte("hello, world"))
	for cut := 0; cut <= len(frame); cut++ {
		in := append(append([]byte(nil), first...), frame[:cut]...)
		d := NewDecoder(bytes.NewReader(in))
		if _, err := d.Decode(); err != nil {
			t.Fatalf("cut %d: first frame: %v", cut, err)
		}
		_, err := d.Decode()
		want := io.ErrUnexpectedEOF
		switch cut {
		case 0:
			want = io.EOF
		case len(frame):
			want = nil
		}
		if err != want {
			t.Errorf("cut %d: Decode() error = %v, want %v", cut, err, want)
		}
		if want == io.ErrUnexpectedEOF {
			if _, err2 := d.Decode(); err2 != err {
				t.Errorf("cut %d: second Decode() = %v, want the same error again", cut, err2)
			}
		}
	}
}

func TestDecoderLargePayload(t *testing.T) {
	payload := bytes.Repeat([]byte("0123456789abcdef"), 20000) // 320000 bytes, several growth steps
	stream := AppendFrame(nil, TypeWprofTrace, payload)
	for name, r := range map[string]io.Reader{
		"whole":     bytes.NewReader(stream),
		"half":      iotest.HalfReader(bytes.NewReader(stream)),
		"truncated": bytes.NewReader(stream[:len(stream)-1]),
	} {
		f, err := NewDecoder(r).Decode()
		if name == "truncated" {
			if err != io.ErrUnexpectedEOF {
				t.Errorf("%s: Decode error = %v, want io.ErrUnexpectedEOF", name, err)
			}
			continue
		}
		if err != nil || !bytes.Equal(f.Payload, payload) || !f.CRCOK {
			t.Errorf("%s: Decode = %d bytes, crc %v, %v", name, len(f.Payload), f.CRCOK, err)
		}
	}
}

func TestDecoderOversized(t *testing.T) {
	stream := AppendFrame(nil, TypeExit, []byte{0, 0, 0, 0})
	stream = AppendHeader(stream, Header{Type: TypeStdout, Length: 0xFFFFFFFF})
	d := NewDecoder(bytes.NewReader(stream))
	if _, err := d.Decode(); err != nil {
		t.Fatal(err)
	}
	_, err := d.Decode()
	var fe *FrameError
	if !errors.As(err, &fe) || !errors.Is(err, ErrFrameTooLarge) || fe.Offset != 20 || fe.Length != 0xFFFFFFFF || fe.Type != TypeStdout {
		t.Errorf("Decode(u32 max) error = %#v, want FrameError at offset 20", err)
	}
	if !strings.Contains(err.Error(), "SOUT") {
		t.Errorf("error %q does not name the type", err)
	}
}

// allocated returns the bytes allocated while f runs.
func allocated(f func()) uint64 {
	var m0, m1 runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&m0)
	f()
	runtime.ReadMemStats(&m1)
	return m1.TotalAlloc - m0.TotalAlloc
}

// A header that announces the largest accepted payload, followed by a few
// bytes, must not make the Decoder allocate the announced size.
func TestDecoderHostileLengthAllocatesNothingUpFront(t *testing.T) {
	stream := AppendHeader(nil, Header{Type: TypeWprofTrace, Length: MaxPayload})
	stream = append(stream, "only a few bytes"...)
	var err error
	n := allocated(func() { _, err = NewDecoder(bytes.NewReader(stream)).Decode() })
	if err != io.ErrUnexpectedEOF {
		t.Errorf("Decode error = %v, want io.ErrUnexpectedEOF", err)
	}
	if n > 256<<10 {
		t.Errorf("Decode of a %d-byte stream announcing %d bytes allocated %d bytes", len(stream), MaxPayload, n)
	}
}

func TestFrameHeaderMethod(t *testing.T) {
	f := Frame{Type: TypeDmesg, Payload: []byte("x"), CRC: 5, Pad: 6}
	want := Header{Type: TypeDmesg, Length: 1, CRC: 5, Pad: 6}
	if diff := cmp.Diff(want, f.Header()); diff != "" {
		t.Errorf("Header() mismatch (-want +got):\n%s", diff)
	}
	if f.Size() != 17 {
		t.Errorf("Size() = %d, want 17", f.Size())
	}
}
