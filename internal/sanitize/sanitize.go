package sanitize

import (
	"strings"
	"unicode/utf8"

	"github.com/ktstr-go/ktstr/lib/wire"
)

// String returns s with ill-formed UTF-8 replaced and every control,
// bidirectional-override and line-separator character escaped (see the
// package documentation). A string that needs nothing is returned as it
// is, without allocating.
func String(s string) string {
	i := 0
	for i < len(s) && s[i] >= 0x20 && s[i] < 0x7f {
		i++ // the common case: printable ASCII
	}
	if i == len(s) {
		return s
	}
	if !utf8.ValidString(s[i:]) {
		s = wire.Lossy([]byte(s))
	}
	if !needsEscape(s[i:]) {
		return s
	}
	var b strings.Builder
	b.Grow(len(s) + 16)
	b.WriteString(s[:i])
	for _, r := range s[i:] {
		if escaped(r) {
			appendEscape(&b, r)
		} else {
			b.WriteRune(r)
		}
	}
	return b.String()
}

// Bytes is String for a byte slice.
func Bytes(p []byte) string { return String(string(p)) }

func needsEscape(s string) bool {
	for _, r := range s {
		if escaped(r) {
			return true
		}
	}
	return false
}

// escaped reports whether r is shown as an escape.
func escaped(r rune) bool {
	switch {
	case r < 0x20 || r == 0x7f: // C0, DEL
		return true
	case r >= 0x80 && r <= 0x9f: // C1
		return true
	case r >= 0x202a && r <= 0x202e, r >= 0x2066 && r <= 0x2069: // bidi embeddings, overrides, isolates
		return true
	case r == 0x2028 || r == 0x2029: // line and paragraph separators
		return true
	}
	return false
}

func appendEscape(b *strings.Builder, r rune) {
	const hex = "0123456789abcdef"
	if r < 0x80 {
		b.WriteString(`\x`)
		b.WriteByte(hex[r>>4])
		b.WriteByte(hex[r&0xf])
		return
	}
	b.WriteString(`\u`)
	for shift := 12; shift >= 0; shift -= 4 {
		b.WriteByte(hex[(r>>shift)&0xf])
	}
}
