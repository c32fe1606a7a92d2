package wire_test

import (
	"bytes"
	"errors"
	"fmt"
	"io"

	"github.com/ktstr-go/ktstr/lib/wire"
)

func ExampleAppendFrame() {
	b := wire.AppendFrame(nil, wire.TypeExit, wire.AppendExitCode(nil, 0))
	fmt.Printf("% x\n", b[:4])
	fmt.Printf("%q\n", b[:4])
	fmt.Printf("% x\n", b[4:])
	// Output:
	// 54 49 58 45
	// "TIXE"
	// 04 00 00 00 1c df 44 21 00 00 00 00 00 00 00 00
}

func ExampleAssembler() {
	var stream []byte
	stream = wire.AppendFrame(stream, wire.TypeScenarioStart, nil)
	stream = wire.AppendFrame(stream, wire.TypeStdout, []byte("hello\n"))
	stream = append(stream, wire.AppendFrame(nil, wire.TypeExit, wire.AppendExitCode(nil, 0))[:10]...) // cut short

	a := &wire.Assembler{OnEvent: func(e wire.Event) { fmt.Println("event:", e) }}
	emit := func(f wire.Frame) { fmt.Printf("frame: %v %q crc_ok=%v\n", f.Type, f.Payload, f.CRCOK) }
	for len(stream) > 0 { // a pipe delivers the bytes in pieces of any size
		n := min(7, len(stream))
		a.Feed(stream[:n], emit)
		stream = stream[n:]
	}
	a.Close()
	fmt.Printf("%+v\n", a.Stats())
	// Output:
	// frame: SCST "" crc_ok=true
	// frame: SOUT "hello\n" crc_ok=true
	// event: truncated_tail at offset 38 (type 0x00000000, length 0, pad 0, dropped 10)
	// {Bytes:48 Frames:2 CRCMismatch:0 PadNonzero:0 Oversized:0 ResidualOverflow:0 TruncatedTail:1 DroppedBytes:10}
}

func ExampleParseStream() {
	var b []byte
	b = wire.AppendFrame(b, wire.TypeStdout, []byte("kept"))
	b = wire.AppendHeader(b, wire.Header{Type: wire.TypeStdout, Length: 0xFFFFFFFF}) // a hostile length
	b = wire.AppendFrame(b, wire.TypeStdout, []byte("never reached"))
	frames, events := wire.ParseStream(b, 0)
	for _, f := range frames {
		fmt.Printf("%v %q\n", f.Type, f.Payload)
	}
	for _, e := range events {
		fmt.Println(e.Kind, e.Offset, e.Dropped)
	}
	// Output:
	// SOUT "kept"
	// oversized 20 45
}

func ExampleDecoder() {
	var buf bytes.Buffer
	enc := wire.NewEncoder(&buf)
	enc.Encode(wire.TypeLifecycle, wire.AppendLifecycle(nil, wire.Lifecycle{Phase: wire.PhaseInitStarted}))
	enc.Encode(wire.TypeScenarioEnd, wire.AppendScenarioEnd(nil, wire.ScenarioEnd{ElapsedMS: 1500, TotalIterations: 99}))

	dec := wire.NewDecoder(&buf)
	for {
		f, err := dec.Decode()
		if err == io.EOF {
			break
		}
		if err != nil {
			fmt.Println("error:", err)
			return
		}
		switch f.Type {
		case wire.TypeLifecycle:
			l, _ := wire.DecodeLifecycle(f.Payload)
			fmt.Println(f.Type, l.Phase)
		case wire.TypeScenarioEnd:
			s, _ := wire.DecodeScenarioEnd(f.Payload)
			fmt.Println(f.Type, s.ElapsedMS, s.TotalIterations)
		}
	}
	// Output:
	// LIFE init_started
	// SCEN 1500 99
}

func ExampleLookup() {
	for _, t := range []wire.Type{wire.TypeSysRdy, wire.TypeTestResult, wire.TypeKernAddrs, 0x12345678} {
		info, ok := wire.Lookup(t)
		fmt.Println(t, ok, info.Name, info.Dir, info.Internal)
	}
	// Output:
	// SRDY true SysRdy guest-to-host true
	// TEST true TestResult guest-to-host false
	// KADR false  Direction(0) false
	// 0x12345678 false  Direction(0) false
}

func ExamplePayloadError() {
	_, err := wire.DecodeExitCode(wire.TypeExit, []byte{1, 2, 3})
	var pe *wire.PayloadError
	fmt.Println(errors.Is(err, wire.ErrPayloadSize), errors.As(err, &pe), pe.Type, pe.Length)
	fmt.Println(err)
	// Output:
	// true true EXIT 3
	// wire: bad EXIT payload (3 bytes): want exactly 4 bytes
}
