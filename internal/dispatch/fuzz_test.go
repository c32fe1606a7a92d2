package dispatch

import (
	"bytes"
	"encoding/binary"
	"testing"
	"time"

	"github.com/ktstr-go/ktstr/lib/record"
	"github.com/ktstr-go/ktstr/lib/wire"
	"github.com/ktstr-go/ktstr/lib/wire/payload"
)

const fuzzLink = 0xffffffff81000000

// FuzzDispatch: arbitrary bytes in any chunking never panic, and every
// record is justified by the frame it names: each effect by a CRC-valid
// frame of the right type and shape carrying the values the effect
// reports, each entry by a frame of a bucketed type with its exact
// payload. fixCRC patches the CRC of every complete frame so the fuzzer
// can reach the gates behind the CRC check.
func FuzzDispatch(f *testing.F) {
	for _, seed := range [][]byte{recording(), goodFrame(wire.TypeSysRdy, nil),
		cat(goodFrame(wire.TypeKernAddrs, kadr(0x1000, true, fuzzLink+0x200000, true)),
			goodFrame(wire.TypeKernAddrs, kadr(0, false, fuzzLink+0x400000, true))),
		cat(goodFrame(wire.TypeScenarioPause, nil), goodFrame(wire.TypeScenarioResume, nil), goodFrame(wire.TypeStimulus, stim(4))),
	} {
		f.Add(seed, uint16(0), false, true)
		f.Add(seed, uint16(7), true, false)
	}
	f.Fuzz(fuzzDispatch)
}

func fuzzDispatch(t *testing.T, data []byte, chunk uint16, fixCRC, wired bool) {
	if fixCRC {
		data = fixCRCs(data)
	}
	cfg := Config{TextLink: fuzzLink}
	if wired {
		cfg.Workload = 3 * time.Second
	}
	size := 1 + int(chunk)%1024
	if chunk == 0 {
		size = len(data) + 1
	}
	var recs []*record.Record
	s := NewStream(cfg, func(r *record.Record) { recs = append(recs, r) })
	// The frames as the same chunking assembles them, by seq.
	var frames []wire.Frame
	var ref wire.Assembler
	i := 0
	for p := data; len(p) > 0; i++ {
		n := min(size, len(p))
		s.Feed(p[:n], time.Duration(i)*time.Millisecond)
		ref.Feed(p[:n], func(f wire.Frame) { frames = append(frames, f) })
		p = p[n:]
	}
	s.Close(time.Duration(i) * time.Millisecond)
	checkJustified(t, cfg, frames, recs)
}

// fixCRCs returns a copy of b with the CRC of every complete frame
// (walking headers from offset 0) set to match its payload.
func fixCRCs(b []byte) []byte {
	b = bytes.Clone(b)
	for pos := 0; len(b)-pos >= wire.HeaderSize; {
		n := int(binary.LittleEndian.Uint32(b[pos+4:]))
		if n > len(b)-pos-wire.HeaderSize {
			break
		}
		p := b[pos+wire.HeaderSize : pos+wire.HeaderSize+n]
		binary.LittleEndian.PutUint32(b[pos+8:], wire.Checksum(p))
		pos += wire.HeaderSize + n
	}
	return b
}

// checkJustified checks every record against frames[seq].
func checkJustified(t *testing.T, cfg Config, frames []wire.Frame, recs []*record.Record) {
	t.Helper()
	entries := map[int64]int{}
	var kills uint64
	var sysRdy, kaslr, starts int
	for _, r := range recs {
		if r.Kind == record.KindDiag && r.Diag != record.DiagUnknownType && r.Diag != record.DiagKASLRDivergence {
			continue // assembler events: checked by lib/wire
		}
		if r.Seq < 0 || r.Seq >= int64(len(frames)) {
			t.Fatalf("%s record seq %d, but only %d frames", r.Kind, r.Seq, len(frames))
		}
		f := frames[r.Seq]
		if wire.Type(r.MsgType) != f.Type || r.Tag != f.Type.String() {
			t.Fatalf("record %+v names type %#x %q, frame %d is %v", r, r.MsgType, r.Tag, r.Seq, f.Type)
		}
		arm := ArmOf(f.Type)
		switch r.Kind {
		case record.KindEntry:
			entries[r.Seq]++
			switch arm {
			case ArmSchedExit:
				if !f.CRCOK {
					t.Fatalf("torn SCDX frame %d bucketed", r.Seq)
				}
			case ArmScenarioStart, ArmScenarioPause, ArmScenarioResume, ArmScenarioEnd, ArmStimulus, ArmBucket:
			default:
				t.Fatalf("frame %d of arm %v bucketed", r.Seq, arm)
			}
			if r.CRCOK != f.CRCOK || !bytes.Equal(r.Payload, f.Payload) {
				t.Fatalf("entry %d crc_ok %v payload %x, frame has %v %x", r.Seq, r.CRCOK, r.Payload, f.CRCOK, f.Payload)
			}
		case record.KindDiag:
			if r.Diag == record.DiagUnknownType && (arm != ArmUnknown || r.CRCOK != f.CRCOK || int(r.Length) != len(f.Payload)) {
				t.Fatalf("unknown_type diag %+v for frame %v", r, f.Type)
			}
			if r.Diag == record.DiagKASLRDivergence && (arm != ArmKernAddrs || !f.CRCOK) {
				t.Fatalf("kaslr_divergence diag for frame %v crc_ok %v", f.Type, f.CRCOK)
			}
		case record.KindEffect:
			if !f.CRCOK {
				t.Fatalf("effect %s from frame %d (%v) with a bad CRC", r.Effect, r.Seq, f.Type)
			}
			p := f.Payload
			bad := func(why string) { t.Fatalf("effect %+v from %v frame %x: %s", r, f.Type, p, why) }
			switch r.Effect {
			case record.EffectKill:
				kills++
				if arm != ArmSchedExit || r.Count != kills {
					bad("not SCDX, or count not one more than the last")
				}
				if r.HasExitCode != (len(p) == 4) || r.HasExitCode && r.ExitCode != int32(binary.LittleEndian.Uint32(p)) {
					bad("exit_code does not match the payload")
				}
			case record.EffectSysRdy:
				sysRdy++
				if arm != ArmSysRdy || len(p) != 0 || sysRdy > 1 {
					bad("not the first empty SRDY")
				}
			case record.EffectSchedSwap:
				if arm != ArmSchedSwap || len(p) != 0 {
					bad("not an empty SCSW")
				}
			case record.EffectSnapshotRequest:
				req, err := wire.DecodeSnapshotRequest(p)
				if arm != ArmSnapshotRequest || err != nil || req.RequestID != r.RequestID || req.Kind != r.ReqKind || req.Tag != r.ReqTag {
					bad("not a decodable SNRQ with these values")
				}
			case record.EffectKernelOpRequest:
				req, err := payload.UnmarshalKernelOpRequest(p)
				if arm != ArmKernelOpRequest || err != nil || req.RequestID != r.RequestID || !bytes.Equal(r.Request, p) ||
					r.ReqTag != wire.TruncateUTF8(req.Tag, payload.KernelOpTagMax) {
					bad("not a decodable KORQ with these values")
				}
			case record.EffectKernPhysBase:
				if arm != ArmKernAddrs || len(p) != 24 || binary.LittleEndian.Uint64(p) == 0 || binary.LittleEndian.Uint64(p)-1 != r.Value {
					bad("not a 24-byte KADR with this phys base")
				}
			case record.EffectKernVirtKASLR:
				kaslr++
				if arm != ArmKernAddrs || len(p) != 24 || kaslr > 1 {
					bad("not the first 24-byte KADR with a KASLR offset")
				}
				text := binary.LittleEndian.Uint64(p[16:]) - 1
				if binary.LittleEndian.Uint64(p[16:]) == 0 || text < KernelHalf || text < cfg.TextLink || text-cfg.TextLink > MaxKASLR || text-cfg.TextLink != r.Value {
					bad("runtime _text out of range or not this offset")
				}
			case record.EffectScenarioStart:
				starts++
				if arm != ArmScenarioStart || starts > 1 || r.StartNS == 0 {
					bad("not the first SCST")
				}
			case record.EffectWatchdogPause:
				if arm != ArmScenarioPause || r.PauseNS == 0 || cfg.Workload == 0 && r.PauseNS != 1 {
					bad("not an SCPP")
				}
			case record.EffectWatchdogResume:
				if arm != ArmScenarioResume || cfg.Workload == 0 {
					bad("not an SCRR with a budget")
				}
			case record.EffectWatchdogDeadline:
				if arm != ArmScenarioStart && arm != ArmScenarioResume && arm != ArmScenarioEnd || cfg.Workload == 0 || r.DeadlineNS == 0 {
					bad("not SCST, SCRR or SCEN with a budget")
				}
			case record.EffectCurrentStep:
				if arm != ArmStimulus || len(p) != 24 || binary.LittleEndian.Uint16(p[4:]) != r.Step {
					bad("not a 24-byte STIM with this step")
				}
			default:
				bad("unknown effect")
			}
		}
	}
	// Completeness: every frame of an always-bucketed arm, and every
	// valid SCDX, has exactly one entry.
	for i, f := range frames {
		want := 0
		switch ArmOf(f.Type) {
		case ArmSchedExit:
			if f.CRCOK {
				want = 1
			}
		case ArmScenarioStart, ArmScenarioPause, ArmScenarioResume, ArmScenarioEnd, ArmStimulus, ArmBucket:
			want = 1
		}
		if entries[int64(i)] != want {
			t.Fatalf("frame %d (%v, crc_ok %v): %d entries, want %d", i, f.Type, f.CRCOK, entries[int64(i)], want)
		}
	}
}
