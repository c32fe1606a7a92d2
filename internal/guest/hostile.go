package guest

import (
	"crypto/rand"
	"encoding/binary"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/ktstr-go/ktstr/lib/shm"
	"github.com/ktstr-go/ktstr/lib/wire"
	"github.com/ktstr-go/ktstr/lib/wire/payload"
)

// Hostile mode (ktstr-boot --hostile): instead of a scenario the agent
// behaves as a hostile guest, to test that nothing a guest can write
// hangs, crashes or bloats a host tool, and that the verdict names each
// anomaly with its count. It runs the attacks asked for, in the order of
// HostileAttacks, then sends a forged passing result and EXIT 0, then the
// one stream-ending attack if one was asked for, and powers off.
//
//	attack     what the guest writes                                   counts (constants below)
//	crc        SCDX, TEST, STIM, SRDY, EXIT and SNRQ with a torn CRC    HostileTorn of each
//	pad        SOUT with a non-zero reserved header field              HostilePad
//	unknown    frames of types 0, 0xffffffff, "EVIL" and 0x12345678    HostileUnknown in all
//	smuggle    SRDY and SCSW with a payload                            HostileSmuggle of each
//	header     every header field the host must not trust: magic,      drop counters HostileDropFrames,
//	           version, layout, tx_read, tx_beat, rx_write, rx_read,    HostileDropBytes
//	           the control slots, guest_state, the drop counters
//	flood      valid SNRQ, KORQ and SCST                               HostileFlood of each
//	forge      host-origin HELO, LOSS, VEND without the nonce (random,  HostileForge of each of 7 forms;
//	           zero, the short forms), and SNRP and KORP on TX         HostileForge SNRP and KORP
//	escapes    terminal escapes on COM1, COM2, /dev/kmsg and in SOUT,  (not counted: escaped wherever
//	           SERR, SCLG, LIFE, DMSG and the result's strings          the host shows them)
//
// Stream-ending attacks (at most one; it comes after the result):
//
//	oversized  a TEST header announcing MaxPayload+1 bytes, and the bytes
//	truncated  a TEST header announcing 1 MiB, 1000 bytes of it, nothing more
//	overflow   a header announcing 4 GiB and 32 MiB + 64 KiB of its bytes
//	ring       tx_write moved past the ring's capacity
//
// "all" is every attack that does not end the stream. On the host
// (--vmm host) the escapes stay off the consoles and the kernel log,
// which are the host's own there.
const (
	HostileTorn       = 10
	HostilePad        = 20
	HostileUnknown    = 20
	HostileSmuggle    = 10
	HostileFlood      = 20000
	HostileForge      = 5
	HostileDropFrames = 1 << 40
	HostileDropBytes  = 1 << 50
)

// hostileAttack is one attack of hostile mode.
type hostileAttack struct {
	name string
	// ends the frame stream: it comes last, after the result.
	terminal bool
	run      func(*hostile)
}

var hostileAttacks = []hostileAttack{
	{name: "crc", run: (*hostile).torn},
	{name: "pad", run: (*hostile).pad},
	{name: "unknown", run: (*hostile).unknown},
	{name: "smuggle", run: (*hostile).smuggle},
	{name: "header", run: (*hostile).header},
	{name: "flood", run: (*hostile).flood},
	{name: "forge", run: (*hostile).forge},
	{name: "escapes", run: (*hostile).escapes},
	{name: "oversized", terminal: true, run: (*hostile).oversized},
	{name: "truncated", terminal: true, run: (*hostile).truncated},
	{name: "overflow", terminal: true, run: (*hostile).overflow},
	{name: "ring", terminal: true, run: (*hostile).ring},
}

// HostileAttacks lists the attacks of hostile mode in the order they run.
func HostileAttacks() []string {
	var out []string
	for _, a := range hostileAttacks {
		out = append(out, a.name)
	}
	return out
}

// ParseHostile reads a comma-separated list of attacks ("all": every
// attack that does not end the stream) into the list Config.Hostile
// takes, in running order. Unknown names and more than one
// stream-ending attack are errors.
func ParseHostile(s string) ([]string, error) {
	want := map[string]bool{}
	for _, n := range strings.Split(s, ",") {
		n = strings.TrimSpace(n)
		switch {
		case n == "all":
			for _, a := range hostileAttacks {
				want[a.name] = want[a.name] || !a.terminal
			}
		case slices.Contains(HostileAttacks(), n):
			want[n] = true
		default:
			return nil, fmt.Errorf("unknown attack %q: want all or some of %s", n, strings.Join(HostileAttacks(), ","))
		}
	}
	var out []string
	terminal := ""
	for _, a := range hostileAttacks {
		if !want[a.name] {
			continue
		}
		if a.terminal {
			if terminal != "" {
				return nil, fmt.Errorf("%s and %s both end the frame stream: give one", terminal, a.name)
			}
			terminal = a.name
		}
		out = append(out, a.name)
	}
	return out, nil
}

// hostile is the agent in hostile mode.
type hostile struct {
	a   *agent
	mem []byte // the guest-visible region
}

// runHostile runs the attacks of a.cfg.Hostile (see HostileAttacks).
func (a *agent) runHostile() {
	h := &hostile{a: a, mem: a.region.Mem()}
	a.send(wire.TypeSysRdy, nil)
	a.life(wire.PhaseInitStarted, "hostile mode")
	var last *hostileAttack
	for _, n := range a.cfg.Hostile {
		i := slices.IndexFunc(hostileAttacks, func(x hostileAttack) bool { return x.name == n })
		switch {
		case i < 0:
			a.logf("hostile: unknown attack %q", n)
		case hostileAttacks[i].terminal:
			last = &hostileAttacks[i]
		default:
			a.logf("hostile: %s", n)
			hostileAttacks[i].run(h)
		}
	}
	// A passing result, so that nothing but the anomalies can fail the
	// run.
	a.sendKernelLog()
	p, _ := payload.MarshalAssertResult(&payload.AssertResult{Scenario: "hostile",
		Passes: []payload.PassDetail{{Check: "hostile", Message: "every attack written" + hostileEscapes}}})
	a.send(wire.TypeTestResult, p)
	a.send(wire.TypeExit, wire.AppendExitCode(nil, 0))
	if last != nil {
		a.logf("hostile: %s, after the result", last.name)
		last.run(h) // the host reads what the ring holds after the VM has gone
	}
	a.region.SetGuestState(shm.GuestDone)
	a.doneOnce.Do(func() { close(a.done) })
}

// Header fields of ktstr-shm(5), written here raw, as a hostile guest
// would.
const (
	hdrTxWrite    = 0x080
	hdrTxDropF    = 0x088
	hdrTxDropB    = 0x090
	hdrTxRead     = 0x100
	hdrTxBeat     = 0x108
	hdrRxWrite    = 0x180
	hdrRxRead     = 0x200
	hdrControl    = 0x280
	hdrGuestState = 0x300
)

func (h *hostile) get(off int) uint64      { return binary.LittleEndian.Uint64(h.mem[off:]) }
func (h *hostile) put(off int, v uint64)   { binary.LittleEndian.PutUint64(h.mem[off:], v) }
func (h *hostile) put32(off int, v uint32) { binary.LittleEndian.PutUint32(h.mem[off:], v) }

// drained waits up to d until the host has read everything written.
func (h *hostile) drained(d time.Duration) {
	for end := time.Now().Add(d); time.Now().Before(end) && h.get(hdrTxRead) != h.get(hdrTxWrite); {
		time.Sleep(10 * time.Millisecond)
	}
}

// raw writes bytes into the TX ring as they are: a torn frame, a part
// of one, several at once.
func (h *hostile) raw(b []byte) {
	c := h.a.ch
	c.mu.Lock()
	defer c.mu.Unlock()
	if err := c.tx.Write(b); err != nil {
		h.a.logf("hostile: write %d bytes: %v", len(b), err)
	}
}

// frame writes one frame with the given header fields.
func (h *hostile) frame(t wire.Type, p []byte, crc, pad uint32) {
	h.raw(append(wire.AppendHeader(nil, wire.Header{Type: t, Length: uint32(len(p)), CRC: crc, Pad: pad}), p...))
}

func (h *hostile) torn() {
	snrq := wire.AppendSnapshotRequest(nil, wire.SnapshotRequest{RequestID: 1, Kind: wire.SnapshotCapture, Tag: "torn"})
	fail, _ := payload.MarshalAssertResult(&payload.AssertResult{Scenario: "torn",
		Outcomes: []payload.Outcome{{Verdict: payload.Fail, Message: "a torn result must not count"}}})
	for _, f := range []struct {
		t wire.Type
		p []byte
	}{
		{wire.TypeSchedExit, wire.AppendExitCode(nil, 9)},
		{wire.TypeTestResult, fail},
		{wire.TypeStimulus, make([]byte, wire.StimulusSize)},
		{wire.TypeSysRdy, nil},
		{wire.TypeExit, wire.AppendExitCode(nil, 7)},
		{wire.TypeSnapshotRequest, snrq},
	} {
		for range HostileTorn {
			h.frame(f.t, f.p, wire.Checksum(f.p)^0xdeadbeef, 0)
		}
	}
}

func (h *hostile) pad() {
	p := []byte("pad\n")
	for i := range HostilePad {
		h.frame(wire.TypeStdout, p, wire.Checksum(p), uint32(i+1))
	}
}

func (h *hostile) unknown() {
	types := []wire.Type{0, 0xffffffff, 0x4556494C, 0x12345678}
	for i := range HostileUnknown {
		h.a.send(types[i%len(types)], []byte("unknown"))
	}
}

func (h *hostile) smuggle() {
	for range HostileSmuggle {
		h.a.send(wire.TypeSysRdy, []byte("smuggled"))
		h.a.send(wire.TypeSchedSwapNotify, []byte("smuggled"))
	}
}

// header writes every field of the region's header the host must not
// trust, waits, then puts back tx_read (the host's consumer position,
// which the guest's own producer reads to find free space) so that the
// next attacks can still write.
func (h *hostile) header() {
	h.drained(5 * time.Second)
	read := h.get(hdrTxRead)
	for off := 0; off < 0x40; off += 8 { // magic, version, header_size, flags, layout
		h.put(off, 0xdeadbeefdeadbeef)
	}
	h.put(hdrTxDropF, HostileDropFrames)
	h.put(hdrTxDropB, HostileDropBytes)
	h.put(hdrTxRead, read+12345)
	h.put(hdrTxBeat, 1<<63)
	h.put(hdrRxWrite, 1<<62)
	h.put(hdrRxRead, 1<<61)
	for i := range 8 {
		h.put32(hdrControl+4*i, 0xffffffff)
	}
	h.put32(hdrGuestState, 0xdeadbeef)
	time.Sleep(500 * time.Millisecond)
	h.put(hdrTxRead, read)
	h.put32(hdrGuestState, shm.GuestRunning)
}

func (h *hostile) flood() {
	korq, _ := payload.MarshalKernelOpRequest(&payload.KernelOpRequest{RequestID: 1, Mode: "hot", Direction: "read", Tag: "flood",
		Entries: []payload.KernelOpEntry{{Target: payload.Target{Kind: "symbol", Symbol: "jiffies"}, Value: payload.Value{Kind: "u64", U: 1}}}})
	for i := range HostileFlood {
		h.a.send(wire.TypeSnapshotRequest, wire.AppendSnapshotRequest(nil, wire.SnapshotRequest{RequestID: uint32(i + 1), Kind: wire.SnapshotCapture, Tag: "flood"}))
		h.a.send(wire.TypeKernelOpRequest, korq)
		h.a.send(wire.TypeScenarioStart, nil)
	}
}

func (h *hostile) forge() {
	var n wire.Nonce
	rand.Read(n[:])
	var zero [40]byte
	loss := wire.Loss{Frames: 1 << 30, Bytes: 1 << 40}
	end := wire.VMEnd{Reason: wire.EndPoweroff}
	for range HostileForge {
		h.a.send(wire.TypeHello, wire.AppendHello(nil, n))
		h.a.send(wire.TypeHello, zero[:wire.NonceSize]) // all zero: not a HELO at all
		h.a.send(wire.TypeLoss, wire.AppendLoss(nil, wire.Loss{Frames: loss.Frames, Bytes: loss.Bytes, Nonce: n}))
		h.a.send(wire.TypeLoss, wire.AppendLoss(nil, loss)) // the short form, without a nonce
		h.a.send(wire.TypeVMEnd, wire.AppendVMEnd(nil, wire.VMEnd{Reason: end.Reason, Nonce: n}))
		h.a.send(wire.TypeVMEnd, wire.AppendVMEnd(nil, end))                       // the short form
		h.a.send(wire.TypeVMEnd, append(wire.AppendVMEnd(nil, end), zero[:16]...)) // a zero nonce
		h.a.send(wire.TypeSnapshotReply, wire.AppendSnapshotReply(nil, wire.SnapshotReply{RequestID: 1, Status: wire.SnapshotOK}))
		h.a.send(wire.TypeKernelOpReply, []byte{0x80})
	}
}

// hostileEscapes steers a terminal every way ktstr-wire(5) lists: an OSC
// title, a screen clear, a UTF-8 C1 CSI, a bidi override, a line
// separator, DEL, and a carriage return that would overwrite the line
// with a fake verdict. It is valid UTF-8, as a string of a structured
// payload must be; hostileRawEscapes adds a raw 8-bit CSI (0x9b) for the
// text payloads and the consoles.
const (
	hostileEscapes    = " \x1b]0;ktstr: ALL TESTS PASSED\x07\x1b[2J\x1b[H\u009b32m\u202eDESSAP\u202c\u2028\x7f\r\x1b[KPASS run: all checks passed"
	hostileRawEscapes = "\x9b31m" + hostileEscapes
)

func (h *hostile) escapes() {
	a := h.a
	line := "ktstr-hostile: " + hostileRawEscapes + "\n"
	a.send(wire.TypeStdout, []byte(line))
	a.send(wire.TypeStderr, []byte(line))
	a.send(wire.TypeSchedLog, []byte(line))
	a.life(wire.PhasePayloadStarting, "hostile"+hostileEscapes)
	if a.host {
		a.logf("hostile: escapes: not on the host's own consoles and kernel log")
		return
	}
	for _, w := range []io.Writer{a.log, a.com2} {
		if w != nil {
			io.WriteString(w, line)
		}
	}
	if f, err := os.OpenFile("/dev/kmsg", os.O_WRONLY, 0); err == nil {
		// Priority 0 (emergency): printed on the console under "quiet".
		io.WriteString(f, "<0>"+line)
		f.Close()
	}
}

func (h *hostile) oversized() {
	n := uint32(wire.MaxPayload + 1)
	h.raw(wire.AppendHeader(nil, wire.Header{Type: wire.TypeTestResult, Length: n}))
	h.fill(int(n))
}

func (h *hostile) truncated() {
	h.raw(append(wire.AppendHeader(nil, wire.Header{Type: wire.TypeTestResult, Length: 1 << 20}), make([]byte, 1000)...))
}

func (h *hostile) overflow() {
	h.raw(wire.AppendHeader(nil, wire.Header{Type: wire.TypeTestResult, Length: 0xffffffff}))
	h.fill(2*wire.MaxPayload + 64<<10)
}

// fill writes n zero bytes in pieces of a quarter of the ring.
func (h *hostile) fill(n int) {
	chunk := make([]byte, min(int(h.a.region.Layout().TxCap)/4, 1<<20))
	for n > 0 {
		k := min(n, len(chunk))
		h.raw(chunk[:k])
		n -= k
	}
}

func (h *hostile) ring() {
	h.put(hdrTxWrite, h.get(hdrTxRead)+h.a.region.Layout().TxCap+1)
}
