package boot

import (
	"bytes"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/ktstr-go/ktstr/lib/wire"
)

func TestSplitCommand(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want []string
		err  string
	}{
		{"true", []string{"true"}, ""},
		{"  echo  a\tb\n", []string{"echo", "a", "b"}, ""},
		{`sh -c 'echo "x y"; exit 3'`, []string{"sh", "-c", `echo "x y"; exit 3`}, ""},
		{`a "b \"c\" \\ \d" e`, []string{"a", `b "c" \ \d`, "e"}, ""},
		{`a\ b 'c'd"e"`, []string{"a b", "cde"}, ""},
		{`''`, []string{""}, ""},
		{`$HOME *`, []string{"$HOME", "*"}, ""},
		{"", nil, "empty command"},
		{"   ", nil, "empty command"},
		{`'open`, nil, "unterminated ' quote"},
		{`"open`, nil, `unterminated " quote`},
		{`end\`, nil, "a backslash at the end"},
	} {
		got, err := SplitCommand(tc.in)
		if tc.err != "" {
			if err == nil || err.Error() != tc.err {
				t.Errorf("SplitCommand(%q) = %q, %v; want error %q", tc.in, got, err, tc.err)
			}
			continue
		}
		if err != nil || !cmp.Equal(got, tc.want) {
			t.Errorf("SplitCommand(%q) = %q, %v; want %q", tc.in, got, err, tc.want)
		}
	}
}

// TestFrames: the exit status is the last CRC-valid EXIT's, whatever
// sizes the stream comes in; the scheduler's lines come out sanitised;
// a bad CRC or a wrong size is passed over; a frame over the limit ends
// the reading without holding its bytes.
func TestFrames(t *testing.T) {
	var stream []byte
	stream = wire.AppendFrame(stream, wire.TypeSysRdy, nil)
	stream = wire.AppendFrame(stream, wire.TypeSchedLog, []byte("[    1.000000] stdout: hello\x1b[2J\n[    1.000001] stderr: bye\r\n"))
	stream = wire.AppendFrame(stream, wire.TypeExit, wire.AppendExitCode(nil, 3))
	bad := wire.AppendFrame(nil, wire.TypeExit, wire.AppendExitCode(nil, 9))
	bad[8] ^= 1 // the CRC
	stream = append(stream, bad...)
	stream = wire.AppendFrame(stream, wire.TypeExit, []byte{1, 2}) // not 4 bytes
	for _, size := range []int{1, 3, 16, 17, len(stream)} {
		var sched bytes.Buffer
		f := &Frames{Sched: &sched}
		for p := stream; len(p) > 0; {
			n := min(size, len(p))
			f.Write(p[:n])
			p = p[n:]
		}
		if code, ok := f.ExitCode(); !ok || code != 3 {
			t.Errorf("in writes of %d: ExitCode = %d, %v; want 3", size, code, ok)
		}
		if want := "[    1.000000] stdout: hello\\x1b[2J\n[    1.000001] stderr: bye\n"; sched.String() != want {
			t.Errorf("in writes of %d: scheduler output %q, want %q", size, sched.String(), want)
		}
	}

	f := &Frames{}
	huge := wire.AppendFrame(nil, wire.TypeStdout, nil)
	huge[4], huge[5], huge[6], huge[7] = 0xff, 0xff, 0xff, 0x7f // length
	f.Write(huge)
	f.Write(wire.AppendFrame(nil, wire.TypeExit, wire.AppendExitCode(nil, 0)))
	if _, ok := f.ExitCode(); ok || f.err == nil || !strings.Contains(f.err.Error(), "more than") || len(f.buf) != 0 {
		t.Errorf("after an oversized frame: err %v, %d bytes held; want an error, nothing held, no exit status", f.err, len(f.buf))
	}
}
