package wire

import (
	"bytes"
	"encoding/hex"
	"errors"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// fixedCodec decodes and re-encodes one fixed payload layout.
type fixedCodec struct {
	t      Type
	sizes  func(n int) bool // which lengths are accepted
	decode func(p []byte) (any, error)
	encode func(v any) []byte
}

var fixedCodecs = map[string]fixedCodec{
	"stimulus": {TypeStimulus, exactly(StimulusSize),
		func(p []byte) (any, error) { return DecodeStimulus(p) },
		func(v any) []byte { return AppendStimulus(nil, v.(Stimulus)) }},
	"scenario end": {TypeScenarioEnd, func(n int) bool { return n >= ScenarioEndSize },
		func(p []byte) (any, error) { return DecodeScenarioEnd(p) },
		func(v any) []byte { return AppendScenarioEnd(nil, v.(ScenarioEnd)) }},
	"exit code": {TypeExit, exactly(ExitCodeSize),
		func(p []byte) (any, error) { return DecodeExitCode(TypeExit, p) },
		func(v any) []byte { return AppendExitCode(nil, v.(int32)) }},
	"kern addrs": {TypeKernAddrs, exactly(KernAddrsSize),
		func(p []byte) (any, error) { return DecodeKernAddrs(p) },
		func(v any) []byte { return AppendKernAddrs(nil, v.(KernAddrs)) }},
	"snapshot request": {TypeSnapshotRequest, exactly(SnapshotRequestSize),
		func(p []byte) (any, error) { return DecodeSnapshotRequest(p) },
		func(v any) []byte { return AppendSnapshotRequest(nil, v.(SnapshotRequest)) }},
	"snapshot reply": {TypeSnapshotReply, exactly(SnapshotReplySize),
		func(p []byte) (any, error) { return DecodeSnapshotReply(p) },
		func(v any) []byte { return AppendSnapshotReply(nil, v.(SnapshotReply)) }},
	"lifecycle": {TypeLifecycle, func(n int) bool { return n >= 1 },
		func(p []byte) (any, error) { return DecodeLifecycle(p) },
		func(v any) []byte { return AppendLifecycle(nil, v.(Lifecycle)) }},
	"hello": {TypeHello, exactly(HelloSize),
		func(p []byte) (any, error) { return DecodeHello(p) },
		func(v any) []byte { return AppendHello(nil, v.(Nonce)) }},
	"loss": {TypeLoss, func(n int) bool { return n == LossSize || n == LossNonceSize },
		func(p []byte) (any, error) { return DecodeLoss(p) },
		func(v any) []byte { return AppendLoss(nil, v.(Loss)) }},
	"vm end": {TypeVMEnd, func(n int) bool { return n == VMEndSize || n == VMEndNonceSize },
		func(p []byte) (any, error) { return DecodeVMEnd(p) },
		func(v any) []byte { return AppendVMEnd(nil, v.(VMEnd)) }},
}

// fixedNames fixes an order for the fuzz target's selector.
var fixedNames = []string{"stimulus", "scenario end", "exit code", "kern addrs", "snapshot request",
	"snapshot reply", "lifecycle", "loss", "vm end", "hello"}

func exactly(n int) func(int) bool { return func(m int) bool { return m == n } }

// Every length but the right ones is rejected with a *PayloadError that
// wraps ErrPayloadSize and ErrPayload.
func TestFixedPayloadSizes(t *testing.T) {
	for name, c := range fixedCodecs {
		t.Run(name, func(t *testing.T) {
			for n := 0; n <= SnapshotReplySize+1; n++ {
				p := bytes.Repeat([]byte{1, 0, 0, 0}, n/4+1)[:n] // every u32 is 1: valid wherever the size is right
				_, err := c.decode(p)
				if c.sizes(n) {
					if err != nil {
						t.Errorf("decode(%d bytes) = %v, want success", n, err)
					}
					continue
				}
				var pe *PayloadError
				if !errors.Is(err, ErrPayloadSize) || !errors.Is(err, ErrPayload) || !errors.As(err, &pe) {
					t.Fatalf("decode(%d bytes) error = %v, want a *PayloadError wrapping ErrPayloadSize", n, err)
				}
				if pe.Length != n || pe.Type != c.t {
					t.Errorf("decode(%d bytes): PayloadError %+v, want length %d, type %v", n, pe, n, c.t)
				}
				if errors.Is(err, ErrPayloadValue) {
					t.Errorf("decode(%d bytes): a size error also matches ErrPayloadValue", n)
				}
			}
		})
	}
}

// Layouts with known bytes.
func TestFixedPayloadGolden(t *testing.T) {
	for _, tc := range []struct {
		name string
		v    any
		hex  string
	}{
		{"stimulus", Stimulus{ElapsedMS: 0x01020304, StepIndex: 0x0506, OpCount: 0x0708, OpKinds: 0x090a0b0c,
			CgroupCount: 0x0d0e, WorkerCount: 0x0f10, TotalIterations: 0x1112131415161718},
			"04030201" + "0605" + "0807" + "0c0b0a09" + "0e0d" + "100f" + "1817161514131211"},
		{"scenario end", ScenarioEnd{ElapsedMS: 1500, TotalIterations: 2}, "dc05000000000000" + "0200000000000000"},
		{"exit code", int32(-2), "feffffff"},
		{"kern addrs", KernAddrs{PhysBase: 0x1000000, HasPhysBase: true, PageOffsetBase: 0xffff888000000000, Text: 0xffffffff81000000, HasText: true},
			"0100000100000000" + "000000008088ffff" + "01000081ffffffff"},
		{"kern addrs", KernAddrs{PageOffsetBase: 5}, "0000000000000000" + "0500000000000000" + "0000000000000000"},
		{"snapshot request", SnapshotRequest{RequestID: 3, Kind: SnapshotWatch, Tag: "jiffies"},
			"03000000" + "02000000" + hex.EncodeToString([]byte("jiffies")) + strings.Repeat("00", 64-7)},
		{"snapshot reply", SnapshotReply{RequestID: 3, Status: SnapshotErr, Reason: "busy"},
			"03000000" + "02000000" + hex.EncodeToString([]byte("busy")) + strings.Repeat("00", 512-4)},
		{"lifecycle", Lifecycle{Phase: PhaseSchedulerNotAttached, Reason: "no ops"}, "04" + hex.EncodeToString([]byte("no ops"))},
		{"lifecycle", Lifecycle{Phase: PhaseInitStarted}, "01"},
		{"loss", Loss{Frames: 2, Bytes: 300}, "0200000000000000" + "2c01000000000000"},
		{"vm end", VMEnd{Reason: EndTimeout, ExitCode: 1, ElapsedNS: 7}, "02000000" + "01000000" + "0700000000000000" + "0000000000000000"},
		// With the run's nonce (what ktstr-drain writes).
		{"hello", testNonce, "000102030405060708090a0b0c0d0e0f"},
		{"loss", Loss{Frames: 2, Bytes: 300, Nonce: testNonce}, "0200000000000000" + "2c01000000000000" + "000102030405060708090a0b0c0d0e0f"},
		{"vm end", VMEnd{Reason: EndPoweroff, ElapsedNS: 7, Nonce: testNonce}, "01000000" + "00000000" + "0700000000000000" + "0000000000000000" +
			"000102030405060708090a0b0c0d0e0f"},
	} {
		c := fixedCodecs[tc.name]
		want, _ := hex.DecodeString(tc.hex)
		if got := c.encode(tc.v); !bytes.Equal(got, want) {
			t.Errorf("%s: encode(%+v) = %x, want %x", tc.name, tc.v, got, want)
		}
		got, err := c.decode(want)
		if err != nil {
			t.Errorf("%s: decode(%x): %v", tc.name, want, err)
		} else if diff := cmp.Diff(tc.v, got); diff != "" {
			t.Errorf("%s: decode(%x) mismatch (-want +got):\n%s", tc.name, want, diff)
		}
	}
}

// Bad values with the right size wrap ErrPayloadValue.
func TestFixedPayloadBadValues(t *testing.T) {
	req := func(id, kind uint32) []byte {
		return AppendSnapshotRequest(nil, SnapshotRequest{RequestID: id, Kind: kind})
	}
	rep := func(status uint32) []byte {
		return AppendSnapshotReply(nil, SnapshotReply{RequestID: 1, Status: status})
	}
	for _, tc := range []struct {
		name string
		in   []byte
	}{
		{"snapshot request", req(0, SnapshotCapture)},
		{"snapshot request", req(1, SnapshotNone)},
		{"snapshot reply", rep(0)},
		{"snapshot reply", rep(3)},
		{"lifecycle", []byte{0}},
		{"lifecycle", []byte{5, 'x'}},
		{"lifecycle", []byte{0xff}},
		{"hello", make([]byte, HelloSize)},
		{"loss", make([]byte, LossNonceSize)},
		{"vm end", make([]byte, VMEndNonceSize)},
	} {
		_, err := fixedCodecs[tc.name].decode(tc.in)
		var pe *PayloadError
		if !errors.Is(err, ErrPayloadValue) || !errors.As(err, &pe) || pe.Type != fixedCodecs[tc.name].t {
			t.Errorf("%s: decode(%x) error = %v, want a *PayloadError wrapping ErrPayloadValue", tc.name, tc.in, err)
		}
	}
	// a snapshot kind ktstr does not know is still a valid request (the
	// host answers ERR "unknown snapshot kind")
	if r, err := DecodeSnapshotRequest(req(9, 7)); err != nil || r.Kind != 7 {
		t.Errorf("DecodeSnapshotRequest(kind 7) = %+v, %v", r, err)
	}
}

// KADR's biased fields: a stored 0 is "not sent"; anything else is value+1.
func TestKernAddrsBias(t *testing.T) {
	for _, tc := range []struct {
		stored [3]uint64
		want   KernAddrs
	}{
		{[3]uint64{0, 0, 0}, KernAddrs{}},
		{[3]uint64{1, 0, 1}, KernAddrs{HasPhysBase: true, HasText: true}},
		{[3]uint64{^uint64(0), 9, ^uint64(0)}, KernAddrs{PhysBase: ^uint64(0) - 1, HasPhysBase: true, PageOffsetBase: 9, Text: ^uint64(0) - 1, HasText: true}},
	} {
		var p []byte
		for _, v := range tc.stored {
			p = append(p, byte(v), byte(v>>8), byte(v>>16), byte(v>>24), byte(v>>32), byte(v>>40), byte(v>>48), byte(v>>56))
		}
		got, err := DecodeKernAddrs(p)
		if err != nil || got != tc.want {
			t.Errorf("DecodeKernAddrs(%x) = %+v, %v, want %+v", p, got, err, tc.want)
		}
		if back := AppendKernAddrs(nil, got); !bytes.Equal(back, p) {
			t.Errorf("AppendKernAddrs(%+v) = %x, want %x", got, back, p)
		}
	}
}

// The tag runs to the first NUL, all 64 bytes when there is none; long
// tags and reasons are cut on a UTF-8 boundary.
func TestSnapshotText(t *testing.T) {
	p := AppendSnapshotRequest(nil, SnapshotRequest{RequestID: 1, Kind: 1})
	copy(p[8:], bytes.Repeat([]byte("t"), 64))
	if r, _ := DecodeSnapshotRequest(p); r.Tag != strings.Repeat("t", 64) {
		t.Errorf("tag without NUL = %q, want all 64 bytes", r.Tag)
	}
	copy(p[8:], "ab\x00cd")
	if r, _ := DecodeSnapshotRequest(p); r.Tag != "ab" {
		t.Errorf("tag = %q, want %q (to the first NUL)", r.Tag, "ab")
	}
	long := strings.Repeat("é", 40) // 80 bytes, two per rune
	p = AppendSnapshotRequest(nil, SnapshotRequest{RequestID: 1, Kind: 1, Tag: "x" + long})
	if r, _ := DecodeSnapshotRequest(p); r.Tag != "x"+strings.Repeat("é", 31) {
		t.Errorf("long tag decoded as %q (%d bytes), want cut at 63 bytes", r.Tag, len(r.Tag))
	}
	p = AppendSnapshotReply(nil, SnapshotReply{RequestID: 1, Status: SnapshotErr, Reason: strings.Repeat("r", 600)})
	if r, _ := DecodeSnapshotReply(p); len(p) != SnapshotReplySize || r.Reason != strings.Repeat("r", 512) {
		t.Errorf("long reason: %d bytes, reason %d bytes", len(p), len(r.Reason))
	}
}

// Lossy follows Rust's String::from_utf8_lossy: one U+FFFD per maximal
// subpart of an ill-formed sequence.
func TestLossy(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"plain", "plain"},
		{"", ""},
		{"\uFFFD is kept", "\uFFFD is kept"},
		// The example of the Unicode Standard, section 3.9 (table 3-8).
		{"\x61\xF1\x80\x80\xE1\x80\xC2\x62\x80\x63\x80\xBF\x64", "a\uFFFD\uFFFD\uFFFDb\uFFFDc\uFFFD\uFFFDd"},
		{"\xC0\x80", "\uFFFD\uFFFD"},           // overlong: C0 never starts a sequence
		{"\xED\xA0\x80", "\uFFFD\uFFFD\uFFFD"}, // surrogate: ED A0 is not a valid prefix
		{"\xE0\x80", "\uFFFD\uFFFD"},           // E0 needs A0..BF next
		{"\xF4\x90\x80\x80", "\uFFFD\uFFFD\uFFFD\uFFFD"},
		{"ok\xF0\x9F\x98", "ok\uFFFD"}, // truncated emoji at the end
		{"\xFF", "\uFFFD"},
	} {
		if got := Lossy([]byte(tc.in)); got != tc.want {
			t.Errorf("Lossy(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
	l, err := DecodeLifecycle([]byte("\x04bad \xE1\x80 text"))
	if err != nil || l.Reason != "bad \uFFFD text" {
		t.Errorf("DecodeLifecycle(invalid UTF-8) = %+v, %v", l, err)
	}
}

func TestStringers(t *testing.T) {
	for _, tc := range []struct {
		s    interface{ String() string }
		want string
	}{
		{PhaseSchedulerDied, "scheduler_died"},
		{Phase(9), "phase(9)"},
		{EndVMMError, "vmm_error"},
		{EndReason(77), "reason(77)"},
		{EventResidualOverflow, "residual_overflow"},
		{EventKind(0), "EventKind(0)"},
		{HostOrigin, "host-origin"},
	} {
		if got := tc.s.String(); got != tc.want {
			t.Errorf("String() = %q, want %q", got, tc.want)
		}
	}
}

var testNonce = Nonce{0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15}
