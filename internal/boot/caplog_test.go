package boot

import (
	"bytes"
	"fmt"
	"strings"
	"testing"
)

type bufCloser struct {
	bytes.Buffer
	closed bool
}

func (b *bufCloser) Close() error { b.closed = true; return nil }

// TestCapLog: whatever is written, in whatever chunks, the log holds the
// first head bytes, a note with the count dropped, and the last tail
// bytes; under the cap it holds everything unchanged.
func TestCapLog(t *testing.T) {
	const head, tail = 10, 8
	for _, tc := range []struct {
		total int
		chunk []int
	}{
		{5, []int{1}}, {10, []int{3}}, {18, []int{7}}, {19, []int{1}}, {100, []int{1}}, {100, []int{9}}, {100, []int{100}},
		{1000, []int{3, 17, 1, 250}},
	} {
		in := make([]byte, tc.total)
		for i := range in {
			in[i] = byte('a' + i%26)
		}
		var b bufCloser
		l := newCapLog(&b, head, tail)
		for i, k := 0, 0; i < len(in); k++ {
			n := min(tc.chunk[k%len(tc.chunk)], len(in)-i)
			if m, err := l.Write(in[i : i+n]); m != n || err != nil {
				t.Fatalf("Write = %d, %v", m, err)
			}
			i += n
		}
		if err := l.Close(); err != nil || !b.closed {
			t.Fatalf("Close = %v, closed %v", err, b.closed)
		}
		want := string(in)
		if tc.total > head+tail {
			want = fmt.Sprintf("%s\n[ktstr-boot: console log capped at its first %d and last %d bytes; %d bytes dropped here]\n%s",
				in[:head], head, tail, tc.total-head-tail, in[tc.total-tail:])
		}
		if got := b.String(); got != want {
			t.Errorf("total %d in chunks %v: log\n%q\nwant\n%q", tc.total, tc.chunk, got, want)
		}
	}
}

// TestCapLogBounded: a guest that writes without end leaves a file of a
// bounded size.
func TestCapLogBounded(t *testing.T) {
	var b bufCloser
	l := newCapLog(&b, ConsoleHead, ConsoleTail)
	chunk := []byte(strings.Repeat("x", 4096))
	for range 64 << 20 / len(chunk) {
		l.Write(chunk)
	}
	l.Close()
	if n := b.Len(); n > ConsoleHead+ConsoleTail+200 {
		t.Errorf("64 MiB written: the log holds %d bytes, want at most the cap %d plus a note", n, ConsoleHead+ConsoleTail)
	}
	l.Write(chunk)
	if n := b.Len(); n > ConsoleHead+ConsoleTail+200 {
		t.Errorf("a write after Close grew the log to %d bytes", n)
	}
}
