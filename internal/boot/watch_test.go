package boot

import (
	"encoding/binary"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ktstr-go/ktstr/internal/control"
	"github.com/ktstr-go/ktstr/lib/record"
	"github.com/ktstr-go/ktstr/lib/shm"
	"github.com/ktstr-go/ktstr/lib/wire"
)

// fakeVM is a machine that runs until it is killed or ended.
type fakeVM struct {
	done chan struct{}
	once sync.Once
}

func newFakeVM() *fakeVM                { return &fakeVM{done: make(chan struct{})} }
func (v *fakeVM) Done() <-chan struct{} { return v.done }
func (v *fakeVM) Kill()                 { v.end() }
func (v *fakeVM) end()                  { v.once.Do(func() { close(v.done) }) }
func (v *fakeVM) Err() error            { return nil }

// testRegion creates a region in a fresh directory.
func testRegion(t *testing.T) (*shm.Region, string) {
	t.Helper()
	dir := t.TempDir()
	l, err := shm.DefaultLayout(shm.DefaultSize)
	if err != nil {
		t.Fatal(err)
	}
	r, err := shm.Create(filepath.Join(dir, RegionFile), l)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	return r, dir
}

func deadlineEffect(seq int, rem time.Duration) *record.Record {
	return &record.Record{Kind: record.KindEffect, Seq: int64(seq), AtNS: 1000, Effect: record.EffectWatchdogDeadline,
		DeadlineNS: uint64(1000 + rem)}
}

// TestHandlerNeverBlocks floods the control socket with deadlines and
// snapshot requests while no watchdog runs (a VM that already ended) and
// no reply can be written (the handler has no region): every record is
// handled, the replies past the queue are dropped and counted, and the
// server closes. It used to hang in srv.Close: the 17th deadline blocked
// on a full channel with the server's lock held.
func TestHandlerNeverBlocks(t *testing.T) {
	dir := t.TempDir()
	var log lockedLog
	h := newHandler("test", log.logf)
	srv, err := control.Listen(filepath.Join(dir, ControlSock), h.handle)
	if err != nil {
		t.Fatal(err)
	}
	cl, err := control.Dial(filepath.Join(dir, ControlSock), time.Second)
	if err != nil {
		t.Fatal(err)
	}
	const flood = 1000
	go func() {
		defer cl.Close()
		for i := range flood {
			r := deadlineEffect(i, time.Minute)
			if i%2 == 1 {
				r = &record.Record{Kind: record.KindEffect, Seq: int64(i), Effect: record.EffectSnapshotRequest, RequestID: uint32(i)}
			}
			if cl.Send(r) != nil {
				return
			}
		}
	}()
	select {
	case <-srv.Disconnected():
	case <-time.After(hangGuard):
		t.Fatalf("the control server did not handle %d records within %v: a handler blocked", flood, hangGuard)
	}
	closed := make(chan struct{})
	go func() {
		srv.Close()
		h.Close()
		close(closed)
	}()
	select {
	case <-closed:
	case <-time.After(hangGuard):
		t.Fatalf("closing the control server and handler did not return within %v", hangGuard)
	}
	if _, n := h.deadline(); n != flood/2 {
		t.Errorf("handler saw %d deadlines, want %d", n, flood/2)
	}
	// Each snapshot request ends up answered into the reply queue, or
	// dropped by the reply queue or by the inspector's queue: counted,
	// with one summary line each.
	h.mu.Lock()
	answered := h.dropped + len(h.replies)
	h.mu.Unlock()
	if got := answered + int(h.ins.dropped.Load()); got != flood/2 {
		t.Errorf("%d snapshot requests accounted for (%d replies, %d dropped by the inspector), want %d", got, answered, h.ins.dropped.Load(), flood/2)
	}
	if n := log.count("dropped"); n > 2 {
		t.Errorf("%d lines about dropped replies, want at most one summary each: %q", n, log.lines)
	}
}

// wantTimeout runs the watchdog over vm with the given --timeout and
// requires it to end the run as a timeout within hangGuard.
func wantTimeout(t *testing.T, h *handler, vm *fakeVM, timeout time.Duration, hung string) {
	t.Helper()
	got := make(chan Result, 1)
	go func() { got <- h.watch(vm, time.Now(), timeout) }()
	select {
	case res := <-got:
		if res.Reason != wire.EndTimeout {
			t.Errorf("watch = %v (%s), want timeout", res.Reason, res.Detail)
		}
	case <-time.After(hangGuard):
		vm.end()
		t.Fatal(hung)
	}
}

// TestWatchdogCeiling: a guest that keeps re-arming the workload deadline
// an hour ahead cannot keep the run alive past --timeout, and ktstr-boot
// logs the moves as a summary, not one line each.
func TestWatchdogCeiling(t *testing.T) {
	region, _ := testRegion(t)
	var log lockedLog
	h := newHandler("test", log.logf)
	h.attach(region)
	defer h.Close()
	vm := newFakeVM()
	stop := make(chan struct{})
	defer close(stop)
	go func() {
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			case <-time.After(10 * time.Millisecond):
				h.handle(deadlineEffect(i, time.Hour))
			}
		}
	}()
	wantTimeout(t, h, vm, 300*time.Millisecond, "the watchdog did not stop the VM at --timeout while the deadline kept moving")
	if n := log.count("watchdog"); n > 2 {
		t.Errorf("%d watchdog lines for a stream of deadline moves, want at most 2:\n%s", n, strings.Join(log.lines, "\n"))
	}
	if log.count("capped by --timeout") != 1 {
		t.Errorf("the summary does not say the deadline was capped:\n%s", strings.Join(log.lines, "\n"))
	}
}

// TestWatchdogDeadlineMoves: a deadline earlier than --timeout ends the
// run at that deadline.
func TestWatchdogDeadlineMoves(t *testing.T) {
	region, _ := testRegion(t)
	var log lockedLog
	h := newHandler("test", log.logf)
	h.attach(region)
	defer h.Close()
	h.handle(deadlineEffect(0, 50*time.Millisecond))
	wantTimeout(t, h, newFakeVM(), time.Hour, "a deadline 50ms ahead did not end the run")
	if log.count("watchdog: deadline in") != 1 {
		t.Errorf("the first deadline is not logged: %q", log.lines)
	}
}

// TestReplyFailuresLoggedOnce: a guest that corrupts its RX read
// position and floods requests makes every reply fail; ktstr-boot logs
// the first failure and one count at the end, not a line per reply (the
// guest does not decide how much ktstr-boot logs). It used to log one
// line per reply: 16000 lines for a hostile guest's flood.
func TestReplyFailuresLoggedOnce(t *testing.T) {
	region, _ := testRegion(t)
	binary.LittleEndian.PutUint64(region.Mem()[0x200:], 1<<61) // rx_read, ktstr-shm(5)
	var log lockedLog
	h := newHandler("test", log.logf)
	h.attach(region)
	const n = 200
	for i := range n {
		h.reply(wire.TypeSnapshotReply, wire.AppendSnapshotReply(nil, wire.SnapshotReply{RequestID: uint32(i + 1), Status: wire.SnapshotErr, Reason: "test"}))
		for deadline := time.Now().Add(hangGuard); len(h.replies) > 0 && time.Now().Before(deadline); {
			time.Sleep(time.Millisecond)
		}
	}
	h.Close()
	first := log.lines[:min(len(log.lines), 3)]
	if k := log.count("corrupt ring positions"); k != 1 {
		t.Errorf("%d lines name the failure, want 1; the first: %q", k, first)
	}
	if k := log.count(fmt.Sprintf("could not write %d replies", n)); k != 1 {
		t.Errorf("%d summaries of %d failed replies, want 1; the first lines: %q", k, n, first)
	}
	if len(log.lines) > 2 {
		t.Errorf("%d log lines for %d failed replies, want at most 2; the first: %q", len(log.lines), n, first)
	}
}

// TestWatchEndsADoneGuest: a VM whose agent marked itself done is
// stopped without waiting for it to power off, and the run ends as a
// poweroff; a host-mode agent is left to end by itself.
func TestWatchEndsADoneGuest(t *testing.T) {
	for _, backend := range []string{"qemu", "host"} {
		region, _ := testRegion(t)
		h := newHandler(backend, func(string, ...any) {})
		h.attach(region)
		vm := newFakeVM()
		got := make(chan Result, 1)
		go func() { got <- h.watch(vm, time.Now(), time.Hour) }()
		region.SetGuestState(shm.GuestDone)
		wait := hangGuard // the VM is stopped long before
		if backend == "host" {
			wait = 20 * doneCheck // nothing happens: how long it is looked for does not matter
		}
		select {
		case res := <-got:
			if backend == "host" {
				t.Errorf("host: watch = %v before the agent ended, want it to wait", res.Reason)
			} else if res.Reason != wire.EndPoweroff {
				t.Errorf("%s: watch = %v (%s), want poweroff", backend, res.Reason, res.Detail)
			}
		case <-time.After(wait):
			vm.end()
			res := <-got
			if backend != "host" {
				t.Fatalf("%s: a done guest was not stopped in %v", backend, wait)
			}
			if res.Reason != 0 {
				t.Errorf("host: watch = %v after the agent ended, want 0 (classified later)", res.Reason)
			}
		}
		select {
		case <-vm.Done():
		default:
			t.Errorf("%s: the VM still runs", backend)
		}
		h.Close()
	}
}
