package drain

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/ktstr-go/ktstr/lib/shm"
	"github.com/ktstr-go/ktstr/lib/wire"
)

// newRegion creates a 128 KiB region file (a 64 KiB TX ring) and returns
// the host view and a guest producer over the same memory.
func newRegion(t *testing.T) (*shm.Region, *shm.Producer, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "region")
	l, _ := shm.DefaultLayout(128 << 10)
	r, err := shm.Create(path, l)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	g, err := shm.OpenGuest(r.Mem())
	if err != nil {
		t.Fatal(err)
	}
	return r, g.TX().NewProducer(0), path
}

func frames(n, size int) [][]byte {
	var out [][]byte
	for i := 0; i < n; i++ {
		out = append(out, wire.AppendFrame(nil, wire.TypeStdout, bytes.Repeat([]byte{byte(i)}, size)))
	}
	return out
}

func write(t *testing.T, p *shm.Producer, fs [][]byte) []byte {
	t.Helper()
	for _, f := range fs {
		if err := p.Write(f); err != nil {
			t.Fatalf("Write = %v", err)
		}
	}
	return bytes.Join(fs, nil)
}

// hello is the HELO frame a drain starting at the ring's first byte
// writes before anything else.
func hello(r *shm.Region) []byte { return Hello(wire.Nonce(r.Nonce())) }

var poweroff = shm.End{Reason: uint32(wire.EndPoweroff), ExitCode: 0, Elapsed: 2 * time.Second}

func TestRunTrailer(t *testing.T) {
	for _, tc := range []struct {
		name     string
		drops    int
		closed   bool
		follow   bool
		wantLoss bool
	}{
		{"open, no drops", 0, false, false, false},
		{"open, drops", 2, false, false, true},
		{"closed", 0, true, false, false},
		{"closed, drops", 1, true, false, true},
		{"closed, follow", 0, true, true, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r, p, _ := newRegion(t)
			want := append(hello(r), write(t, p, frames(3, 100))...)
			for i := 0; i < tc.drops; i++ {
				p.Write(make([]byte, 1<<20)) // too large: counted
			}
			if tc.closed {
				r.MarkClosed(poweroff)
			}
			var out bytes.Buffer
			st, err := Run(r, &out, Options{Follow: tc.follow})
			if err != nil {
				t.Fatalf("Run = %v", err)
			}
			nonce := wire.Nonce(r.Nonce())
			if tc.wantLoss {
				want = wire.AppendFrame(want, wire.TypeLoss, wire.AppendLoss(nil, wire.Loss{Frames: uint64(tc.drops), Bytes: uint64(tc.drops) << 20, Nonce: nonce}))
			}
			if tc.closed {
				want = wire.AppendFrame(want, wire.TypeVMEnd, wire.AppendVMEnd(nil, wire.VMEnd{Reason: wire.EndPoweroff, ElapsedNS: uint64(2 * time.Second), Nonce: nonce}))
			}
			if !bytes.Equal(out.Bytes(), want) {
				t.Errorf("Run wrote %d bytes, want %d (%x...)", out.Len(), len(want), out.Bytes()[min(out.Len(), 300):])
			}
			if st.Bytes != 300+3*16 || !st.Hello || st.Closed != tc.closed || st.DropFrames != uint64(tc.drops) || st.Trailer != (tc.closed || tc.wantLoss) {
				t.Errorf("Stats = %+v", st)
			}
		})
	}
}

// shortWriter accepts limit bytes in all, then fails with err.
type shortWriter struct {
	buf   bytes.Buffer
	limit int
	err   error
}

func (w *shortWriter) Write(p []byte) (int, error) {
	n := min(len(p), w.limit-w.buf.Len())
	w.buf.Write(p[:n])
	if n < len(p) {
		return n, w.err
	}
	return n, nil
}

// TestRunPartialWrite: a writer that fails part-way consumes exactly the
// bytes it accepted; the next Run continues with the next byte.
func TestRunPartialWrite(t *testing.T) {
	for _, tc := range []struct {
		name    string
		err     error
		wantErr error
	}{
		{"EPIPE", syscall.EPIPE, ErrOutputClosed},
		{"EIO", syscall.EIO, syscall.EIO},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r, p, _ := newRegion(t)
			want := append(hello(r), write(t, p, frames(5, 1000))...)
			w := &shortWriter{limit: 2500, err: tc.err}
			st, err := Run(r, w, Options{})
			if !errors.Is(err, tc.wantErr) {
				t.Fatalf("Run = %v, want %v", err, tc.wantErr)
			}
			if st.Bytes != 2500-32 || w.buf.Len() != 2500 {
				t.Fatalf("Stats.Bytes = %d, wrote %d, want the 32-byte HELO and %d frame bytes", st.Bytes, w.buf.Len(), 2500-32)
			}
			var rest bytes.Buffer
			if _, err := Run(r, &rest, Options{}); err != nil {
				t.Fatal(err)
			}
			if got := append(w.buf.Bytes(), rest.Bytes()...); !bytes.Equal(got, want) {
				t.Errorf("the two runs wrote %d bytes, not the %d produced", len(got), len(want))
			}
		})
	}
}

// lyingWriter claims to accept more than it was given.
type lyingWriter struct{}

func (lyingWriter) Write(p []byte) (int, error) { return len(p) + 10, nil }

func TestRunWriterOvercounts(t *testing.T) {
	r, p, _ := newRegion(t)
	write(t, p, frames(1, 10))
	st, err := Run(r, lyingWriter{}, Options{})
	if err != nil || st.Bytes != 26 {
		t.Errorf("Run = %+v, %v, want 26 bytes consumed", st, err)
	}
}

// TestRunStop: a closed Stop ends a follow before the next write, with
// nothing consumed that was not written.
func TestRunStop(t *testing.T) {
	r, p, _ := newRegion(t)
	want := append(hello(r), write(t, p, frames(4, 50))...)
	stop := make(chan struct{})
	w := &stopWriter{stop: stop, after: 2}
	st, err := Run(r, w, Options{Follow: true, Stop: stop, MaxWrite: 66})
	if err != nil || !st.Stopped {
		t.Fatalf("Run = %+v, %v, want Stopped", st, err)
	}
	if w.buf.Len() != 32+66 {
		t.Fatalf("wrote %d bytes after Stop, want the HELO and one 66-byte write", w.buf.Len())
	}
	r.MarkClosed(poweroff)
	var rest bytes.Buffer
	if _, err := Run(r, &rest, Options{Follow: true}); err != nil {
		t.Fatal(err)
	}
	if got := append(w.buf.Bytes(), rest.Bytes()...); !bytes.HasPrefix(got, want) || len(got) != len(want)+wire.HeaderSize+wire.VMEndNonceSize {
		t.Errorf("stopped and resumed runs wrote %d bytes, want %d then VEND", len(got), len(want))
	}
}

// stopWriter closes stop after the given number of writes.
type stopWriter struct {
	buf   bytes.Buffer
	stop  chan struct{}
	after int
}

func (w *stopWriter) Write(p []byte) (int, error) {
	w.buf.Write(p)
	if w.after--; w.after == 0 {
		close(w.stop)
	}
	return len(p), nil
}

// TestRunFollow copies frames written while it runs and returns once the
// region is closed and empty.
func TestRunFollow(t *testing.T) {
	r, p, _ := newRegion(t)
	p.Wait, p.Grace = time.Minute, time.Minute
	fs := frames(200, 3000) // 600 KB through a 64 KiB ring
	done := make(chan []byte)
	go func() {
		var sent []byte
		for i, f := range fs {
			if err := p.Write(f); err != nil {
				t.Errorf("Write = %v", err)
				break
			}
			sent = append(sent, f...)
			if i%50 == 0 {
				time.Sleep(5 * time.Millisecond) // let the drain go idle
			}
		}
		r.MarkClosed(poweroff)
		done <- sent
	}()
	var out bytes.Buffer
	st, err := Run(r, &out, Options{Follow: true})
	sent := <-done
	if err != nil || !st.Closed {
		t.Fatalf("Run = %+v, %v", st, err)
	}
	if sent = append(hello(r), sent...); !bytes.HasPrefix(out.Bytes(), sent) || out.Len() != len(sent)+wire.HeaderSize+wire.VMEndNonceSize {
		t.Errorf("Run wrote %d bytes, want the %d sent and VEND", out.Len(), len(sent))
	}
}

// blockingWriter blocks its first write until release is closed.
type blockingWriter struct {
	buf     bytes.Buffer
	entered chan struct{}
	release chan struct{}
	n       int
}

func (w *blockingWriter) Write(p []byte) (int, error) {
	if w.n++; w.n == 1 {
		close(w.entered)
		<-w.release
	}
	return w.buf.Write(p)
}

// TestRunHeartbeatWhileBlocked: while the drain is blocked in a write the
// heartbeat goes on, so a producer facing a full ring waits past its
// Grace instead of dropping.
func TestRunHeartbeatWhileBlocked(t *testing.T) {
	r, p, _ := newRegion(t)
	p.Wait, p.Grace = time.Minute, 500*time.Millisecond
	full := wire.AppendFrame(nil, wire.TypeStdout, make([]byte, 64<<10-wire.HeaderSize))
	if err := p.Write(full); err != nil {
		t.Fatal(err)
	}
	w := &blockingWriter{entered: make(chan struct{}), release: make(chan struct{})}
	stop := make(chan struct{})
	ran := make(chan error)
	go func() {
		_, err := Run(r, w, Options{Follow: true, Stop: stop, Beat: 5 * time.Millisecond})
		ran <- err
	}()
	<-w.entered
	// The ring is still full: the read position moves only after the
	// write returns. Block for several Grace periods.
	wrote := make(chan error)
	go func() { wrote <- p.Write([]byte("next")) }()
	time.Sleep(3 * p.Grace)
	close(w.release)
	if err := <-wrote; err != nil {
		t.Errorf("Write while the drain was blocked but beating = %v, want nil", err)
	}
	close(stop)
	if err := <-ran; err != nil {
		t.Fatal(err)
	}
	if fr, _ := r.Drops(); fr != 0 {
		t.Errorf("drops = %d, want 0", fr)
	}
}

func TestRunBootGone(t *testing.T) {
	r, p, _ := newRegion(t)
	want := append(hello(r), write(t, p, frames(2, 10))...)
	var out bytes.Buffer
	st, err := Run(r, &out, Options{Follow: true, BootAlive: func() bool { return false }})
	if err != nil || !st.Closed || st.End.Reason != uint32(wire.EndVMMError) || st.End.ExitCode != 4 {
		t.Fatalf("Run = %+v, %v, want closed with vmm_error", st, err)
	}
	if !bytes.HasPrefix(out.Bytes(), want) {
		t.Errorf("frames before the VEND are missing")
	}
}

// TestRunCorrupt: positions the guest scribbled give a clear error and no
// output.
func TestRunCorrupt(t *testing.T) {
	r, _, _ := newRegion(t)
	// A guest that claims to have written 1 MiB into a 64 KiB ring:
	// tx_write, at 0x80 in the header (ktstr-shm(5)).
	binary.LittleEndian.PutUint64(r.Mem()[0x80:], 1<<20)
	var out bytes.Buffer
	_, err := Run(r, &out, Options{})
	var pe *shm.PositionError
	if !errors.As(err, &pe) || !errors.Is(err, shm.ErrCorrupt) || out.Len() != 0 {
		t.Fatalf("Run = %v with %d bytes out, want a PositionError and nothing", err, out.Len())
	}
	if want := "drain: shm: corrupt ring positions: tx ring: write 0x100000 - read 0x0 = 0x100000 unread bytes, capacity 0x10000"; err.Error() != want {
		t.Errorf("error = %q, want %q", err, want)
	}
}

// TestRunTruncatedFile: a region file truncated under the mapping is an
// error, not a crash.
func TestRunTruncatedFile(t *testing.T) {
	_, p, path := newRegion(t)
	write(t, p, frames(2, 10))
	o, err := shm.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer o.Close()
	if err := os.Truncate(path, 0); err != nil {
		t.Fatal(err)
	}
	_, err = Run(o, io.Discard, Options{})
	if !errors.Is(err, ErrRegionFault) {
		t.Fatalf("Run over a truncated file = %v, want ErrRegionFault", err)
	}
}

func ExampleTrailer() {
	nonce := wire.Nonce{0x5e, 0xc2, 0xe7} // a region's: 16 random bytes
	b := Trailer(nonce, 2, 8192, shm.End{Reason: uint32(wire.EndTimeout), ExitCode: 1, Elapsed: time.Second}, true)
	frames, _ := wire.ParseStream(b, 0)
	for _, f := range frames {
		fmt.Println(f.Type, len(f.Payload))
	}
	// Output:
	// LOSS 32
	// VEND 40
}

// TestHostBlock: only CRC-good HDMP and HMON frames of ktstr-boot's file
// are copied, after an HBLK; a missing file gives no block.
func TestHostBlock(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, HostFramesFile)
	nonce := wire.Nonce{1, 2, 3}
	if b, err := HostBlock(path, nonce); b != nil || err != nil {
		t.Fatalf("missing file: %q, %v; want nil, nil", b, err)
	}
	dump := wire.AppendFrame(nil, wire.TypeHostDump, []byte("d"))
	mon := wire.AppendFrame(nil, wire.TypeMonitor, []byte("m"))
	badCRC := wire.AppendFrame(nil, wire.TypeMonitor, []byte("x"))
	badCRC[len(badCRC)-1] = 'y'
	other := wire.AppendFrame(nil, wire.TypeExit, []byte{0, 0, 0, 0})
	var file []byte
	for _, f := range [][]byte{dump, other, badCRC, mon, mon[:10]} {
		file = append(file, f...)
	}
	if err := os.WriteFile(path, file, 0o600); err != nil {
		t.Fatal(err)
	}
	b, err := HostBlock(path, nonce)
	want := append(append(wire.AppendFrame(nil, wire.TypeHostBlock, nonce[:]), dump...), mon...)
	if err != nil || !bytes.Equal(b, want) {
		t.Errorf("HostBlock = %x, %v; want %x", b, err, want)
	}
}
