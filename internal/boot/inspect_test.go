package boot

import (
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ktstr-go/ktstr/lib/record"
	"github.com/ktstr-go/ktstr/lib/wire"
	"github.com/ktstr-go/ktstr/lib/wire/payload"
)

// replies collects the frames an inspector sends; block, while set, makes
// every reply wait (a host-to-guest ring the guest does not read).
type replies struct {
	mu     sync.Mutex
	frames []wire.Frame
	block  chan struct{}
}

func (r *replies) reply(t wire.Type, p []byte) {
	if r.block != nil {
		<-r.block
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.frames = append(r.frames, wire.Frame{Type: t, Payload: append([]byte(nil), p...)})
}

func (r *replies) all() []wire.Frame {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]wire.Frame(nil), r.frames...)
}

func korq(t *testing.T, id uint32) *record.Record {
	t.Helper()
	p, err := payload.MarshalKernelOpRequest(&payload.KernelOpRequest{RequestID: id, Mode: payload.ModeHot, Direction: payload.DirRead,
		Entries: []payload.KernelOpEntry{{Target: payload.Target{Kind: payload.TargetSymbol, Symbol: "jiffies"}, Value: payload.Value{Kind: payload.ValueU64}}}})
	if err != nil {
		t.Fatal(err)
	}
	return &record.Record{Effect: record.EffectKernelOpRequest, RequestID: id, Request: p}
}

// TestInspectorNeverBlocks: a guest that floods kernel-op and snapshot
// requests while replies cannot go out costs a bounded queue; the control
// handler's calls all return at once, the excess is dropped and counted.
func TestInspectorNeverBlocks(t *testing.T) {
	r := &replies{block: make(chan struct{})}
	in := newInspector("host", t.Logf, r.reply)
	in.configure(t.TempDir(), "", nil)
	in.attach("host", nil)
	const n = 10000
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := range uint32(n) {
			in.kernelOp(korq(t, i+1))
		}
		in.snapshot(&record.Record{Effect: record.EffectSnapshotRequest, RequestID: 1, ReqKind: wire.SnapshotCapture, ReqTag: "x"})
	}()
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		t.Fatal("the handler blocked")
	}
	// The worker holds one job (blocked in reply); the queue holds
	// inspectQueue; everything else was dropped.
	if d := in.dropped.Load(); d < n+1-inspectQueue-1 {
		t.Errorf("dropped %d of %d, want at least %d", d, n+1, n+1-inspectQueue-1)
	}
	close(r.block)
	in.close()
	got := r.all()
	if len(got) > inspectQueue+1 || len(got) == 0 {
		t.Fatalf("%d replies, want 1..%d", len(got), inspectQueue+1)
	}
	rep, err := payload.UnmarshalKernelOpReply(got[0].Payload)
	if err != nil || rep.Success || !strings.Contains(rep.Reason, "not supported by the host backend") {
		t.Errorf("reply %+v, %v; want ERR naming the host backend", rep, err)
	}
}

// TestSnapshotReplies: a second capture while one is in flight gets
// ktstr's ERR text; WATCH and unknown kinds get ERR with a reason.
func TestSnapshotReplies(t *testing.T) {
	r := &replies{block: make(chan struct{})}
	in := newInspector("host", t.Logf, r.reply)
	in.configure(t.TempDir(), "", nil)
	in.attach("host", nil)
	in.snapshot(&record.Record{RequestID: 1, ReqKind: wire.SnapshotCapture, ReqTag: "a"})
	// The first capture's reply is blocked: it is still in flight.
	time.Sleep(10 * time.Millisecond)
	in.snapshot(&record.Record{RequestID: 2, ReqKind: wire.SnapshotCapture, ReqTag: "b"})
	in.snapshot(&record.Record{RequestID: 3, ReqKind: wire.SnapshotWatch, ReqTag: "w"})
	in.snapshot(&record.Record{RequestID: 4, ReqKind: 7})
	close(r.block)
	in.close()
	want := map[uint32]string{
		1: "snapshot capture is not supported by the host backend",
		2: "another snapshot capture is in flight; retry",
		3: "snapshot WATCH (hardware watchpoints) is not implemented by ktstr-boot",
		4: "unknown snapshot kind 7",
	}
	for _, f := range r.all() {
		rep, err := wire.DecodeSnapshotReply(f.Payload)
		if err != nil || rep.Status != wire.SnapshotErr || rep.Reason != want[rep.RequestID] {
			t.Errorf("reply %+v, %v; want ERR %q", rep, err, want[rep.RequestID])
		}
		delete(want, rep.RequestID)
	}
	if len(want) > 0 {
		t.Errorf("no replies for %v", want)
	}
}

func TestSnapshotName(t *testing.T) {
	dir := t.TempDir()
	for _, c := range []struct{ tag, want string }{
		{"mid-run", "snapshot-mid-run.json"},
		{"../../etc/passwd", "snapshot-_.._etc_passwd.json"},
		{"", "snapshot-untagged.json"},
		{"a b/c", "snapshot-a_b_c.json"},
	} {
		if got := snapshotName(dir, c.tag); got != c.want {
			t.Errorf("snapshotName(%q) = %q, want %q", c.tag, got, c.want)
		}
	}
}

// TestInspectorOpensKernelOnFirstUse: configure only notes the vmlinux;
// its symbols and BTF are read by the first request that needs them
// (openKernel), so a run that looks into nothing never reads it, and its
// failure is the one that request reports.
func TestInspectorOpensKernelOnFirstUse(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "vmlinux")
	if err := os.WriteFile(path, []byte("not an ELF file"), 0o600); err != nil {
		t.Fatal(err)
	}
	in := newInspector("host", t.Logf, (&replies{}).reply)
	defer in.close()
	in.configure(dir, path, nil)
	if in.kernel != nil || !strings.Contains(in.kerr.Error(), "no vmlinux") {
		t.Fatalf("after configure: kernel %v, err %v; want nothing read yet", in.kernel, in.kerr)
	}
	k, err := in.openKernel()
	if k != nil || err == nil || strings.Contains(err.Error(), "no vmlinux") {
		t.Fatalf("first use of a vmlinux that is not ELF: %v, %v; want its read error", k, err)
	}
	// Read once: a later use reports the same error without reading again.
	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
	if _, err2 := in.openKernel(); err2 != err {
		t.Errorf("second use: %v, want the first use's %v", err2, err)
	}

	// No vmlinux at all: the preset reason, at every use.
	none := newInspector("host", t.Logf, (&replies{}).reply)
	defer none.close()
	none.configure(dir, "", nil)
	if k, err := none.openKernel(); k != nil || err == nil || !strings.Contains(err.Error(), "no vmlinux") {
		t.Errorf("no vmlinux: %v, %v; want the no-vmlinux reason", k, err)
	}
}
