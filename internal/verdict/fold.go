package verdict

import (
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"

	"github.com/ktstr-go/ktstr/internal/sanitize"
	"github.com/ktstr-go/ktstr/lib/record"
	"github.com/ktstr-go/ktstr/lib/wire"
	"github.com/ktstr-go/ktstr/lib/wire/payload"
)

// Config says how to judge a run.
type Config struct {
	// Splats are the kernel-splat patterns (DefaultSplats, SelectSplats);
	// nil turns splat detection off.
	Splats []Splat
	// SplatStatus is the status a splat gives: StatusFail (the default
	// when empty) or StatusInconclusive.
	SplatStatus Status
	// RequireEnd makes a stream without a VEND entry an infrastructure
	// error: without it nobody can say whether the ring dropped frames.
	RequireEnd bool
	// HostContentionPct is the vCPU steal (AddNoise) above which
	// fairness, gap and latency failures are inconclusive; 0 turns it
	// off.
	HostContentionPct float64
}

// DefaultConfig is the configuration ktstr-verdict uses without flags.
func DefaultConfig() Config {
	return Config{Splats: DefaultSplats(), SplatStatus: StatusFail, HostContentionPct: DefaultHostContentionPct}
}

// Bounds on what the folder keeps of what the guest sends, so that its
// memory and the report stay bounded whatever the guest writes: the first
// few of each kind are kept, the rest are counted and the report says "and
// N more". Every step of the fold costs constant time.
const (
	// maxSplatFindings bounds the splat findings of one run; the rest
	// are counted in Counts.Splats and summarised in one more finding.
	maxSplatFindings = 16
	// maxOutcomeFindings bounds the findings of each status (fail,
	// inconclusive, skip) taken from the TEST outcomes.
	maxOutcomeFindings = 20
	// maxSteps bounds the timeline; further STIM frames are counted in
	// Verdict.StepsNotListed.
	maxSteps = 256
	// maxDisableLines bounds the distinct sched_ext "disabled" lines
	// remembered to recognise the same line from another source.
	maxDisableLines = 64
	// maxText bounds one guest string in a finding (a message, a reason,
	// a crash report's first line), in bytes.
	maxText = maxLine
)

type console struct {
	log   *lineLog
	panic bool
}

// Folder accumulates the records and console files of one run. Each
// concern has its part, fed the entries it reads and asked for its
// findings when the run is judged, so that each can be read and tested
// alone:
//
//	part    reads                                  answers
//	result  TEST, EXIT, LIFE                       the result, outcome findings, the stage
//	sched   SCDX, kill effects, SCLG, SOUT/SERR,   whether the scheduler died, the BUG
//	        the kernel's sched_ext lines           SUMMARY, the scheduler's log
//	splats  kernel log and consoles, CRSH,         splat findings, the crash finding
//	        "PANIC:" lines
//	steps   SCST, SCPP, SCRR, SCEN, STIM, STEN     the timeline
//	end     HELO, LOSS, VEND, the host block       the timeout, infrastructure and monitor
//	        (HBLK, HDMP, HMON), diagnostics, read  findings, the failure dump
//	        errors
//
// Verdict weighs the parts' findings against each other.
type Folder struct {
	cfg     Config
	name    string
	c       Counts
	effects map[string]int64 // effects by name
	noise   *HostNoise       // AddNoise

	result resultFold
	sched  schedFold
	splats splatFold
	steps  stepFold
	end    endFold

	kernel   *lineLog // DMSG
	consoles []*console
	finished bool
}

// NewFolder starts a run named name.
func NewFolder(name string, cfg Config) *Folder {
	if cfg.SplatStatus == "" {
		cfg.SplatStatus = StatusFail
	}
	f := &Folder{cfg: cfg, name: name, effects: map[string]int64{}, result: newResultFold(), sched: newSchedFold(), splats: newSplatFold(), end: newEndFold()}
	f.kernel = newLineLog("dmesg", func(l string) { f.kernelLine("dmesg", l) })
	f.sched.out.also = func(l string) { f.splats.panicLine("output", l) }
	return f
}

// Fold reads every record from r into a new Folder and returns it; a
// stream that cannot be read to its end is recorded as an
// infrastructure error.
func Fold(name string, cfg Config, r io.Reader) *Folder {
	f := NewFolder(name, cfg)
	rd := record.NewReader(r)
	for {
		rec, err := rd.ReadShared() // Add keeps no record and no payload
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			f.ReadError(err)
			break
		}
		f.Add(rec)
	}
	return f
}

// Add folds one record. It keeps neither r nor its byte slices, which
// may be reused once it returns (record.Reader.ReadShared).
func (f *Folder) Add(r *record.Record) {
	c := &f.c
	c.Records++
	switch r.Kind {
	case record.KindEffect:
		c.Effects++
		f.effects[r.Effect]++
		if r.Effect == record.EffectKill {
			c.Kills++
			f.sched.killEffect(r)
		}
		return
	case record.KindDiag:
		c.Diags++
		f.end.diags[r.Diag]++
		return
	case record.KindEntry:
	default:
		c.UnknownKinds++
		return
	}
	c.Entries++
	f.end.anyEntry(wire.Type(r.MsgType), r.CRCOK, r.Payload)
	if !r.CRCOK {
		c.BadCRC++
		return
	}
	t := wire.Type(r.MsgType)
	if c.Entries == 1 && f.end.first(t, r.Payload) {
		return
	}
	f.entry(t, r.Payload)
}

// entry hands a CRC-valid entry to the part that reads its type.
func (f *Folder) entry(t wire.Type, p []byte) {
	switch t {
	case wire.TypeTestResult, wire.TypeExit, wire.TypeLifecycle:
		f.result.entry(t, p)
	case wire.TypeSchedExit:
		f.sched.exit(t, p)
	case wire.TypeCrash:
		f.splats.crashEntry(p)
	case wire.TypeScenarioStart, wire.TypeScenarioPause, wire.TypeScenarioResume, wire.TypeScenarioEnd,
		wire.TypeStimulus, wire.TypeStepEnd:
		f.steps.entry(t, p)
	case wire.TypeSchedLog:
		f.sched.log.Write(p)
	case wire.TypeDmesg:
		if len(p) > 0 {
			f.kernel.Write(p)
			if p[len(p)-1] != '\n' {
				f.kernel.Write([]byte{'\n'}) // ktstr joins DMSG payloads with "\n"
			}
		}
	case wire.TypeStdout, wire.TypeStderr:
		f.sched.out.Write(p)
	case wire.TypeHello, wire.TypeLoss, wire.TypeVMEnd:
		f.end.entry(t, p)
	}
}

// ReadError records that the record stream could not be read to its end.
func (f *Folder) ReadError(err error) {
	f.end.readErrs = append(f.end.readErrs, fmt.Sprintf("records unreadable after %d records: %v", f.c.Records, err))
	if f.c.UnreadableAt == 0 {
		f.c.UnreadableAt = f.c.Records + 1
	}
}

// AddConsole scans a console log (ktstr-boot's console.log for COM1 or
// com2.log for COM2) for "PANIC:" lines, kernel panics, splats and
// sched_ext messages, and keeps its tail for the report. A read error
// is recorded as an infrastructure error and also returned.
func (f *Folder) AddConsole(name string, r io.Reader) error {
	c := &console{}
	c.log = newLineLog(name, func(l string) {
		if f.splats.panicLine(name, l) {
			c.panic = true
		}
		f.kernelLine(name, l)
	})
	f.consoles = append(f.consoles, c)
	buf := make([]byte, 64<<10)
	for {
		n, err := r.Read(buf)
		c.log.Write(buf[:n])
		if err == io.EOF {
			break
		}
		if err != nil {
			f.end.readErrs = append(f.end.readErrs, fmt.Sprintf("console %s unreadable: %v", name, err))
			c.log.Finish()
			return err
		}
	}
	c.log.Finish()
	return nil
}

// ConsoleError records a console file that could not be opened.
func (f *Folder) ConsoleError(name string, err error) {
	f.end.readErrs = append(f.end.readErrs, fmt.Sprintf("console %s unreadable: %v", name, err))
}

// kernelLine hands one kernel log line (DMSG or a console) to the parts
// that read the kernel log.
func (f *Folder) kernelLine(source, l string) {
	t := kernelText(l)
	if t == "" {
		return
	}
	f.splats.kernelLine(f.cfg.Splats, source, t)
	f.sched.kernelLine(source, t)
}

// Verdict finishes the fold. It may be called once.
func (f *Folder) Verdict() Verdict {
	if !f.finished {
		f.finished = true
		f.kernel.Finish()
		f.sched.finish()
	}
	v := Verdict{Name: sanitize.String(f.name), Counts: f.c, Findings: []Finding{}}
	v.Counts.Splats = f.splats.count
	v.Counts.LostFrames, v.Counts.LostBytes = f.end.lostFrames, f.end.lostBytes
	if len(f.end.diags) > 0 {
		v.Diags = map[string]int64{}
		for k, n := range f.end.diags {
			v.Diags[sanitize.String(k)] += n
		}
	}
	if len(f.effects) > 0 {
		v.Effects = map[string]int64{}
		for k, n := range f.effects {
			v.Effects[sanitize.String(k)] += n
		}
	}
	f.judge(&v)
	v.BugSummary = sanitize.String(f.sched.bugSummary())
	v.Stage = f.result.stage(v.Result != nil)
	v.Phases = f.result.phaseNames()
	v.HostNonce = !f.end.nonce.IsZero()
	v.GuestExit = f.result.exit
	v.SchedExit = f.sched.exitCode()
	v.VMEnd = f.end.report()
	v.Steps = f.steps.timeline()
	v.StepsNotListed = f.steps.out
	v.Scenario = f.steps.scen
	f.logs(&v.Logs)
	return v
}

// judge collects the parts' findings and folds them into v's status,
// cause and reason. Every string of a finding, which the guest (or a
// file name) may have chosen, goes through sanitize.String, so that no
// report of it, in any format, can steer a terminal.
func (f *Folder) judge(v *Verdict) {
	add := func(fd Finding) {
		fd.Kind, fd.Message, fd.Source = sanitize.String(fd.Kind), sanitize.String(fd.Message), sanitize.String(fd.Source)
		for i, l := range fd.Lines {
			fd.Lines[i] = sanitize.String(l)
		}
		v.Findings = append(v.Findings, fd)
	}
	v.Result = f.result.result(add)
	died := f.sched.died(f.result.reasons, add)
	crashed := f.splats.crash(f.end.vmEnd, add)
	timedOut := f.end.timedOut(f.result.seen, f.sched.errorDisable(), add)
	f.splats.findings(f.cfg.SplatStatus, add)
	f.end.hostFrames(v, add)
	infra := f.end.infra(f.c.BadCRC, f.cfg.RequireEnd, add)
	if v.Result == nil && !f.result.seen && !timedOut && !crashed && !died {
		msg := f.result.stage(false)
		if e := f.end.vmEnd; e != nil && e.Reason == wire.EndKilled {
			msg += "; the VM was stopped on request"
		}
		st := StatusFail
		if infra {
			st = StatusInfra // the result may be among what was lost
			msg += " (the result may be among what was lost)"
		}
		add(Finding{Status: st, Cause: CauseNoResult, Message: msg})
	}

	f.hostContention(v)

	v.Status = StatusPass
	if v.Result != nil && len(v.Result.Outcomes) > 0 && v.Result.Verdict() == payload.Skip {
		v.Status = StatusSkip
	}
	for _, fd := range v.Findings {
		v.Status = Worse(v.Status, fd.Status)
	}
	sort.SliceStable(v.Findings, func(i, j int) bool {
		a, b := v.Findings[i], v.Findings[j]
		if a.Status.Rank() != b.Status.Rank() {
			return a.Status.Rank() > b.Status.Rank()
		}
		return causePriority(a.Cause) < causePriority(b.Cause)
	})
	v.ExitStatus = v.Status.ExitCode()
	switch {
	case len(v.Findings) > 0 && v.Findings[0].Status == v.Status:
		v.Cause, v.Reason = v.Findings[0].Cause, v.Findings[0].Text()
	case v.Result != nil && v.Result.Scenario != "":
		v.Reason = fmt.Sprintf("scenario %s: all checks passed", v.Result.Scenario)
	default:
		v.Reason = "all checks passed"
	}
}

// logs fills the logs the Verdict carries: the scheduler's, the kernel's,
// the guest's output and each console's (more of a console that showed a
// panic).
func (f *Folder) logs(l *Logs) {
	if sl := f.sched.schedLogOf(); sl.seen {
		l.Sched = sl.log(TailLines)
	}
	if f.kernel.total > 0 {
		l.Kernel = f.kernel.log(TailLines)
	}
	if f.sched.out.seen {
		l.Output = f.sched.out.all.log(TailLines)
	}
	for _, c := range f.consoles {
		n := TailLines
		if c.panic {
			n = keepLines
		}
		l.Console = append(l.Console, *c.log.log(n))
	}
}

func firstLine(s string) string {
	s, _, _ = strings.Cut(strings.TrimSpace(s), "\n")
	return strings.TrimSpace(s)
}

func plural(n int64, what string) string {
	return fmt.Sprintf("%d %s", n, pluralWord(n, what))
}

func pluralWord(n int64, what string) string {
	if n == 1 {
		return what
	}
	return what + "s"
}

// cutText cuts a guest string to maxText bytes on a UTF-8 boundary.
func cutText(s string) string {
	if len(s) <= maxText {
		return s
	}
	return wire.TruncateUTF8(s, maxText) + " [cut]"
}
