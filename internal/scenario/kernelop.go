package scenario

import (
	"errors"
	"fmt"

	"github.com/ktstr-go/ktstr/lib/wire/payload"
)

// KernelOp is one read or write of guest kernel state by the host, as a
// scenario step asks for it:
//
//	{"op": "read_kernel", "kernel": {"target": {"kind": "symbol", "symbol": "jiffies"},
//	  "value": "u64", "save": "j0"}}
//	{"op": "read_kernel", "kernel": {"target": {"kind": "symbol", "symbol": "jiffies"},
//	  "value": "u64", "expect": {"greater_than": "j0"}}}
//	{"op": "write_kernel", "kernel": {"target": {"kind": "symbol", "symbol": "panic_print"},
//	  "value": "u64", "write": 5}}
//
// Target is a KORQ target (ktstr-wire(5)): symbol, direct, kva,
// per_cpu_field or task_field.
type KernelOp struct {
	Target payload.Target `json:"target"`
	// Value is the value kind: u32, u64, bytes or or_u32.
	Value string `json:"value"`
	// Write is what a write_kernel writes (u32, u64, or_u32); Bytes what
	// it writes for bytes. Len is how many bytes a bytes read reads (0:
	// the whole field or symbol).
	Write uint64 `json:"write,omitempty"`
	Bytes []byte `json:"bytes,omitempty"`
	Len   int    `json:"len,omitempty"`
	// Cold freezes the vCPUs around the op (default: hot, vCPUs running).
	Cold bool `json:"cold,omitempty"`
	// Save keeps a read's value under this name for later checks.
	Save   string  `json:"save,omitempty"`
	Expect *Expect `json:"expect,omitempty"`
}

// Expect is a check over a value read (u32, u64, or_u32): every condition
// set must hold. Names refer to values saved by earlier reads.
type Expect struct {
	Equals      *uint64 `json:"equals,omitempty"`
	Min         *uint64 `json:"min,omitempty"`
	Max         *uint64 `json:"max,omitempty"`
	GreaterThan string  `json:"greater_than,omitempty"`
	EqualsSaved string  `json:"equals_saved,omitempty"`
}

// MaxKernelBytes bounds a bytes value in a scenario.
const MaxKernelBytes = 4096

func (k *KernelOp) validate(write bool) error {
	if k == nil {
		return errors.New("missing")
	}
	switch k.Target.Kind {
	case payload.TargetSymbol, payload.TargetPerCPUField:
		if k.Target.Symbol == "" {
			return errors.New("target.symbol missing")
		}
	case payload.TargetTaskField:
		if k.Target.Field == "" {
			return errors.New("target.field missing")
		}
	case payload.TargetDirect, payload.TargetKVA:
	default:
		return fmt.Errorf("target.kind %q: want symbol, direct, kva, per_cpu_field or task_field", k.Target.Kind)
	}
	switch k.Value {
	case payload.ValueU32, payload.ValueOrU32, payload.ValueU64:
		if k.Value != payload.ValueU64 && k.Write > 0xffffffff {
			return fmt.Errorf("write %d does not fit %s", k.Write, k.Value)
		}
	case payload.ValueBytes:
		if write && len(k.Bytes) == 0 {
			return errors.New("a bytes write needs bytes")
		}
		if len(k.Bytes) > MaxKernelBytes || k.Len < 0 || k.Len > MaxKernelBytes {
			return fmt.Errorf("bytes of at most %d", MaxKernelBytes)
		}
		if k.Expect != nil {
			return errors.New("expect checks numbers, not bytes")
		}
	default:
		return fmt.Errorf("value %q: want u32, u64, bytes or or_u32", k.Value)
	}
	if write && (k.Save != "" || k.Expect != nil) {
		return errors.New("save and expect are for reads")
	}
	if len(k.Save) > 64 {
		return errors.New("save name longer than 64 bytes")
	}
	return nil
}

// Entry is the KORQ entry for k.
func (k *KernelOp) Entry() payload.KernelOpEntry {
	v := payload.Value{Kind: k.Value, U: k.Write, Bytes: k.Bytes}
	if k.Value == payload.ValueBytes && len(k.Bytes) == 0 {
		v.Bytes = make([]byte, k.Len)
	}
	return payload.KernelOpEntry{Target: k.Target, Value: v}
}

// Check checks v against the expectation with the values saved so far;
// the error says which condition failed.
func (e *Expect) Check(v uint64, saved map[string]uint64) error {
	if e == nil {
		return nil
	}
	ref := func(name string) (uint64, error) {
		r, ok := saved[name]
		if !ok {
			return 0, fmt.Errorf("no value saved as %q", name)
		}
		return r, nil
	}
	switch {
	case e.Equals != nil && v != *e.Equals:
		return fmt.Errorf("%d, want %d", v, *e.Equals)
	case e.Min != nil && v < *e.Min:
		return fmt.Errorf("%d, want at least %d", v, *e.Min)
	case e.Max != nil && v > *e.Max:
		return fmt.Errorf("%d, want at most %d", v, *e.Max)
	}
	if e.GreaterThan != "" {
		r, err := ref(e.GreaterThan)
		if err != nil {
			return err
		}
		if v <= r {
			return fmt.Errorf("%d, want more than %s (%d)", v, e.GreaterThan, r)
		}
	}
	if e.EqualsSaved != "" {
		r, err := ref(e.EqualsSaved)
		if err != nil {
			return err
		}
		if v != r {
			return fmt.Errorf("%d, want %s (%d)", v, e.EqualsSaved, r)
		}
	}
	return nil
}

// refs are the saved names e refers to.
func (e *Expect) refs() []string {
	var r []string
	if e != nil {
		for _, n := range []string{e.GreaterThan, e.EqualsSaved} {
			if n != "" {
				r = append(r, n)
			}
		}
	}
	return r
}
