package main

import (
	"bufio"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/rogpeppe/go-internal/testscript"

	"github.com/ktstr-go/ktstr/internal/clitest"
	"github.com/ktstr-go/ktstr/internal/control"
	"github.com/ktstr-go/ktstr/lib/record"
	"github.com/ktstr-go/ktstr/lib/wire"
)

// The CLI contract lives in testdata/*.txtar. Besides ktstr-dispatch
// itself, scripts get three helpers:
//
//	mkframes SPEC OUT      write the frames SPEC describes (see parseSpec)
//	records2json IN OUT    re-encode a record stream (either form) as JSON
//	                       lines with the times zeroed, for cmp
//	ctlserver SOCK OUT     serve a control socket (internal/control), write
//	                       the effects it receives like records2json, and
//	                       exit when the first client hangs up
//	status N CMD [ARG...]  run CMD with this stdin, stdout and stderr and
//	                       fail unless it exits with status N
//	genframes BYTES SIZE [KIND]
//	                       write BYTES of SIZE-byte SOUT frames (header
//	                       included) to stdout, each payload different:
//	                       KIND text (the default: letters, no newline),
//	                       lines (lines like a scheduler's statistics in
//	                       the guest agent's labelled form) or binary
//	                       (random bytes); scripts/bench-dispatch and
//	                       scripts/bench-verdict use it
//	framestamp TAG FILE    copy frames from stdin to stdout as they come
//	                       and write the wall-clock time (ns since the
//	                       epoch) at which the first frame of type TAG
//	                       passed to FILE; scripts/bench-run-end uses it
func TestMain(m *testing.M) {
	testscript.Main(m, map[string]func(){
		name:           func() { os.Exit(run(os.Args, os.Stdin, os.Stdout, os.Stderr)) },
		"mkframes":     func() { os.Exit(helper(mkframes)) },
		"records2json": func() { os.Exit(helper(records2json)) },
		"ctlserver":    func() { os.Exit(helper(ctlserver)) },
		"genframes":    func() { os.Exit(helper(genframes)) },
		"framestamp":   func() { os.Exit(helper(framestamp)) },
	})
}

func TestScripts(t *testing.T) {
	testscript.Run(t, testscript.Params{Dir: "testdata", RequireExplicitExec: true,
		Cmds: map[string]func(ts *testscript.TestScript, neg bool, args []string){"status": clitest.Status}})
}

func helper(f func(args []string) error) int {
	if err := f(os.Args[1:]); err != nil {
		fmt.Fprintf(os.Stderr, "%s: %v\n", os.Args[0], err)
		return 1
	}
	return 0
}

func genframes(args []string) error {
	if len(args) != 2 && len(args) != 3 {
		return fmt.Errorf("usage: genframes BYTES SIZE [text|lines|binary]")
	}
	total, err1 := strconv.ParseInt(args[0], 0, 64)
	size, err2 := strconv.Atoi(args[1])
	if err1 != nil || err2 != nil || size < wire.HeaderSize+8 || size > wire.HeaderSize+wire.MaxPayload {
		return fmt.Errorf("genframes: bad BYTES or SIZE")
	}
	kind := "text"
	if len(args) == 3 {
		kind = args[2]
	}
	x := uint64(0x9e3779b97f4a7c15)
	rnd := func() uint64 { // xorshift64
		x ^= x << 13
		x ^= x >> 7
		x ^= x << 17
		return x
	}
	var lines []byte // kind lines: the text the payloads are cut from
	line := 0
	w := bufio.NewWriterSize(os.Stdout, 1<<20)
	p := make([]byte, size-wire.HeaderSize)
	for i := range p {
		p[i] = byte('a' + i%26)
	}
	var frame []byte
	for i := int64(0); (i+1)*int64(size) <= total; i++ {
		switch kind {
		case "text":
			binary.LittleEndian.PutUint64(p, uint64(i))
		case "lines":
			for len(lines) < len(p) {
				lines = fmt.Appendf(lines, "[%5d.%06d] stdout: scx_demo: cpu %2d load %3d.%02d nr_queued %4d slice_us %5d vtime %d\n",
					line/1000, line%1000*1000, rnd()%64, rnd()%1000, rnd()%100, rnd()%5000, rnd()%20000, rnd())
				line++
			}
			n := copy(p, lines)
			lines = append(lines[:0], lines[n:]...)
		case "binary":
			for j := 0; j+8 <= len(p); j += 8 {
				binary.LittleEndian.PutUint64(p[j:], rnd())
			}
		default:
			return fmt.Errorf("genframes: KIND %q: want text, lines or binary", kind)
		}
		frame = wire.AppendFrame(frame[:0], wire.TypeStdout, p)
		if _, err := w.Write(frame); err != nil {
			return err
		}
	}
	return w.Flush()
}

func framestamp(args []string) error {
	if len(args) != 2 || len(args[0]) != 4 {
		return fmt.Errorf("usage: framestamp TAG FILE")
	}
	want := wire.Type(binary.BigEndian.Uint32([]byte(args[0]))) // "EXIT" is 0x45584954
	d := wire.NewDecoder(io.TeeReader(os.Stdin, os.Stdout))
	for {
		f, err := d.Decode()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			_, err = io.Copy(os.Stdout, os.Stdin) // pass the rest on as it is
			return err
		}
		if f.Type == want {
			if err := os.WriteFile(args[1], []byte(strconv.FormatInt(time.Now().UnixNano(), 10)+"\n"), 0o644); err != nil {
				return err
			}
			want = 0 // the first one only
		}
	}
}

func records2json(args []string) error {
	if len(args) != 2 {
		return fmt.Errorf("usage: records2json IN OUT")
	}
	in, err := os.Open(args[0])
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.Create(args[1])
	if err != nil {
		return err
	}
	w := record.NewWriter(out, true)
	rd := record.NewReader(in)
	for {
		r, err := rd.Read()
		if err == io.EOF {
			break
		}
		if err != nil {
			return err
		}
		if err := w.Write(zeroTimes(r)); err != nil {
			return err
		}
	}
	if err := w.Close(); err != nil {
		return err
	}
	return out.Close()
}

// zeroTimes clears what depends on when frames were read.
func zeroTimes(r *record.Record) *record.Record {
	r.AtNS, r.StartNS, r.DeadlineNS = 0, 0, 0
	if r.Effect == record.EffectWatchdogResume || r.PauseNS > 1 {
		r.PauseNS, r.PauseTotalNS = 0, 0
	}
	return r
}

func ctlserver(args []string) error {
	if len(args) != 2 {
		return fmt.Errorf("usage: ctlserver SOCK OUT")
	}
	out, err := os.Create(args[1])
	if err != nil {
		return err
	}
	w := record.NewWriter(out, true)
	var werr error
	srv, err := control.Listen(args[0], func(r *record.Record) {
		if werr == nil {
			werr = w.Write(zeroTimes(r))
		}
	})
	if err != nil {
		return err
	}
	select {
	case <-srv.Disconnected():
	case <-time.After(60 * time.Second):
		srv.Close()
		return fmt.Errorf("no client hung up within 60 s")
	}
	srv.Close()
	if werr != nil {
		return werr
	}
	if err := w.Close(); err != nil {
		return err
	}
	return out.Close()
}

// mkframes writes the frames of a spec file, one per line:
//
//	# comment
//	raw HEX                         raw bytes (a partial frame, garbage)
//	TYPE [FLAG...] [PART...]        one frame
//
// TYPE is a four-letter tag (SOUT) or a number (0xdeadbeef). FLAGs:
// torn (CRC with every bit flipped), pad=N, len=N (header length field).
// The payload is the PARTs concatenated: "quoted text", hex:HEX, i32:N
// (LE), stim:STEP (24-byte Stimulus), snrq:ID:KIND:TAG, kadr:PHYS:TEXT
// (hex, - for absent), end:MS:ITERS (ScenarioEnd), zeros:N.
func mkframes(args []string) error {
	if len(args) != 2 {
		return fmt.Errorf("usage: mkframes SPEC OUT")
	}
	spec, err := os.ReadFile(args[0])
	if err != nil {
		return err
	}
	var b []byte
	sc := bufio.NewScanner(strings.NewReader(string(spec)))
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || line[0] == '#' {
			continue
		}
		b, err = appendSpec(b, line)
		if err != nil {
			return fmt.Errorf("%s:%d: %v", args[0], n, err)
		}
	}
	return os.WriteFile(args[1], b, 0o644)
}

func appendSpec(b []byte, line string) ([]byte, error) {
	toks, err := tokens(line)
	if err != nil {
		return nil, err
	}
	if toks[0] == "raw" {
		for _, t := range toks[1:] {
			h, err := hex.DecodeString(t)
			if err != nil {
				return nil, err
			}
			b = append(b, h...)
		}
		return b, nil
	}
	typ, err := parseType(toks[0])
	if err != nil {
		return nil, err
	}
	var p []byte
	torn, pad, length := false, uint32(0), int64(-1)
	for _, t := range toks[1:] {
		k, v, _ := strings.Cut(t, ":")
		if strings.HasPrefix(t, `"`) {
			s, err := strconv.Unquote(t)
			if err != nil {
				return nil, err
			}
			p = append(p, s...)
			continue
		}
		switch {
		case t == "torn":
			torn = true
		case strings.HasPrefix(t, "pad="):
			n, err := strconv.ParseUint(t[4:], 0, 32)
			if err != nil {
				return nil, err
			}
			pad = uint32(n)
		case strings.HasPrefix(t, "len="):
			length, err = strconv.ParseInt(t[4:], 0, 64)
			if err != nil {
				return nil, err
			}
		case k == "hex":
			h, err := hex.DecodeString(v)
			if err != nil {
				return nil, err
			}
			p = append(p, h...)
		case k == "i32":
			n, err := strconv.ParseInt(v, 0, 32)
			if err != nil {
				return nil, err
			}
			p = wire.AppendExitCode(p, int32(n))
		case k == "stim":
			n, err := strconv.ParseUint(v, 0, 16)
			if err != nil {
				return nil, err
			}
			p = wire.AppendStimulus(p, wire.Stimulus{ElapsedMS: 100, StepIndex: uint16(n), OpCount: 1, TotalIterations: 1000})
		case k == "snrq":
			f := strings.SplitN(v, ":", 3)
			if len(f) != 3 {
				return nil, fmt.Errorf("snrq:ID:KIND:TAG")
			}
			id, err1 := strconv.ParseUint(f[0], 0, 32)
			kind, err2 := strconv.ParseUint(f[1], 0, 32)
			if err1 != nil || err2 != nil {
				return nil, fmt.Errorf("snrq:ID:KIND:TAG: bad number")
			}
			p = wire.AppendSnapshotRequest(p, wire.SnapshotRequest{RequestID: uint32(id), Kind: uint32(kind), Tag: f[2]})
		case k == "kadr":
			f := strings.Split(v, ":")
			if len(f) != 2 {
				return nil, fmt.Errorf("kadr:PHYS:TEXT")
			}
			var ka wire.KernAddrs
			if f[0] != "-" {
				ka.PhysBase, err = strconv.ParseUint(f[0], 0, 64)
				ka.HasPhysBase = true
			}
			if f[1] != "-" && err == nil {
				ka.Text, err = strconv.ParseUint(f[1], 0, 64)
				ka.HasText = true
			}
			if err != nil {
				return nil, err
			}
			p = wire.AppendKernAddrs(p, ka)
		case k == "end":
			f := strings.Split(v, ":")
			if len(f) != 2 {
				return nil, fmt.Errorf("end:MS:ITERS")
			}
			ms, err1 := strconv.ParseUint(f[0], 0, 64)
			it, err2 := strconv.ParseUint(f[1], 0, 64)
			if err1 != nil || err2 != nil {
				return nil, fmt.Errorf("end:MS:ITERS: bad number")
			}
			p = wire.AppendScenarioEnd(p, wire.ScenarioEnd{ElapsedMS: ms, TotalIterations: it})
		case k == "zeros":
			n, err := strconv.Atoi(v)
			if err != nil {
				return nil, err
			}
			p = append(p, make([]byte, n)...)
		default:
			return nil, fmt.Errorf("unknown part %q", t)
		}
	}
	crc := wire.Checksum(p)
	if torn {
		crc ^= 0xFFFFFFFF
	}
	h := wire.Header{Type: typ, Length: uint32(len(p)), CRC: crc, Pad: pad}
	if length >= 0 {
		h.Length = uint32(length)
	}
	b = wire.AppendHeader(b, h)
	return append(b, p...), nil
}

func parseType(s string) (wire.Type, error) {
	if len(s) == 4 && !strings.HasPrefix(s, "0x") {
		return wire.Type(binary.BigEndian.Uint32([]byte(s))), nil
	}
	n, err := strconv.ParseUint(s, 0, 32)
	return wire.Type(n), err
}

// tokens splits a line on spaces, keeping "quoted strings" whole.
func tokens(line string) ([]string, error) {
	var out []string
	for line = strings.TrimSpace(line); line != ""; line = strings.TrimSpace(line) {
		if line[0] == '"' {
			q, err := strconv.QuotedPrefix(line)
			if err != nil {
				return nil, err
			}
			out = append(out, q)
			line = line[len(q):]
			continue
		}
		i := strings.IndexAny(line, " \t")
		if i < 0 {
			i = len(line)
		}
		out = append(out, line[:i])
		line = line[i:]
	}
	return out, nil
}
