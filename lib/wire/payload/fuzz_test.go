package payload

import (
	"bytes"
	"errors"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"github.com/ktstr-go/ktstr/lib/wire"
)

// fuzzCodec checks one decoder: it never panics; it rejects with a
// *DecodeError for its type that wraps ErrDecode and wire.ErrPayload; and
// what it accepts encodes to bytes that decode to the same value and
// encode again to the same bytes.
func fuzzCodec(f *testing.F, name string) {
	c := codecs[name]
	if p, err := c.encode(c.sample); err == nil {
		f.Add(p)
		for _, cut := range []int{1, len(p) / 2, len(p) - 1} {
			f.Add(p[:cut])
		}
	}
	f.Add(mp("81", "'outcomes", "c0"))
	f.Add(mp("82", "'exit_code", "00", "'metrics", "90"))
	f.Add(mp("83", "'request_id", "01", "'mode", "'cold", "'direction", "'read"))
	f.Add(mp("82", "'request_id", "01", "'success", "c3"))
	f.Fuzz(func(t *testing.T, p []byte) {
		v, err := c.decode(p)
		if err != nil {
			var de *DecodeError
			if !errors.As(err, &de) || de.Type != c.t || !errors.Is(err, ErrDecode) || !errors.Is(err, wire.ErrPayload) {
				t.Fatalf("decode(%x) error %#v, want a *DecodeError for %v", p, err, c.t)
			}
			return
		}
		q, err := c.encode(v)
		if err != nil {
			t.Fatalf("encode(decode(%x)): %v", p, err)
		}
		v2, err := c.decode(q)
		if err != nil {
			t.Fatalf("decode(encode(decode(%x))) = %v (encoded %x)", p, err, q)
		}
		if diff := cmp.Diff(v, v2, cmpopts.EquateNaNs()); diff != "" {
			t.Fatalf("round trip changed the value (-first +second):\n%s", diff)
		}
		if q2, _ := c.encode(v2); !bytes.Equal(q, q2) {
			t.Fatalf("encoding not stable: %x then %x", q, q2)
		}
	})
}

func FuzzAssertResult(f *testing.F)     { fuzzCodec(f, "TEST") }
func FuzzKernelOpRequest(f *testing.F)  { fuzzCodec(f, "KORQ") }
func FuzzKernelOpReply(f *testing.F)    { fuzzCodec(f, "KORP") }
func FuzzPayloadMetrics(f *testing.F)   { fuzzCodec(f, "PMET") }
func FuzzRawPayloadOutput(f *testing.F) { fuzzCodec(f, "RAWO") }
