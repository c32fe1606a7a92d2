package wire

import "strconv"

// Type is a frame's message type. Each value spells a four-letter ASCII tag
// when written in hex (0x45584954 is "EXIT"); on the wire the field is
// little-endian, so the four bytes read the tag backwards ("TIXE").
type Type uint32

// Message types with ktstr's values (V-A). The comment names ktstr's Rust
// variant where it differs from the tag.
const (
	TypeStimulus         Type = 0x5354494D // STIM: step start, 24-byte Stimulus
	TypeStepEnd          Type = 0x5354454E // STEN: step end, 24-byte Stimulus
	TypeScenarioStart    Type = 0x53435354 // SCST: empty
	TypeScenarioEnd      Type = 0x5343454E // SCEN: 16-byte ScenarioEnd
	TypeScenarioPause    Type = 0x53435050 // SCPP: empty
	TypeScenarioResume   Type = 0x53435252 // SCRR: empty
	TypeExit             Type = 0x45584954 // EXIT: i32 guest exit code
	TypeTestResult       Type = 0x54455354 // TEST: AssertResult (msgpack here)
	TypeSchedExit        Type = 0x53434458 // SCDX: i32 scheduler exit code
	TypeCrash            Type = 0x43525348 // CRSH: UTF-8 panic text
	TypePayloadMetrics   Type = 0x504D4554 // PMET: PayloadMetrics (msgpack here)
	TypeRawPayloadOutput Type = 0x5241574F // RAWO: RawPayloadOutput (msgpack here)
	TypeProfraw          Type = 0x50524157 // PRAW: raw LLVM .profraw bytes
	TypeWprofTrace       Type = 0x57505246 // WPRF: raw Perfetto trace
	TypeSnapshotRequest  Type = 0x534E5251 // SNRQ: 72-byte SnapshotRequest
	TypeSnapshotReply    Type = 0x534E5250 // SNRP: 8+512-byte SnapshotReply (host to guest)
	TypeKernelOpRequest  Type = 0x4B4F5251 // KORQ: KernelOpRequest (msgpack here)
	TypeKernelOpReply    Type = 0x4B4F5250 // KORP: KernelOpReply (msgpack here, host to guest)
	TypeSysRdy           Type = 0x53524459 // SRDY: empty
	TypeSchedSwapNotify  Type = 0x53435357 // SCSW: empty
	TypeStdout           Type = 0x534F5554 // SOUT: guest stdout chunk
	TypeStderr           Type = 0x53455252 // SERR: guest stderr chunk
	TypeSchedLog         Type = 0x53434C47 // SCLG: scheduler log chunk
	TypeLifecycle        Type = 0x4C494645 // LIFE: phase byte + optional reason
	TypeExecExit         Type = 0x45584358 // EXCX: i32 exec exit code
	TypeDmesg            Type = 0x444D5347 // DMSG: kernel log text
	TypeProbeOutput      Type = 0x50524F42 // PROB: probe JSON text

	// TypeKernAddrs (KADR) is known to ktstr only as a raw constant, not as
	// a message type: Lookup reports it as unknown, exactly as ktstr's
	// MsgType::from_wire does, and dispatchers match it by value.
	TypeKernAddrs Type = 0x4B414452

	// Host-originated types, a ktstr-go extension. ktstr-drain writes them
	// into the frame stream it copies out of the region so that a
	// recording carries what the host saw. They are not ktstr message
	// types. Each carries the region's nonce, which the guest cannot read,
	// so a reader can tell them from frames the guest forged.
	TypeHello Type = 0x48454C4F // HELO: 16-byte Nonce, first in the stream
	TypeLoss  Type = 0x4C4F5353 // LOSS: Loss, 32 bytes (16 without a nonce): ring drops
	TypeVMEnd Type = 0x56454E44 // VEND: VMEnd, 40 bytes (24 without a nonce): how the VM ended
	// What ktstr-boot itself saw, from its host.frames file next to the
	// region: ktstr-drain copies it after the guest's frames as one block,
	// HBLK first with the nonce, so that a guest cannot pass its own
	// frames off as the host's.
	TypeHostBlock Type = 0x48424C4B // HBLK: 16-byte Nonce (none: empty); ktstr-boot's frames follow
	TypeHostDump  Type = 0x48444D50 // HDMP: payload.HostDump (msgpack), a failure dump's summary
	TypeMonitor   Type = 0x484D4F4E // HMON: payload.Monitor (msgpack), host-side monitor samples
)

// Direction says which side of the channel sends a message type.
type Direction uint8

const (
	GuestToHost Direction = iota + 1
	HostToGuest
	HostOrigin // written on the host by ktstr-drain (HELO, LOSS, VEND, HBLK, HDMP, HMON)
)

func (d Direction) String() string {
	switch d {
	case GuestToHost:
		return "guest-to-host"
	case HostToGuest:
		return "host-to-guest"
	case HostOrigin:
		return "host-origin"
	}
	return "Direction(" + strconv.Itoa(int(d)) + ")"
}

// Info describes a known message type.
type Info struct {
	Type Type
	// Name is ktstr's Rust variant name.
	Name string
	Dir  Direction
	// Internal is ktstr's is_coordinator_internal: the frame drives host
	// state (SRDY, SCSW, requests and replies) and is never a verdict entry.
	Internal bool
	// Host marks the ktstr-go host-origin extension types.
	Host bool
}

// Types lists every message type Lookup knows, in ktstr's table order,
// followed by the host-origin extensions. KADR is not in it.
var Types = []Info{
	{TypeStimulus, "Stimulus", GuestToHost, false, false},
	{TypeStepEnd, "StepEnd", GuestToHost, false, false},
	{TypeScenarioStart, "ScenarioStart", GuestToHost, false, false},
	{TypeScenarioEnd, "ScenarioEnd", GuestToHost, false, false},
	{TypeScenarioPause, "ScenarioPause", GuestToHost, false, false},
	{TypeScenarioResume, "ScenarioResume", GuestToHost, false, false},
	{TypeExit, "Exit", GuestToHost, false, false},
	{TypeTestResult, "TestResult", GuestToHost, false, false},
	{TypeSchedExit, "SchedExit", GuestToHost, false, false},
	{TypeCrash, "Crash", GuestToHost, false, false},
	{TypePayloadMetrics, "PayloadMetrics", GuestToHost, false, false},
	{TypeRawPayloadOutput, "RawPayloadOutput", GuestToHost, false, false},
	{TypeProfraw, "Profraw", GuestToHost, false, false},
	{TypeWprofTrace, "WprofTrace", GuestToHost, false, false},
	{TypeSnapshotRequest, "SnapshotRequest", GuestToHost, true, false},
	{TypeSnapshotReply, "SnapshotReply", HostToGuest, true, false},
	{TypeKernelOpRequest, "KernelOpRequest", GuestToHost, true, false},
	{TypeKernelOpReply, "KernelOpReply", HostToGuest, true, false},
	{TypeSysRdy, "SysRdy", GuestToHost, true, false},
	{TypeSchedSwapNotify, "SchedSwapNotify", GuestToHost, true, false},
	{TypeStdout, "Stdout", GuestToHost, false, false},
	{TypeStderr, "Stderr", GuestToHost, false, false},
	{TypeSchedLog, "SchedLog", GuestToHost, false, false},
	{TypeLifecycle, "Lifecycle", GuestToHost, false, false},
	{TypeExecExit, "ExecExit", GuestToHost, false, false},
	{TypeDmesg, "Dmesg", GuestToHost, false, false},
	{TypeProbeOutput, "ProbeOutput", GuestToHost, false, false},
	{TypeHello, "Hello", HostOrigin, false, true},
	{TypeLoss, "Loss", HostOrigin, false, true},
	{TypeVMEnd, "VMEnd", HostOrigin, false, true},
	{TypeHostBlock, "HostBlock", HostOrigin, false, true},
	{TypeHostDump, "HostDump", HostOrigin, false, true},
	{TypeMonitor, "Monitor", HostOrigin, false, true},
}

// Lookup returns the description of a type read from the wire. ok is false
// for any value not in Types, including KADR and 0 (ktstr's from_wire).
func Lookup(t Type) (info Info, ok bool) {
	i, ok := byType[t]
	if !ok {
		return Info{}, false
	}
	return Types[i], true
}

var byType = func() map[Type]int {
	m := make(map[Type]int, len(Types))
	for i, info := range Types {
		m[info.Type] = i
	}
	return m
}()

// Known reports whether Lookup knows t.
func Known(t Type) bool {
	_, ok := Lookup(t)
	return ok
}

// Internal reports whether t is a known coordinator-internal type.
func (t Type) Internal() bool {
	i, ok := Lookup(t)
	return ok && i.Internal
}

// Tag returns the four-letter tag of t, or "" when one of its bytes is not
// a printable ASCII letter or digit.
func (t Type) Tag() string {
	b := [4]byte{byte(t >> 24), byte(t >> 16), byte(t >> 8), byte(t)}
	for _, c := range b {
		if !(c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9') {
			return ""
		}
	}
	return string(b[:])
}

// String prints the four-letter tag for a known type (and KADR), and
// "0x%08x" otherwise.
func (t Type) String() string {
	if Known(t) || t == TypeKernAddrs {
		return t.Tag()
	}
	return "0x" + hex8(uint32(t))
}

func hex8(v uint32) string {
	const digits = "0123456789abcdef"
	var b [8]byte
	for i := 7; i >= 0; i-- {
		b[i] = digits[v&0xf]
		v >>= 4
	}
	return string(b[:])
}
