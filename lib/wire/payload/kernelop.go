package payload

import (
	"fmt"

	"github.com/ktstr-go/ktstr/lib/wire"
)

// Kernel-op modes and directions (ktstr's KernelOpMode, KernelOpDirection).
const (
	ModeHot  = "hot"
	ModeCold = "cold"

	DirWrite = "write"
	DirRead  = "read"
)

// Target kinds.
const (
	TargetSymbol      = "symbol"        // Symbol
	TargetDirect      = "direct"        // Addr: guest physical address
	TargetKVA         = "kva"           // Addr: kernel virtual address
	TargetPerCPUField = "per_cpu_field" // Symbol, Field, CPU
	TargetTaskField   = "task_field"    // PID, StartTimeNS, Field
)

// Value kinds. For reads the kind says how many bytes to read and the
// content is ignored.
const (
	ValueU32   = "u32"
	ValueU64   = "u64"
	ValueBytes = "bytes"
	ValueOrU32 = "or_u32"
)

// KernelOpTagMax is where the host cuts a request's tag
// (ktstr's KERNEL_OP_TAG_MAX), on a UTF-8 boundary.
const KernelOpTagMax = 256

// KernelOpReasonMax bounds a reply's reason.
const KernelOpReasonMax = 256

// KernelOpReplyMax is the largest KORP payload a guest accepts.
const KernelOpReplyMax = 1 << 20

// Target says what a kernel op reads or writes.
type Target struct {
	Kind        string `msgpack:"kind" json:"kind"`
	Symbol      string `msgpack:"symbol,omitempty" json:"symbol,omitempty"`
	Addr        uint64 `msgpack:"addr,omitempty" json:"addr,omitempty"`
	Field       string `msgpack:"field,omitempty" json:"field,omitempty"`
	CPU         uint32 `msgpack:"cpu,omitempty" json:"cpu,omitempty"`
	PID         uint32 `msgpack:"pid,omitempty" json:"pid,omitempty"`
	StartTimeNS uint64 `msgpack:"start_time_ns,omitempty" json:"start_time_ns,omitempty"`
}

// Value is a value to write, or the width of a value to read.
type Value struct {
	Kind  string `msgpack:"kind" json:"kind"`
	U     uint64 `msgpack:"u,omitempty" json:"u,omitempty"`
	Bytes []byte `msgpack:"bytes,omitempty" json:"bytes,omitempty"`
}

// KernelOpEntry is one target and value.
type KernelOpEntry struct {
	Target Target `msgpack:"target" json:"target"`
	Value  Value  `msgpack:"value" json:"value"`
}

// KernelOpRequest is the KORQ payload.
type KernelOpRequest struct {
	RequestID uint32          `msgpack:"request_id" json:"request_id"`
	Mode      string          `msgpack:"mode" json:"mode"`
	Direction string          `msgpack:"direction" json:"direction"`
	Tag       string          `msgpack:"tag" json:"tag"`
	Entries   []KernelOpEntry `msgpack:"entries" json:"entries"`
}

// KernelOpReply is the KORP payload.
type KernelOpReply struct {
	RequestID  uint32  `msgpack:"request_id" json:"request_id"`
	Success    bool    `msgpack:"success" json:"success"`
	Reason     string  `msgpack:"reason" json:"reason"`
	ReadValues []Value `msgpack:"read_values" json:"read_values"`
}

// MarshalKernelOpRequest encodes r for a KORQ frame.
func MarshalKernelOpRequest(r *KernelOpRequest) ([]byte, error) { return marshal(r) }

// UnmarshalKernelOpRequest decodes a KORQ payload. request_id, mode and
// direction must be present; every enum must be one of its values and a
// u32 value must fit 32 bits.
func UnmarshalKernelOpRequest(p []byte) (*KernelOpRequest, error) {
	const t = wire.TypeKernelOpRequest
	var r KernelOpRequest
	if err := unmarshal(t, p, &r, "request_id", "mode", "direction"); err != nil {
		return nil, err
	}
	if r.Mode != ModeHot && r.Mode != ModeCold {
		return nil, invalid(t, "mode", "unknown mode %q", r.Mode)
	}
	if r.Direction != DirWrite && r.Direction != DirRead {
		return nil, invalid(t, "direction", "unknown direction %q", r.Direction)
	}
	for i, e := range r.Entries {
		switch e.Target.Kind {
		case TargetSymbol, TargetDirect, TargetKVA, TargetPerCPUField, TargetTaskField:
		default:
			return nil, invalid(t, fmt.Sprintf("entries[%d].target.kind", i), "unknown target kind %q", e.Target.Kind)
		}
		if err := checkValue(t, fmt.Sprintf("entries[%d].value", i), e.Value); err != nil {
			return nil, err
		}
	}
	return &r, nil
}

// MarshalKernelOpReply encodes r for a KORP frame.
func MarshalKernelOpReply(r *KernelOpReply) ([]byte, error) { return marshal(r) }

// UnmarshalKernelOpReply decodes a KORP payload of at most
// KernelOpReplyMax bytes (checked first, as the guest does before it
// allocates). request_id and success must be present.
func UnmarshalKernelOpReply(p []byte) (*KernelOpReply, error) {
	const t = wire.TypeKernelOpReply
	if len(p) > KernelOpReplyMax {
		return nil, &DecodeError{Type: t, Offset: -1, Err: wire.ErrPayloadSize,
			Reason: fmt.Sprintf("%d bytes, more than %d", len(p), KernelOpReplyMax)}
	}
	var r KernelOpReply
	if err := unmarshal(t, p, &r, "request_id", "success"); err != nil {
		return nil, err
	}
	for i, v := range r.ReadValues {
		if err := checkValue(t, fmt.Sprintf("read_values[%d]", i), v); err != nil {
			return nil, err
		}
	}
	return &r, nil
}

func checkValue(t wire.Type, path string, v Value) error {
	switch v.Kind {
	case ValueU32, ValueOrU32:
		if v.U > 0xFFFFFFFF {
			return invalid(t, path+".u", "%s value %d out of range", v.Kind, v.U)
		}
	case ValueU64, ValueBytes:
	default:
		return invalid(t, path+".kind", "unknown value kind %q", v.Kind)
	}
	return nil
}
