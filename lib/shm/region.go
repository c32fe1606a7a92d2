package shm

import (
	"bytes"
	"crypto/rand"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/sys/unix"
)

// Region is a mapped shared-memory region. On the host it is a mapping of
// the whole region file, the guest-visible part and the host-only trailer
// page; in the guest it is a mapping of the guest-visible part only.
//
// The layout a Region uses is read once, when it is opened, validated and
// kept in process memory: on the host from the trailer page, which the
// guest cannot reach; in the guest from the header. Values the other side
// can change (positions, counters, control slots, the guest state) are
// read with atomic loads and checked every time they are used.
//
// The methods may be called from several goroutines. Close unmaps the
// memory: no Region, Ring, Producer or Consumer method may run during or
// after it.
type Region struct {
	mem    []byte // guest-visible part
	host   []byte // host-only trailer page; nil in the guest
	layout Layout
	mapped []byte // what to munmap, nil when the caller owns the memory

	closeOnce sync.Once
	closeErr  error
}

// Layout returns the layout the region was opened with.
func (r *Region) Layout() Layout { return r.layout }

// Mem returns the guest-visible bytes (for tests and the VMM's memory slot).
func (r *Region) Mem() []byte { return r.mem }

// IsHost reports whether r is a host-side mapping with the trailer page.
func (r *Region) IsHost() bool { return r.host != nil }

// Create makes a new region file at path with mode 0600 (failing if it
// exists), sized for l, writes both headers and maps it. The host page's
// magic is stored last, so a reader polling with Open sees either no
// region or a complete one.
func Create(path string, l Layout) (*Region, error) {
	if err := l.Validate(); err != nil {
		return nil, err
	}
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	if err := f.Truncate(l.FileSize()); err != nil {
		os.Remove(path)
		return nil, err
	}
	m, err := unix.Mmap(int(f.Fd()), 0, int(l.FileSize()), unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED)
	if err != nil {
		os.Remove(path)
		return nil, fmt.Errorf("shm: map %s: %w", path, err)
	}
	r := &Region{mem: m[:l.Size:l.Size], host: m[l.Size:], layout: l, mapped: m}
	InitGuestHeader(r.mem, l)
	InitHostPage(r.host, l, os.Getpid())
	return r, nil
}

// InitGuestHeader writes a fresh guest-visible header for l into mem
// (at least HeaderSize bytes, 8-byte aligned): magic, version and layout,
// all positions, counters and control slots zero. The magic is stored
// last.
func InitGuestHeader(mem []byte, l Layout) {
	clear(mem[:HeaderSize])
	le.PutUint32(mem[offVersion:], Version)
	le.PutUint32(mem[offHeaderSize:], HeaderSize)
	putLayout(mem[offSize:], l)
	store32(mem, offMagic, Magic)
}

// InitHostPage writes a fresh host-only trailer page for l into page (at
// least HostSize bytes, 8-byte aligned): version, layout, the creator's
// pid and start time (ProcessStart; 0 when it cannot be read), a new
// random nonce, not closed, consumer position zero. The magic is stored
// last.
func InitHostPage(page []byte, l Layout, pid int) {
	clear(page[:HostSize])
	le.PutUint32(page[hostVersion:], Version)
	putLayout(page[hostSize:], l)
	store32(page, hostBootPID, uint32(pid))
	start, _ := ProcessStart(pid)
	store64(page, hostBootStart, start)
	rand.Read(page[hostNonce : hostNonce+NonceSize]) // never fails (crypto/rand)
	store32(page, hostMagic, HostMagic)
}

// ProcessStart returns when process pid started, in clock ticks since the
// system booted (field 22 of /proc/PID/stat). A pid and its start time
// name one process: a later process that reuses the pid starts later.
func ProcessStart(pid int) (uint64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	// The command name (field 2) is in parentheses and may hold spaces
	// and parentheses itself: the fields after it follow the last ")".
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, fmt.Errorf("shm: /proc/%d/stat: no command name", pid)
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 20 {
		return 0, fmt.Errorf("shm: /proc/%d/stat: %d fields after the name, want at least 20", pid, len(f))
	}
	return strconv.ParseUint(f[19], 10, 64) // field 22: fields 3, 4, ... are f[0], f[1], ...
}

// Open maps an existing region file read-write (host side).
func Open(path string) (*Region, error) {
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return OpenFile(f)
}

// OpenFile maps the region behind f (host side), for example an inherited
// descriptor. f must be open read-write; it may be closed once OpenFile
// returns.
func OpenFile(f *os.File) (*Region, error) {
	st, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("shm: %w", err)
	}
	if !st.Mode().IsRegular() {
		return nil, fmt.Errorf("shm: %s: not a regular file", f.Name())
	}
	size := st.Size()
	if size < MinSize+HostSize || size > MaxSize+HostSize {
		return nil, &HeaderError{"file size", uint64(size), "not a region file"}
	}
	m, err := unix.Mmap(int(f.Fd()), 0, int(size), unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED)
	if errors.Is(err, unix.EACCES) {
		return nil, fmt.Errorf("shm: map %s: %w (the region must be open read-write)", f.Name(), err)
	}
	if err != nil {
		return nil, fmt.Errorf("shm: map %s: %w", f.Name(), err)
	}
	r, err := openHost(m)
	if err != nil {
		unix.Munmap(m)
		return nil, err
	}
	r.mapped = m
	return r, nil
}

// openHost validates the host page at the end of m, a mapping of a whole
// region file, and returns a Region over m that does not own it.
func openHost(m []byte) (*Region, error) {
	if len(m) < MinSize+HostSize || !aligned(m) {
		return nil, &HeaderError{"mapping size", uint64(len(m)), "not a region file"}
	}
	host := m[len(m)-HostSize:]
	if v := load32(host, hostMagic); v != HostMagic {
		return nil, &HeaderError{"host magic", uint64(v), "not a ktstr region (or not initialised yet)"}
	}
	if v := le.Uint32(host[hostVersion:]); v != Version {
		return nil, &HeaderError{"host version", uint64(v), fmt.Sprintf("this build reads version %d", Version)}
	}
	l := getLayout(host[hostSize:])
	if l.Size != uint64(len(m)-HostSize) {
		return nil, &HeaderError{"size", l.Size, fmt.Sprintf("the file holds %d bytes before the host page", len(m)-HostSize)}
	}
	if err := l.Validate(); err != nil {
		return nil, err
	}
	return &Region{mem: m[:l.Size:l.Size], host: host[:HostSize:HostSize], layout: l}, nil
}

// OpenGuest validates the guest-visible header in mem (guest side) and
// returns a Region over it. mem stays owned by the caller and must be
// 8-byte aligned (a mapping is).
func OpenGuest(mem []byte) (*Region, error) {
	if len(mem) < MinSize {
		return nil, &HeaderError{"mapping size", uint64(len(mem)), "smaller than the smallest region"}
	}
	if !aligned(mem) {
		return nil, &HeaderError{"mapping address", 0, "not 8-byte aligned"}
	}
	if v := load32(mem, offMagic); v != Magic {
		return nil, &HeaderError{"magic", uint64(v), "not a ktstr region"}
	}
	if v := le.Uint32(mem[offVersion:]); v != Version {
		return nil, &HeaderError{"version", uint64(v), fmt.Sprintf("this build reads version %d", Version)}
	}
	if v := le.Uint32(mem[offHeaderSize:]); v != HeaderSize {
		return nil, &HeaderError{"header_size", uint64(v), fmt.Sprintf("want %d", HeaderSize)}
	}
	l := getLayout(mem[offSize:])
	if l.Size > uint64(len(mem)) {
		return nil, &HeaderError{"size", l.Size, fmt.Sprintf("larger than the %d-byte mapping", len(mem))}
	}
	if err := l.Validate(); err != nil {
		return nil, err
	}
	return &Region{mem: mem[:l.Size:l.Size], layout: l}, nil
}

// Close unmaps the region if Create, Open or OpenFile mapped it. It is
// idempotent.
func (r *Region) Close() error {
	r.closeOnce.Do(func() {
		if r.mapped != nil {
			r.closeErr = unix.Munmap(r.mapped)
		}
		r.mem, r.host, r.mapped = nil, nil, nil
	})
	return r.closeErr
}

// End is how the VM ended, as ktstr-boot records it in the host page.
type End struct {
	Reason   uint32 // wire.EndReason
	ExitCode int32
	Elapsed  time.Duration
}

// MarkClosed records how the VM ended and then sets the closed flag
// (host side; ktstr-boot calls it once the VM is gone and can no longer
// write). A no-op in the guest.
func (r *Region) MarkClosed(e End) {
	if r.host == nil {
		return
	}
	store32(r.host, hostReason, e.Reason)
	store32(r.host, hostExitCode, uint32(e.ExitCode))
	store64(r.host, hostElapsed, uint64(max(e.Elapsed, 0)))
	store32(r.host, hostClosed, 1)
}

// Closed reports whether ktstr-boot has marked the region closed, and if
// so how the VM ended. Always false in the guest.
func (r *Region) Closed() (End, bool) {
	if r.host == nil || load32(r.host, hostClosed) == 0 {
		return End{}, false
	}
	return End{
		Reason:   load32(r.host, hostReason),
		ExitCode: int32(load32(r.host, hostExitCode)),
		Elapsed:  time.Duration(load64(r.host, hostElapsed)),
	}, true
}

// BootPID returns the pid of the process that created the region (0 in
// the guest).
func (r *Region) BootPID() int {
	if r.host == nil {
		return 0
	}
	return int(load32(r.host, hostBootPID))
}

// BootStart returns the creator's start time (ProcessStart) recorded at
// creation: with BootPID it names the process, whatever later reuses its
// pid. 0 when unknown, and in the guest.
func (r *Region) BootStart() uint64 {
	if r.host == nil {
		return 0
	}
	return load64(r.host, hostBootStart)
}

// NonceSize is the size of a region's nonce.
const NonceSize = 16

// Nonce returns the run's nonce: 16 random bytes written at creation into
// the host trailer page, which the guest can neither read nor write.
// ktstr-drain puts it in the frames it writes itself (HELO, LOSS, VEND)
// so that the verdict can tell them from frames the guest forged. All
// zero in the guest, and for a region made before there was a nonce.
func (r *Region) Nonce() [NonceSize]byte {
	var n [NonceSize]byte
	if r.host != nil {
		copy(n[:], r.host[hostNonce:])
	}
	return n
}

// Drops returns the guest producer's drop counters (frames, bytes). The
// guest writes them: on the host they are the guest's own report.
func (r *Region) Drops() (frames, bytes uint64) {
	return load64(r.mem, offTxDropFrames), load64(r.mem, offTxDropBytes)
}

// SetControl sets control slot i to v if it is currently 0 and reports
// whether it did.
func (r *Region) SetControl(i int, v uint8) bool {
	if i < 0 || i >= NumControl || v == 0 {
		return false
	}
	return cas32(r.mem, offControl+controlSlotSize*i, 0, uint32(v))
}

// Control returns the value in control slot i (0: none).
func (r *Region) Control(i int) uint8 {
	if i < 0 || i >= NumControl {
		return 0
	}
	return uint8(load32(r.mem, offControl+controlSlotSize*i))
}

// TakeControl returns the value in control slot i and clears the slot.
func (r *Region) TakeControl(i int) uint8 {
	if i < 0 || i >= NumControl {
		return 0
	}
	return uint8(swap32(r.mem, offControl+controlSlotSize*i, 0))
}

// SetGuestState records the guest agent's state (guest side).
func (r *Region) SetGuestState(s uint32) { store32(r.mem, offGuest, s) }

// GuestState returns the state the guest agent last recorded. On the host
// it is the guest's claim, any value.
func (r *Region) GuestState() uint32 { return load32(r.mem, offGuest) }

// TX returns the guest-to-host ring: the guest produces, the host
// consumes. On the host its consumer position is also kept in the host
// page, which is what a new consumer starts from.
func (r *Region) TX() *Ring {
	g := &Ring{name: "tx", mem: r.mem, data: r.mem[r.layout.TxOff : r.layout.TxOff+r.layout.TxCap], size: r.layout.TxCap,
		offWrite: offTxWrite, offRead: offTxRead, offBeat: offTxBeat,
		offDropF: offTxDropFrames, offDropB: offTxDropBytes, hostRead: offNone}
	if r.host != nil {
		g.host, g.hostRead = r.host, hostTxRead
	}
	return g
}

// RX returns the host-to-guest ring: the host produces, the guest
// consumes. It has no drop counters: its producer, the host, reports a
// failed Write itself.
func (r *Region) RX() *Ring {
	return &Ring{name: "rx", mem: r.mem, data: r.mem[r.layout.RxOff : r.layout.RxOff+r.layout.RxCap], size: r.layout.RxCap,
		offWrite: offRxWrite, offRead: offRxRead, offBeat: offRxBeat,
		offDropF: offNone, offDropB: offNone, hostRead: offNone}
}
