package verdict

import (
	"errors"
	"fmt"
	"io"
	"maps"
	"math"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/ktstr-go/ktstr/internal/record"
	"github.com/ktstr-go/ktstr/internal/sanitize"
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

// Scheduler-log markers (ktstr's), the block between them is the
// scheduler's own output.
const (
	SchedOutputStart = "===SCHED_OUTPUT_START==="
	SchedOutputEnd   = "===SCHED_OUTPUT_END==="
)

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

type evidence struct {
	text, source string
}

type splatHit struct {
	kind, text, source string
}

// schedDisable is the kernel's "sched_ext: BPF scheduler "X" disabled
// (reason)" line and the message line that follows it.
type schedDisable struct {
	name, reason, line, msg, msgLine, source string
}

// Benign sched_ext exit reasons (the kernel's scx_exit_reason for the
// non-error exit kinds); any other reason means the scheduler was thrown
// out.
var benignDisable = map[string]bool{
	"normal":                            true,
	"unregistered from user space":      true,
	"unregistered from BPF":             true,
	"unregistered from the main kernel": true,
	"disabled by sysrq-S":               true,
}

var (
	disableRe = regexp.MustCompile(`^sched_ext: BPF scheduler "([^"]*)" disabled \((.*)\)`)
	schedMsg  = regexp.MustCompile(`^sched_ext: ([^:" ]+): (.+)$`)
)

// schedLog is a scheduler log stream: every line, the last
// SCHED_OUTPUT block, and what the lines say about the scheduler's end.
type schedLog struct {
	all, block *lineLog
	seen       bool
	inBlock    bool
	sawStart   bool
	exitLine   string // the last line with "EXIT:"
	scxErr     string // the first line naming scx_bpf_error
	libbpfErr  string // the first error line of libbpf's (why a load failed)
	dump       dumpScan
	dropped    int64 // lines the guest agent said it did not forward
}

func newSchedLog(name string) *schedLog {
	s := &schedLog{block: newLineLog(name, nil)}
	s.all = newLineLog(name, s.line)
	s.all.headMax, s.block.headMax = HeadLines, HeadLines
	return s
}

// splitSchedLine splits a scheduler log line the guest agent labelled,
// "[    2.512345] stderr: text", into its stream and text; any other line
// is all text, with no stream.
func splitSchedLine(l string) (stream, text string) {
	if len(l) < 10 || l[0] != '[' {
		return "", l
	}
	end := strings.Index(l, "] ")
	if end < 0 {
		return "", l
	}
	sec, us, ok := strings.Cut(strings.TrimLeft(l[1:end], " "), ".")
	if !ok || sec == "" || len(us) != 6 || strings.Trim(sec+us, "0123456789") != "" {
		return "", l
	}
	stream, text, ok = strings.Cut(l[end+2:], ": ")
	switch {
	case !ok:
		return "", l
	case stream == "stdout", stream == "stderr", stream == "ktstr":
		return stream, text
	}
	return "", l
}

func (s *schedLog) Write(p []byte) {
	if len(p) > 0 {
		s.seen = true
	}
	s.all.Write(p)
}

func (s *schedLog) line(l string) {
	t := strings.TrimSpace(l)
	switch {
	case t == SchedOutputStart:
		s.inBlock, s.sawStart = true, true
		s.block.reset()
		return
	case t == SchedOutputEnd:
		s.inBlock = false
		return
	}
	if s.inBlock {
		s.block.push(l)
	}
	stream, t := splitSchedLine(t)
	t = strings.TrimSpace(t)
	if stream == "ktstr" {
		if n, _, ok := strings.Cut(t, " lines of output dropped"); ok {
			if k, err := strconv.ParseInt(n, 10, 64); err == nil && k > 0 {
				s.dropped = k
			}
		}
		return // the harness's own note, not the scheduler's output
	}
	if i := strings.Index(t, "EXIT:"); i >= 0 {
		s.exitLine = t[i:]
	}
	if s.scxErr == "" && strings.Contains(t, "scx_bpf_error") && !strings.Contains(t, "EXIT:") {
		s.scxErr = t
	}
	if s.libbpfErr == "" && libbpfError(t) {
		s.libbpfErr = t
	}
	s.dump.line(t)
}

func (s *schedLog) log(n int) *Log {
	s.all.Finish()
	l := s.all.log(n)
	if s.sawStart {
		l = s.block.log(n)
	}
	l.DroppedInGuest = s.dropped
	return l
}

// libbpfError reports whether t is one of libbpf's error lines
// ("libbpf: failed to open system Kconfig", "libbpf: prog 'x': BPF
// program load failed: Permission denied"), which say why a scheduler
// could not load.
func libbpfError(t string) bool {
	rest, ok := strings.CutPrefix(t, "libbpf: ")
	if !ok {
		return false
	}
	rest = strings.ToLower(rest)
	for _, w := range []string{"fail", "error", "invalid", "cannot", "can't", "unable", "not found", "not supported"} {
		if strings.Contains(rest, w) {
			return true
		}
	}
	return false
}

// dumpScan finds the body of a sched_ext dump's "triggered exit kind"
// header: the next non-empty line.
type dumpScan struct {
	want bool
	body string
}

func (d *dumpScan) line(t string) {
	if d.body != "" {
		return
	}
	if d.want && t != "" {
		d.body = t
		return
	}
	if strings.Contains(t, "triggered exit kind") {
		d.want = true
	}
}

type console struct {
	log   *lineLog
	panic bool
}

// Folder accumulates the records and console files of one run.
type Folder struct {
	cfg   Config
	name  string
	c     Counts
	diags map[string]int64
	noise *HostNoise // AddNoise

	test     []byte
	testSeen bool
	exit     *int32
	sched    *int32 // the first valid SCDX exit code
	schedN   int64  // valid SCDX entries
	schedBad int64  // SCDX entries without a 4-byte code
	kill     *int32 // exit code of the first kill effect that has one
	killed   bool   // a kill effect, with an exit code or without
	crsh     string
	panicMsg evidence // first "PANIC:" line
	kpanic   evidence // first "Kernel panic - not syncing" line
	phases   []wire.Phase
	reasons  map[wire.Phase]string
	steps    []Step // the first maxSteps STIM frames
	moreStep *Step  // the first STIM not kept: it closes the last kept step
	stepsOut int    // STIM frames not kept
	scen     Scenario
	vmEnd    *wire.VMEnd
	// forgedEnds counts VEND frames that other frames followed.
	forgedEnds int64
	// nonce is the run's nonce from the HELO the stream begins with
	// (ktstr-drain writes it before any guest byte); when set, a HELO,
	// LOSS or VEND without it was forged by the guest (forgedHost).
	nonce      wire.Nonce
	forgedHost int64
	hostBlk    hostBlock // ktstr-boot's frames (HBLK, HDMP, HMON)

	schedLog *schedLog // SCLG
	outLog   *schedLog // SOUT and SERR
	kernel   *lineLog  // DMSG
	consoles []*console

	splats    []splatHit
	splatSeen map[string]bool // the listed splats (kind, text)
	splatMore int64           // splat lines not listed
	disables  disableScan
	kscxErr   string
	kdump     dumpScan
	readErrs  []string
	finished  bool
}

// NewFolder starts a run named name.
func NewFolder(name string, cfg Config) *Folder {
	if cfg.SplatStatus == "" {
		cfg.SplatStatus = StatusFail
	}
	f := &Folder{
		cfg:       cfg,
		name:      name,
		diags:     map[string]int64{},
		reasons:   map[wire.Phase]string{},
		schedLog:  newSchedLog("sched_log"),
		outLog:    newSchedLog("output"),
		splatSeen: map[string]bool{},
	}
	f.kernel = newLineLog("dmesg", func(l string) { f.scanKernel("dmesg", l) })
	f.outLog.all.onLine = func(l string) {
		f.outLog.line(l)
		f.scanPanic("output", l)
	}
	return f
}

// Fold reads every record from r into a new Folder and returns it; a
// stream that cannot be read to its end is recorded as an
// infrastructure error.
func Fold(name string, cfg Config, r io.Reader) *Folder {
	f := NewFolder(name, cfg)
	rd := record.NewReader(r)
	for {
		rec, err := rd.Read()
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

// Add folds one record.
func (f *Folder) Add(r *record.Record) {
	c := &f.c
	c.Records++
	switch r.Kind {
	case record.KindEffect:
		c.Effects++
		if r.Effect == record.EffectKill {
			c.Kills++
			f.killed = true
			if f.kill == nil && r.HasExitCode {
				code := r.ExitCode
				f.kill = &code
			}
		}
		return
	case record.KindDiag:
		c.Diags++
		f.diags[r.Diag]++
		return
	case record.KindEntry:
	default:
		c.UnknownKinds++
		return
	}
	c.Entries++
	// ktstr-drain appends the real VEND as the very last frame; a VEND
	// that more frames follow was written by the guest and is discarded.
	if f.vmEnd != nil {
		f.vmEnd = nil
		f.forgedEnds++
	}
	f.hostBlk.see(wire.Type(r.MsgType), r.CRCOK, r.Payload, f.host)
	if !r.CRCOK {
		c.BadCRC++
		return
	}
	if t := wire.Type(r.MsgType); t == wire.TypeHello && c.Entries == 1 {
		if n, err := wire.DecodeHello(r.Payload); err == nil {
			f.nonce = n
			return
		}
	}
	f.entry(wire.Type(r.MsgType), r.Payload)
}

func (f *Folder) entry(t wire.Type, p []byte) {
	switch t {
	case wire.TypeTestResult:
		f.test, f.testSeen = p, true
	case wire.TypeExit:
		if code, err := wire.DecodeExitCode(t, p); err == nil {
			f.exit = &code
		}
	case wire.TypeSchedExit:
		if code, err := wire.DecodeExitCode(t, p); err == nil {
			if f.sched == nil {
				f.sched = &code
			}
			f.schedN++
		} else {
			f.schedBad++
		}
	case wire.TypeCrash:
		if f.crsh == "" {
			f.crsh = cutText(firstLine(wire.Lossy(p[:min(len(p), 2*maxText)])))
			if f.crsh == "" {
				f.crsh = "(empty crash report)"
			}
		}
	case wire.TypeLifecycle:
		if l, err := wire.DecodeLifecycle(p); err == nil {
			if _, ok := f.reasons[l.Phase]; !ok {
				f.phases = append(f.phases, l.Phase)
				f.reasons[l.Phase] = cutText(l.Reason)
			}
		}
	case wire.TypeScenarioStart:
		f.scen.Starts++
	case wire.TypeScenarioPause:
		f.scen.Pauses++
	case wire.TypeScenarioResume:
		f.scen.Resumes++
	case wire.TypeScenarioEnd:
		if e, err := wire.DecodeScenarioEnd(p); err == nil && f.scen.EndMS == nil {
			f.scen.EndMS, f.scen.TotalIterations = &e.ElapsedMS, &e.TotalIterations
		}
	case wire.TypeStimulus:
		if s, err := wire.DecodeStimulus(p); err == nil {
			st := Step{Index: s.StepIndex, StartMS: s.ElapsedMS, Ops: s.OpCount, OpKinds: s.OpKinds,
				Cgroups: s.CgroupCount, Workers: s.WorkerCount, StartIterations: s.TotalIterations}
			switch {
			case len(f.steps) < maxSteps:
				f.steps = append(f.steps, st)
			case f.moreStep == nil:
				f.moreStep = &st
				f.stepsOut++
			default:
				f.stepsOut++
			}
		}
	case wire.TypeStepEnd:
		// Once STIM frames are no longer kept, an STEN may belong to one
		// that was not: it closes nothing.
		if s, err := wire.DecodeStimulus(p); err == nil && f.stepsOut == 0 {
			for i := len(f.steps) - 1; i >= 0; i-- {
				st := &f.steps[i]
				if st.Index == s.StepIndex && st.EndMS == nil {
					end, it := uint64(s.ElapsedMS), s.TotalIterations
					st.EndMS, st.EndIterations, st.EndFrom = &end, &it, "step_end"
					break
				}
			}
		}
	case wire.TypeSchedLog:
		f.schedLog.Write(p)
	case wire.TypeDmesg:
		if len(p) > 0 {
			f.kernel.Write(p)
			if p[len(p)-1] != '\n' {
				f.kernel.Write([]byte{'\n'}) // ktstr joins DMSG payloads with "\n"
			}
		}
	case wire.TypeStdout, wire.TypeStderr:
		f.outLog.Write(p)
	case wire.TypeHello:
		if n, err := wire.DecodeHello(p); err == nil && !f.host(n) {
			f.forgedHost++ // a drain that resumed writes none; the same nonce is harmless
		}
	case wire.TypeLoss:
		if l, err := wire.DecodeLoss(p); err == nil {
			if !f.host(l.Nonce) {
				f.forgedHost++
				return
			}
			f.c.LostFrames = max(f.c.LostFrames, l.Frames)
			f.c.LostBytes = max(f.c.LostBytes, l.Bytes)
		}
	case wire.TypeVMEnd:
		if e, err := wire.DecodeVMEnd(p); err == nil {
			if !f.host(e.Nonce) {
				f.forgedHost++
				return
			}
			f.vmEnd = &e
		}
	}
}

// host reports whether a host-origin frame with nonce n may be the host's:
// it carries the nonce of the HELO the stream began with, or the stream
// began with none and nothing can be checked.
func (f *Folder) host(n wire.Nonce) bool {
	return f.nonce.IsZero() || n == f.nonce
}

// ReadError records that the record stream could not be read to its end.
func (f *Folder) ReadError(err error) {
	f.readErrs = append(f.readErrs, fmt.Sprintf("records unreadable after %d records: %v", f.c.Records, err))
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
		if f.scanPanic(name, l) {
			c.panic = true
		}
		f.scanKernel(name, l)
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
			f.readErrs = append(f.readErrs, fmt.Sprintf("console %s unreadable: %v", name, err))
			c.log.Finish()
			return err
		}
	}
	c.log.Finish()
	return nil
}

// ConsoleError records a console file that could not be opened.
func (f *Folder) ConsoleError(name string, err error) {
	f.readErrs = append(f.readErrs, fmt.Sprintf("console %s unreadable: %v", name, err))
}

// scanPanic looks for ktstr's panic-hook line; it reports whether l is one.
func (f *Folder) scanPanic(source, l string) bool {
	t := strings.TrimSpace(l)
	if !strings.HasPrefix(t, "PANIC:") {
		return false
	}
	if f.panicMsg.text == "" {
		msg := strings.TrimSpace(strings.TrimPrefix(t, "PANIC:"))
		if msg == "" {
			msg = "(empty panic message)"
		}
		f.panicMsg = evidence{msg, source}
	}
	return true
}

// scanKernel looks at one kernel log line (DMSG or a console).
func (f *Folder) scanKernel(source, l string) {
	t := kernelText(l)
	if t == "" {
		return
	}
	if f.kpanic.text == "" && strings.HasPrefix(t, "Kernel panic - not syncing") {
		f.kpanic = evidence{t, source}
	}
	if kind := matchSplat(f.cfg.Splats, t); kind != "" {
		f.c.Splats++
		switch key := kind + "\x00" + t; {
		case f.splatSeen[key]: // listed already
		case len(f.splats) < maxSplatFindings:
			f.splatSeen[key] = true
			f.splats = append(f.splats, splatHit{kind, t, source})
		default:
			f.splatMore++
		}
	}
	if strings.HasPrefix(t, "sched_ext: ") {
		f.disables.line(source, t)
	}
	if f.kscxErr == "" && strings.Contains(t, "scx_bpf_error") {
		f.kscxErr = t
	}
	f.kdump.line(t)
}

// Verdict finishes the fold. It may be called once.
func (f *Folder) Verdict() Verdict {
	if !f.finished {
		f.finished = true
		f.kernel.Finish()
		f.schedLog.all.Finish()
		f.outLog.all.Finish()
	}
	// Every string of the Verdict that the guest (or a file name) may
	// have chosen goes through sanitize.String, so that no report of it,
	// in any format, can steer a terminal.
	v := Verdict{Name: sanitize.String(f.name), Counts: f.c, Findings: []Finding{}}
	if len(f.diags) > 0 {
		v.Diags = map[string]int64{}
		for k, n := range f.diags {
			v.Diags[sanitize.String(k)] += n
		}
	}
	add := func(fd Finding) {
		fd.Kind, fd.Message, fd.Source = sanitize.String(fd.Kind), sanitize.String(fd.Message), sanitize.String(fd.Source)
		for i, l := range fd.Lines {
			fd.Lines[i] = sanitize.String(l)
		}
		v.Findings = append(v.Findings, fd)
	}

	// The guest's own result: the last CRC-valid TEST.
	if f.testSeen {
		res, err := payload.UnmarshalAssertResult(f.test)
		if err != nil {
			add(Finding{Status: StatusFail, Cause: CauseNoResult, Source: "TEST", Message: fmt.Sprintf("the test result does not decode: %v", err)})
		} else {
			cleanResult(res)
			v.Result = res
			outcomeFindings(res.Outcomes, add)
		}
	}
	v.Stage = f.stage(v.Result != nil)
	for _, p := range f.phases {
		v.Phases = append(v.Phases, p.String())
	}
	v.HostNonce = !f.nonce.IsZero()
	v.GuestExit = f.exit
	if f.sched != nil {
		code := *f.sched
		v.SchedExit = &code
	} else if f.kill != nil {
		code := *f.kill
		v.SchedExit = &code
	}
	if e := f.vmEnd; e != nil {
		v.VMEnd = &VMEnd{Reason: e.Reason.String(), ExitCode: e.ExitCode, Elapsed: math.Round(time.Duration(e.ElapsedNS).Seconds()*1e6) / 1e6}
	}

	sl := f.schedLog
	if !sl.seen {
		sl = f.outLog // ktstr: no SCLG means the guest's output is the scheduler log
	}
	died := f.schedulerDied(sl, add)
	crashed := f.crash(add)
	timedOut := false
	if e := f.vmEnd; e != nil && e.Reason == wire.EndTimeout {
		timedOut = true
		msg := "no result arrived before the watchdog deadline"
		if f.testSeen {
			msg = "the result arrived but the guest did not power off before the watchdog deadline"
		} else if d := f.errorDisable(); d != nil {
			msg += fmt.Sprintf(" (scheduler %s exited: %s)", d.name, d.reason)
		}
		add(Finding{Status: StatusFail, Cause: CauseTimeout, Message: msg, Source: "VEND"})
	}
	f.splatFindings(add)
	if f.vmEnd != nil && f.hostBlk.open {
		if n := len(f.hostBlk.dumps); n > 0 {
			v.FailureDump = f.hostBlk.dumps[n-1]
		}
		v.Monitor = monitorFindings(f.hostBlk.mons, add)
	}

	infra := f.infraFindings(add)
	if v.Result == nil && !f.testSeen && !timedOut && !crashed && !died {
		msg := v.Stage
		if e := f.vmEnd; e != nil && e.Reason == wire.EndKilled {
			msg += "; the VM was stopped on request"
		}
		st := StatusFail
		if infra {
			st = StatusInfra // the result may be among what was lost
			msg += " (the result may be among what was lost)"
		}
		add(Finding{Status: st, Cause: CauseNoResult, Message: msg})
	}

	f.hostContention(&v)

	// Fold.
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
	v.BugSummary = sanitize.String(f.bugSummary(sl))

	v.Steps = f.timeline()
	v.StepsNotListed = f.stepsOut
	v.Scenario = f.scen
	if sl.seen {
		v.Logs.Sched = sl.log(TailLines)
	}
	if f.kernel.total > 0 {
		v.Logs.Kernel = f.kernel.log(TailLines)
	}
	if f.outLog.seen {
		v.Logs.Output = f.outLog.all.log(TailLines)
	}
	for _, c := range f.consoles {
		n := TailLines
		if c.panic {
			n = keepLines
		}
		v.Logs.Console = append(v.Logs.Console, *c.log.log(n))
	}
	return v
}

// outcomeFindings adds a finding for each Fail, Inconclusive and Skip
// outcome, the first maxOutcomeFindings of each, and one that counts the
// rest.
func outcomeFindings(os []payload.Outcome, add func(Finding)) {
	kinds := []struct {
		v            payload.Verdict
		status       Status
		cause, words string
	}{
		{payload.Fail, StatusFail, CauseAssertion, "failed"},
		{payload.Inconclusive, StatusInconclusive, CauseInconclusive, "inconclusive"},
		{payload.Skip, StatusSkip, CauseSkip, "skipped"},
	}
	for _, k := range kinds {
		n := 0
		for _, o := range os {
			if o.Verdict != k.v {
				continue
			}
			if n < maxOutcomeFindings {
				status, cause := k.status, k.cause
				switch {
				case k.v != payload.Fail:
				case o.Kind == payload.KindInfra: // the guest did not get the machine it was given
					status, cause = StatusInfra, CauseInfra
				case o.Kind == payload.KindSchedulerDetached:
					cause = CauseSchedDetached
				}
				add(Finding{Status: status, Cause: cause, Kind: cutText(o.Kind), Message: cutText(o.Message), Source: "TEST"})
			}
			n++
		}
		if more := int64(n - maxOutcomeFindings); more > 0 {
			add(Finding{Status: k.status, Cause: k.cause, Kind: "more", Source: "TEST",
				Message: fmt.Sprintf("and %d more %s %s not listed", more, k.words, pluralWord(more, "check"))})
		}
	}
}

// stage is ktstr's classify_init_stage over CRC-valid LIFE entries.
func (f *Folder) stage(result bool) string {
	if result {
		return "test result received"
	}
	if _, ok := f.reasons[wire.PhasePayloadStarting]; ok {
		return "payload started but produced no test result"
	}
	if len(f.phases) > 0 {
		return "init started but payload never ran (cgroup/scheduler setup failed)"
	}
	return "init script never started (kernel or mount failure)"
}

// errorDisable is the first sched_ext exit the kernel logged with an
// error reason.
func (f *Folder) errorDisable() *schedDisable { return f.disables.first }

// disableScan follows the kernel's sched_ext "disabled" lines in constant
// memory and constant time per line. Only the first one with an error
// reason matters to the verdict; the message line that follows a
// "disabled" line from the same source belongs to it. The same line seen
// again (from another source: DMSG and a console carry the same kernel
// log) is not a new one.
type disableScan struct {
	seen   map[string]bool // the first maxDisableLines distinct lines
	first  *schedDisable   // the first with an error reason
	last   *schedDisable   // the last new line: a message line belongs to it
	others int64           // new lines other than first
}

func (d *disableScan) line(source, t string) {
	if m := disableRe.FindStringSubmatch(t); m != nil {
		if d.seen[t] || d.first != nil && d.first.line == t {
			return // the same message from another source
		}
		if d.seen == nil {
			d.seen = map[string]bool{}
		}
		if len(d.seen) < maxDisableLines {
			d.seen[t] = true
		}
		d.last = &schedDisable{name: m[1], reason: m[2], line: t, source: source}
		if d.first == nil && !benignDisable[m[2]] {
			d.first = d.last
		} else {
			d.others++
		}
		return
	}
	if m := schedMsg.FindStringSubmatch(t); m != nil && d.last != nil {
		if l := d.last; l.msg == "" && l.name == m[1] && l.source == source {
			l.msg, l.msgLine = m[2], t
		}
	}
}

func (f *Folder) schedulerDied(sl *schedLog, add func(Finding)) bool {
	d := f.errorDisable()
	var lines []string
	if sl.exitLine != "" {
		lines = append(lines, sl.exitLine)
	}
	detail := ""
	if d != nil {
		lines = append(lines, d.line)
		detail = d.reason
		if d.msg != "" {
			lines = append(lines, d.msgLine)
			detail += ": " + d.msg
		}
		if n := f.disables.others; n > 0 {
			lines = append(lines, fmt.Sprintf("and %d more sched_ext \"disabled\" %s", n, pluralWord(n, "line")))
		}
	} else if sl.exitLine != "" {
		detail = sl.exitLine
	} else if sl.libbpfErr != "" {
		// It never attached: libbpf says why it could not load.
		lines = append(lines, sl.libbpfErr)
		detail = sl.libbpfErr
	}
	with := func(s string) string {
		if detail != "" {
			return s + ": " + detail
		}
		return s
	}
	switch {
	case f.sched != nil || f.kill != nil:
		var code int32
		if f.sched != nil {
			code = *f.sched
		} else {
			code = *f.kill
		}
		msg := fmt.Sprintf("scheduler exited with code %d", code)
		if name := errnoName(code); name != "" {
			msg += " (" + name + ")"
		}
		if n := f.schedN; n > 1 {
			msg += fmt.Sprintf(" (%d SCDX frames)", n)
		}
		add(Finding{Status: StatusFail, Cause: CauseSchedulerDied, Message: with(msg), Source: "SCDX", Lines: lines})
	case f.schedBad > 0 || f.killed:
		// An SCDX whose payload is not 4 bytes stops the scheduler (the
		// kill effect has no exit_code) but carries no code.
		add(Finding{Status: StatusFail, Cause: CauseSchedulerDied, Message: with("scheduler exited with no exit code (SCDX payload not 4 bytes)"), Source: "SCDX", Lines: lines})
	case d != nil:
		add(Finding{Status: StatusFail, Cause: CauseSchedulerDied, Message: with(fmt.Sprintf("the kernel disabled scheduler %q", d.name)), Source: d.source, Lines: lines})
	default:
		if reason, ok := f.reasons[wire.PhaseSchedulerNotAttached]; ok {
			// The harness stops a scheduler that did not attach in time:
			// what it says then (its EXIT line) answers that signal and is
			// not shown as its failure.
			if reason == "" {
				reason = "the scheduler did not attach to sched_ext"
			}
			add(Finding{Status: StatusFail, Cause: CauseNotAttached, Message: reason, Source: "LIFE"})
			return true
		}
		if _, ok := f.reasons[wire.PhaseSchedulerDied]; ok {
			add(Finding{Status: StatusFail, Cause: CauseSchedulerDied, Message: with("scheduler died during startup"), Source: "LIFE", Lines: lines})
			return true
		}
		return false
	}
	return true
}

// crash adds one crash finding with the best evidence first: the CRSH
// entry, a "PANIC:" line (ktstr's crash_message), a kernel panic, then
// the host's account (VEND crash).
func (f *Folder) crash(add func(Finding)) bool {
	var ev []evidence
	if f.crsh != "" {
		ev = append(ev, evidence{f.crsh, "CRSH"})
	}
	if f.panicMsg.text != "" {
		ev = append(ev, f.panicMsg)
	}
	if f.kpanic.text != "" {
		ev = append(ev, f.kpanic)
	}
	if e := f.vmEnd; e != nil && e.Reason == wire.EndCrash {
		ev = append(ev, evidence{"the VM reset before the guest agent finished", "VEND"})
	}
	if len(ev) == 0 {
		return false
	}
	fd := Finding{Status: StatusFail, Cause: CauseCrash, Message: ev[0].text, Source: ev[0].source}
	for _, e := range ev[1:] {
		fd.Lines = append(fd.Lines, e.source+": "+e.text)
	}
	add(fd)
	return true
}

func (f *Folder) splatFindings(add func(Finding)) {
	for _, s := range f.splats {
		add(Finding{Status: f.cfg.SplatStatus, Cause: CauseSplat, Kind: s.kind, Message: s.text, Source: s.source})
	}
	if f.splatMore > 0 {
		add(Finding{Status: f.cfg.SplatStatus, Cause: CauseSplat, Kind: "more",
			Message: fmt.Sprintf("and %d more splat %s not listed", f.splatMore, pluralWord(f.splatMore, "line"))})
	}
}

// infraFindings adds what makes the record stream untrustworthy and
// reports whether there was any.
func (f *Folder) infraFindings(add func(Finding)) bool {
	n := 0
	infra := func(source, msg string) {
		add(Finding{Status: StatusInfra, Cause: CauseInfra, Message: msg, Source: source})
		n++
	}
	if c := f.c; c.LostFrames > 0 || c.LostBytes > 0 {
		infra("LOSS", fmt.Sprintf("the guest dropped %s (%d bytes): the ring was full", plural(int64(c.LostFrames), "frame"), c.LostBytes))
	}
	if bad := max(f.diags[record.DiagCRCMismatch], f.c.BadCRC); bad > 0 {
		infra("diag", fmt.Sprintf("%s failed the CRC check (ignored, so they may have carried anything)", plural(bad, "frame")))
	}
	if k := f.diags[record.DiagTruncatedTail]; k > 0 {
		infra("diag", "the frame stream ended inside a frame (truncated tail)")
	}
	if k := f.diags[record.DiagOversized]; k > 0 {
		infra("diag", fmt.Sprintf("%s oversized: the assembler dropped it and the rest of the stream", plural(k, "frame")))
	}
	if k := f.diags[record.DiagResidualOverflow]; k > 0 {
		infra("diag", fmt.Sprintf("the assembler's pending buffer overflowed (%s): it dropped the rest of the stream", plural(k, "time")))
	}
	for _, e := range f.readErrs {
		infra("records", e)
	}
	if f.hostBlk.forged > 0 {
		infra("HBLK", fmt.Sprintf("%s outside ktstr-drain's host block: forged by the guest and ignored", plural(f.hostBlk.forged, "host frame")))
	}
	if f.forgedHost > 0 {
		infra("HELO", fmt.Sprintf("%s (HELO, LOSS, VEND) without the run's nonce, which the stream's HELO gave: forged by the guest and ignored",
			plural(f.forgedHost, "host frame")))
	}
	if f.forgedEnds > 0 {
		infra("VEND", fmt.Sprintf("%s not at the end of the stream, where ktstr-drain writes it: forged by the guest and ignored", plural(f.forgedEnds, "VM end record")))
	}
	if e := f.vmEnd; e != nil && e.Reason == wire.EndVMMError {
		infra("VEND", fmt.Sprintf("the VMM failed or ktstr-boot died before closing the region (ktstr-boot exit %d)", e.ExitCode))
	}
	if f.cfg.RequireEnd && f.vmEnd == nil {
		infra("VEND", "no VM end record: the stream is not from a closed region, so frames may be missing")
	}
	return n > 0
}

// bugSummary is ktstr's BUG SUMMARY: the sched_ext dump's exit body, or
// the kernel's message for an error exit, or the first line naming
// scx_bpf_error (other than the scheduler's EXIT line).
func (f *Folder) bugSummary(sl *schedLog) string {
	switch {
	case f.kdump.body != "":
		return f.kdump.body
	case sl.dump.body != "":
		return sl.dump.body
	}
	if d := f.errorDisable(); d != nil && d.msg != "" {
		return d.msg
	}
	if sl.scxErr != "" {
		return sl.scxErr
	}
	if f.kscxErr != "" {
		return f.kscxErr
	}
	return sl.libbpfErr
}

// timeline closes steps that have no STEN with the next step's start,
// then with SCEN, and computes each step's iteration rate.
func (f *Folder) timeline() []Step {
	steps := append([]Step(nil), f.steps...)
	for i := range steps {
		s := &steps[i]
		if s.EndMS == nil {
			switch {
			case i+1 < len(steps) || f.moreStep != nil:
				next := f.moreStep
				if i+1 < len(steps) {
					next = &steps[i+1]
				}
				end, it := uint64(next.StartMS), next.StartIterations
				s.EndMS, s.EndIterations, s.EndFrom = &end, &it, "next_step"
			case f.scen.EndMS != nil:
				end, it := *f.scen.EndMS, *f.scen.TotalIterations
				s.EndMS, s.EndIterations, s.EndFrom = &end, &it, "scenario_end"
			}
		}
		if s.EndMS != nil && *s.EndMS > uint64(s.StartMS) && *s.EndIterations >= s.StartIterations {
			ms := float64(*s.EndMS - uint64(s.StartMS))
			s.Rate = math.Round(float64(*s.EndIterations-s.StartIterations)*1000/ms*10) / 10
		}
	}
	return steps
}

// cleanResult makes a decoded result safe to report: its strings are
// sanitised, and non-finite floats, which JSON cannot carry, become 0
// with a note in the result's info notes.
func cleanResult(r *payload.AssertResult) {
	r.Scenario = sanitize.String(r.Scenario)
	for i := range r.Outcomes {
		o := &r.Outcomes[i]
		o.Kind, o.Message = sanitize.String(o.Kind), sanitize.String(o.Message)
	}
	for i := range r.Passes {
		p := &r.Passes[i]
		p.Check, p.Message = sanitize.String(p.Check), sanitize.String(p.Message)
	}
	for i := range r.InfoNotes {
		r.InfoNotes[i] = sanitize.String(r.InfoNotes[i])
	}
	for i := range r.Stats.Cgroups {
		r.Stats.Cgroups[i].Name = sanitize.String(r.Stats.Cgroups[i].Name)
	}
	if len(r.Measurements) > 0 {
		m := make(payload.Measurements, len(r.Measurements))
		for _, k := range slices.Sorted(maps.Keys(r.Measurements)) {
			sk := sanitize.String(k)
			if _, dup := m[sk]; dup {
				r.InfoNotes = append(r.InfoNotes, "verdict: measurement "+sk+" given twice once escaped; the first is kept")
				continue
			}
			m[sk] = r.Measurements[k]
		}
		r.Measurements = m
	}
	fix := func(p *float64, what string) {
		if math.IsNaN(*p) || math.IsInf(*p, 0) {
			r.InfoNotes = append(r.InfoNotes, fmt.Sprintf("verdict: non-finite %s (%v) shown as 0", what, *p))
			*p = 0
		}
	}
	stats := func(s *payload.ScenarioStats, name string) {
		fix(&s.WorstSpreadPct, name+".worst_spread_pct")
		fix(&s.WorstGapMS, name+".worst_gap_ms")
		for i := range s.Cgroups {
			fix(&s.Cgroups[i].SpreadPct, fmt.Sprintf("%s.cgroups[%d].spread_pct", name, i))
			fix(&s.Cgroups[i].MaxGapMS, fmt.Sprintf("%s.cgroups[%d].max_gap_ms", name, i))
		}
	}
	stats(&r.Stats, "stats")
	if r.StatsAfterDetach != nil {
		stats(r.StatsAfterDetach, "stats_after_detach")
	}
	if si := r.Scheduler; si != nil {
		fix(&si.AttachMS, "scheduler.attach_ms")
		if d := si.Detached; d != nil {
			fix(&d.AtMS, "scheduler.detached.at_ms")
			fix(&d.ForMS, "scheduler.detached.for_ms")
			fix(&d.KernelS, "scheduler.detached.kernel_s")
			fix(&d.ReattachedMS, "scheduler.detached.reattached_ms")
		}
	}
	for _, k := range slices.Sorted(maps.Keys(r.Measurements)) {
		x := r.Measurements[k]
		fix(&x, "measurements."+k)
		r.Measurements[k] = x
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
