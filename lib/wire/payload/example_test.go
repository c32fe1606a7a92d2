package payload_test

import (
	"errors"
	"fmt"

	"github.com/ktstr-go/ktstr/lib/wire"
	"github.com/ktstr-go/ktstr/lib/wire/payload"
)

func ExampleMarshalPayloadMetrics() {
	p, _ := payload.MarshalPayloadMetrics(&payload.PayloadMetrics{
		PayloadIndex: 0, Payload: "fio", ExitCode: 0,
		Metrics: []payload.Metric{{Name: "read.iops", Value: 51234, Unit: "IO/s", Polarity: payload.HigherBetter}},
	})
	frame := wire.AppendFrame(nil, wire.TypePayloadMetrics, p)

	f, _, _ := wire.ParseFrame(frame)
	m, err := payload.UnmarshalPayloadMetrics(f.Payload)
	if err != nil {
		fmt.Println(err)
		return
	}
	v, _ := m.Get("read.iops")
	fmt.Println(f.Type, m.Payload, m.ExitCode, v, m.Metrics[0].Unit)
	// Output: PMET fio 0 51234 IO/s
}

func ExampleUnmarshalAssertResult() {
	p, _ := payload.MarshalAssertResult(&payload.AssertResult{Outcomes: []payload.Outcome{
		{Verdict: payload.Pass},
		{Verdict: payload.Inconclusive, Kind: payload.KindBenchmark, Message: "too few samples"},
	}})
	r, _ := payload.UnmarshalAssertResult(p)
	fmt.Println(r.Verdict())

	// A garbled payload is an error, never a pass.
	_, err := payload.UnmarshalAssertResult([]byte{0x80}) // an empty map
	var de *payload.DecodeError
	fmt.Println(errors.As(err, &de), errors.Is(err, wire.ErrPayload))
	fmt.Println(err)
	// Output:
	// inconclusive
	// true true
	// payload: cannot decode TEST (offset 1): missing key "outcomes"
}
