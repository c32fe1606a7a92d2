package introspect

import (
	"encoding/binary"
	"fmt"

	"github.com/ktstr-go/ktstr/lib/wire"
	"github.com/ktstr-go/ktstr/lib/wire/payload"
)

// Bounds on one kernel-op request (KORQ), all guest-controlled.
const (
	// MaxOpEntries is the most entries one request may carry.
	MaxOpEntries = 256
	// MaxOpBytes is the most bytes one request may read or write in all;
	// with MaxRead per entry, a reply stays far under
	// payload.KernelOpReplyMax.
	MaxOpBytes = 512 << 10
)

// op is one entry resolved to host bytes, checked before anything is
// read or written.
type op struct {
	width uint64
	segs  []segment
}

// KernelOp performs a KORQ request against guest memory and returns the
// KORP reply. Every entry is resolved first (symbol, BTF field, task,
// address translation, bounds, and for writes the text check); if any
// fails nothing is written and the reply names the entry and what failed.
// regs, when the caller has them, help find the kernel's page tables the
// first time (see Paging). The caller freezes the vCPUs around a Cold op.
func (g *Guest) KernelOp(req *payload.KernelOpRequest, regs []Regs) *payload.KernelOpReply {
	rep := &payload.KernelOpReply{RequestID: req.RequestID, ReadValues: []payload.Value{}}
	fail := func(format string, a ...any) *payload.KernelOpReply {
		rep.Reason = wire.TruncateUTF8(fmt.Sprintf(format, a...), payload.KernelOpReasonMax)
		rep.ReadValues = []payload.Value{}
		return rep
	}
	if len(req.Entries) > MaxOpEntries {
		return fail("%d entries in one request, at most %d", len(req.Entries), MaxOpEntries)
	}
	write := req.Direction == payload.DirWrite
	ops := make([]op, len(req.Entries))
	var total uint64
	for i, e := range req.Entries {
		o, err := g.resolve(e, write, regs)
		if err != nil {
			return fail("entry %d (%s): %v", i, describe(e.Target), err)
		}
		if total += o.width; total > MaxOpBytes {
			return fail("entry %d (%s): the request spans more than %d bytes", i, describe(e.Target), MaxOpBytes)
		}
		ops[i] = o
	}
	for i, e := range req.Entries {
		if write {
			apply(ops[i], e.Value)
		} else {
			rep.ReadValues = append(rep.ReadValues, fetch(ops[i], e.Value.Kind))
		}
	}
	rep.Success = true
	return rep
}

// describe names a target for a reply's reason.
func describe(t payload.Target) string {
	switch t.Kind {
	case payload.TargetSymbol:
		return "symbol " + t.Symbol
	case payload.TargetDirect:
		return fmt.Sprintf("direct %#x", t.Addr)
	case payload.TargetKVA:
		return fmt.Sprintf("kva %#x", t.Addr)
	case payload.TargetPerCPUField:
		return fmt.Sprintf("per_cpu_field %s.%s cpu %d", t.Symbol, t.Field, t.CPU)
	case payload.TargetTaskField:
		return fmt.Sprintf("task_field pid %d start %d %s", t.PID, t.StartTimeNS, t.Field)
	}
	return t.Kind
}

// resolve finds the bytes an entry reads or writes.
func (g *Guest) resolve(e payload.KernelOpEntry, write bool, regs []Regs) (op, error) {
	t := e.Target
	var (
		addr, size uint64 // size 0: not known
		phys       bool
	)
	switch t.Kind {
	case payload.TargetDirect:
		addr, phys = t.Addr, true
	case payload.TargetKVA:
		addr = t.Addr
	case payload.TargetSymbol:
		a, sz, err := g.k.Symbol(t.Symbol)
		if err != nil {
			return op{}, err
		}
		addr, size = a, sz
	case payload.TargetPerCPUField:
		if _, err := g.Paging(regs); err != nil {
			return op{}, err
		}
		a, typ, err := g.PerCPU(t.Symbol, int(t.CPU))
		if err != nil {
			return op{}, err
		}
		if typ == nil {
			return op{}, fmt.Errorf("per-CPU variable %s has no type in BTF", t.Symbol)
		}
		f, err := FieldOf(typ, t.Field)
		if err != nil {
			return op{}, err
		}
		addr, size = a+f.Offset, f.Size
	case payload.TargetTaskField:
		ts, err := g.k.Struct("task_struct")
		if err != nil {
			return op{}, err
		}
		f, err := FieldOf(ts, t.Field)
		if err != nil {
			return op{}, err
		}
		if _, err := g.Paging(regs); err != nil {
			return op{}, err
		}
		task, err := g.FindTask(t.PID, t.StartTimeNS)
		if err != nil {
			return op{}, err
		}
		addr, size = task+f.Offset, f.Size
	default:
		return op{}, fmt.Errorf("unknown target kind %q", t.Kind)
	}
	width, err := valueWidth(e.Value, write, size)
	if err != nil {
		return op{}, err
	}
	o := op{width: width}
	if phys {
		s, err := g.mem.Slice(addr, width)
		if err != nil {
			return op{}, err
		}
		o.segs = []segment{{addr, s}}
		if write {
			if _, err := g.Paging(regs); err != nil && g.k != nil {
				return op{}, fmt.Errorf("cannot tell whether %#x is kernel text: %w", addr, err)
			}
			err = g.physWritable(o.segs)
		}
		return o, err
	}
	p, err := g.Paging(regs)
	if err != nil {
		return op{}, err
	}
	if o.segs, err = g.segments(p, addr, width); err != nil {
		return op{}, err
	}
	if write {
		err = g.writable(addr, width, o.segs)
	}
	return o, err
}

// valueWidth is how many bytes a value reads or writes. A Bytes read of
// length 0 reads the whole field or symbol (when its size is known).
func valueWidth(v payload.Value, write bool, size uint64) (uint64, error) {
	var w uint64
	switch v.Kind {
	case payload.ValueU32, payload.ValueOrU32:
		w = 4
	case payload.ValueU64:
		w = 8
	case payload.ValueBytes:
		w = uint64(len(v.Bytes))
		if w == 0 && !write {
			w = size
		}
		if w == 0 {
			return 0, fmt.Errorf("bytes value of length 0")
		}
		if w > MaxRead {
			return 0, fmt.Errorf("bytes value of %d bytes, at most %d", w, MaxRead)
		}
	default:
		return 0, fmt.Errorf("unknown value kind %q", v.Kind)
	}
	if size != 0 && w > size {
		return 0, fmt.Errorf("%s of %d bytes does not fit the %d-byte target", v.Kind, w, size)
	}
	if write && size != 0 && v.Kind != payload.ValueBytes && w != size {
		return 0, fmt.Errorf("%s write of %d bytes to a %d-byte target", v.Kind, w, size)
	}
	return w, nil
}

func apply(o op, v payload.Value) {
	if len(o.segs) == 1 {
		switch s := o.segs[0].mem; v.Kind {
		case payload.ValueU32:
			storeU32(s, uint32(v.U))
			return
		case payload.ValueOrU32:
			orU32(s, uint32(v.U))
			return
		case payload.ValueU64:
			storeU64(s, v.U)
			return
		}
	}
	var b []byte
	switch v.Kind {
	case payload.ValueU32, payload.ValueOrU32:
		// Straddles two pages: no single instruction can do it; a
		// read-modify-write is what the guest itself would do.
		b = binary.LittleEndian.AppendUint32(nil, uint32(v.U))
		if v.Kind == payload.ValueOrU32 {
			old := binary.LittleEndian.Uint32(gather(o))
			b = binary.LittleEndian.AppendUint32(b[:0], old|uint32(v.U))
		}
	case payload.ValueU64:
		b = binary.LittleEndian.AppendUint64(nil, v.U)
	default:
		b = v.Bytes
	}
	for _, s := range o.segs {
		b = b[copy(s.mem, b):]
	}
}

func gather(o op) []byte {
	b := make([]byte, 0, o.width)
	for _, s := range o.segs {
		b = append(b, s.mem...)
	}
	return b
}

func fetch(o op, kind string) payload.Value {
	if len(o.segs) == 1 {
		switch s := o.segs[0].mem; kind {
		case payload.ValueU32, payload.ValueOrU32:
			return payload.Value{Kind: kind, U: uint64(loadU32(s))}
		case payload.ValueU64:
			return payload.Value{Kind: kind, U: loadU64(s)}
		}
	}
	b := gather(o)
	switch kind {
	case payload.ValueU32, payload.ValueOrU32:
		return payload.Value{Kind: kind, U: uint64(binary.LittleEndian.Uint32(b))}
	case payload.ValueU64:
		return payload.Value{Kind: kind, U: binary.LittleEndian.Uint64(b)}
	}
	return payload.Value{Kind: kind, Bytes: b}
}
