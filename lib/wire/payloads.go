package wire

import (
	"encoding/binary"
	"errors"
	"fmt"
	"unicode/utf8"
)

// Payload errors. Every decoder in this package returns a *PayloadError
// that wraps ErrPayloadSize or ErrPayloadValue, both of which wrap
// ErrPayload:
//
//	errors.Is(err, wire.ErrPayload)      // any bad payload
//	errors.Is(err, wire.ErrPayloadSize)  // the length is wrong
//	var pe *wire.PayloadError; errors.As(err, &pe) // which type, how long, why
var (
	ErrPayload      = errors.New("wire: bad payload")
	ErrPayloadSize  = fmt.Errorf("%w: wrong size", ErrPayload)
	ErrPayloadValue = fmt.Errorf("%w: bad value", ErrPayload)
)

// PayloadError reports a payload that does not decode as its type.
type PayloadError struct {
	Type   Type
	Length int
	Reason string
	// Err is ErrPayloadSize or ErrPayloadValue.
	Err error
}

func (e *PayloadError) Error() string {
	return fmt.Sprintf("wire: bad %v payload (%d bytes): %s", e.Type, e.Length, e.Reason)
}

func (e *PayloadError) Unwrap() error {
	if e.Err == nil {
		return ErrPayload
	}
	return e.Err
}

func badSize(t Type, p []byte, want int) error {
	return &PayloadError{Type: t, Length: len(p), Reason: fmt.Sprintf("want exactly %d bytes", want), Err: ErrPayloadSize}
}

// badSizes is badSize for a layout with a short and a long form.
func badSizes(t Type, p []byte, short, long int) error {
	return &PayloadError{Type: t, Length: len(p), Reason: fmt.Sprintf("want %d or %d bytes", short, long), Err: ErrPayloadSize}
}

func badValue(t Type, p []byte, format string, args ...any) error {
	return &PayloadError{Type: t, Length: len(p), Reason: fmt.Sprintf(format, args...), Err: ErrPayloadValue}
}

// Fixed payload sizes.
const (
	StimulusSize        = 24
	ScenarioEndSize     = 16
	ExitCodeSize        = 4
	KernAddrsSize       = 24
	SnapshotTagMax      = 64
	SnapshotRequestSize = 8 + SnapshotTagMax
	SnapshotReasonMax   = 512
	SnapshotReplySize   = 8 + SnapshotReasonMax
	NonceSize           = 16
	HelloSize           = NonceSize
	LossSize            = 16
	LossNonceSize       = LossSize + NonceSize
	VMEndSize           = 24
	VMEndNonceSize      = VMEndSize + NonceSize
)

// Nonce is a run's nonce: random bytes that ktstr-boot keeps where the
// guest cannot read them (the region's host trailer page) and that
// ktstr-drain puts in the host-origin frames, HELO first of all. A frame
// whose nonce is not the stream's HELO's was not written by the host. The
// zero Nonce means none.
type Nonce [NonceSize]byte

// IsZero reports whether n is the zero Nonce (none).
func (n Nonce) IsZero() bool { return n == Nonce{} }

// AppendHello appends a HELO body: the nonce.
func AppendHello(b []byte, n Nonce) []byte { return append(b, n[:]...) }

// DecodeHello decodes a HELO body: exactly 16 bytes, not all zero.
func DecodeHello(p []byte) (Nonce, error) {
	if len(p) != HelloSize {
		return Nonce{}, badSize(TypeHello, p, HelloSize)
	}
	n := Nonce(p)
	if n.IsZero() {
		return Nonce{}, badValue(TypeHello, p, "zero nonce")
	}
	return n, nil
}

// AppendHostBlock appends an HBLK body: the nonce, or nothing without one.
func AppendHostBlock(b []byte, n Nonce) []byte { return appendNonce(b, n) }

// DecodeHostBlock decodes an HBLK body: the nonce (16 bytes, not all
// zero), or empty for a region without one (the zero Nonce).
func DecodeHostBlock(p []byte) (Nonce, error) {
	if len(p) == 0 {
		return Nonce{}, nil
	}
	return DecodeHello(p)
}

// appendNonce appends n unless it is zero (the short form).
func appendNonce(b []byte, n Nonce) []byte {
	if n.IsZero() {
		return b
	}
	return append(b, n[:]...)
}

// Stimulus is the body of STIM (step start) and STEN (step end).
//
//	offset size field
//	0      4    elapsed_ms        u32, since scenario start
//	4      2    step_index        u16, 1-based; 0 is the baseline settle
//	6      2    op_count          u16
//	8      4    op_kinds          u32 bitmask
//	12     2    cgroup_count      u16
//	14     2    worker_count      u16
//	16     8    total_iterations  u64
type Stimulus struct {
	ElapsedMS       uint32
	StepIndex       uint16
	OpCount         uint16
	OpKinds         uint32
	CgroupCount     uint16
	WorkerCount     uint16
	TotalIterations uint64
}

// AppendStimulus appends the 24-byte encoding of s.
func AppendStimulus(b []byte, s Stimulus) []byte {
	b = binary.LittleEndian.AppendUint32(b, s.ElapsedMS)
	b = binary.LittleEndian.AppendUint16(b, s.StepIndex)
	b = binary.LittleEndian.AppendUint16(b, s.OpCount)
	b = binary.LittleEndian.AppendUint32(b, s.OpKinds)
	b = binary.LittleEndian.AppendUint16(b, s.CgroupCount)
	b = binary.LittleEndian.AppendUint16(b, s.WorkerCount)
	return binary.LittleEndian.AppendUint64(b, s.TotalIterations)
}

// DecodeStimulus decodes a STIM or STEN body; it must be exactly 24 bytes.
func DecodeStimulus(p []byte) (Stimulus, error) {
	if len(p) != StimulusSize {
		return Stimulus{}, badSize(TypeStimulus, p, StimulusSize)
	}
	le := binary.LittleEndian
	return Stimulus{
		ElapsedMS:       le.Uint32(p[0:]),
		StepIndex:       le.Uint16(p[4:]),
		OpCount:         le.Uint16(p[6:]),
		OpKinds:         le.Uint32(p[8:]),
		CgroupCount:     le.Uint16(p[12:]),
		WorkerCount:     le.Uint16(p[14:]),
		TotalIterations: le.Uint64(p[16:]),
	}, nil
}

// ScenarioEnd is the SCEN body: u64 elapsed_ms, u64 total_iterations.
type ScenarioEnd struct {
	ElapsedMS       uint64
	TotalIterations uint64
}

// AppendScenarioEnd appends the 16-byte encoding of s.
func AppendScenarioEnd(b []byte, s ScenarioEnd) []byte {
	b = binary.LittleEndian.AppendUint64(b, s.ElapsedMS)
	return binary.LittleEndian.AppendUint64(b, s.TotalIterations)
}

// DecodeScenarioEnd decodes a SCEN body. Like ktstr it needs at least 16
// bytes and ignores anything beyond.
func DecodeScenarioEnd(p []byte) (ScenarioEnd, error) {
	if len(p) < ScenarioEndSize {
		return ScenarioEnd{}, &PayloadError{Type: TypeScenarioEnd, Length: len(p), Reason: "want at least 16 bytes", Err: ErrPayloadSize}
	}
	return ScenarioEnd{binary.LittleEndian.Uint64(p), binary.LittleEndian.Uint64(p[8:])}, nil
}

// AppendExitCode appends a 4-byte little-endian i32 (EXIT, SCDX, EXCX).
func AppendExitCode(b []byte, code int32) []byte {
	return binary.LittleEndian.AppendUint32(b, uint32(code))
}

// DecodeExitCode decodes an EXIT, SCDX or EXCX body: exactly 4 bytes.
func DecodeExitCode(t Type, p []byte) (int32, error) {
	if len(p) != ExitCodeSize {
		return 0, badSize(t, p, ExitCodeSize)
	}
	return int32(binary.LittleEndian.Uint32(p)), nil
}

// KernAddrs is the KADR body. Two fields are stored biased by one so that
// 0 means "not sent".
//
//	offset size field
//	0      8    phys_base + 1
//	8      8    page_offset_base (unbiased; 0 when unknown)
//	16     8    runtime _text + 1 (0: kallsyms unreadable)
type KernAddrs struct {
	PhysBase       uint64 // valid when HasPhysBase
	HasPhysBase    bool
	PageOffsetBase uint64
	Text           uint64 // valid when HasText
	HasText        bool
}

// AppendKernAddrs appends the 24-byte encoding of k.
func AppendKernAddrs(b []byte, k KernAddrs) []byte {
	var pb, tx uint64
	if k.HasPhysBase {
		pb = k.PhysBase + 1
	}
	if k.HasText {
		tx = k.Text + 1
	}
	b = binary.LittleEndian.AppendUint64(b, pb)
	b = binary.LittleEndian.AppendUint64(b, k.PageOffsetBase)
	return binary.LittleEndian.AppendUint64(b, tx)
}

// DecodeKernAddrs decodes a KADR body: exactly 24 bytes. A stored phys
// base of 0 decodes as absent (ktstr: all-ones, treated as absent).
func DecodeKernAddrs(p []byte) (KernAddrs, error) {
	if len(p) != KernAddrsSize {
		return KernAddrs{}, badSize(TypeKernAddrs, p, KernAddrsSize)
	}
	le := binary.LittleEndian
	pb, pob, tx := le.Uint64(p), le.Uint64(p[8:]), le.Uint64(p[16:])
	k := KernAddrs{PageOffsetBase: pob}
	if pb != 0 {
		k.PhysBase, k.HasPhysBase = pb-1, true
	}
	if tx != 0 {
		k.Text, k.HasText = tx-1, true
	}
	return k, nil
}

// Snapshot request kinds.
const (
	SnapshotNone    uint32 = 0 // invalid
	SnapshotCapture uint32 = 1
	SnapshotWatch   uint32 = 2
)

// SnapshotRequest is the SNRQ body: u32 request_id (never 0), u32 kind,
// 64-byte NUL-padded UTF-8 tag.
type SnapshotRequest struct {
	RequestID uint32
	Kind      uint32
	Tag       string
}

// AppendSnapshotRequest appends the 72-byte encoding; the tag is truncated
// at 64 bytes.
func AppendSnapshotRequest(b []byte, r SnapshotRequest) []byte {
	b = binary.LittleEndian.AppendUint32(b, r.RequestID)
	b = binary.LittleEndian.AppendUint32(b, r.Kind)
	return appendPadded(b, r.Tag, SnapshotTagMax)
}

// DecodeSnapshotRequest decodes an SNRQ body: exactly 72 bytes, a non-zero
// request id and a non-zero kind. The tag runs to the first NUL and is
// decoded as lossy UTF-8.
func DecodeSnapshotRequest(p []byte) (SnapshotRequest, error) {
	if len(p) != SnapshotRequestSize {
		return SnapshotRequest{}, badSize(TypeSnapshotRequest, p, SnapshotRequestSize)
	}
	r := SnapshotRequest{
		RequestID: binary.LittleEndian.Uint32(p),
		Kind:      binary.LittleEndian.Uint32(p[4:]),
		Tag:       cString(p[8:]),
	}
	if r.RequestID == 0 {
		return SnapshotRequest{}, badValue(TypeSnapshotRequest, p, "request_id 0")
	}
	if r.Kind == SnapshotNone {
		return SnapshotRequest{}, badValue(TypeSnapshotRequest, p, "kind 0 (NONE)")
	}
	return r, nil
}

// Snapshot reply statuses.
const (
	SnapshotOK  uint32 = 1
	SnapshotErr uint32 = 2
)

// SnapshotReply is the SNRP body: u32 request_id, u32 status, 512-byte
// NUL-padded UTF-8 reason (all zero on OK).
type SnapshotReply struct {
	RequestID uint32
	Status    uint32
	Reason    string
}

// AppendSnapshotReply appends the 520-byte encoding; the reason is cut at
// 512 bytes, backing off to a UTF-8 boundary.
func AppendSnapshotReply(b []byte, r SnapshotReply) []byte {
	b = binary.LittleEndian.AppendUint32(b, r.RequestID)
	b = binary.LittleEndian.AppendUint32(b, r.Status)
	return appendPadded(b, r.Reason, SnapshotReasonMax)
}

// DecodeSnapshotReply decodes an SNRP body: exactly 520 bytes, status OK
// or ERR.
func DecodeSnapshotReply(p []byte) (SnapshotReply, error) {
	if len(p) != SnapshotReplySize {
		return SnapshotReply{}, badSize(TypeSnapshotReply, p, SnapshotReplySize)
	}
	r := SnapshotReply{
		RequestID: binary.LittleEndian.Uint32(p),
		Status:    binary.LittleEndian.Uint32(p[4:]),
		Reason:    cString(p[8:]),
	}
	if r.Status != SnapshotOK && r.Status != SnapshotErr {
		return SnapshotReply{}, badValue(TypeSnapshotReply, p, "status %d", r.Status)
	}
	return r, nil
}

// Phase is a LIFE phase.
type Phase uint8

// Lifecycle phases (ktstr's LifecyclePhase). 0 is reserved and invalid.
const (
	PhaseInitStarted          Phase = 1
	PhasePayloadStarting      Phase = 2
	PhaseSchedulerDied        Phase = 3
	PhaseSchedulerNotAttached Phase = 4
)

func (p Phase) String() string {
	switch p {
	case PhaseInitStarted:
		return "init_started"
	case PhasePayloadStarting:
		return "payload_starting"
	case PhaseSchedulerDied:
		return "scheduler_died"
	case PhaseSchedulerNotAttached:
		return "scheduler_not_attached"
	}
	return fmt.Sprintf("phase(%d)", uint8(p))
}

// Lifecycle is the LIFE body: a phase byte, then an optional UTF-8 reason.
type Lifecycle struct {
	Phase  Phase
	Reason string
}

// AppendLifecycle appends the encoding of l.
func AppendLifecycle(b []byte, l Lifecycle) []byte {
	return append(append(b, byte(l.Phase)), l.Reason...)
}

// DecodeLifecycle decodes a LIFE body. An empty payload or an unknown
// phase is an error (host parsers skip it).
func DecodeLifecycle(p []byte) (Lifecycle, error) {
	if len(p) == 0 {
		return Lifecycle{}, &PayloadError{Type: TypeLifecycle, Reason: "empty", Err: ErrPayloadSize}
	}
	ph := Phase(p[0])
	if ph < PhaseInitStarted || ph > PhaseSchedulerNotAttached {
		return Lifecycle{}, badValue(TypeLifecycle, p, "unknown phase %d", p[0])
	}
	return Lifecycle{Phase: ph, Reason: lossy(p[1:])}, nil
}

// Loss is the LOSS body (host origin): what the guest's producer could not
// put into the ring. Counters are totals since the region was created.
//
//	offset size field
//	0      8    frames  u64
//	8      8    bytes   u64
//	16     16   nonce   the run's Nonce; absent (16 bytes in all) when none
type Loss struct {
	Frames uint64
	Bytes  uint64
	Nonce  Nonce
}

// AppendLoss appends the encoding of l: 32 bytes, or 16 when l.Nonce is
// zero.
func AppendLoss(b []byte, l Loss) []byte {
	b = binary.LittleEndian.AppendUint64(b, l.Frames)
	b = binary.LittleEndian.AppendUint64(b, l.Bytes)
	return appendNonce(b, l.Nonce)
}

// DecodeLoss decodes a LOSS body: exactly 32 bytes (the nonce not all
// zero), or 16 without a nonce.
func DecodeLoss(p []byte) (Loss, error) {
	if len(p) != LossSize && len(p) != LossNonceSize {
		return Loss{}, badSizes(TypeLoss, p, LossSize, LossNonceSize)
	}
	l := Loss{Frames: binary.LittleEndian.Uint64(p), Bytes: binary.LittleEndian.Uint64(p[8:])}
	copy(l.Nonce[:], p[LossSize:])
	if len(p) == LossNonceSize && l.Nonce.IsZero() {
		return Loss{}, badValue(TypeLoss, p, "zero nonce")
	}
	return l, nil
}

// EndReason says how a VM ended, as ktstr-boot recorded it in the region.
type EndReason uint32

const (
	EndUnknown  EndReason = 0
	EndPoweroff EndReason = 1 // the guest agent finished and powered off
	EndTimeout  EndReason = 2 // the watchdog's hard deadline
	EndCrash    EndReason = 3 // kernel panic, triple fault or init died
	EndKilled   EndReason = 4 // stopped on request (scheduler died, user)
	EndVMMError EndReason = 5 // the VMM itself failed
)

func (r EndReason) String() string {
	switch r {
	case EndUnknown:
		return "unknown"
	case EndPoweroff:
		return "poweroff"
	case EndTimeout:
		return "timeout"
	case EndCrash:
		return "crash"
	case EndKilled:
		return "killed"
	case EndVMMError:
		return "vmm_error"
	}
	return fmt.Sprintf("reason(%d)", uint32(r))
}

// VMEnd is the VEND body (host origin), the last frame ktstr-drain writes
// once ktstr-boot has closed the region.
//
//	offset size field
//	0      4    reason      u32 EndReason
//	4      4    exit_code   i32, ktstr-boot's own exit status
//	8      8    elapsed_ns  u64, boot start to VM end
//	16     8    flags       u64, reserved (0)
//	24     16   nonce       the run's Nonce; absent (24 bytes in all) when none
type VMEnd struct {
	Reason    EndReason
	ExitCode  int32
	ElapsedNS uint64
	Nonce     Nonce
}

// AppendVMEnd appends the encoding of v: 40 bytes, or 24 when v.Nonce is
// zero.
func AppendVMEnd(b []byte, v VMEnd) []byte {
	b = binary.LittleEndian.AppendUint32(b, uint32(v.Reason))
	b = binary.LittleEndian.AppendUint32(b, uint32(v.ExitCode))
	b = binary.LittleEndian.AppendUint64(b, v.ElapsedNS)
	b = binary.LittleEndian.AppendUint64(b, 0)
	return appendNonce(b, v.Nonce)
}

// DecodeVMEnd decodes a VEND body: exactly 40 bytes (the nonce not all
// zero), or 24 without a nonce.
func DecodeVMEnd(p []byte) (VMEnd, error) {
	if len(p) != VMEndSize && len(p) != VMEndNonceSize {
		return VMEnd{}, badSizes(TypeVMEnd, p, VMEndSize, VMEndNonceSize)
	}
	v := VMEnd{
		Reason:    EndReason(binary.LittleEndian.Uint32(p)),
		ExitCode:  int32(binary.LittleEndian.Uint32(p[4:])),
		ElapsedNS: binary.LittleEndian.Uint64(p[8:]),
	}
	copy(v.Nonce[:], p[VMEndSize:])
	if len(p) == VMEndNonceSize && v.Nonce.IsZero() {
		return VMEnd{}, badValue(TypeVMEnd, p, "zero nonce")
	}
	return v, nil
}

// appendPadded appends s cut to at most n bytes on a UTF-8 boundary and
// NUL-padded to exactly n bytes.
func appendPadded(b []byte, s string, n int) []byte {
	s = TruncateUTF8(s, n)
	b = append(b, s...)
	for i := len(s); i < n; i++ {
		b = append(b, 0)
	}
	return b
}

// TruncateUTF8 cuts s to at most n bytes, backing off to the previous
// UTF-8 character boundary.
func TruncateUTF8(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}

// cString returns the bytes before the first NUL (all of them if none),
// as lossy UTF-8.
func cString(p []byte) string {
	for i, c := range p {
		if c == 0 {
			p = p[:i]
			break
		}
	}
	return lossy(p)
}

// Lossy converts p to a string the way Rust's String::from_utf8_lossy
// does: valid UTF-8 is kept, and each maximal subpart of an ill-formed
// sequence (Unicode's "substitution of maximal subparts") becomes one
// U+FFFD. ktstr decodes every text field of a payload this way.
func Lossy(p []byte) string {
	if utf8.Valid(p) {
		return string(p)
	}
	b := make([]byte, 0, len(p)+8)
	for len(p) > 0 {
		if r, n := utf8.DecodeRune(p); r != utf8.RuneError || n > 1 {
			b = append(b, p[:n]...)
			p = p[n:]
			continue
		}
		b = utf8.AppendRune(b, utf8.RuneError)
		p = p[maximalSubpart(p):]
	}
	return string(b)
}

func lossy(p []byte) string { return Lossy(p) }

// maximalSubpart returns the length of the longest prefix of p (at least
// 1) that starts a well-formed UTF-8 sequence; p does not start with one.
func maximalSubpart(p []byte) int {
	n, lo, hi := 0, byte(0x80), byte(0xBF)
	switch c := p[0]; {
	case c >= 0xC2 && c <= 0xDF:
		n = 2
	case c == 0xE0:
		n, lo = 3, 0xA0
	case c == 0xED:
		n, hi = 3, 0x9F
	case c >= 0xE1 && c <= 0xEF:
		n = 3
	case c == 0xF0:
		n, lo = 4, 0x90
	case c >= 0xF1 && c <= 0xF3:
		n = 4
	case c == 0xF4:
		n, hi = 4, 0x8F
	default:
		return 1
	}
	i := 1
	for ; i < n && i < len(p); i++ {
		if i == 1 && (p[i] < lo || p[i] > hi) || i > 1 && (p[i] < 0x80 || p[i] > 0xBF) {
			break
		}
	}
	return i
}
