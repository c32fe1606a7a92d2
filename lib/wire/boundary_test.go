package wire

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// TestAssemblerBoundaryIndependent is the recording contract at its root:
// the same bytes give the same frames and events however they are cut
// into pieces, also after an oversized frame or a residual overflow (a
// live run and a replay of its recording read different pieces). Every
// cut into two pieces and random cuts into many are compared with the
// stream fed whole, then closed.
func TestAssemblerBoundaryIndependent(t *testing.T) {
	const cap = 64
	good := func(s string) []byte { return AppendFrame(nil, TypeStdout, []byte(s)) }
	padded := frameWith(TypeExit, []byte{2, 0, 0, 0}, Checksum([]byte{2, 0, 0, 0}), 7)
	torn := frameWith(TypeStdout, []byte("torn"), 1, 0)
	over := AppendFrame(nil, TypeStdout, bytes.Repeat([]byte{'o'}, cap+1))
	over2 := AppendFrame(nil, TypeStdout, bytes.Repeat([]byte{'O'}, 2*cap-HeaderSize+1)) // completes at 2*cap+1 bytes
	huge := append(AppendHeader(nil, Header{Type: TypeDmesg, Length: 1 << 20}), bytes.Repeat([]byte{'h'}, 3*cap)...)
	for _, tc := range []struct {
		name   string
		stream []byte
	}{
		{"oversized then frames", cat(good("before"), padded, over, good("after 1"), torn, good("after 2"))},
		{"a frame of 2*cap+1 bytes", cat(good("before"), over2, good("after"))},
		{"oversized then a partial frame", cat(good("a"), over, good("tail")[:9])},
		{"residual overflow then frames", cat(good("before"), huge, good("after 1"), good("after 2"))},
		{"no anomaly", cat(good("a"), padded, torn, good("b"), good("cut")[:20])},
	} {
		t.Run(tc.name, func(t *testing.T) {
			whole := newRecorder(cap).feed(tc.stream)
			whole.a.Close()
			run := func(cuts []int) *recorder {
				r := newRecorder(cap)
				prev := 0
				for _, c := range append(cuts, len(tc.stream)) {
					r.feed(tc.stream[prev:c])
					prev = c
				}
				r.a.Close()
				return r
			}
			check := func(desc string, r *recorder) {
				t.Helper()
				if diff := cmp.Diff(whole.items, r.items); diff != "" {
					t.Fatalf("%s: items differ from the whole stream's (-whole +pieces):\n%s", desc, diff)
				}
				if ws, rs := whole.a.Stats(), r.a.Stats(); ws != rs {
					t.Fatalf("%s: stats %+v, whole stream %+v", desc, rs, ws)
				}
			}
			for cut := 0; cut <= len(tc.stream); cut++ {
				check(fmt.Sprintf("cut at %d", cut), run([]int{cut}))
			}
			rng := rand.New(rand.NewPCG(7, 8))
			for i := range 200 {
				var cuts []int
				for c := rng.IntN(40); c < len(tc.stream); c += 1 + rng.IntN(40) {
					cuts = append(cuts, c)
				}
				check(fmt.Sprintf("random cuts #%d %v", i, cuts), run(cuts))
			}
		})
	}
}
