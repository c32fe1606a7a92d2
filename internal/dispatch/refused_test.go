package dispatch

import (
	"testing"

	"github.com/ktstr-go/ktstr/lib/record"
	"github.com/ktstr-go/ktstr/lib/wire"
)

// TestRefusalsAreDiagnostics: every frame a gate refuses becomes one
// diagnostic named after the cause, the name of its drop. counter, with
// the frame's tag, type, CRC flag and length, so that the verdict can
// count what a guest sent in vain. A refused SRDY or SCSW with a
// smuggled payload, or a host reply forged on TX, used to leave no
// record at all (only the summary line's counter, which ktstr-run
// silences).
func TestRefusalsAreDiagnostics(t *testing.T) {
	link := uint64(0xffffffff81000000)
	tests := []struct {
		cause string
		cfg   Config
		pre   []byte // frames before, which pass
		frame []byte
	}{
		{"sched_exit_bad_crc", Config{}, nil, tornFrame(wire.TypeSchedExit, wire.AppendExitCode(nil, 1))},
		{"sys_rdy_bad_crc", Config{}, nil, tornFrame(wire.TypeSysRdy, nil)},
		{"sys_rdy_nonempty", Config{}, nil, goodFrame(wire.TypeSysRdy, []byte("smuggled"))},
		{"sys_rdy_again", Config{}, goodFrame(wire.TypeSysRdy, nil), goodFrame(wire.TypeSysRdy, nil)},
		{"sched_swap_bad_crc", Config{}, nil, tornFrame(wire.TypeSchedSwapNotify, nil)},
		{"sched_swap_nonempty", Config{}, nil, goodFrame(wire.TypeSchedSwapNotify, []byte("smuggled"))},
		{"kern_addrs_bad_crc", Config{}, nil, tornFrame(wire.TypeKernAddrs, kadr(1, true, 0, false))},
		{"kern_addrs_undecodable", Config{}, nil, goodFrame(wire.TypeKernAddrs, []byte("short"))},
		{"kern_addrs_out_of_range", Config{TextLink: link}, nil, goodFrame(wire.TypeKernAddrs, kadr(0, false, link+2<<30, true))},
		{"snapshot_request_bad_crc", Config{}, nil, tornFrame(wire.TypeSnapshotRequest, snapReq(1, wire.SnapshotCapture, "x"))},
		{"snapshot_request_undecodable", Config{}, nil, goodFrame(wire.TypeSnapshotRequest, snapReq(0, wire.SnapshotCapture, "x"))},
		{"kernel_op_request_bad_crc", Config{}, nil, tornFrame(wire.TypeKernelOpRequest, []byte{0x80})},
		{"kernel_op_request_undecodable", Config{}, nil, goodFrame(wire.TypeKernelOpRequest, []byte("not msgpack"))},
		{"internal", Config{}, nil, goodFrame(wire.TypeSnapshotReply, make([]byte, 520))},
		{"internal", Config{}, nil, goodFrame(wire.TypeKernelOpReply, []byte{0x80})},
		{"unknown_type", Config{}, nil, goodFrame(0x4556494C, []byte("evil"))},
	}
	for _, tt := range tests {
		t.Run(tt.cause, func(t *testing.T) {
			o := feed(t, tt.cfg, cat(tt.pre, tt.frame))
			var got []*record.Record
			for _, r := range o.diags {
				if r.Diag != record.DiagCRCMismatch {
					got = append(got, r)
				}
			}
			f, _, err := wire.ParseFrame(tt.frame)
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != 1 || o.st.Dropped[tt.cause] != 1 {
				t.Fatalf("diagnostics %v, drop.%s=%d; want one %s diagnostic", diagNames(got), tt.cause, o.st.Dropped[tt.cause], tt.cause)
			}
			r := got[0]
			if r.Diag != tt.cause || r.Tag != f.Type.String() || r.MsgType != uint32(f.Type) || r.CRCOK != f.CRCOK ||
				r.Length != uint32(len(f.Payload)) || r.Message == "" {
				t.Errorf("diagnostic = %+v, want %s about %v (crc_ok %t, %d bytes) with a message", *r, tt.cause, f.Type, f.CRCOK, len(f.Payload))
			}
			if !record.IsRefusal(r.Diag) {
				t.Errorf("record.IsRefusal(%q) = false", r.Diag)
			}
		})
	}
}

func diagNames(rs []*record.Record) []string {
	var n []string
	for _, r := range rs {
		n = append(n, r.Diag)
	}
	return n
}
