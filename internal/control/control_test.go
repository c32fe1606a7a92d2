package control

import (
	"errors"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/ktstr-go/ktstr/lib/record"
)

type collector struct {
	mu   sync.Mutex
	recs []*record.Record
}

func (c *collector) handle(r *record.Record) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.recs = append(c.recs, r)
}

func (c *collector) get() []*record.Record {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]*record.Record(nil), c.recs...)
}

func TestEffectsArriveInOrder(t *testing.T) {
	path := filepath.Join(t.TempDir(), "control.sock")
	var got collector
	srv, err := Listen(path, got.handle)
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	if fi, err := os.Stat(path); err != nil || fi.Mode()&os.ModeSocket == 0 || fi.Mode().Perm() != 0o600 {
		t.Fatalf("socket %v (%v), want a socket with mode 0600", fi.Mode(), err)
	}
	cl, err := Dial(path, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	send := []*record.Record{
		{Kind: record.KindEffect, Seq: 1, AtNS: 10, Effect: record.EffectWatchdogDeadline, Tag: "SCST", MsgType: 0x53435354, DeadlineNS: 5e9},
		{Kind: record.KindEntry, Seq: 1, Tag: "SCST", MsgType: 0x53435354, CRCOK: true, Payload: []byte{}}, // not an effect: ignored
		{Kind: record.KindEffect, Seq: 2, AtNS: 20, Effect: record.EffectSnapshotRequest, Tag: "SNRQ", MsgType: 0x534E5251, RequestID: 7, ReqKind: 1, ReqTag: "t"},
		{Kind: record.KindEffect, Seq: 3, AtNS: 30, Effect: record.EffectKill, Tag: "SCDX", MsgType: 0x53434458, Count: 1, ExitCode: -1, HasExitCode: true},
	}
	for _, r := range send {
		if err := cl.Send(r); err != nil {
			t.Fatalf("Send: %v", err)
		}
	}
	cl.Close()
	select {
	case <-srv.Disconnected():
	case <-time.After(5 * time.Second):
		t.Fatal("Disconnected not closed 5 s after the client hung up")
	}
	want := []*record.Record{send[0], send[2], send[3]}
	if d := cmp.Diff(want, got.get()); d != "" {
		t.Errorf("handled (-want +got):\n%s", d)
	}
	if err := srv.Close(); err != nil {
		t.Errorf("Close: %v", err)
	}
	if _, err := os.Stat(path); !os.IsNotExist(err) {
		t.Errorf("socket still there after Close: %v", err)
	}
	if err := srv.Close(); err != nil {
		t.Errorf("second Close: %v, want nil", err)
	}
}

func TestDialWaitsForTheSocket(t *testing.T) {
	path := filepath.Join(t.TempDir(), "control.sock")
	var got collector
	ready := make(chan *Server, 1)
	go func() {
		time.Sleep(100 * time.Millisecond)
		srv, err := Listen(path, got.handle)
		if err != nil {
			t.Error(err)
		}
		ready <- srv
	}()
	cl, err := Dial(path, 10*time.Second)
	if err != nil {
		t.Fatalf("Dial: %v", err)
	}
	cl.Close()
	(<-ready).Close()
}

func TestDialGivesUp(t *testing.T) {
	start := time.Now()
	_, err := Dial(filepath.Join(t.TempDir(), "absent.sock"), 50*time.Millisecond)
	if err == nil {
		t.Fatal("Dial to a missing socket succeeded")
	}
	if time.Since(start) > 10*time.Second {
		t.Errorf("Dial took %v to give up", time.Since(start))
	}
}

func TestSendAfterServerCloseIsErrGone(t *testing.T) {
	path := filepath.Join(t.TempDir(), "control.sock")
	srv, err := Listen(path, func(*record.Record) {})
	if err != nil {
		t.Fatal(err)
	}
	cl, err := Dial(path, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	r := &record.Record{Kind: record.KindEffect, Effect: record.EffectSysRdy}
	if err := cl.Send(r); err != nil {
		t.Fatalf("Send before Close: %v", err)
	}
	srv.Close()
	// The first writes after the peer closed may still be buffered by the
	// kernel; one of the next few fails.
	for i := range 100 {
		if err = cl.Send(r); err != nil {
			break
		}
		time.Sleep(time.Duration(i) * time.Millisecond)
	}
	if !errors.Is(err, ErrGone) {
		t.Errorf("Send after the server closed = %v, want ErrGone", err)
	}
}

func TestTwoClients(t *testing.T) {
	path := filepath.Join(t.TempDir(), "control.sock")
	var got collector
	srv, err := Listen(path, got.handle)
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	a, _ := Dial(path, time.Second)
	b, _ := Dial(path, time.Second)
	a.Send(&record.Record{Kind: record.KindEffect, Effect: record.EffectSysRdy, Seq: 1})
	b.Send(&record.Record{Kind: record.KindEffect, Effect: record.EffectSysRdy, Seq: 2})
	a.Close()
	b.Close()
	<-srv.Disconnected()
	deadline := time.Now().Add(5 * time.Second)
	for len(got.get()) < 2 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if n := len(got.get()); n != 2 {
		t.Errorf("handled %d records from two clients, want 2", n)
	}
}
