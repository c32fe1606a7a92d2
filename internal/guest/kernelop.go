package guest

import (
	"encoding/hex"
	"fmt"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/ktstr-go/ktstr/internal/scenario"
	"github.com/ktstr-go/ktstr/lib/wire"
	"github.com/ktstr-go/ktstr/lib/wire/payload"
)

// kernelOpTimeout is how long the agent waits for a KORP (ktstr's 30 s).
const kernelOpTimeout = 30 * time.Second

// kernelOp sends a KORQ and waits for its KORP.
func (p *replies) kernelOp(send func(wire.Type, []byte), req *payload.KernelOpRequest, timeout time.Duration) (*payload.KernelOpReply, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	req.RequestID = p.id()
	b, err := payload.MarshalKernelOpRequest(req)
	if err != nil {
		return nil, err
	}
	send(wire.TypeKernelOpRequest, b)
	var got *payload.KernelOpReply
	err = p.wait(timeout, func(f wire.Frame) bool {
		if f.Type != wire.TypeKernelOpReply || !f.CRCOK {
			p.logf("skipping %v reply frame (crc ok %v) while waiting for kernel op %d", f.Type, f.CRCOK, req.RequestID)
			return false
		}
		r, err := payload.UnmarshalKernelOpReply(f.Payload)
		if err != nil || r.RequestID != req.RequestID {
			p.logf("skipping stale or bad kernel-op reply (want %d): %v", req.RequestID, err)
			return false
		}
		got = r
		return true
	})
	return got, err
}

// runKernelOp performs a read_kernel or write_kernel op through the host
// and checks a read's value; it returns an info note, or an error that
// fails the run.
func (env runEnv) runKernelOp(op scenario.Op, saved map[string]uint64) (string, error) {
	if env.kernelOp == nil {
		return "", fmt.Errorf("no channel to the host")
	}
	k := op.Kernel
	req := &payload.KernelOpRequest{Mode: payload.ModeHot, Direction: payload.DirRead, Tag: op.Tag,
		Entries: []payload.KernelOpEntry{k.Entry()}}
	if k.Cold {
		req.Mode = payload.ModeCold
	}
	if op.Op == scenario.OpWriteKernel {
		req.Direction = payload.DirWrite
	}
	t0 := time.Now()
	rep, err := env.kernelOp(req)
	if err != nil {
		return "", err
	}
	took := fmt.Sprintf(" (%s, answered in %v)", req.Mode, time.Since(t0).Round(time.Microsecond))
	what := describeTarget(k.Target)
	if !rep.Success {
		return "", fmt.Errorf("host answered ERR: %s", rep.Reason)
	}
	if op.Op == scenario.OpWriteKernel {
		return fmt.Sprintf("write_kernel %s: wrote %s%s", what, valueString(k.Entry().Value), took), nil
	}
	if len(rep.ReadValues) != 1 {
		return "", fmt.Errorf("host answered %d values for one read", len(rep.ReadValues))
	}
	v := rep.ReadValues[0]
	if k.Save != "" {
		saved[k.Save] = v.U
	}
	if err := k.Expect.Check(v.U, saved); err != nil {
		return "", fmt.Errorf("%s is %v", what, err)
	}
	return fmt.Sprintf("read_kernel %s: %s%s", what, valueString(v), took), nil
}

func describeTarget(t payload.Target) string {
	switch t.Kind {
	case payload.TargetSymbol:
		return t.Symbol
	case payload.TargetPerCPUField:
		return fmt.Sprintf("%s.%s on CPU %d", t.Symbol, t.Field, t.CPU)
	case payload.TargetTaskField:
		return fmt.Sprintf("task %d's %s", t.PID, t.Field)
	}
	return fmt.Sprintf("%s %#x", t.Kind, t.Addr)
}

// valueString prints a number in decimal, bytes in hex, and bytes that
// hold a C string also as that string.
func valueString(v payload.Value) string {
	if v.Kind != payload.ValueBytes {
		return fmt.Sprint(v.U)
	}
	h := hex.EncodeToString(v.Bytes)
	s, _, _ := strings.Cut(string(v.Bytes), "\x00")
	if s == "" || !utf8.ValidString(s) || strings.IndexFunc(s, func(r rune) bool { return !unicode.IsPrint(r) }) >= 0 {
		return h
	}
	return fmt.Sprintf("%q (%s)", s, h)
}
