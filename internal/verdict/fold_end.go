package verdict

import (
	"fmt"
	"math"
	"time"

	"github.com/ktstr-go/ktstr/lib/record"
	"github.com/ktstr-go/ktstr/lib/wire"
)

// endFold is the end of the run and whether its stream can be trusted:
// the host's frames (HELO with the run's nonce, LOSS, the VEND that
// ktstr-drain appends last, ktstr-boot's host block), the guest's
// forgeries of them, the
// assembler's diagnostics and the files that could not be read. It
// answers with the timeout and infrastructure findings.
type endFold struct {
	// nonce is the run's nonce from the HELO the stream begins with
	// (ktstr-drain writes it before any guest byte); when set, a HELO,
	// LOSS or VEND without it was forged by the guest (forgedHost).
	nonce      wire.Nonce
	forgedHost int64
	vmEnd      *wire.VMEnd
	forgedEnds int64 // VEND frames that other frames followed
	lostFrames uint64
	lostBytes  uint64
	diags      map[string]int64
	readErrs   []string
	blk        hostBlock // ktstr-boot's frames (HBLK, HDMP, HMON)
}

func newEndFold() endFold { return endFold{diags: map[string]int64{}} }

// anyEntry notes that an entry came, CRC-valid or not: ktstr-drain
// appends the real VEND as the very last frame, so a VEND that more
// frames follow was written by the guest and is discarded; and the host
// block (HBLK, then ktstr-boot's HDMP and HMON) is open until another
// frame comes.
func (e *endFold) anyEntry(t wire.Type, crcOK bool, p []byte) {
	if e.vmEnd != nil {
		e.vmEnd = nil
		e.forgedEnds++
	}
	e.blk.see(t, crcOK, p, e.host)
}

// hostFrames gives v ktstr-boot's failure dump and the monitor's
// summary, with the monitor's findings, when the host block is the
// host's and the stream ended with ktstr-drain's VEND.
func (e *endFold) hostFrames(v *Verdict, add func(Finding)) {
	if e.vmEnd == nil || !e.blk.open {
		return
	}
	if n := len(e.blk.dumps); n > 0 {
		v.FailureDump = e.blk.dumps[n-1]
	}
	v.Monitor = monitorFindings(e.blk.mons, add)
}

// first takes the stream's first entry if it is a HELO: the run's nonce.
func (e *endFold) first(t wire.Type, p []byte) bool {
	if t != wire.TypeHello {
		return false
	}
	n, err := wire.DecodeHello(p)
	if err != nil {
		return false
	}
	e.nonce = n
	return true
}

// entry notes an entry of one of the host's types.
func (e *endFold) entry(t wire.Type, p []byte) {
	switch t {
	// ktstr-drain writes only host frames that decode: one that does not
	// was forged by the guest, as is one without the run's nonce.
	case wire.TypeHello:
		if n, err := wire.DecodeHello(p); err != nil || !e.host(n) {
			e.forgedHost++ // a drain that resumed writes none; the same nonce is harmless
		}
	case wire.TypeLoss:
		l, err := wire.DecodeLoss(p)
		if err != nil || !e.host(l.Nonce) {
			e.forgedHost++
			return
		}
		e.lostFrames = max(e.lostFrames, l.Frames)
		e.lostBytes = max(e.lostBytes, l.Bytes)
	case wire.TypeVMEnd:
		v, err := wire.DecodeVMEnd(p)
		if err != nil || !e.host(v.Nonce) {
			e.forgedHost++
			return
		}
		e.vmEnd = &v
	}
}

// host reports whether a host-origin frame with nonce n may be the host's:
// it carries the nonce of the HELO the stream began with, or the stream
// began with none and nothing can be checked.
func (e *endFold) host(n wire.Nonce) bool {
	return e.nonce.IsZero() || n == e.nonce
}

// report is the VM's end for the Verdict.
func (e *endFold) report() *VMEnd {
	v := e.vmEnd
	if v == nil {
		return nil
	}
	return &VMEnd{Reason: v.Reason.String(), ExitCode: v.ExitCode, Elapsed: math.Round(time.Duration(v.ElapsedNS).Seconds()*1e6) / 1e6,
		RingCorrupt: v.Flags&wire.VMEndRingCorrupt != 0}
}

// timedOut adds the timeout finding when the host's watchdog ended the
// VM, and reports whether it did. result says a TEST arrived; disabled is
// the scheduler's error exit, if the kernel logged one.
func (e *endFold) timedOut(result bool, disabled *schedDisable, add func(Finding)) bool {
	if e.vmEnd == nil || e.vmEnd.Reason != wire.EndTimeout {
		return false
	}
	msg := "no result arrived before the watchdog deadline"
	if result {
		msg = "the result arrived but the guest did not power off before the watchdog deadline"
	} else if d := disabled; d != nil {
		msg += fmt.Sprintf(" (scheduler %s exited: %s)", d.name, d.reason)
	}
	add(Finding{Status: StatusFail, Cause: CauseTimeout, Message: msg, Source: "VEND"})
	return true
}

// infra adds what makes the record stream untrustworthy and reports
// whether there was any. badCRC counts the entries that failed their CRC;
// requireEnd makes a missing VEND one.
func (e *endFold) infra(badCRC int64, requireEnd bool, add func(Finding)) bool {
	n := 0
	infra := func(source, msg string) {
		add(Finding{Status: StatusInfra, Cause: CauseInfra, Message: msg, Source: source})
		n++
	}
	if e.lostFrames > 0 || e.lostBytes > 0 {
		infra("LOSS", fmt.Sprintf("the guest dropped %s (%d bytes): the ring was full", plural(int64(e.lostFrames), "frame"), e.lostBytes))
	}
	if bad := max(e.diags[record.DiagCRCMismatch], badCRC); bad > 0 {
		infra("diag", fmt.Sprintf("%s failed the CRC check (ignored, so they may have carried anything)", plural(bad, "frame")))
	}
	if k := e.diags[record.DiagTruncatedTail]; k > 0 {
		infra("diag", "the frame stream ended inside a frame (truncated tail)")
	}
	if k := e.diags[record.DiagOversized]; k > 0 {
		infra("diag", fmt.Sprintf("%s oversized: the assembler dropped it and the rest of the stream", plural(k, "frame")))
	}
	if k := e.diags[record.DiagResidualOverflow]; k > 0 {
		infra("diag", fmt.Sprintf("the assembler's pending buffer overflowed (%s): it dropped the rest of the stream", plural(k, "time")))
	}
	for _, msg := range e.readErrs {
		infra("records", msg)
	}
	if e.blk.forged > 0 {
		infra("HBLK", fmt.Sprintf("%s outside ktstr-drain's host block: forged by the guest and ignored", plural(e.blk.forged, "host frame")))
	}
	if e.forgedHost > 0 {
		infra("HELO", fmt.Sprintf("%s (HELO, LOSS, VEND) without the run's nonce, which the stream's HELO gave: forged by the guest and ignored",
			plural(e.forgedHost, "host frame")))
	}
	if e.forgedEnds > 0 {
		infra("VEND", fmt.Sprintf("%s not at the end of the stream, where ktstr-drain writes it: forged by the guest and ignored", plural(e.forgedEnds, "VM end record")))
	}
	if v := e.vmEnd; v != nil && v.Flags&wire.VMEndRingCorrupt != 0 {
		infra("VEND", "the guest wrote ring positions no producer reaches: ktstr-drain stopped copying there, so what the guest wrote after is missing")
	}
	if v := e.vmEnd; v != nil && v.Reason == wire.EndVMMError {
		infra("VEND", fmt.Sprintf("the VMM failed or ktstr-boot died before closing the region (ktstr-boot exit %d)", v.ExitCode))
	}
	if requireEnd && e.vmEnd == nil {
		infra("VEND", "no VM end record: the stream is not from a closed region, so frames may be missing")
	}
	return n > 0
}
