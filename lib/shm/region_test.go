package shm

import (
	"bytes"
	"errors"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"
	"time"
)

func TestCreateOpen(t *testing.T) {
	path := filepath.Join(t.TempDir(), "region")
	l, _ := DefaultLayout(64 << 10)
	r, err := Create(path, l)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if _, err := Create(path, l); !errors.Is(err, os.ErrExist) {
		t.Errorf("Create over an existing file = %v, want ErrExist", err)
	}
	st, _ := os.Stat(path)
	if st.Size() != l.FileSize() || st.Mode().Perm() != 0o600 {
		t.Errorf("region file: size %d mode %v, want %d 0600", st.Size(), st.Mode().Perm(), l.FileSize())
	}

	o, err := Open(path)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	defer o.Close()
	if o.Layout() != l || !o.IsHost() || o.BootPID() != os.Getpid() {
		t.Errorf("Open: layout %+v host %v pid %d, want %+v true %d", o.Layout(), o.IsHost(), o.BootPID(), l, os.Getpid())
	}
	if _, closed := o.Closed(); closed {
		t.Errorf("a fresh region is closed")
	}
	end := End{Reason: 3, ExitCode: -7, Elapsed: 1500 * time.Millisecond}
	r.MarkClosed(end)
	if got, closed := o.Closed(); !closed || got != end {
		t.Errorf("Closed() through a second mapping = %+v, %v, want %+v, true", got, closed, end)
	}

	// The guest sees the same header through the first l.Size bytes.
	g, err := OpenGuest(r.Mem())
	if err != nil || g.Layout() != l || g.IsHost() {
		t.Fatalf("OpenGuest(Mem()) = %+v, %v", g.Layout(), err)
	}
	g.MarkClosed(End{}) // a no-op in the guest
	if _, closed := g.Closed(); closed {
		t.Errorf("the guest sees the host-only closed flag")
	}
	g.SetGuestState(GuestDone)
	if s := o.GuestState(); s != GuestDone {
		t.Errorf("GuestState() = %d, want %d", s, GuestDone)
	}

	for i := 0; i < 2; i++ { // Close is idempotent
		if err := o.Close(); err != nil {
			t.Errorf("Close #%d = %v", i, err)
		}
	}
}

func TestOpenFileDescriptor(t *testing.T) {
	path := filepath.Join(t.TempDir(), "region")
	l, _ := DefaultLayout(64 << 10)
	r, err := Create(path, l)
	if err != nil {
		t.Fatal(err)
	}
	r.Close()
	ro, _ := os.Open(path)
	defer ro.Close()
	if _, err := OpenFile(ro); err == nil {
		t.Errorf("OpenFile(read-only fd) succeeded, want an error")
	}
	dir, _ := os.Open(t.TempDir())
	defer dir.Close()
	if _, err := OpenFile(dir); err == nil {
		t.Errorf("OpenFile(directory) succeeded, want an error")
	}
	rw, _ := os.OpenFile(path, os.O_RDWR, 0)
	o, err := OpenFile(rw)
	rw.Close() // the mapping outlives the descriptor
	if err != nil {
		t.Fatalf("OpenFile(read-write fd) = %v", err)
	}
	defer o.Close()
	if o.Layout() != l {
		t.Errorf("layout %+v, want %+v", o.Layout(), l)
	}
}

// TestOpenHostile opens region files whose host page or size is wrong:
// each gives a HeaderError naming the field, never a mapping.
func TestOpenHostile(t *testing.T) {
	l, _ := DefaultLayout(64 << 10)
	for _, tc := range []struct {
		name  string
		edit  func(f []byte) []byte
		field string
	}{
		{"host magic", func(f []byte) []byte { f[l.Size+hostMagic] ^= 1; return f }, "host magic"},
		{"uninitialised", func(f []byte) []byte { clear(f[l.Size:]); return f }, "host magic"},
		{"host version", func(f []byte) []byte { le.PutUint32(f[l.Size+hostVersion:], 99); return f }, "host version"},
		{"size mismatch", func(f []byte) []byte { le.PutUint64(f[l.Size+hostSize:], 128<<10); return f }, "size"},
		{"tx cap", func(f []byte) []byte { le.PutUint64(f[l.Size+hostTxCap:], 5000); return f }, "tx_cap"},
		{"tx cap huge", func(f []byte) []byte { le.PutUint64(f[l.Size+hostTxCap:], 1<<62); return f }, "tx_cap"},
		{"rx past end", func(f []byte) []byte { le.PutUint64(f[l.Size+hostRxOff:], l.Size); return f }, "rx_off"},
		{"rings overlap", func(f []byte) []byte { le.PutUint64(f[l.Size+hostRxOff:], 8192); return f }, "rx_off"},
		{"short file", func(f []byte) []byte { return f[:MinSize] }, "file size"},
		{"empty file", func(f []byte) []byte { return nil }, "file size"},
		{"extra bytes", func(f []byte) []byte { return append(f, make([]byte, 4096)...) }, "host magic"},
		{"host page moved", func(f []byte) []byte {
			return append(append(f[:l.Size:l.Size], make([]byte, 4096)...), f[l.Size:]...)
		}, "size"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "region")
			r, err := Create(path, l)
			if err != nil {
				t.Fatal(err)
			}
			r.Close()
			b, _ := os.ReadFile(path)
			if err := os.WriteFile(path, tc.edit(b), 0o600); err != nil {
				t.Fatal(err)
			}
			o, err := Open(path)
			var he *HeaderError
			if !errors.As(err, &he) || he.Field != tc.field {
				if o != nil {
					o.Close()
				}
				t.Fatalf("Open = %v, want a HeaderError on %q", err, tc.field)
			}
		})
	}
}

// TestHostIgnoresGuestHeader fills the guest-visible header with garbage,
// as a hostile guest may: the host still opens the region from its own
// page, and every host operation either works or fails cleanly.
func TestHostIgnoresGuestHeader(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for i := 0; i < 200; i++ {
		tr := newTestRegion(t, 64<<10)
		for j := range tr.image[:HeaderSize] {
			tr.image[j] = byte(rng.Uint32())
		}
		r, err := openHost(tr.image)
		if err != nil {
			t.Fatalf("openHost after the guest scribbled on its header = %v", err)
		}
		hostOps(t, r, []byte("a reply"))
	}
}

// hostOps runs every host operation over r and checks that results stay
// within bounds.
func hostOps(t testing.TB, r *Region, frame []byte) {
	t.Helper()
	c := r.TX().NewConsumer()
	for k := 0; k < 3; k++ {
		a, b, err := c.Peek()
		if err != nil {
			if !errors.Is(err, ErrCorrupt) {
				t.Fatalf("Peek = %v, want nil or ErrCorrupt", err)
			}
			break
		}
		if n := uint64(len(a) + len(b)); n > r.layout.TxCap {
			t.Fatalf("Peek returned %d bytes from a %d-byte ring", n, r.layout.TxCap)
		}
		c.Advance(len(a))
	}
	c.Beat()
	p := r.RX().NewProducer(0)
	if err := p.Write(frame); err != nil && !errors.Is(err, ErrCorrupt) && !errors.Is(err, ErrFull) && !errors.Is(err, ErrTooLarge) {
		t.Fatalf("RX Write = %v", err)
	}
	r.Drops()
	r.Closed()
	r.GuestState()
	r.BootPID()
	for i := -1; i <= NumControl; i++ {
		r.Control(i)
		r.SetControl(i, 'D')
	}
}

func TestOpenGuestHostile(t *testing.T) {
	l, _ := DefaultLayout(64 << 10)
	for _, tc := range []struct {
		name  string
		edit  func(m []byte) []byte
		field string
	}{
		{"magic", func(m []byte) []byte { m[offMagic] = 0; return m }, "magic"},
		{"version", func(m []byte) []byte { le.PutUint32(m[offVersion:], 1); return m }, "version"},
		{"header size", func(m []byte) []byte { le.PutUint32(m[offHeaderSize:], 8192); return m }, "header_size"},
		{"size beyond mapping", func(m []byte) []byte { le.PutUint64(m[offSize:], 128<<10); return m }, "size"},
		{"size huge", func(m []byte) []byte { le.PutUint64(m[offSize:], 1<<63); return m }, "size"},
		{"tx cap", func(m []byte) []byte { le.PutUint64(m[offTxCap:], 3); return m }, "tx_cap"},
		{"rx overlaps tx", func(m []byte) []byte { le.PutUint64(m[offRxOff:], 4096); return m }, "rx_off"},
		{"short mapping", func(m []byte) []byte { return m[:HeaderSize] }, "mapping size"},
		{"unaligned", func(m []byte) []byte { return m[4 : 4+MinSize] }, "mapping address"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := alignedBytes(int(l.Size))
			InitGuestHeader(m, l)
			_, err := OpenGuest(tc.edit(m))
			var he *HeaderError
			if !errors.As(err, &he) || he.Field != tc.field {
				t.Errorf("OpenGuest = %v, want a HeaderError on %q", err, tc.field)
			}
		})
	}
}

func TestControl(t *testing.T) {
	tr := newTestRegion(t, 64<<10)
	h, g := tr.host, tr.guest
	if !h.SetControl(CtlDump, 'D') {
		t.Fatalf("SetControl on an empty slot failed")
	}
	if h.SetControl(CtlDump, 'X') {
		t.Errorf("SetControl on a full slot succeeded")
	}
	if h.SetControl(CtlStall, 0) || h.SetControl(-1, 1) || h.SetControl(NumControl, 1) {
		t.Errorf("SetControl accepted value 0 or a slot out of range")
	}
	h.SetControl(CtlShutdown, 0xD3)
	g.SetControl(CtlSignal1, 2)
	for _, tc := range []struct {
		slot int
		want uint8
	}{{CtlDump, 'D'}, {CtlStall, 0}, {CtlShutdown, 0xD3}, {CtlSignal0, 0}, {CtlSignal1, 2}, {-1, 0}, {NumControl, 0}} {
		if got := g.Control(tc.slot); got != tc.want {
			t.Errorf("Control(%d) = %#x, want %#x", tc.slot, got, tc.want)
		}
		if got := g.TakeControl(tc.slot); got != tc.want {
			t.Errorf("TakeControl(%d) = %#x, want %#x", tc.slot, got, tc.want)
		}
		if got := h.Control(tc.slot); got != 0 {
			t.Errorf("Control(%d) after TakeControl = %#x, want 0", tc.slot, got)
		}
	}
	// A guest that writes garbage into the upper bytes of a slot does
	// not stop the host from reading the value byte.
	store32(g.mem, offControl+4*CtlSignal1, 0xFFFFFF02)
	if got := h.Control(CtlSignal1); got != 2 {
		t.Errorf("Control(CtlSignal1) = %#x, want 2", got)
	}
}

// TestNonceHostOnly: every region gets its own random nonce, which lives
// only in the host trailer page: the guest-visible memory does not hold
// it, and a guest mapping reports none. The creator's pid and start time
// are recorded next to it.
func TestNonceHostOnly(t *testing.T) {
	l, _ := DefaultLayout(64 << 10)
	var nonces [][NonceSize]byte
	for i := range 2 {
		r, err := Create(filepath.Join(t.TempDir(), "region"), l)
		if err != nil {
			t.Fatal(err)
		}
		defer r.Close()
		n := r.Nonce()
		if n == ([NonceSize]byte{}) {
			t.Fatalf("region %d: zero nonce", i)
		}
		if bytes.Contains(r.Mem(), n[:]) {
			t.Errorf("region %d: the nonce is in guest-visible memory", i)
		}
		g, err := OpenGuest(r.Mem())
		if err != nil {
			t.Fatal(err)
		}
		if g.Nonce() != ([NonceSize]byte{}) {
			t.Errorf("region %d: a guest mapping reports a nonce", i)
		}
		if start, err := ProcessStart(os.Getpid()); err != nil || r.BootPID() != os.Getpid() || r.BootStart() != start {
			t.Errorf("region %d: boot pid %d start %d, want %d %d (%v)", i, r.BootPID(), r.BootStart(), os.Getpid(), start, err)
		}
		nonces = append(nonces, n)
	}
	if nonces[0] == nonces[1] {
		t.Error("two regions have the same nonce")
	}
}
