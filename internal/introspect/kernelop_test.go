package introspect

import (
	"bytes"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"github.com/ktstr-go/ktstr/lib/wire/payload"
)

// roundTrip sends req through its wire form, performs it and returns the
// reply after its wire form too.
func roundTrip(t *testing.T, g *Guest, req *payload.KernelOpRequest) *payload.KernelOpReply {
	t.Helper()
	p, err := payload.MarshalKernelOpRequest(req)
	if err != nil {
		t.Fatal(err)
	}
	got, err := payload.UnmarshalKernelOpRequest(p)
	if err != nil {
		t.Fatal(err)
	}
	rep := g.KernelOp(got, nil)
	if rep.RequestID != req.RequestID {
		t.Errorf("reply id %d, want %d", rep.RequestID, req.RequestID)
	}
	if len(rep.Reason) > payload.KernelOpReasonMax {
		t.Errorf("reason of %d bytes, more than %d", len(rep.Reason), payload.KernelOpReasonMax)
	}
	p, err = payload.MarshalKernelOpReply(rep)
	if err != nil {
		t.Fatal(err)
	}
	out, err := payload.UnmarshalKernelOpReply(p)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func entry(t payload.Target, v payload.Value) payload.KernelOpEntry {
	return payload.KernelOpEntry{Target: t, Value: v}
}

var (
	symVar   = payload.Target{Kind: payload.TargetSymbol, Symbol: "ktstr_var"}
	symJiff  = payload.Target{Kind: payload.TargetSymbol, Symbol: "jiffies"}
	direct   = payload.Target{Kind: payload.TargetDirect, Addr: 0x600000}
	kvaAlias = payload.Target{Kind: payload.TargetKVA, Addr: directMap + 0x600000} // the same bytes as direct
	kvaHigh  = payload.Target{Kind: payload.TargetKVA, Addr: pcpuBase + 0x30000 + rqOff + rqClock}
	pcpuNr   = payload.Target{Kind: payload.TargetPerCPUField, Symbol: "runqueues", Field: "nr_running", CPU: 2}
	pcpuDSQ  = payload.Target{Kind: payload.TargetPerCPUField, Symbol: "runqueues", Field: "scx.local_dsq.nr", CPU: 3}
	taskComm = payload.Target{Kind: payload.TargetTaskField, PID: 101, StartTimeNS: 2222, Field: "comm"}
	taskAt   = payload.Target{Kind: payload.TargetTaskField, PID: 200, StartTimeNS: 3333, Field: "scx.runnable_at"}

	u32  = func(v uint64) payload.Value { return payload.Value{Kind: payload.ValueU32, U: v} }
	u64  = func(v uint64) payload.Value { return payload.Value{Kind: payload.ValueU64, U: v} }
	or32 = func(v uint64) payload.Value { return payload.Value{Kind: payload.ValueOrU32, U: v} }
	byts = func(b []byte) payload.Value { return payload.Value{Kind: payload.ValueBytes, Bytes: b} }
)

func TestKernelOpRoundTrip(t *testing.T) {
	im := newImage(t, 4)
	im.populate()
	g := im.guest()
	read := func(entries ...payload.KernelOpEntry) *payload.KernelOpRequest {
		return &payload.KernelOpRequest{RequestID: 7, Mode: payload.ModeHot, Direction: payload.DirRead, Tag: "t", Entries: entries}
	}
	write := func(entries ...payload.KernelOpEntry) *payload.KernelOpRequest {
		return &payload.KernelOpRequest{RequestID: 8, Mode: payload.ModeCold, Direction: payload.DirWrite, Tag: "t", Entries: entries}
	}
	steps := []struct {
		name string
		req  *payload.KernelOpRequest
		want []payload.Value // nil: a write
	}{
		{"read every target", read(entry(symJiff, u64(0)), entry(pcpuNr, u32(0)), entry(pcpuDSQ, u32(0)),
			entry(taskComm, byts(nil)), entry(taskAt, u64(0)), entry(kvaHigh, u64(0))),
			[]payload.Value{u64(100000), u32(2), u32(30), byts([]byte("worker-t\x00\x00\x00\x00\x00\x00\x00\x00")), u64(99000), u64(5_000_003)}},
		{"write u64 to a symbol", write(entry(symVar, u64(0x1122334455667788))), nil},
		{"read it back as u64, u32 and bytes", read(entry(symVar, u64(0)), entry(symVar, u32(0)), entry(symVar, byts(make([]byte, 3)))),
			[]payload.Value{u64(0x1122334455667788), u32(0x55667788), byts([]byte{0x88, 0x77, 0x66})}},
		{"write u32 and bytes physically", write(entry(direct, u32(0xa0a0a0a0)), entry(payload.Target{Kind: payload.TargetDirect, Addr: 0x600004}, byts([]byte{1, 2, 3, 4}))), nil},
		{"or_u32", write(entry(direct, or32(0x0505))), nil},
		{"read through the direct map", read(entry(kvaAlias, u64(0)), entry(kvaAlias, or32(0))),
			[]payload.Value{u64(0x04030201a0a0a5a5), or32(0xa0a0a5a5)}},
		{"write per-CPU and task fields", write(entry(pcpuNr, u32(77)), entry(taskAt, u64(42)), entry(pcpuDSQ, byts([]byte{9}))), nil},
		{"read them back", read(entry(pcpuNr, u32(0)), entry(taskAt, u64(0)), entry(pcpuDSQ, u32(0))),
			[]payload.Value{u32(77), u64(42), u32(9)}},
		{"a u32 across a page boundary", write(entry(payload.Target{Kind: payload.TargetKVA, Addr: directMap + 0x600ffe}, u32(0xdeadbeef))), nil},
		{"read it back", read(entry(payload.Target{Kind: payload.TargetKVA, Addr: directMap + 0x600ffe}, u32(0)),
			entry(payload.Target{Kind: payload.TargetDirect, Addr: 0x600ffe}, byts(make([]byte, 4)))),
			[]payload.Value{u32(0xdeadbeef), byts([]byte{0xef, 0xbe, 0xad, 0xde})}},
		{"an empty request", read(), []payload.Value{}},
	}
	for _, s := range steps {
		rep := roundTrip(t, g, s.req)
		if !rep.Success {
			t.Fatalf("%s: failed: %s", s.name, rep.Reason)
		}
		want := s.want
		if want == nil {
			want = []payload.Value{}
		}
		if d := cmp.Diff(want, rep.ReadValues, cmpopts.EquateEmpty()); d != "" {
			t.Errorf("%s: values (-want +got):\n%s", s.name, d)
		}
	}
}

func TestKernelOpRefused(t *testing.T) {
	im := newImage(t, 4)
	im.populate()
	many := make([]payload.KernelOpEntry, MaxOpEntries+1)
	for i := range many {
		many[i] = entry(symJiff, u32(0))
	}
	big := make([]payload.KernelOpEntry, MaxOpBytes/MaxRead+1)
	for i := range big {
		big[i] = entry(payload.Target{Kind: payload.TargetKVA, Addr: directMap}, byts(make([]byte, MaxRead)))
	}
	for _, c := range []struct {
		name    string
		dir     string
		entries []payload.KernelOpEntry
		want    string
	}{
		{"too many entries", payload.DirRead, many, "257 entries in one request, at most 256"},
		{"too many bytes in all", payload.DirRead, big, "entry 8 (kva 0xffff888000000000): the request spans more than 524288 bytes"},
		{"one huge Bytes", payload.DirRead, []payload.KernelOpEntry{entry(direct, byts(make([]byte, MaxRead+1)))}, "bytes value of 65537 bytes, at most 65536"},
		{"physical address outside RAM", payload.DirRead, []payload.KernelOpEntry{entry(payload.Target{Kind: payload.TargetDirect, Addr: 0x2000000}, u32(0))}, "entry 0 (direct 0x2000000): guest physical address 0x2000000 (4 bytes): not in guest RAM"},
		{"physical read straddling the end of RAM", payload.DirRead, []payload.KernelOpEntry{entry(payload.Target{Kind: payload.TargetDirect, Addr: imgRAM - 2}, u32(0))}, "not in guest RAM"},
		{"unmapped virtual address", payload.DirRead, []payload.KernelOpEntry{entry(payload.Target{Kind: payload.TargetKVA, Addr: pcpuBase + 0x1000}, u64(0))}, "kernel virtual address 0xffffc90000001000 (8 bytes): PT entry 1 not present"},
		{"unknown symbol", payload.DirRead, []payload.KernelOpEntry{entry(payload.Target{Kind: payload.TargetSymbol, Symbol: "nosuch"}, u64(0))}, "entry 0 (symbol nosuch): introspect: unknown symbol nosuch"},
		{"field not in BTF", payload.DirRead, []payload.KernelOpEntry{entry(payload.Target{Kind: payload.TargetPerCPUField, Symbol: "runqueues", Field: "nosuch"}, u64(0))}, "field not in BTF: nosuch in struct rq"},
		{"per-CPU CPU out of range", payload.DirRead, []payload.KernelOpEntry{entry(payload.Target{Kind: payload.TargetPerCPUField, Symbol: "runqueues", Field: "nr_running", CPU: 4}, u32(0))}, "cpu 4 out of range (the kernel has 4)"},
		{"task gone", payload.DirRead, []payload.KernelOpEntry{entry(payload.Target{Kind: payload.TargetTaskField, PID: 100, StartTimeNS: 5, Field: "pid"}, u32(0))}, "task gone: pid 100 now belongs to a task started at another time"},
		{"value wider than the field", payload.DirRead, []payload.KernelOpEntry{entry(payload.Target{Kind: payload.TargetTaskField, PID: 100, Field: "pid"}, u64(0))}, "u64 of 8 bytes does not fit the 4-byte target"},
		{"u32 write to an 8-byte symbol", payload.DirWrite, []payload.KernelOpEntry{entry(symVar, u32(1))}, "u32 write of 4 bytes to a 8-byte target"},
		{"write to text by symbol", payload.DirWrite, []payload.KernelOpEntry{entry(payload.Target{Kind: payload.TargetSymbol, Symbol: "linux_banner"}, byts([]byte("x")))}, "kernel text or read-only data"},
		{"write to text by address", payload.DirWrite, []payload.KernelOpEntry{entry(payload.Target{Kind: payload.TargetKVA, Addr: kText + 8}, u64(1))}, "kernel text or read-only data"},
		{"write to text physically", payload.DirWrite, []payload.KernelOpEntry{entry(payload.Target{Kind: payload.TargetDirect, Addr: 0x1000000}, u64(1))}, "kernel text or read-only data"},
		{"write to text through the direct map", payload.DirWrite, []payload.KernelOpEntry{entry(payload.Target{Kind: payload.TargetKVA, Addr: directMap + 0x11ffffc}, u64(1))}, "kernel text or read-only data"},
		{"a good write before a bad one writes nothing", payload.DirWrite, []payload.KernelOpEntry{entry(symVar, u64(0xbad)), entry(payload.Target{Kind: payload.TargetSymbol, Symbol: "nosuch"}, u64(0))}, "entry 1 (symbol nosuch)"},
		{"zero-length bytes write", payload.DirWrite, []payload.KernelOpEntry{entry(direct, byts(nil))}, "bytes value of length 0"},
	} {
		rep := roundTrip(t, im.guest(), &payload.KernelOpRequest{RequestID: 9, Mode: payload.ModeHot, Direction: c.dir, Entries: c.entries})
		if rep.Success || !strings.Contains(rep.Reason, c.want) || len(rep.ReadValues) != 0 {
			t.Errorf("%s: success %v, reason %q, %d values; want failure with %q", c.name, rep.Success, rep.Reason, len(rep.ReadValues), c.want)
		}
	}
	if v := im.get64(kVar); v != 0 {
		t.Errorf("ktstr_var = %#x after refused writes, want 0", v)
	}
	if !bytes.HasPrefix(im.low[0x1100000:], []byte(banner)) {
		t.Error("the banner in text changed")
	}
}

func TestKernelOpNoVmlinux(t *testing.T) {
	im := newImage(t, 4)
	g := New(im.mem, nil)
	for _, tg := range []payload.Target{symJiff, kvaAlias, pcpuNr, taskComm} {
		rep := roundTrip(t, g, &payload.KernelOpRequest{RequestID: 1, Mode: payload.ModeHot, Direction: payload.DirRead, Entries: []payload.KernelOpEntry{entry(tg, u32(0))}})
		if rep.Success || !strings.Contains(rep.Reason, "no vmlinux") {
			t.Errorf("%s without vmlinux: success %v, reason %q; want no vmlinux", tg.Kind, rep.Success, rep.Reason)
		}
	}
	// Physical memory needs no symbols.
	rep := roundTrip(t, g, &payload.KernelOpRequest{RequestID: 1, Mode: payload.ModeHot, Direction: payload.DirWrite, Entries: []payload.KernelOpEntry{entry(direct, u32(5))}})
	if !rep.Success {
		t.Errorf("direct write without vmlinux: %s", rep.Reason)
	}
}

func FuzzKernelOp(f *testing.F) {
	for _, e := range []payload.KernelOpEntry{entry(symJiff, u64(0)), entry(kvaAlias, byts([]byte{1})), entry(pcpuNr, u32(1)), entry(taskComm, byts(nil))} {
		for _, dir := range []string{payload.DirRead, payload.DirWrite} {
			p, _ := payload.MarshalKernelOpRequest(&payload.KernelOpRequest{RequestID: 1, Mode: payload.ModeHot, Direction: dir, Entries: []payload.KernelOpEntry{e}})
			f.Add(p)
		}
	}
	im := newImage(f, 4)
	im.populate()
	g := im.guest()
	f.Fuzz(func(t *testing.T, p []byte) {
		req, err := payload.UnmarshalKernelOpRequest(p)
		if err != nil {
			return
		}
		rep := g.KernelOp(req, nil)
		if len(rep.Reason) > payload.KernelOpReasonMax {
			t.Errorf("reason of %d bytes", len(rep.Reason))
		}
		if b, err := payload.MarshalKernelOpReply(rep); err != nil || len(b) > payload.KernelOpReplyMax {
			t.Errorf("reply of %d bytes, %v", len(b), err)
		}
	})
}
