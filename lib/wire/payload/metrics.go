package payload

import (
	"fmt"
	"math"
	"unicode/utf8"

	"github.com/ktstr-go/ktstr/lib/wire"
)

// Metric polarities: which way is a regression. The empty string means
// unknown (ktstr's Polarity::Unknown).
const (
	HigherBetter = "higher_better"
	LowerBetter  = "lower_better"
)

// MetricNameMax bounds a metric's name and unit, in bytes.
const MetricNameMax = 256

// Metric is one named measurement a payload produced.
type Metric struct {
	// Name is the metric's name, for example a dotted JSON path such as
	// "jobs.0.read.iops". Non-empty UTF-8, at most MetricNameMax bytes.
	Name string `msgpack:"name" json:"name"`
	// Value must be finite.
	Value float64 `msgpack:"value" json:"value"`
	// Unit is a display unit ("ns", "MB/s", "%"); empty when unknown.
	Unit string `msgpack:"unit,omitempty" json:"unit,omitempty"`
	// Polarity is HigherBetter, LowerBetter or empty (unknown).
	Polarity string `msgpack:"polarity,omitempty" json:"polarity,omitempty"`
}

// PayloadMetrics is the PMET payload: the metrics extracted from one
// payload run (a benchmark or workload the scenario ran in the guest) and
// its exit code. ktstr's PayloadMetrics carries payload_index, metrics and
// exit_code; the payload's name is an addition here, because a recording
// has no sidecar to look it up in.
type PayloadMetrics struct {
	// PayloadIndex is the payload's position in the scenario.
	PayloadIndex uint32 `msgpack:"payload_index" json:"payload_index"`
	// Payload is the payload's name; may be empty.
	Payload  string   `msgpack:"payload,omitempty" json:"payload,omitempty"`
	ExitCode int32    `msgpack:"exit_code" json:"exit_code"`
	Metrics  []Metric `msgpack:"metrics" json:"metrics"`
}

// Get returns the value of the first metric called name.
func (m *PayloadMetrics) Get(name string) (float64, bool) {
	for _, x := range m.Metrics {
		if x.Name == name {
			return x.Value, true
		}
	}
	return 0, false
}

// MarshalPayloadMetrics encodes m for a PMET frame.
func MarshalPayloadMetrics(m *PayloadMetrics) ([]byte, error) { return marshal(m) }

// UnmarshalPayloadMetrics decodes a PMET payload. exit_code must be
// present; every metric needs a valid name, a finite value, a valid unit
// and a known polarity; the payload name must be valid UTF-8.
func UnmarshalPayloadMetrics(p []byte) (*PayloadMetrics, error) {
	const t = wire.TypePayloadMetrics
	var m PayloadMetrics
	if err := unmarshal(t, p, &m, "exit_code"); err != nil {
		return nil, err
	}
	for i, x := range m.Metrics {
		path := fmt.Sprintf("metrics[%d]", i)
		if err := checkName(t, path+".name", x.Name, false); err != nil {
			return nil, err
		}
		if err := checkName(t, path+".unit", x.Unit, true); err != nil {
			return nil, err
		}
		if math.IsNaN(x.Value) || math.IsInf(x.Value, 0) {
			return nil, invalid(t, path+".value", "%v is not finite", x.Value)
		}
		switch x.Polarity {
		case "", HigherBetter, LowerBetter:
		default:
			return nil, invalid(t, path+".polarity", "unknown polarity %q", x.Polarity)
		}
	}
	return &m, nil
}

func checkName(t wire.Type, path, s string, empty bool) error {
	switch {
	case s == "" && !empty:
		return invalid(t, path, "empty")
	case len(s) > MetricNameMax:
		return invalid(t, path, "%d bytes, more than %d", len(s), MetricNameMax)
	case !utf8.ValidString(s):
		return invalid(t, path, "not UTF-8")
	}
	return nil
}

// RawPayloadOutput is the RAWO payload: what one payload run printed, for
// the host to keep or to extract metrics from. ktstr's RawPayloadOutput
// carries payload_index, stdout, stderr and extraction hints; here the
// payload's name and exit code travel with it and the hints are one free
// text field.
type RawPayloadOutput struct {
	PayloadIndex uint32 `msgpack:"payload_index" json:"payload_index"`
	// Payload is the payload's name; may be empty.
	Payload  string `msgpack:"payload,omitempty" json:"payload,omitempty"`
	ExitCode int32  `msgpack:"exit_code" json:"exit_code"`
	// Stdout and Stderr are the captured text. A decoder replaces
	// ill-formed UTF-8 like Rust's String::from_utf8_lossy; writers
	// should send valid UTF-8.
	Stdout string `msgpack:"stdout" json:"stdout"`
	Stderr string `msgpack:"stderr" json:"stderr"`
	// Hint tells a metric extractor what the output is; may be empty.
	Hint string `msgpack:"hint,omitempty" json:"hint,omitempty"`
}

// MarshalRawPayloadOutput encodes r for a RAWO frame.
func MarshalRawPayloadOutput(r *RawPayloadOutput) ([]byte, error) { return marshal(r) }

// UnmarshalRawPayloadOutput decodes a RAWO payload. exit_code must be
// present and the payload name valid UTF-8 of at most MetricNameMax
// bytes; stdout, stderr and hint are made valid UTF-8 (lossy).
func UnmarshalRawPayloadOutput(p []byte) (*RawPayloadOutput, error) {
	const t = wire.TypeRawPayloadOutput
	var r RawPayloadOutput
	if err := unmarshalLossy(t, p, &r, "exit_code"); err != nil {
		return nil, err
	}
	if err := checkName(t, "payload", r.Payload, true); err != nil {
		return nil, err
	}
	r.Stdout = lossy(r.Stdout)
	r.Stderr = lossy(r.Stderr)
	r.Hint = lossy(r.Hint)
	return &r, nil
}

func lossy(s string) string {
	if utf8.ValidString(s) {
		return s
	}
	return wire.Lossy([]byte(s))
}
