package guest

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/ktstr-go/ktstr/lib/shm"
	"github.com/ktstr-go/ktstr/lib/wire"
)

// heapRegion is a guest view of a region in ordinary memory.
func heapRegion(t *testing.T) *shm.Region {
	t.Helper()
	l, err := shm.DefaultLayout(64 << 10)
	if err != nil {
		t.Fatal(err)
	}
	mem := make([]byte, l.Size)
	shm.InitGuestHeader(mem, l)
	r, err := shm.OpenGuest(mem)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func TestSnapshotSkipsStaleReplies(t *testing.T) {
	r := heapRegion(t)
	host := r.RX().NewProducer(0)
	var sent []wire.SnapshotRequest
	send := func(typ wire.Type, p []byte) {
		req, err := wire.DecodeSnapshotRequest(p)
		if typ != wire.TypeSnapshotRequest || err != nil {
			t.Fatalf("sent %v: %v", typ, err)
		}
		sent = append(sent, req)
		// The host answers: first a stale reply, then a corrupt frame,
		// then a reply of the wrong type, then the right one.
		reply := func(id, status uint32, reason string) []byte {
			return wire.AppendFrame(nil, wire.TypeSnapshotReply, wire.AppendSnapshotReply(nil, wire.SnapshotReply{RequestID: id, Status: status, Reason: reason}))
		}
		bad := reply(req.RequestID, wire.SnapshotOK, "")
		bad[len(bad)-1] ^= 1 // CRC mismatch
		for _, f := range [][]byte{
			reply(req.RequestID+100, wire.SnapshotOK, "stale"),
			bad,
			wire.AppendFrame(nil, wire.TypeKernelOpReply, []byte{0x80}),
			reply(req.RequestID, wire.SnapshotErr, "not here"),
		} {
			if err := host.Write(f); err != nil {
				t.Fatal(err)
			}
		}
	}
	p := newReplies(r, t.Logf)
	got, err := p.snapshot(send, wire.SnapshotCapture, "tag", 5*time.Second)
	if err != nil {
		t.Fatalf("snapshot: %v", err)
	}
	if got.Status != wire.SnapshotErr || got.Reason != "not here" || got.RequestID != sent[0].RequestID {
		t.Errorf("reply = %+v, want the ERR reply to request %d", got, sent[0].RequestID)
	}
	if sent[0].RequestID == 0 || sent[0].Tag != "tag" || sent[0].Kind != wire.SnapshotCapture {
		t.Errorf("request = %+v", sent[0])
	}
}

func TestSnapshotTimesOut(t *testing.T) {
	p := newReplies(heapRegion(t), t.Logf)
	_, err := p.snapshot(func(wire.Type, []byte) {}, wire.SnapshotCapture, "x", 50*time.Millisecond)
	if !errors.Is(err, errTimeout) {
		t.Fatalf("snapshot with no host = %v, want errTimeout", err)
	}
}

func TestRequestIDsSkipZero(t *testing.T) {
	p := &replies{nextID: ^uint32(0) - 1}
	if a, b := p.id(), p.id(); a != ^uint32(0) || b != 1 {
		t.Errorf("ids after wrap = %d, %d; want %d, 1", a, b, ^uint32(0))
	}
}

// TestCrashReports: a panic in the agent becomes a CRSH frame with the
// text and a "PANIC:" line on COM2, as ktstr's panic hook does.
func TestCrashReports(t *testing.T) {
	r := heapRegion(t)
	var com2 strings.Builder
	a := &agent{com2: &com2}
	a.attach(r)
	func() {
		defer func() {
			if p := recover(); p != nil {
				a.crash(fmt.Sprintf("%v\nstack line", p))
			}
		}()
		panic("boom")
	}()
	if !strings.HasPrefix(com2.String(), "PANIC: boom\n  stack line") {
		t.Errorf("COM2 = %q, want a PANIC: line", com2.String())
	}
	c := r.TX().NewConsumer()
	a1, b1, err := c.Peek()
	if err != nil {
		t.Fatal(err)
	}
	frames, _ := wire.ParseStream(append(append([]byte(nil), a1...), b1...), 0)
	if len(frames) != 1 || frames[0].Type != wire.TypeCrash || !frames[0].CRCOK || !strings.HasPrefix(string(frames[0].Payload), "boom") {
		t.Fatalf("TX ring holds %+v, want one CRSH frame with the panic text", frames)
	}
	if r.GuestState() != shm.GuestRunning {
		t.Errorf("guest state %d after a crash, want running (not done)", r.GuestState())
	}
}
