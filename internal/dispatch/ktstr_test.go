package dispatch

// The properties of ktstr's src/vmm/freeze_coord/tx_dispatch_tests.rs and
// crc_defense_tests.rs (V-A), one Go test each, run through the Stream
// ktstr-dispatch runs. ktstr's sinks map to State: kill -> Killed, kill
// eventfd -> KillEvents, SYS_RDY eventfd -> SysRdy, the SYS_RDY handle ->
// SysRdyPending, snapshot_requests_pending -> SnapshotRequests (a count:
// the requests themselves leave as effect records),
// sched_swap_notify -> SchedSwap; the bucket is the entry records. Each
// test also checks the effect records that carry the same facts out of
// the process.

import (
	"bytes"
	"slices"
	"testing"

	"github.com/ktstr-go/ktstr/internal/record"
	"github.com/ktstr-go/ktstr/lib/wire"
)

// tx_dispatch_tests.rs: unknown_msg_type_drops_without_bucketing
func TestUnknownMsgTypeDropsWithoutBucketing(t *testing.T) {
	const unknown = wire.Type(0xDEADBEEF)
	if wire.Known(unknown) {
		t.Fatalf("wire.Known(%v) = true, want false", unknown)
	}
	o := feed(t, Config{}, goodFrame(unknown, []byte("unknown-payload")))
	if len(o.entries) != 0 || len(o.effects) != 0 {
		t.Errorf("entries %d effects %d, want 0 and 0", len(o.entries), len(o.effects))
	}
	if o.st.Killed || o.st.KillEvents != 0 {
		t.Errorf("kill = %v (events %d), want false (0)", o.st.Killed, o.st.KillEvents)
	}
	if o.st.SysRdy != 0 || !o.st.SysRdyPending() {
		t.Errorf("SYS_RDY counter %d pending %v, want 0 true", o.st.SysRdy, o.st.SysRdyPending())
	}
	// ktstr warns with type, length and crc_ok: here a diagnostic record.
	if len(o.diags) != 1 {
		t.Fatalf("diags = %d, want 1", len(o.diags))
	}
	d := o.diags[0]
	if d.Diag != record.DiagUnknownType || d.Tag != "0xdeadbeef" || d.MsgType != uint32(unknown) || !d.CRCOK || d.Length != 15 || d.Seq != 0 {
		t.Errorf("diag = %+v, want unknown_type 0xdeadbeef crc_ok length 15 seq 0", d)
	}
}

// tx_dispatch_tests.rs: sched_swap_notify_latches_only_on_valid_crc
func TestSchedSwapNotifyLatchesOnlyOnValidCRC(t *testing.T) {
	tests := []struct {
		name  string
		in    []byte
		latch bool
		fx    int
	}{
		{"valid empty", goodFrame(wire.TypeSchedSwapNotify, nil), true, 1},
		{"torn", tornFrame(wire.TypeSchedSwapNotify, nil), false, 0},
		{"valid smuggle", goodFrame(wire.TypeSchedSwapNotify, []byte("smuggle")), false, 0},
		{"two valid in one batch", cat(goodFrame(wire.TypeSchedSwapNotify, nil), goodFrame(wire.TypeSchedSwapNotify, nil)), true, 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o := feed(t, Config{}, tt.in)
			if o.st.SchedSwap != tt.latch {
				t.Errorf("SchedSwap = %v, want %v", o.st.SchedSwap, tt.latch)
			}
			if len(o.entries) != 0 {
				t.Errorf("entries = %d, want 0 (coordinator-internal)", len(o.entries))
			}
			if n := countEffect(o, record.EffectSchedSwap); n != tt.fx {
				t.Errorf("sched_swap effects = %d, want %d", n, tt.fx)
			}
		})
	}
}

// tx_dispatch_tests.rs: sched_exit_torn_crc_does_not_bucket
func TestSchedExitTornCRCDoesNotBucket(t *testing.T) {
	o := feed(t, Config{}, tornFrame(wire.TypeSchedExit, []byte("torn-payload")))
	if len(o.entries) != 0 {
		t.Errorf("entries = %d, want 0", len(o.entries))
	}
	if o.st.Killed || o.st.KillEvents != 0 || len(o.effects) != 0 {
		t.Errorf("kill %v events %d effects %d, want false 0 0", o.st.Killed, o.st.KillEvents, len(o.effects))
	}
	if o.st.Dropped["sched_exit_bad_crc"] != 1 {
		t.Errorf("Dropped = %v, want sched_exit_bad_crc 1", o.st.Dropped)
	}
}

// tx_dispatch_tests.rs: sched_exit_valid_crc_buckets_with_payload
func TestSchedExitValidCRCBucketsWithPayload(t *testing.T) {
	p := wire.AppendExitCode(nil, -1)
	o := feed(t, Config{}, goodFrame(wire.TypeSchedExit, p))
	if len(o.entries) != 1 {
		t.Fatalf("entries = %d, want 1", len(o.entries))
	}
	e := o.entries[0]
	if wire.Type(e.MsgType) != wire.TypeSchedExit || !bytes.Equal(e.Payload, p) || !e.CRCOK || e.Tag != "SCDX" {
		t.Errorf("entry = %+v, want SCDX %x crc_ok", e, p)
	}
	if !o.st.Killed || o.st.KillEvents != 1 {
		t.Errorf("kill %v events %d, want true 1", o.st.Killed, o.st.KillEvents)
	}
	if len(o.effects) != 1 {
		t.Fatalf("effects = %v, want [kill]", o.effectNames())
	}
	k := o.effects[0]
	if k.Effect != record.EffectKill || k.Count != 1 || !k.HasExitCode || k.ExitCode != -1 {
		t.Errorf("kill effect = %+v, want count 1 exit_code -1", k)
	}
	if i, j := slices.Index(o.recs, k), slices.Index(o.recs, e); i > j {
		t.Errorf("kill effect at %d after its entry at %d, want effects first", i, j)
	}
}

// tx_dispatch_tests.rs: snapshot_reply_on_tx_does_not_bucket
func TestSnapshotReplyOnTXDoesNotBucket(t *testing.T) {
	o := feed(t, Config{}, goodFrame(wire.TypeSnapshotReply, []byte("forged-reply")))
	if len(o.recs) != 0 {
		t.Errorf("records = %d, want 0", len(o.recs))
	}
	if o.st.SnapshotRequests != 0 {
		t.Errorf("pending snapshot requests = %d, want 0", o.st.SnapshotRequests)
	}
	if !wire.TypeSnapshotReply.Internal() {
		t.Errorf("TypeSnapshotReply.Internal() = false, want true")
	}
}

// tx_dispatch_tests.rs: sys_rdy_with_nonempty_payload_does_not_promote
func TestSysRdyWithNonemptyPayloadDoesNotPromote(t *testing.T) {
	o := feed(t, Config{}, goodFrame(wire.TypeSysRdy, []byte("smuggled-bytes")))
	if o.st.SysRdy != 0 || !o.st.SysRdyPending() {
		t.Errorf("SYS_RDY counter %d pending %v, want 0 true", o.st.SysRdy, o.st.SysRdyPending())
	}
	if len(o.recs) != 0 {
		t.Errorf("records = %d, want 0", len(o.recs))
	}
	// The handle is still there for a later well-formed frame.
	s := NewStream(Config{}, func(*record.Record) {})
	s.Feed(goodFrame(wire.TypeSysRdy, []byte("smuggled-bytes")), 0)
	s.Feed(goodFrame(wire.TypeSysRdy, nil), 0)
	if s.State.SysRdy != 1 {
		t.Errorf("SYS_RDY counter after a later empty SRDY = %d, want 1", s.State.SysRdy)
	}
}

// tx_dispatch_tests.rs: sys_rdy_fires_once_across_two_feed_calls
func TestSysRdyFiresOnceAcrossTwoFeedCalls(t *testing.T) {
	o := feed(t, Config{}, goodFrame(wire.TypeSysRdy, nil), goodFrame(wire.TypeSysRdy, nil))
	if o.st.SysRdy != 1 || o.st.SysRdyPending() {
		t.Errorf("SYS_RDY counter %d pending %v, want 1 false", o.st.SysRdy, o.st.SysRdyPending())
	}
	if n := countEffect(o, record.EffectSysRdy); n != 1 {
		t.Errorf("sys_rdy effects = %d, want 1", n)
	}
	if o.st.Dropped["sys_rdy_again"] != 1 {
		t.Errorf("Dropped = %v, want sys_rdy_again 1", o.st.Dropped)
	}
}

// tx_dispatch_tests.rs: interleaved_batch_dispatches_all_arms_independently
func TestInterleavedBatchDispatchesAllArmsIndependently(t *testing.T) {
	in := cat(goodFrame(wire.TypeSysRdy, nil),
		goodFrame(wire.TypeSchedExit, []byte("exit")),
		goodFrame(wire.TypeSnapshotRequest, snapReq(7, wire.SnapshotCapture, "snap")),
		goodFrame(wire.TypeStimulus, []byte("stim-payload")))
	o := feed(t, Config{}, in)
	if o.st.SysRdy != 1 || o.st.SysRdyPending() {
		t.Errorf("SYS_RDY counter %d pending %v, want 1 false", o.st.SysRdy, o.st.SysRdyPending())
	}
	if !o.st.Killed || o.st.KillEvents != 1 {
		t.Errorf("kill %v events %d, want true 1", o.st.Killed, o.st.KillEvents)
	}
	if o.st.SnapshotRequests != 1 {
		t.Errorf("pending snapshot requests = %d, want 1", o.st.SnapshotRequests)
	}
	if got, want := o.entryTypes(), []wire.Type{wire.TypeSchedExit, wire.TypeStimulus}; !slices.Equal(got, want) {
		t.Errorf("bucket = %v, want %v", got, want)
	}
	// "exit" is 4 bytes, so it decodes as an exit code; the 12-byte
	// stimulus does not move the current step.
	if got, want := o.effectNames(), []string{"sys_rdy", "kill", "snapshot_request"}; !slices.Equal(got, want) {
		t.Errorf("effects = %v, want %v", got, want)
	}
}

// tx_dispatch_tests.rs: sys_rdy_only_batch_yields_empty_bucket
func TestSysRdyOnlyBatchYieldsEmptyBucket(t *testing.T) {
	o := feed(t, Config{}, goodFrame(wire.TypeSysRdy, nil))
	if len(o.entries) != 0 {
		t.Errorf("entries = %d, want 0", len(o.entries))
	}
	if o.st.SysRdy != 1 {
		t.Errorf("SYS_RDY counter = %d, want 1", o.st.SysRdy)
	}
}

// tx_dispatch_tests.rs: multiple_sched_exit_frames_pump_eventfd_per_frame
func TestMultipleSchedExitFramesPumpEventfdPerFrame(t *testing.T) {
	in := cat(goodFrame(wire.TypeSchedExit, []byte("first")),
		goodFrame(wire.TypeSchedExit, []byte("second")),
		goodFrame(wire.TypeSchedExit, []byte("third")))
	o := feed(t, Config{}, in)
	if !o.st.Killed || o.st.KillEvents != 3 {
		t.Errorf("kill %v events %d, want true 3", o.st.Killed, o.st.KillEvents)
	}
	if len(o.entries) != 3 {
		t.Fatalf("entries = %d, want 3", len(o.entries))
	}
	for i, e := range o.entries {
		if wire.Type(e.MsgType) != wire.TypeSchedExit || !e.CRCOK {
			t.Errorf("entry %d = %v crc_ok %v, want SCDX true", i, e.Tag, e.CRCOK)
		}
	}
	for i, k := range o.effects {
		if k.Effect != record.EffectKill || k.Count != uint64(i+1) || k.HasExitCode {
			t.Errorf("effect %d = %+v, want kill count %d without exit_code (payload not 4 bytes)", i, k, i+1)
		}
	}
}

// tx_dispatch_tests.rs: sched_exit_mixed_crc_batch_filters_torn_frame
func TestSchedExitMixedCRCBatchFiltersTornFrame(t *testing.T) {
	in := cat(goodFrame(wire.TypeSchedExit, []byte("valid-1")),
		tornFrame(wire.TypeSchedExit, []byte("torn")),
		goodFrame(wire.TypeSchedExit, []byte("valid-2")))
	o := feed(t, Config{}, in)
	if len(o.entries) != 2 {
		t.Fatalf("entries = %d, want 2", len(o.entries))
	}
	for i, e := range o.entries {
		if !e.CRCOK {
			t.Errorf("entry %d crc_ok = false, want true", i)
		}
	}
	if got := []int64{o.entries[0].Seq, o.entries[1].Seq}; !slices.Equal(got, []int64{0, 2}) {
		t.Errorf("entry seqs = %v, want [0 2]", got)
	}
	if !o.st.Killed || o.st.KillEvents != 2 {
		t.Errorf("kill %v events %d, want true 2", o.st.Killed, o.st.KillEvents)
	}
}

// crc_defense_tests.rs: sched_exit_with_torn_crc_does_not_promote_kill
func TestSchedExitWithTornCRCDoesNotPromoteKill(t *testing.T) {
	o := feed(t, Config{}, tornFrame(wire.TypeSchedExit, []byte("exit-payload")))
	// The assembler delivered it with its type and crc_ok false: the
	// crc_mismatch diagnostic carries both.
	if len(o.diags) != 1 || o.diags[0].Diag != record.DiagCRCMismatch || o.diags[0].Tag != "SCDX" {
		t.Fatalf("diags = %+v, want one crc_mismatch about SCDX", o.diags)
	}
	if o.st.Killed || o.st.KillEvents != 0 || len(o.entries) != 0 || len(o.effects) != 0 {
		t.Errorf("kill %v events %d entries %d effects %d, want false 0 0 0", o.st.Killed, o.st.KillEvents, len(o.entries), len(o.effects))
	}
}

// crc_defense_tests.rs: sched_exit_with_valid_crc_does_promote_kill
func TestSchedExitWithValidCRCDoesPromoteKill(t *testing.T) {
	o := feed(t, Config{}, goodFrame(wire.TypeSchedExit, []byte("exit-payload")))
	if !o.st.Killed || o.st.KillEvents != 1 {
		t.Errorf("kill %v events %d, want true 1", o.st.Killed, o.st.KillEvents)
	}
	if len(o.entries) != 1 || !bytes.Equal(o.entries[0].Payload, []byte("exit-payload")) || !o.entries[0].CRCOK {
		t.Errorf("entries = %+v, want one SCDX \"exit-payload\" crc_ok", o.entries)
	}
}

// crc_defense_tests.rs: sched_exit_torn_crc_does_not_promote_when_other_valid_frames_present
func TestSchedExitTornCRCDoesNotPromoteWhenOtherValidFramesPresent(t *testing.T) {
	in := cat(tornFrame(wire.TypeSchedExit, []byte("first")),
		goodFrame(wire.TypeStimulus, []byte("valid")),
		tornFrame(wire.TypeSchedExit, []byte("second")))
	o := feed(t, Config{}, in)
	if o.st.Killed || o.st.KillEvents != 0 {
		t.Errorf("kill %v events %d, want false 0", o.st.Killed, o.st.KillEvents)
	}
	if got, want := o.entryTypes(), []wire.Type{wire.TypeStimulus}; !slices.Equal(got, want) {
		t.Errorf("bucket = %v, want %v", got, want)
	}
}

// crc_defense_tests.rs: snapshot_request_with_torn_crc_is_dropped
func TestSnapshotRequestWithTornCRCIsDropped(t *testing.T) {
	o := feed(t, Config{}, tornFrame(wire.TypeSnapshotRequest, snapReq(7, wire.SnapshotCapture, "snap_dump")))
	if o.st.SnapshotRequests != 0 || len(o.entries) != 0 || len(o.effects) != 0 {
		t.Errorf("pending %d entries %d effects %d, want 0 0 0", o.st.SnapshotRequests, len(o.entries), len(o.effects))
	}
}

// crc_defense_tests.rs: snapshot_request_with_valid_crc_is_pushed
func TestSnapshotRequestWithValidCRCIsPushed(t *testing.T) {
	o := feed(t, Config{}, goodFrame(wire.TypeSnapshotRequest, snapReq(42, wire.SnapshotCapture, "valid_tag")))
	if o.st.SnapshotRequests != 1 {
		t.Fatalf("pending = %d, want 1", o.st.SnapshotRequests)
	}
	if len(o.entries) != 0 {
		t.Errorf("entries = %d, want 0", len(o.entries))
	}
	if len(o.effects) != 1 {
		t.Fatalf("effects = %v, want [snapshot_request]", o.effectNames())
	}
	e := o.effects[0]
	if e.Effect != record.EffectSnapshotRequest || e.RequestID != 42 || e.ReqKind != wire.SnapshotCapture || e.ReqTag != "valid_tag" {
		t.Errorf("effect = %+v, want snapshot_request 42 capture valid_tag", e)
	}
}

// crc_defense_tests.rs: snapshot_request_torn_crc_dropped_in_mixed_batch
func TestSnapshotRequestTornCRCDroppedInMixedBatch(t *testing.T) {
	in := cat(goodFrame(wire.TypeSnapshotRequest, snapReq(1, wire.SnapshotCapture, "first")),
		tornFrame(wire.TypeSnapshotRequest, snapReq(2, wire.SnapshotCapture, "torn")),
		goodFrame(wire.TypeSnapshotRequest, snapReq(3, wire.SnapshotCapture, "third")))
	o := feed(t, Config{}, in)
	var fxIDs []uint32
	for _, r := range o.effects {
		fxIDs = append(fxIDs, r.RequestID)
	}
	if o.st.SnapshotRequests != 2 || !slices.Equal(fxIDs, []uint32{1, 3}) {
		t.Errorf("pending %d, effect ids %v, want 2 and [1 3]", o.st.SnapshotRequests, fxIDs)
	}
}

// crc_defense_tests.rs: both_gates_drop_torn_frames_in_same_drain
func TestBothGatesDropTornFramesInSameDrain(t *testing.T) {
	in := cat(tornFrame(wire.TypeSchedExit, []byte("sched-exit")),
		tornFrame(wire.TypeSnapshotRequest, snapReq(99, wire.SnapshotCapture, "tag")))
	o := feed(t, Config{}, in)
	if o.st.Killed || o.st.KillEvents != 0 || o.st.SnapshotRequests != 0 || len(o.entries) != 0 || len(o.effects) != 0 {
		t.Errorf("kill %v events %d pending %d entries %d effects %d, want nothing",
			o.st.Killed, o.st.KillEvents, o.st.SnapshotRequests, len(o.entries), len(o.effects))
	}
}

// crc_defense_tests.rs: sys_rdy_with_torn_crc_does_not_fire_eventfd
func TestSysRdyWithTornCRCDoesNotFireEventfd(t *testing.T) {
	o := feed(t, Config{}, tornFrame(wire.TypeSysRdy, nil))
	if o.st.SysRdy != 0 || !o.st.SysRdyPending() || len(o.effects) != 0 {
		t.Errorf("SYS_RDY counter %d pending %v effects %d, want 0 true 0", o.st.SysRdy, o.st.SysRdyPending(), len(o.effects))
	}
}

// crc_defense_tests.rs: sys_rdy_with_valid_crc_fires_eventfd_once
func TestSysRdyWithValidCRCFiresEventfdOnce(t *testing.T) {
	o := feed(t, Config{}, goodFrame(wire.TypeSysRdy, nil))
	if o.st.SysRdy != 1 || o.st.SysRdyPending() {
		t.Errorf("SYS_RDY counter %d pending %v, want 1 false", o.st.SysRdy, o.st.SysRdyPending())
	}
	if got := o.effectNames(); !slices.Equal(got, []string{record.EffectSysRdy}) {
		t.Errorf("effects = %v, want [sys_rdy]", got)
	}
}

// crc_defense_tests.rs: sys_rdy_with_valid_crc_fires_once_then_subsequent_drops
func TestSysRdyWithValidCRCFiresOnceThenSubsequentDrops(t *testing.T) {
	o := feed(t, Config{}, cat(goodFrame(wire.TypeSysRdy, nil), goodFrame(wire.TypeSysRdy, nil)))
	if o.st.SysRdy != 1 || o.st.SysRdyPending() || countEffect(o, record.EffectSysRdy) != 1 {
		t.Errorf("SYS_RDY counter %d pending %v effects %v, want 1 false [sys_rdy]", o.st.SysRdy, o.st.SysRdyPending(), o.effectNames())
	}
}

// crc_defense_tests.rs: sys_rdy_and_sched_exit_fire_independently
func TestSysRdyAndSchedExitFireIndependently(t *testing.T) {
	o := feed(t, Config{}, cat(goodFrame(wire.TypeSysRdy, nil), goodFrame(wire.TypeSchedExit, []byte("exit-payload"))))
	if o.st.SysRdy != 1 || o.st.SysRdyPending() {
		t.Errorf("SYS_RDY counter %d pending %v, want 1 false", o.st.SysRdy, o.st.SysRdyPending())
	}
	if !o.st.Killed || o.st.KillEvents != 1 {
		t.Errorf("kill %v events %d, want true 1", o.st.Killed, o.st.KillEvents)
	}
}

func countEffect(o *outcome, name string) int {
	n := 0
	for _, r := range o.effects {
		if r.Effect == name {
			n++
		}
	}
	return n
}
