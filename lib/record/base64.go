package record

import (
	"encoding/base64"
	"encoding/binary"
	"slices"
)

// b64Pairs holds, for each 12-bit value, its two characters of standard
// base64, the first in the low byte.
var b64Pairs = func() (t [1 << 12]uint16) {
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
	for x := range t {
		t[x] = uint16(alphabet[x>>6]) | uint16(alphabet[x&63])<<8
	}
	return t
}()

// appendBase64 appends the standard base64 encoding of src to dst, the
// same bytes as base64.StdEncoding.AppendEncode: a JSON record's payload
// is most of its bytes, and the standard library's encoder, a character
// at a time, was most of ktstr-dispatch's time writing JSON. Here six
// bytes become eight characters with four lookups of two.
func appendBase64(dst, src []byte) []byte {
	n := base64.StdEncoding.EncodedLen(len(src))
	dst = slices.Grow(dst, n)
	out := dst[len(dst) : len(dst)+n]
	i, o := 0, 0
	for ; len(src)-i >= 8 && len(out)-o >= 8; i, o = i+6, o+8 {
		x := binary.BigEndian.Uint64(src[i:]) // the top six bytes are used
		binary.LittleEndian.PutUint64(out[o:], uint64(b64Pairs[x>>52])|
			uint64(b64Pairs[x>>40&0xfff])<<16|
			uint64(b64Pairs[x>>28&0xfff])<<32|
			uint64(b64Pairs[x>>16&0xfff])<<48)
	}
	base64.StdEncoding.Encode(out[o:], src[i:]) // i is a multiple of 3: the groups line up
	return dst[:len(dst)+n]
}
