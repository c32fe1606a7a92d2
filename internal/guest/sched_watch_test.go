package guest

import (
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/ktstr-go/ktstr/lib/wire/payload"
)

// fakeKmsg hands out queued kernel log records.
type fakeKmsg struct{ queue []kmsgRecord }

func (k *fakeKmsg) read() []kmsgRecord {
	out := k.queue
	k.queue = nil
	return out
}

const unregistered = `sched_ext: BPF scheduler "simple" disabled (unregistered from user space)`

func TestSchedWatch(t *testing.T) {
	t0 := time.Unix(1000, 0)
	type step = watchStep
	tests := []struct {
		name  string
		steps []step
		want  *schedLoss // at, snap and back are checked through detach
		why   string
		back  bool
	}{
		{name: "stays attached", steps: []step{{}, {}, {kmsg: []string{"random: crng init done"}}}},
		{name: "state disabled, process alive", steps: []step{{}, {state: "disabled", ops: "", seq: "1"}, {}},
			want: &schedLoss{how: "detached", alive: true}, why: `sched_ext state disabled, ops "", enable_seq 1`},
		{name: "the kernel's line before sysfs changes", steps: []step{{kmsg: []string{unregistered}}, {state: "disabled", ops: "", seq: "1"}},
			want: &schedLoss{how: "disabled", alive: true, kernel: unregistered}, why: `BPF scheduler "simple" disabled (unregistered from user space)`},
		{name: "sysfs first, the kernel's line later", steps: []step{{state: "disabling", ops: "simple", seq: "1"}, {kmsg: []string{unregistered}}},
			want: &schedLoss{how: "detached", alive: true, kernel: unregistered}, why: `sched_ext state disabling`},
		{name: "detached and attached again between two readings", steps: []step{{state: "enabled", ops: "simple", seq: "2"}},
			want: &schedLoss{how: "detached", alive: true}, why: "enable_seq 2", back: true},
		{name: "another scheduler", steps: []step{{state: "enabled", ops: "qmap", seq: "2"}},
			want: &schedLoss{how: "detached", alive: true}, why: `ops "qmap"`, back: true},
		{name: "detached, then attached again", steps: []step{{state: "disabled", ops: "", seq: "1"}, {state: "enabled", ops: "simple", seq: "2",
			kmsg: []string{unregistered, `sched_ext: BPF scheduler "simple" enabled`}}},
			want: &schedLoss{how: "detached", alive: true, kernel: unregistered}, why: "sched_ext state disabled", back: true},
		{name: "process exited, sysfs still attached", steps: []step{{die: true}},
			want: &schedLoss{how: "exited"}, why: "its process exited"},
		{name: "process exited as the kernel disabled it", steps: []step{{die: true, state: "disabled", ops: "", seq: "1",
			kmsg: []string{`sched_ext: BPF scheduler "simple" disabled (runtime error)`, "sched_ext: simple: scx_bpf_error (boom)"}}},
			want: &schedLoss{how: "disabled", kernel: `sched_ext: BPF scheduler "simple" disabled (runtime error)`}, why: "(runtime error)"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			fs := fakeSCX(t, "enabled", "simple", "1")
			base, _ := fs.read()
			k := &fakeKmsg{}
			died := make(chan struct{})
			var whys []string
			w := newSchedWatch(fs, base, k, died, func(why string) { whys = append(whys, why) })
			now := t0
			for _, st := range tc.steps {
				if st.state != "" {
					writeSCX(t, fs, st.state, st.ops, st.seq)
				}
				for i, l := range st.kmsg {
					k.queue = append(k.queue, kmsgRecord{At: time.Duration(9+i) * time.Second, Text: l})
				}
				if st.die {
					close(died)
				}
				now = now.Add(20 * time.Millisecond)
				w.check(now)
			}
			w.check(now.Add(time.Second)) // nothing new: the loss stays the first one
			loss := w.loss
			if tc.want == nil {
				if loss != nil || len(whys) > 0 {
					t.Fatalf("loss %+v (onLoss %q), want none", loss, whys)
				}
				return
			}
			if loss == nil {
				t.Fatal("no loss")
			}
			if loss.how != tc.want.how || loss.alive != tc.want.alive || loss.kernel != tc.want.kernel {
				t.Errorf("loss how=%q alive=%v kernel=%q, want %q %v %q", loss.how, loss.alive, loss.kernel, tc.want.how, tc.want.alive, tc.want.kernel)
			}
			if len(whys) != 1 || !strings.Contains(whys[0], tc.why) {
				t.Errorf("onLoss called with %q, want once with %q", whys, tc.why)
			}
			if !loss.at.Equal(t0.Add(time.Duration(firstLossStep(tc.steps)+1) * 20 * time.Millisecond)) {
				t.Errorf("loss at %v, want the reading that saw it", loss.at.Sub(t0))
			}
			if got := !loss.back.IsZero(); got != tc.back {
				t.Errorf("attached again = %v, want %v", got, tc.back)
			}
		})
	}
}

// watchStep is what changes before one reading of a watch.
type watchStep struct {
	state, ops, seq string // sysfs now ("" state: unchanged)
	kmsg            []string
	die             bool
}

func firstLossStep(steps []watchStep) int {
	for i, s := range steps {
		if s.state != "" || s.die || len(s.kmsg) > 0 {
			return i
		}
	}
	return -1
}

// The watch's goroutine: a loss stops the scenario at once; stop returns
// it.
func TestSchedWatchRuns(t *testing.T) {
	fs := fakeSCX(t, "enabled", "simple", "4")
	base, _ := fs.read()
	stopped := make(chan string, 1)
	w := newSchedWatch(fs, base, nil, make(chan struct{}), func(why string) { stopped <- why })
	w.every = time.Millisecond
	w.start()
	// Only the state changes: the watch reads the files one by one, so a
	// change of several could be seen half made.
	writeSCX(t, fs, "disabled", "simple", "4")
	why := <-stopped
	loss := w.stop()
	if loss == nil || loss.how != "detached" || !strings.Contains(why, "sched_ext state disabled") {
		t.Errorf("loss %+v, why %q", loss, why)
	}
}

func TestSchedLossReport(t *testing.T) {
	start := time.Unix(1000, 0)
	l := &schedLoss{at: start.Add(2512 * time.Millisecond), how: "disabled", snap: scxSnap{State: "disabled", Seq: 1},
		kernel: unregistered, kernelAt: 9500 * time.Millisecond, alive: true, back: start.Add(2600 * time.Millisecond)}
	d := l.detach(start, start.Add(2553*time.Millisecond))
	want := &payload.SchedDetach{AtMS: 2512, ForMS: 41, How: "disabled", State: "disabled", EnableSeq: 1, Kernel: unregistered,
		KernelS: 9.5, Alive: true, ReattachedMS: 2600}
	if diff := cmp.Diff(want, d); diff != "" {
		t.Errorf("detach (-want +got):\n%s", diff)
	}
	o := l.outcome("scx_wrap", scxSnap{State: "enabled", Ops: "simple", Seq: 1}, d)
	wantMsg := `scheduler scx_wrap (sched_ext ops "simple", enable_seq 1) detached 2512 ms into the scenario while its process lived ` +
		`(BPF scheduler "simple" disabled (unregistered from user space)); the scenario was stopped and ran 41 ms without it; ` +
		`a scheduler attached again at 2600 ms`
	if o.Verdict != payload.Fail || o.Kind != payload.KindSchedulerDetached || o.Message != wantMsg {
		t.Errorf("outcome %+v\nwant message %s", o, wantMsg)
	}
}

func TestParseKmsg(t *testing.T) {
	r, ok := parseKmsg([]byte("6,1234,9500123,-;" + unregistered + "\n SUBSYSTEM=x\n"))
	if !ok || r.At != 9500123*time.Microsecond || r.Text != unregistered {
		t.Errorf("parseKmsg = %+v, %v", r, ok)
	}
	for _, bad := range []string{"", "no semicolon", "6,1;x", "6,1,notanumber,-;x"} {
		if _, ok := parseKmsg([]byte(bad)); ok {
			t.Errorf("parseKmsg(%q) accepted", bad)
		}
	}
}

func FuzzParseKmsg(f *testing.F) {
	f.Add([]byte("6,1234,9500123,-;" + unregistered + "\n SUBSYSTEM=x\n"))
	f.Add([]byte("3,1,0,c,caller=T1;x"))
	f.Fuzz(func(t *testing.T, b []byte) {
		if r, ok := parseKmsg(b); ok && (r.At < 0 || strings.Contains(r.Text, "\n")) {
			t.Fatalf("parseKmsg(%q) = %+v", b, r)
		}
	})
}
