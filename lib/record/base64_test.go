package record

import (
	"bytes"
	"encoding/base64"
	"math/rand/v2"
	"testing"
)

// TestAppendBase64 checks appendBase64 against the standard library for
// every length up to 100 and some long ones, on random bytes, appended
// to a prefix.
func TestAppendBase64(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for _, n := range append(func() (l []int) {
		for n := range 101 {
			l = append(l, n)
		}
		return l
	}(), 4080, 4081, 4082, 65535) {
		src := make([]byte, n)
		for i := range src {
			src[i] = byte(rng.Uint32())
		}
		want := base64.StdEncoding.AppendEncode([]byte("pre"), src)
		if got := appendBase64([]byte("pre"), src); !bytes.Equal(got, want) {
			t.Errorf("appendBase64(%x) = %q, want %q", src, got, want)
		}
	}
}

func FuzzAppendBase64(f *testing.F) {
	f.Add([]byte("hello, world"))
	f.Fuzz(func(t *testing.T, src []byte) {
		if got, want := appendBase64(nil, src), base64.StdEncoding.AppendEncode(nil, src); !bytes.Equal(got, want) {
			t.Errorf("appendBase64(%x) = %q, want %q", src, got, want)
		}
	})
}
