// Package dispatch applies ktstr's dispatcher gates (dispatch_bulk_message,
// V-A) to assembled frames: which frames become verdict entries, which
// change host state (kill, watchdog, requests), and which are dropped. It
// is the logic of ktstr-dispatch, kept apart from the command so tests call
// exactly what the binary runs.
package dispatch

import (
	"fmt"
	"math"
	"time"

	"github.com/ktstr-go/ktstr/internal/record"
	"github.com/ktstr-go/ktstr/lib/wire"
	"github.com/ktstr-go/ktstr/lib/wire/payload"
)

// KernelHalf is the lowest kernel-half canonical address on x86_64.
const KernelHalf = 0xffff800000000000

// MaxKASLR is the largest virtual KASLR offset accepted on x86_64 (1 GiB).
const MaxKASLR = 1 << 30

// Config wires the dispatcher to the run.
type Config struct {
	// Workload is the watchdog budget: when non-zero, SCST, SCRR and SCEN
	// move the watchdog deadline (ktstr's watchdog_reset is wired).
	Workload time.Duration
	// TextLink is the link-time address of _text from the kernel's
	// vmlinux or System.map; 0 means unknown (no virtual KASLR offset).
	TextLink uint64
	// MaxKASLR overrides the largest accepted KASLR offset (default 1 GiB).
	MaxKASLR uint64
}

// State is the dispatcher's sinks (ktstr's DispatchSinks), owned by one
// run: once-only firing and latches live here, not per feed.
type State struct {
	cfg Config

	Killed            bool   // kill flag
	KillEvents        uint64 // kill eventfd counter: one per valid SCDX
	SysRdy            uint64 // SYS_RDY eventfd counter (0 or 1)
	sysRdyTaken       bool   // the once-only handle was taken
	SchedSwap         bool   // latch; the consumer clears it
	PhysBase          uint64 // phys_base + 1; 0 unset
	VirtKASLR         uint64 // offset + 1; 0 unset
	ScenarioStartNS   uint64
	WatchdogPauseNS   uint64
	PauseCumulativeNS uint64
	DeadlineNS        uint64 // since run start; 0 unset
	CurrentStep       uint16

	SnapshotRequests []wire.SnapshotRequest
	KernelOpRequests []*payload.KernelOpRequest

	// Dropped counts frames dropped by the gates, by arm.
	Dropped map[string]int64
}

// New returns the state for one run.
func New(cfg Config) *State {
	if cfg.MaxKASLR == 0 {
		cfg.MaxKASLR = MaxKASLR
	}
	return &State{cfg: cfg, Dropped: map[string]int64{}}
}

// Arm is the dispatcher arm a message type takes.
type Arm uint8

const (
	ArmUnknown Arm = iota // not a known type: dropped with a diagnostic
	ArmSchedExit
	ArmSysRdy
	ArmSchedSwap
	ArmKernAddrs
	ArmSnapshotRequest
	ArmKernelOpRequest
	ArmScenarioStart
	ArmScenarioPause
	ArmScenarioResume
	ArmScenarioEnd
	ArmStimulus
	ArmBucket   // verdict-bearing: bucketed verbatim, even with a bad CRC
	ArmInternal // internal with no arm of its own: dropped silently
)

var armNames = [...]string{"unknown", "sched_exit", "sys_rdy", "sched_swap", "kern_addrs", "snapshot_request",
	"kernel_op_request", "scenario_start", "scenario_pause", "scenario_resume", "scenario_end", "stimulus",
	"bucket", "internal"}

func (a Arm) String() string {
	if int(a) < len(armNames) {
		return armNames[a]
	}
	return fmt.Sprintf("Arm(%d)", uint8(a))
}

// ArmOf returns the arm for t. Every type lib/wire knows is listed here
// by name; a type added to lib/wire without a decision here falls to
// ArmUnknown and fails TestEveryKnownTypeHasAnArm.
func ArmOf(t wire.Type) Arm {
	switch t {
	case wire.TypeSchedExit:
		return ArmSchedExit
	case wire.TypeSysRdy:
		return ArmSysRdy
	case wire.TypeSchedSwapNotify:
		return ArmSchedSwap
	case wire.TypeKernAddrs: // matched by value before the unknown arm
		return ArmKernAddrs
	case wire.TypeSnapshotRequest:
		return ArmSnapshotRequest
	case wire.TypeKernelOpRequest:
		return ArmKernelOpRequest
	case wire.TypeScenarioStart:
		return ArmScenarioStart
	case wire.TypeScenarioPause:
		return ArmScenarioPause
	case wire.TypeScenarioResume:
		return ArmScenarioResume
	case wire.TypeScenarioEnd:
		return ArmScenarioEnd
	case wire.TypeStimulus:
		return ArmStimulus
	case wire.TypeStepEnd, wire.TypeExit, wire.TypeTestResult, wire.TypeCrash, wire.TypePayloadMetrics,
		wire.TypeRawPayloadOutput, wire.TypeProfraw, wire.TypeWprofTrace, wire.TypeStdout, wire.TypeStderr,
		wire.TypeSchedLog, wire.TypeLifecycle, wire.TypeExecExit, wire.TypeDmesg, wire.TypeProbeOutput,
		wire.TypeLoss, wire.TypeVMEnd:
		return ArmBucket
	case wire.TypeSnapshotReply, wire.TypeKernelOpReply:
		return ArmInternal
	}
	return ArmUnknown
}

// Dispatch applies the gates to one frame read at `now` (time since the
// run started) with index seq, and calls out for each record it yields:
// first the effects, then the verdict entry if the frame is bucketed.
func (s *State) Dispatch(f wire.Frame, seq int64, now time.Duration, out func(*record.Record)) {
	at := int64(now)
	effect := func(name string) *record.Record {
		return &record.Record{Kind: record.KindEffect, Seq: seq, AtNS: at, Effect: name, Tag: f.Type.String(), MsgType: uint32(f.Type)}
	}
	bucket := func() {
		out(&record.Record{Kind: record.KindEntry, Seq: seq, AtNS: at, Tag: f.Type.String(), MsgType: uint32(f.Type), CRCOK: f.CRCOK, Payload: f.Payload})
	}
	drop := func(why string) { s.Dropped[why]++ }
	nowNS := clampNS(now)

	switch ArmOf(f.Type) {
	case ArmSchedExit:
		if !f.CRCOK {
			drop("sched_exit_bad_crc")
			return
		}
		s.Killed = true
		s.KillEvents++
		r := effect(record.EffectKill)
		r.Count = s.KillEvents
		if code, err := wire.DecodeExitCode(f.Type, f.Payload); err == nil {
			r.ExitCode = code
		}
		out(r)
		bucket()

	case ArmSysRdy:
		if !f.CRCOK || len(f.Payload) != 0 || s.sysRdyTaken {
			drop("sys_rdy")
			return
		}
		s.sysRdyTaken = true
		s.SysRdy++
		out(effect(record.EffectSysRdy))

	case ArmSchedSwap:
		if !f.CRCOK || len(f.Payload) != 0 {
			drop("sched_swap")
			return
		}
		s.SchedSwap = true
		out(effect(record.EffectSchedSwap))

	case ArmKernAddrs:
		s.kernAddrs(f, effect, out, seq, at)

	case ArmSnapshotRequest:
		if !f.CRCOK {
			drop("snapshot_request_bad_crc")
			return
		}
		req, err := wire.DecodeSnapshotRequest(f.Payload)
		if err != nil {
			drop("snapshot_request_undecodable")
			return
		}
		s.SnapshotRequests = append(s.SnapshotRequests, req)
		r := effect(record.EffectSnapshotRequest)
		r.RequestID, r.ReqKind, r.ReqTag = req.RequestID, req.Kind, req.Tag
		out(r)

	case ArmKernelOpRequest:
		if !f.CRCOK {
			drop("kernel_op_request_bad_crc")
			return
		}
		req, err := payload.UnmarshalKernelOpRequest(f.Payload)
		if err != nil {
			drop("kernel_op_request_undecodable")
			return
		}
		req.Tag = wire.TruncateUTF8(req.Tag, payload.KernelOpTagMax)
		s.KernelOpRequests = append(s.KernelOpRequests, req)
		r := effect(record.EffectKernelOpRequest)
		r.RequestID, r.ReqTag, r.Request = req.RequestID, req.Tag, f.Payload
		out(r)

	case ArmScenarioStart:
		if f.CRCOK {
			if s.ScenarioStartNS == 0 {
				s.ScenarioStartNS = nowNS
				r := effect(record.EffectScenarioStart)
				r.StartNS = nowNS
				out(r)
			}
			if s.cfg.Workload > 0 {
				s.setDeadline(satAdd(nowNS, clampNS(s.cfg.Workload)), effect, out)
			}
		}
		bucket()

	case ArmScenarioPause:
		if f.CRCOK {
			p := uint64(1)
			if s.cfg.Workload > 0 {
				p = nowNS
			}
			s.WatchdogPauseNS = p
			r := effect(record.EffectWatchdogPause)
			r.PauseNS = p
			out(r)
		}
		bucket()

	case ArmScenarioResume:
		if f.CRCOK && s.cfg.Workload > 0 {
			p := s.WatchdogPauseNS
			s.WatchdogPauseNS = 0
			if p > 0 {
				pause := satSub(nowNS, p)
				s.PauseCumulativeNS = satAdd(s.PauseCumulativeNS, pause)
				r := effect(record.EffectWatchdogResume)
				r.PauseNS = pause
				out(r)
				s.setDeadline(satAdd(s.DeadlineNS, pause), effect, out)
			}
		}
		bucket()

	case ArmScenarioEnd:
		if f.CRCOK && s.cfg.Workload > 0 {
			s.setDeadline(satAdd(nowNS, clampNS(s.cfg.Workload)), effect, out)
		}
		bucket()

	case ArmStimulus:
		if f.CRCOK && len(f.Payload) == wire.StimulusSize {
			st, _ := wire.DecodeStimulus(f.Payload)
			s.CurrentStep = st.StepIndex
			r := effect(record.EffectCurrentStep)
			r.Step = st.StepIndex
			out(r)
		}
		bucket()

	case ArmBucket:
		bucket()

	case ArmInternal:
		drop("internal")

	default: // ArmUnknown
		drop("unknown_type")
		out(&record.Record{Kind: record.KindDiag, Seq: seq, AtNS: at, Diag: record.DiagUnknownType,
			Tag: f.Type.String(), MsgType: uint32(f.Type), CRCOK: f.CRCOK, Length: uint32(len(f.Payload)),
			Message: "unknown message type; dropping"})
	}
}

func (s *State) setDeadline(d uint64, effect func(string) *record.Record, out func(*record.Record)) {
	s.DeadlineNS = max(d, 1)
	r := effect(record.EffectWatchdogDeadline)
	r.DeadlineNS = s.DeadlineNS
	out(r)
}

// kernAddrs is the KADR arm: CRC-valid 24-byte payloads only; the phys
// base is stored (+1) each time; the virtual KASLR offset is range-checked
// and set once, first value wins.
func (s *State) kernAddrs(f wire.Frame, effect func(string) *record.Record, out func(*record.Record), seq, at int64) {
	if !f.CRCOK {
		s.Dropped["kern_addrs_bad_crc"]++
		return
	}
	k, err := wire.DecodeKernAddrs(f.Payload)
	if err != nil {
		s.Dropped["kern_addrs_undecodable"]++
		return
	}
	if k.HasPhysBase {
		s.PhysBase = k.PhysBase + 1
		r := effect(record.EffectKernPhysBase)
		r.Value = k.PhysBase
		out(r)
	}
	link := s.cfg.TextLink
	if !k.HasText || link < KernelHalf {
		return
	}
	rt := k.Text
	if rt < KernelHalf || rt < link || rt-link > s.cfg.MaxKASLR {
		s.Dropped["kern_addrs_out_of_range"]++
		return
	}
	off := rt - link
	switch s.VirtKASLR {
	case 0:
		s.VirtKASLR = off + 1
		r := effect(record.EffectKernVirtKASLR)
		r.Value = off
		out(r)
	case off + 1:
		// the same value again: nothing to do
	default:
		s.Dropped["kaslr_divergence"]++
		out(&record.Record{Kind: record.KindDiag, Seq: seq, AtNS: at, Diag: record.DiagKASLRDivergence,
			Tag: f.Type.String(), MsgType: uint32(f.Type), CRCOK: true,
			Message: fmt.Sprintf("VirtKaslrDivergence: kept offset %#x, guest now says %#x", s.VirtKASLR-1, off)})
	}
}

// clampNS converts a duration to encoded nanoseconds: at least 1 (0 means
// unset), saturating at the u64 maximum.
func clampNS(d time.Duration) uint64 {
	if d <= 0 {
		return 1
	}
	return uint64(d)
}

func satAdd(a, b uint64) uint64 {
	if a > math.MaxUint64-b {
		return math.MaxUint64
	}
	return a + b
}

func satSub(a, b uint64) uint64 {
	if b > a {
		return 0
	}
	return a - b
}
