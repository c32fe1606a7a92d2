package dispatch

import (
	"fmt"
	"math"
	"time"

	"github.com/ktstr-go/ktstr/internal/record"
	"github.com/ktstr-go/ktstr/lib/wire"
	"github.com/ktstr-go/ktstr/lib/wire/payload"
)

// KernelHalf is the lowest kernel-half canonical address with 4-level
// paging (ktstr's KERNEL_HALF_CANONICAL).
const KernelHalf = 0xffff800000000000

// MaxKASLR is the largest virtual KASLR offset accepted on x86_64, 1 GiB
// (ktstr's RANDOMIZE_BASE_MAX_OFFSET there; 1<<48 on aarch64).
const MaxKASLR = 1 << 30

// Config wires the dispatcher to the run.
type Config struct {
	// Workload is the watchdog budget. Non-zero means ktstr's
	// watchdog_reset is wired: SCST and SCEN move the deadline to now +
	// Workload, SCRR extends it by the pause, and SCPP stamps the time.
	// Zero means not wired: those arms change no deadline and SCPP
	// stores 1.
	Workload time.Duration
	// TextLink is the link-time address of _text from the kernel's
	// vmlinux or System.map (ktstr's kernel_text_link_kva); 0, or any
	// value below KernelHalf, means no virtual KASLR offset is derived.
	TextLink uint64
	// MaxKASLR overrides the largest accepted KASLR offset (default
	// MaxKASLR).
	MaxKASLR uint64
}

// State is the dispatcher's sinks (ktstr's BulkDispatchSinks), owned by
// one run: once-only firing and latches live here, not per feed.
type State struct {
	cfg Config

	Killed            bool   // kill flag
	KillEvents        uint64 // kill eventfd counter: one per CRC-valid SCDX
	SysRdy            uint64 // SYS_RDY eventfd counter (0 or 1)
	sysRdyTaken       bool   // the once-only handle was taken
	SchedSwap         bool   // latch; its consumer clears it
	PhysBase          uint64 // phys_base + 1; 0 unset
	VirtKASLR         uint64 // offset + 1; 0 unset; first value wins
	ScenarioStartNS   uint64 // first SCST, clamped to >= 1; 0 unset
	WatchdogPauseNS   uint64 // when the scenario paused; 0 not paused
	PauseCumulativeNS uint64 // all pauses so far
	DeadlineNS        uint64 // watchdog reset, ns since run start; 0 unset
	CurrentStep       uint16 // the guest's current step

	// SnapshotRequests and KernelOpRequests count the requests that
	// passed the gates (ktstr's pending lists). Only counts are kept:
	// each request goes out as an effect record, and nothing here may
	// grow with what the guest sends.
	SnapshotRequests uint64
	KernelOpRequests uint64

	// Dropped counts frames the gates refused, by cause (the names
	// after "drop." in the summary line).
	Dropped map[string]int64
}

// New returns the state for one run.
func New(cfg Config) *State {
	if cfg.MaxKASLR == 0 {
		cfg.MaxKASLR = MaxKASLR
	}
	return &State{cfg: cfg, Dropped: map[string]int64{}}
}

// SysRdyPending reports whether the once-only SYS_RDY handle is still
// there, so that a later valid SRDY would fire (ktstr's
// sys_rdy_evt.is_some()).
func (s *State) SysRdyPending() bool { return !s.sysRdyTaken }

// Arm is the dispatcher arm a message type takes.
type Arm uint8

const (
	ArmUnknown         Arm = iota // not a known type: dropped with a diagnostic
	ArmSchedExit                  // SCDX
	ArmSysRdy                     // SRDY
	ArmSchedSwap                  // SCSW
	ArmKernAddrs                  // KADR, matched by value
	ArmSnapshotRequest            // SNRQ
	ArmKernelOpRequest            // KORQ
	ArmScenarioStart              // SCST
	ArmScenarioPause              // SCPP
	ArmScenarioResume             // SCRR
	ArmScenarioEnd                // SCEN
	ArmStimulus                   // STIM
	ArmBucket                     // verdict-bearing: bucketed verbatim, even with a bad CRC
	ArmInternal                   // internal with no arm of its own: dropped silently
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

// ArmOf returns the arm for t. Every type lib/wire knows is named here;
// a type added to wire.Types without a decision here falls to ArmUnknown
// and fails TestEveryKnownTypeHasAnArm.
func ArmOf(t wire.Type) Arm {
	switch t {
	case wire.TypeSchedExit:
		return ArmSchedExit
	case wire.TypeSysRdy:
		return ArmSysRdy
	case wire.TypeSchedSwapNotify:
		return ArmSchedSwap
	case wire.TypeKernAddrs: // not a known type: matched by value before the unknown arm
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
		wire.TypeSchedLog, wire.TypeLifecycle, wire.TypeExecExit, wire.TypeDmesg, wire.TypeProbeOutput:
		return ArmBucket
	case wire.TypeHello, wire.TypeLoss, wire.TypeVMEnd, wire.TypeHostBlock, wire.TypeHostDump, wire.TypeMonitor:
		// ktstr-go's host-origin types, written by ktstr-drain: verdict
		// data about the transport, the VM's end and what ktstr-boot saw,
		// with the nonce that tells them from forgeries (HBLK carries it
		// for the HDMP and HMON after it). The verdict checks the nonce.
		return ArmBucket
	case wire.TypeSnapshotReply, wire.TypeKernelOpReply:
		// Host-to-guest replies stamped by the guest on its TX stream.
		return ArmInternal
	}
	return ArmUnknown
}

// frameCtx is the frame being dispatched and where its records go.
type frameCtx struct {
	f   *wire.Frame
	seq int64
	at  int64
	out func(*record.Record)
}

func (c *frameCtx) effect(name string) *record.Record {
	return &record.Record{V: record.Version, Kind: record.KindEffect, Seq: c.seq, AtNS: c.at, Effect: name,
		Tag: c.f.Type.String(), MsgType: uint32(c.f.Type)}
}

func (c *frameCtx) bucket() {
	c.out(&record.Record{V: record.Version, Kind: record.KindEntry, Seq: c.seq, AtNS: c.at, Tag: c.f.Type.String(),
		MsgType: uint32(c.f.Type), CRCOK: c.f.CRCOK, Payload: c.f.Payload})
}

// Dispatch applies the gates (ktstr's dispatch_bulk_message, V-A) to one
// frame, read at now (time since the run started), the seq-th frame of
// the input. It calls out for each record, in order: the effects, then
// the verdict entry when the frame is bucketed, or a diagnostic. Records
// alias f.Payload.
func (s *State) Dispatch(f wire.Frame, seq int64, now time.Duration, out func(*record.Record)) {
	c := frameCtx{f: &f, seq: seq, at: int64(now), out: out}
	// elapsed is ktstr's run_start.elapsed() in ns; stamp is the same
	// value as an "encoded" slot, clamped to >= 1 so 0 keeps meaning
	// unset.
	elapsed := uint64(max(now, 0))
	stamp := max(elapsed, 1)
	wired := s.cfg.Workload > 0

	switch ArmOf(f.Type) {
	case ArmSchedExit:
		// Kill and bucket only when the CRC is good: a torn SCDX must
		// neither end the run nor become a phantom verdict entry.
		if !f.CRCOK {
			s.Dropped["sched_exit_bad_crc"]++
			return
		}
		s.Killed = true
		s.KillEvents++
		r := c.effect(record.EffectKill)
		r.Count = s.KillEvents
		if code, err := wire.DecodeExitCode(f.Type, f.Payload); err == nil {
			r.ExitCode, r.HasExitCode = code, true
		}
		out(r)
		c.bucket()

	case ArmSysRdy:
		// CRC-valid and empty (anti-smuggling), once per run. Never
		// bucketed; a refused frame leaves the handle for a later one.
		switch {
		case !f.CRCOK:
			s.Dropped["sys_rdy_bad_crc"]++
		case len(f.Payload) != 0:
			s.Dropped["sys_rdy_nonempty"]++
		case s.sysRdyTaken:
			s.Dropped["sys_rdy_again"]++
		default:
			s.sysRdyTaken = true
			s.SysRdy++
			out(c.effect(record.EffectSysRdy))
		}

	case ArmSchedSwap:
		// A latch, not once-only: every CRC-valid empty SCSW sets it.
		switch {
		case !f.CRCOK:
			s.Dropped["sched_swap_bad_crc"]++
		case len(f.Payload) != 0:
			s.Dropped["sched_swap_nonempty"]++
		default:
			s.SchedSwap = true
			out(c.effect(record.EffectSchedSwap))
		}

	case ArmKernAddrs:
		s.kernAddrs(&c)

	case ArmSnapshotRequest:
		if !f.CRCOK {
			s.Dropped["snapshot_request_bad_crc"]++
			return
		}
		req, err := wire.DecodeSnapshotRequest(f.Payload)
		if err != nil {
			s.Dropped["snapshot_request_undecodable"]++
			return
		}
		s.SnapshotRequests++
		r := c.effect(record.EffectSnapshotRequest)
		r.RequestID, r.ReqKind, r.ReqTag = req.RequestID, req.Kind, req.Tag
		out(r)

	case ArmKernelOpRequest:
		if !f.CRCOK {
			s.Dropped["kernel_op_request_bad_crc"]++
			return
		}
		req, err := payload.UnmarshalKernelOpRequest(f.Payload)
		if err != nil {
			s.Dropped["kernel_op_request_undecodable"]++
			return
		}
		req.Tag = wire.TruncateUTF8(req.Tag, payload.KernelOpTagMax)
		s.KernelOpRequests++
		r := c.effect(record.EffectKernelOpRequest)
		r.RequestID, r.ReqTag, r.Request = req.RequestID, req.Tag, f.Payload
		out(r)

	case ArmScenarioStart:
		if f.CRCOK {
			if s.ScenarioStartNS == 0 { // compare-and-swap from 0: the first one counts
				s.ScenarioStartNS = stamp
				r := c.effect(record.EffectScenarioStart)
				r.StartNS = stamp
				out(r)
			}
			if wired { // every valid SCST re-arms the deadline
				s.setDeadline(&c, satAdd(elapsed, uint64(s.cfg.Workload)))
			}
		}
		c.bucket()

	case ArmScenarioPause:
		if f.CRCOK {
			p := uint64(1) // with no budget wired ktstr takes elapsed as 0, clamped to 1
			if wired {
				p = stamp
			}
			s.WatchdogPauseNS = p
			r := c.effect(record.EffectWatchdogPause)
			r.PauseNS = p
			out(r)
		}
		c.bucket()

	case ArmScenarioResume:
		if f.CRCOK && wired {
			p := s.WatchdogPauseNS
			s.WatchdogPauseNS = 0
			if p > 0 {
				pause := satSub(elapsed, p)
				s.PauseCumulativeNS = satAdd(s.PauseCumulativeNS, pause)
				r := c.effect(record.EffectWatchdogResume)
				r.PauseNS, r.PauseTotalNS = pause, s.PauseCumulativeNS
				out(r)
				s.setDeadline(&c, satAdd(s.DeadlineNS, pause))
			}
		}
		c.bucket()

	case ArmScenarioEnd:
		if f.CRCOK && wired {
			s.setDeadline(&c, satAdd(elapsed, uint64(s.cfg.Workload)))
		}
		c.bucket()

	case ArmStimulus:
		if f.CRCOK && len(f.Payload) == wire.StimulusSize {
			st, _ := wire.DecodeStimulus(f.Payload)
			s.CurrentStep = st.StepIndex
			r := c.effect(record.EffectCurrentStep)
			r.Step = st.StepIndex
			out(r)
		}
		c.bucket()

	case ArmBucket:
		c.bucket()

	case ArmInternal:
		s.Dropped["internal"]++

	default: // ArmUnknown
		s.Dropped["unknown_type"]++
		out(&record.Record{V: record.Version, Kind: record.KindDiag, Seq: seq, AtNS: c.at, Diag: record.DiagUnknownType,
			Tag: f.Type.String(), MsgType: uint32(f.Type), CRCOK: f.CRCOK, Length: uint32(len(f.Payload)),
			Message: fmt.Sprintf("unknown message type %v (%d bytes, crc_ok=%t); dropping", f.Type, len(f.Payload), f.CRCOK)})
	}
}

// setDeadline stores an encoded watchdog deadline (clamped to >= 1).
func (s *State) setDeadline(c *frameCtx, d uint64) {
	s.DeadlineNS = max(d, 1)
	r := c.effect(record.EffectWatchdogDeadline)
	r.DeadlineNS = s.DeadlineNS
	c.out(r)
}

// kernAddrs is the KADR arm: CRC-valid 24-byte payloads only. The phys
// base is stored (+1) each time it is present; the virtual KASLR offset is
// range-checked and set once, first value wins. Never bucketed.
func (s *State) kernAddrs(c *frameCtx) {
	if !c.f.CRCOK {
		s.Dropped["kern_addrs_bad_crc"]++
		return
	}
	k, err := wire.DecodeKernAddrs(c.f.Payload)
	if err != nil {
		s.Dropped["kern_addrs_undecodable"]++
		return
	}
	if k.HasPhysBase {
		s.PhysBase = k.PhysBase + 1
		r := c.effect(record.EffectKernPhysBase)
		r.Value = k.PhysBase
		c.out(r)
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
		r := c.effect(record.EffectKernVirtKASLR)
		r.Value = off
		c.out(r)
	case off + 1:
		// The same value again: both publishers agree.
	default:
		s.Dropped["kaslr_divergence"]++
		c.out(&record.Record{V: record.Version, Kind: record.KindDiag, Seq: c.seq, AtNS: c.at, Diag: record.DiagKASLRDivergence,
			Tag: c.f.Type.String(), MsgType: uint32(c.f.Type), Value: off,
			Message: fmt.Sprintf("VirtKaslrDivergence: KADR says offset %#x, keeping the first value %#x", off, s.VirtKASLR-1)})
	}
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
