// Package filters_test exercises the example shell filters in this
// directory (the Go ones have their own tests).
package filters_test

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"os/exec"
	"strings"
	"testing"

	"github.com/ktstr-go/ktstr/internal/verdict"
	vt "github.com/ktstr-go/ktstr/internal/verdict/verdicttest"
	"github.com/ktstr-go/ktstr/lib/record"
	"github.com/ktstr-go/ktstr/lib/wire"
)

func needJQ(t *testing.T) {
	t.Helper()
	if _, err := exec.LookPath("jq"); err != nil {
		t.Skip("jq is not installed (apt-get install jq): the shell filter needs it")
	}
	if _, err := exec.LookPath("sh"); err != nil {
		t.Skip("no sh")
	}
}

func ignoreKmsg(t *testing.T, in []byte, args ...string) ([]byte, string, int) {
	t.Helper()
	cmd := exec.Command("./ignore-kmsg", args...)
	cmd.Stdin = bytes.NewReader(in)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	code := 0
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	return out.Bytes(), errb.String(), code
}

func TestIgnoreKmsg(t *testing.T) {
	needJQ(t)
	sc := vt.Scenarios()["splat"].Stream
	// An effect with a value above 2^53 and a torn DMSG must pass
	// through byte for byte.
	s := vt.New().Dmesg("[ 0.1] WARNING: CPU: 0 PID: 1 at drivers/net/x.c:1 f\n[ 0.2] keep me\n").
		BadEntry(wire.TypeDmesg, []byte("WARNING: CPU: 0 PID: 1 at drivers/net/x.c:2 g"))
	in := append(s.Bytes(true), sc.Bytes(true)...)
	in = append(in, []byte(`{"v":1,"kind":"effect","seq":99,"at_ns":7,"effect":"kern_virt_kaslr","tag":"KADR","msg_type":1262568530,"value":18446744071578845184}`+"\n")...)

	before := verdict.Fold("t", verdict.DefaultConfig(), bytes.NewReader(in)).Verdict()
	if before.Status != verdict.StatusFail || before.Cause != verdict.CauseSplat {
		t.Fatalf("unfiltered: %s %s, want a FAIL for the splats", before.Status, before.Reason)
	}

	out, stderr, code := ignoreKmsg(t, in, `WARNING: CPU: \d+ PID: \d+ at (kernel/sched/ext\.c|drivers/net/)|rcu: INFO: rcu_preempt`)
	if code != 0 || stderr != "" {
		t.Fatalf("ignore-kmsg: exit %d, stderr %q", code, stderr)
	}
	inLines := strings.Split(strings.TrimSuffix(string(in), "\n"), "\n")
	outLines := strings.Split(strings.TrimSuffix(string(out), "\n"), "\n")
	if len(outLines) != len(inLines) {
		t.Fatalf("%d lines out, %d in (no DMSG entry should be emptied here)", len(outLines), len(inLines))
	}
	for i, l := range inLines {
		var r record.Record
		if err := json.Unmarshal([]byte(l), &r); err != nil {
			t.Fatal(err)
		}
		if r.Kind == record.KindEntry && r.MsgType == uint32(wire.TypeDmesg) && r.CRCOK {
			var o record.Record
			if err := json.Unmarshal([]byte(outLines[i]), &o); err != nil {
				t.Fatalf("line %d: %v", i, err)
			}
			if strings.Contains(string(o.Payload), "WARNING") || strings.Contains(string(o.Payload), "rcu: INFO") {
				t.Errorf("line %d still has the ignored lines: %q", i, o.Payload)
			}
			o.Payload, r.Payload = nil, nil
			if !record.Equal(&o, &r) {
				t.Errorf("line %d: more than the payload changed:\n%s\n%s", i, l, outLines[i])
			}
			continue
		}
		if outLines[i] != l {
			t.Errorf("line %d changed:\n in %s\nout %s", i, l, outLines[i])
		}
	}
	// The splats are gone; the torn DMSG still says the stream is damaged.
	after := verdict.Fold("t", verdict.DefaultConfig(), bytes.NewReader(out)).Verdict()
	if after.Status != verdict.StatusInfra || after.Counts.Splats != 0 {
		t.Errorf("filtered: %s %s with %d splats, want ERROR for the torn frame and no splat", after.Status, after.Reason, after.Counts.Splats)
	}
	if l := after.Logs.Kernel; l == nil || !strings.Contains(strings.Join(l.Tail, "\n"), "keep me") {
		t.Errorf("kernel log lost the other lines: %+v", l)
	}
}

func TestIgnoreKmsgDropsEmptiedEntries(t *testing.T) {
	needJQ(t)
	in := vt.New().Dmesg("only this\n").Dmesg("and another").Exit(0).Bytes(true)
	out, _, code := ignoreKmsg(t, in, `^only this$`)
	if code != 0 {
		t.Fatalf("exit %d", code)
	}
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	if len(lines) != 2 || !strings.Contains(lines[0], base64.StdEncoding.EncodeToString([]byte("and another"))) {
		t.Errorf("output:\n%s\nwant the emptied DMSG dropped and the rest kept", out)
	}
}

func TestIgnoreKmsgUsage(t *testing.T) {
	needJQ(t)
	for _, args := range [][]string{nil, {""}, {"a", "b"}} {
		out, stderr, code := ignoreKmsg(t, nil, args...)
		if code != 2 || len(out) != 0 || !strings.HasPrefix(stderr, "usage: ignore-kmsg") {
			t.Errorf("ignore-kmsg %q: exit %d stdout %q stderr %q; want 2 and a usage line", args, code, out, stderr)
		}
	}
}
