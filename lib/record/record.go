package record

import (
	"bytes"
	"reflect"
	"slices"
)

// Version is the schema version written in every record's "v".
const Version = 1

// Record kinds.
const (
	KindEntry  = "entry"
	KindEffect = "effect"
	KindDiag   = "diag"
)

// Effect names.
const (
	EffectKill             = "kill"
	EffectSysRdy           = "sys_rdy"
	EffectSchedSwap        = "sched_swap"
	EffectSnapshotRequest  = "snapshot_request"
	EffectKernelOpRequest  = "kernel_op_request"
	EffectKernPhysBase     = "kern_phys_base"
	EffectKernVirtKASLR    = "kern_virt_kaslr"
	EffectScenarioStart    = "scenario_start"
	EffectWatchdogPause    = "watchdog_pause"
	EffectWatchdogResume   = "watchdog_resume"
	EffectWatchdogDeadline = "watchdog_deadline"
	EffectCurrentStep      = "current_step"
)

// Effects lists every effect name this version writes.
var Effects = []string{EffectKill, EffectSysRdy, EffectSchedSwap, EffectSnapshotRequest, EffectKernelOpRequest,
	EffectKernPhysBase, EffectKernVirtKASLR, EffectScenarioStart, EffectWatchdogPause, EffectWatchdogResume,
	EffectWatchdogDeadline, EffectCurrentStep}

// Diagnostic names.
const (
	DiagUnknownType      = "unknown_type"
	DiagCRCMismatch      = "crc_mismatch"
	DiagPadNonzero       = "pad_nonzero"
	DiagOversized        = "oversized"
	DiagResidualOverflow = "residual_overflow"
	DiagTruncatedTail    = "truncated_tail"
	DiagKASLRDivergence  = "kaslr_divergence"
)

// Refusals are the diagnostics of frames a dispatcher gate refused, each
// named after its cause (ktstr-dispatch's drop.CAUSE counter), with the
// keys of unknown_type, which is one of them.
var Refusals = []string{
	"sched_exit_bad_crc",
	"sys_rdy_bad_crc", "sys_rdy_nonempty", "sys_rdy_again",
	"sched_swap_bad_crc", "sched_swap_nonempty",
	"kern_addrs_bad_crc", "kern_addrs_undecodable", "kern_addrs_out_of_range",
	"snapshot_request_bad_crc", "snapshot_request_undecodable",
	"kernel_op_request_bad_crc", "kernel_op_request_undecodable",
	"internal", DiagUnknownType,
}

// IsRefusal reports whether name is one of Refusals.
func IsRefusal(name string) bool { return slices.Contains(Refusals, name) }

// Diags lists every diagnostic name this version writes.
var Diags = append([]string{DiagCRCMismatch, DiagPadNonzero, DiagOversized, DiagResidualOverflow,
	DiagTruncatedTail, DiagKASLRDivergence}, Refusals...)

// Record is one record. Which fields are written depends on Kind and on
// Effect or Diag (the table in the package comment and ktstr-records(5));
// the others are zero after a Read.
type Record struct {
	V    int    // "v": schema version; Write sets it to Version
	Kind string // "kind": KindEntry, KindEffect or KindDiag
	Seq  int64  // "seq": index of the frame in the input
	AtNS int64  // "at_ns": when the frame was read, ns since start

	// Entries, and the frame an effect or a diagnostic is about.
	Tag     string // "tag": four-letter tag, or "0x%08x" for an unknown type
	MsgType uint32 // "msg_type"
	CRCOK   bool   // "crc_ok": the payload matched the header's CRC
	Payload []byte // "payload": entries only, verbatim

	// Effects.
	Effect       string // "effect": one of Effects
	Count        uint64 // "count": kill: kill events so far (ktstr's kill eventfd counter)
	ExitCode     int32  // "exit_code": kill: the SCDX exit code, when HasExitCode
	HasExitCode  bool   // the SCDX payload was exactly 4 bytes, so exit_code is written
	RequestID    uint32 // "request_id": snapshot_request, kernel_op_request
	ReqKind      uint32 // "req_kind": snapshot_request: 1 capture, 2 watch
	ReqTag       string // "req_tag": snapshot_request, kernel_op_request (cut to 256 bytes)
	Request      []byte // "request": kernel_op_request: the KORQ payload as received
	Value        uint64 // "value": kern_phys_base, kern_virt_kaslr; kaslr_divergence: the rejected offset
	StartNS      uint64 // "start_ns": scenario_start
	DeadlineNS   uint64 // "deadline_ns": watchdog_deadline, ns since start (same clock as at_ns)
	PauseNS      uint64 // "pause_ns": watchdog_pause: when (1 with no budget); watchdog_resume: how long
	PauseTotalNS uint64 // "pause_total_ns": watchdog_resume: all pauses so far
	Step         uint16 // "step": current_step

	// Diagnostics.
	Diag    string // "diag": one of Diags
	Offset  int64  // "offset": stream offset of the frame header, or of the first byte dropped
	Length  uint32 // "length": the header's length field
	Pad     uint32 // "pad": the header's reserved field
	Dropped int64  // "dropped": bytes discarded
	Message string // "message": one line for people
}

// Equal reports whether a and b are the same record apart from times:
// at_ns and the time-valued effect keys start_ns, deadline_ns, pause_ns
// and pause_total_ns, which depend on when frames were read. Two replays
// of one recording give Equal records in the same order.
func Equal(a, b *Record) bool {
	if !bytes.Equal(a.Payload, b.Payload) || !bytes.Equal(a.Request, b.Request) {
		return false
	}
	x, y := *a, *b
	for _, r := range []*Record{&x, &y} {
		r.AtNS, r.StartNS, r.DeadlineNS, r.PauseNS, r.PauseTotalNS = 0, 0, 0, 0, 0
		r.Payload, r.Request = nil, nil
	}
	return reflect.DeepEqual(x, y)
}

// MarshalJSON returns the record's JSON-lines form without the newline,
// so encoding/json writes the same keys as a Writer.
func (r *Record) MarshalJSON() ([]byte, error) {
	e := encoder{json: true}
	e.record(r)
	return e.b, nil
}

// UnmarshalJSON decodes one JSON record with the rules of a Reader.
func (r *Record) UnmarshalJSON(b []byte) error {
	var x Record
	if _, err := decodeJSON(b, jsonKeys(b), &x); err != nil {
		return err
	}
	*r = x
	return nil
}
