package guest

import (
	"fmt"
	"regexp"
	"strings"
	"sync"
	"time"

	"github.com/ktstr-go/ktstr/lib/wire/payload"
)

// schedExtLines are the kernel's sched_ext lines (kernel/sched/ext.c),
// compiled by the first watch: every process of this executable (the
// agent, each worker) runs the package's initialisers, and compiling them
// there was milliseconds of each start under software emulation.
var schedExtLines = sync.OnceValues(func() (disabled, enabled *regexp.Regexp) {
	return regexp.MustCompile(`^sched_ext: BPF scheduler "([^"]*)" disabled \((.*)\)$`),
		regexp.MustCompile(`^sched_ext: BPF scheduler "([^"]*)" enabled`)
})

// schedLoss is how and when the scheduler under test was lost.
type schedLoss struct {
	at       time.Time
	how      string  // "detached", "disabled" or "exited"
	snap     scxSnap // sched_ext's sysfs when the agent saw it
	sysfsErr error   // sysfs unreadable then
	kernel   string  // the kernel's "disabled (reason)" line
	kernelAt time.Duration
	alive    bool // its process still ran
	back     time.Time
}

// schedWatch watches the scheduler under test from its attach until the
// scenario ends: sched_ext's state, root/ops and enable_seq, the kernel
// log's sched_ext lines and its process. The first sign that it is gone
// (the state left "enabled", the ops or enable_seq changed, the kernel
// logged it disabled, its process exited) is its loss: the watch records
// it and calls onLoss once, which stops the scenario. It goes on watching
// until stop, to see a new attach.
type schedWatch struct {
	fs     scxFS
	base   scxSnap         // the reading at attach
	kmsg   kmsgSource      // nil: the kernel log is not the guest's own
	died   <-chan struct{} // closed when its process exited
	every  time.Duration
	onLoss func(why string)

	mu   sync.Mutex
	loss *schedLoss
	quit chan struct{}
	done chan struct{}
}

func newSchedWatch(fs scxFS, base scxSnap, k kmsgSource, died <-chan struct{}, onLoss func(string)) *schedWatch {
	return &schedWatch{fs: fs, base: base, kmsg: k, died: died, every: pollEvery, onLoss: onLoss,
		quit: make(chan struct{}), done: make(chan struct{})}
}

// start polls in a goroutine until stop.
func (w *schedWatch) start() {
	go func() {
		defer close(w.done)
		t := time.NewTicker(w.every)
		defer t.Stop()
		died := w.died
		for {
			w.check(time.Now())
			select {
			case <-w.quit:
				w.check(time.Now())
				return
			case <-t.C:
			case <-died:
				died = nil
			}
		}
	}()
}

// stop ends the watch (at the end of the scenario, before the agent
// stops the scheduler) and returns its loss, nil if none.
func (w *schedWatch) stop() *schedLoss {
	close(w.quit)
	<-w.done
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.loss
}

// check takes one reading of everything watched.
func (w *schedWatch) check(now time.Time) {
	var recs []kmsgRecord
	if w.kmsg != nil {
		recs = w.kmsg.read()
	}
	snap, err := w.fs.read()
	dead := false
	select {
	case <-w.died:
		dead = true
	default:
	}

	w.mu.Lock()
	first := w.loss == nil
	lost := func(how string) {
		if w.loss == nil {
			w.loss = &schedLoss{at: now, how: how, snap: snap, sysfsErr: err, alive: !dead}
		}
	}
	kDisabled, kEnabled := schedExtLines()
	for _, r := range recs {
		if kDisabled.MatchString(r.Text) {
			lost("disabled")
			if w.loss.kernel == "" {
				w.loss.kernel, w.loss.kernelAt = r.Text, r.At
			}
		} else if kEnabled.MatchString(r.Text) && w.loss != nil && w.loss.back.IsZero() {
			w.loss.back = now
		}
	}
	switch {
	case err != nil || !snap.same(w.base):
		lost("detached")
		if l := w.loss; err == nil && snap.attached() && l.back.IsZero() {
			l.back = now // attached, but not as at base: attached again
		}
	case dead:
		lost("exited")
	}
	why := ""
	if first && w.loss != nil {
		why = w.loss.summary()
	}
	w.mu.Unlock()
	if why != "" {
		w.onLoss(why)
	}
}

// summary is the loss in a few words.
func (l *schedLoss) summary() string {
	var what string
	switch {
	case l.kernel != "":
		what = strings.TrimPrefix(l.kernel, "sched_ext: ")
	case l.how == "exited":
		what = "its process exited"
	case l.sysfsErr != nil:
		what = fmt.Sprintf("sched_ext state unreadable: %v", l.sysfsErr)
	default:
		what = fmt.Sprintf("sched_ext state %s, ops %q, enable_seq %d", l.snap.State, l.snap.Ops, l.snap.Seq)
	}
	return "the scheduler was lost: " + what
}

// detach is the loss as the TEST payload carries it, its times in ms
// since the scenario start; end is when the scenario ended.
func (l *schedLoss) detach(scenStart, end time.Time) *payload.SchedDetach {
	ms := func(t time.Time) float64 { return float64(t.Sub(scenStart).Microseconds()) / 1000 }
	d := &payload.SchedDetach{
		AtMS: ms(l.at), ForMS: float64(max(end.Sub(l.at), 0).Microseconds()) / 1000,
		How: l.how, State: l.snap.State, Ops: l.snap.Ops, EnableSeq: l.snap.Seq,
		Kernel: l.kernel, KernelS: l.kernelAt.Seconds(), Alive: l.alive,
	}
	if !l.back.IsZero() {
		d.ReattachedMS = ms(l.back)
	}
	return d
}

// outcome is the failing outcome of a loss whose process still lived:
// when, how, and for how long the scenario ran on without it.
func (l *schedLoss) outcome(name string, base scxSnap, d *payload.SchedDetach) payload.Outcome {
	when := fmt.Sprintf("%.0f ms into the scenario", d.AtMS)
	if d.AtMS < 0 {
		when = fmt.Sprintf("%.0f ms before the scenario started", -d.AtMS)
	}
	msg := fmt.Sprintf("scheduler %s (sched_ext ops %q, enable_seq %d) detached %s while its process lived (%s); "+
		"the scenario was stopped and ran %.0f ms without it", name, base.Ops, base.Seq, when,
		strings.TrimPrefix(l.summary(), "the scheduler was lost: "), d.ForMS)
	if d.ReattachedMS != 0 {
		msg += fmt.Sprintf("; a scheduler attached again at %.0f ms", d.ReattachedMS)
	}
	return payload.Outcome{Verdict: payload.Fail, Kind: payload.KindSchedulerDetached, Message: msg}
}
