package verdict

import (
	"bytes"
	"fmt"
	"regexp"
	"slices"
	"strings"

	"github.com/ktstr-go/ktstr/internal/schedlog"
	"github.com/ktstr-go/ktstr/lib/record"
	"github.com/ktstr-go/ktstr/lib/wire"
)

// schedFold is the scheduler's part of a fold: its exit codes (SCDX
// entries, kill effects), its log (SCLG, or the guest's output when there
// is none), and what the kernel says about it (sched_ext's "disabled"
// lines, scx_bpf_error, a dump). It answers whether the scheduler died,
// and how, and gives the BUG SUMMARY.
type schedFold struct {
	code    *int32 // the first valid SCDX exit code
	codes   int64  // valid SCDX entries
	bad     int64  // SCDX entries without a 4-byte code
	kill    *int32 // exit code of the first kill effect that has one
	killed  bool   // a kill effect, with an exit code or without
	log     *schedLog
	out     *schedLog // SOUT and SERR
	disable disableScan
	scxErr  string // the first kernel line naming scx_bpf_error
	dump    dumpScan
}

func newSchedFold() schedFold {
	return schedFold{log: newSchedLog("sched_log"), out: newSchedLog("output")}
}

// killEffect notes a kill effect.
func (s *schedFold) killEffect(r *record.Record) {
	s.killed = true
	if s.kill == nil && r.HasExitCode {
		code := r.ExitCode
		s.kill = &code
	}
}

// exit notes an SCDX entry.
func (s *schedFold) exit(t wire.Type, p []byte) {
	code, err := wire.DecodeExitCode(t, p)
	if err != nil {
		s.bad++
		return
	}
	if s.code == nil {
		s.code = &code
	}
	s.codes++
}

// kernelLine looks at one kernel log line, its printk decorations gone.
func (s *schedFold) kernelLine(source, t string) {
	if strings.HasPrefix(t, "sched_ext: ") {
		s.disable.line(source, t)
	}
	if s.scxErr == "" && strings.Contains(t, "scx_bpf_error") {
		s.scxErr = t
	}
	s.dump.line(t)
}

// finish ends both logs.
func (s *schedFold) finish() {
	s.log.all.Finish()
	s.out.all.Finish()
}

// schedLogOf is the scheduler's log: SCLG, or without it the guest's
// output, as ktstr reads it.
func (s *schedFold) schedLogOf() *schedLog {
	if !s.log.seen {
		return s.out
	}
	return s.log
}

// exitCode is the scheduler's exit code for the report: the first SCDX,
// else the first kill effect's.
func (s *schedFold) exitCode() *int32 {
	for _, c := range []*int32{s.code, s.kill} {
		if c != nil {
			code := *c
			return &code
		}
	}
	return nil
}

// errorDisable is the first sched_ext exit the kernel logged with an
// error reason.
func (s *schedFold) errorDisable() *schedDisable { return s.disable.first }

// died adds the finding that the scheduler died, if it did, given the
// guest's lifecycle phases (reasons), and reports whether it added one.
func (s *schedFold) died(reasons map[wire.Phase]string, add func(Finding)) bool {
	sl := s.schedLogOf()
	d := s.errorDisable()
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
		if n := s.disable.others; n > 0 {
			lines = append(lines, fmt.Sprintf("and %d more sched_ext \"disabled\" %s", n, pluralWord(n, "line")))
		}
	} else if sl.exitLine != "" {
		detail = sl.exitLine
	} else if sl.libbpfErr != "" {
		// It never attached: libbpf says why it could not load.
		lines = append(lines, sl.libbpfErr)
		detail = sl.libbpfErr
	}
	with := func(m string) string {
		if detail != "" {
			return m + ": " + detail
		}
		return m
	}
	switch {
	case s.code != nil || s.kill != nil:
		code := *s.exitCode()
		msg := fmt.Sprintf("scheduler exited with code %d", code)
		if name := errnoName(code); name != "" {
			msg += " (" + name + ")"
		}
		if n := s.codes; n > 1 {
			msg += fmt.Sprintf(" (%d SCDX frames)", n)
		}
		add(Finding{Status: StatusFail, Cause: CauseSchedulerDied, Message: with(msg), Source: "SCDX", Lines: lines})
	case s.bad > 0 || s.killed:
		// An SCDX whose payload is not 4 bytes stops the scheduler (the
		// kill effect has no exit_code) but carries no code.
		add(Finding{Status: StatusFail, Cause: CauseSchedulerDied, Message: with("scheduler exited with no exit code (SCDX payload not 4 bytes)"), Source: "SCDX", Lines: lines})
	case d != nil:
		add(Finding{Status: StatusFail, Cause: CauseSchedulerDied, Message: with(fmt.Sprintf("the kernel disabled scheduler %q", d.name)), Source: d.source, Lines: lines})
	default:
		if reason, ok := reasons[wire.PhaseSchedulerNotAttached]; ok {
			// The harness stops a scheduler that did not attach in time:
			// what it says then (its EXIT line) answers that signal and is
			// not shown as its failure.
			if reason == "" {
				reason = "the scheduler did not attach to sched_ext"
			}
			add(Finding{Status: StatusFail, Cause: CauseNotAttached, Message: reason, Source: "LIFE"})
			return true
		}
		if _, ok := reasons[wire.PhaseSchedulerDied]; ok {
			add(Finding{Status: StatusFail, Cause: CauseSchedulerDied, Message: with("scheduler died during startup"), Source: "LIFE", Lines: lines})
			return true
		}
		return false
	}
	return true
}

// bugSummary is ktstr's BUG SUMMARY: the sched_ext dump's exit body, or
// the kernel's message for an error exit, or the first line naming
// scx_bpf_error (other than the scheduler's EXIT line).
func (s *schedFold) bugSummary() string {
	sl := s.schedLogOf()
	switch {
	case s.dump.body != "":
		return s.dump.body
	case sl.dump.body != "":
		return sl.dump.body
	}
	if d := s.errorDisable(); d != nil && d.msg != "" {
		return d.msg
	}
	if sl.scxErr != "" {
		return sl.scxErr
	}
	if s.scxErr != "" {
		return s.scxErr
	}
	return sl.libbpfErr
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
	// also takes every line that may matter (mayMatter) as text, after
	// line: the output's "PANIC:" lines.
	also func(string)
}

func newSchedLog(name string) *schedLog {
	s := &schedLog{block: newLineLog(name, nil)}
	s.all = newLineLog(name, nil)
	s.all.onRaw, s.all.scan = s.raw, scanWords
	s.all.headMax, s.block.headMax = HeadLines, HeadLines
	return s
}

func (s *schedLog) Write(p []byte) {
	if len(p) > 0 {
		s.seen = true
	}
	s.all.Write(p)
}

// raw takes one line as the guest's bytes. Most lines of a scheduler's
// output say nothing line reads: they only go into the block, as bytes.
// A line that may matter (scanWords found a word in it, or a dump's
// header came before it) becomes text and goes through line and also.
func (s *schedLog) raw(b []byte, cut, hot bool) {
	if !hot && !(s.dump.want && s.dump.body == "") && !everyLineMatters {
		if s.inBlock {
			s.block.push(b, cut)
		}
		return
	}
	l := lineText(b, cut)
	if s.line(l) {
		s.block.push(b, cut)
	}
	if s.also != nil {
		s.also(l)
	}
}

// everyLineMatters turns the scan off: every line goes through line, as
// text. Tests set it to fold the slow way for reference.
var everyLineMatters = false

// scanWords returns where in p the words line and also act on lie: a
// block marker (SCHED_OUTPUT), the harness's note ("ktstr: "), "EXIT:",
// "scx_bpf_error", "libbpf: ", "PANIC:" and a dump's header ("triggered
// exit kind"), each where it lies whole in p (lineLog.scan). Each word is
// ASCII, and the text of a line (lineText) keeps the guest's ASCII bytes
// where they were, so a line whose bytes hold none of them has none in
// its text either. The words are found by four letters rare in a
// scheduler's output, which between them are in every word (X: EXIT; P:
// PANIC, OUTPUT; k: ktstr, kind; b: bpf), each checked on the spot by
// its neighbour first: a search per word would read every byte seven
// times, and a common letter (':', '_') would stop the search on every
// line.
func scanWords(p []byte, dst []int) []int {
	for _, a := range [...]byte{'X', 'P', 'k', 'b'} {
		for i := 0; i < len(p); i++ {
			j := bytes.IndexByte(p[i:], a)
			if j < 0 {
				break
			}
			i += j
			if wordAt(p, i) {
				dst = append(dst, i)
			}
		}
	}
	slices.Sort(dst)
	return dst
}

// wordAt reports whether one of scanWords' words holds the letter p[i].
func wordAt(p []byte, i int) bool {
	at := func(back int, w string) bool {
		return i >= back && len(p)-(i-back) >= len(w) && string(p[i-back:i-back+len(w)]) == w
	}
	prev, next := byte(0), byte(0)
	if i > 0 {
		prev = p[i-1]
	}
	if i+1 < len(p) {
		next = p[i+1]
	}
	switch p[i] {
	case 'X':
		return prev == 'E' && at(1, "EXIT:")
	case 'P':
		return next == 'A' && at(0, "PANIC:") || prev == 'T' && at(9, "SCHED_OUTPUT")
	case 'k':
		return next == 't' && at(0, "ktstr: ") || prev == ' ' && at(15, "triggered exit kind")
	case 'b':
		return next == 'p' && (at(4, "scx_bpf_error") || at(3, "libbpf: "))
	}
	return false
}

// line reads one line of text; it reports whether the line belongs to
// the current SCHED_OUTPUT block (the markers do not).
func (s *schedLog) line(l string) bool {
	t := strings.TrimSpace(l)
	switch {
	case t == schedlog.Start:
		s.inBlock, s.sawStart = true, true
		s.block.reset()
		return false
	case t == schedlog.End:
		s.inBlock = false
		return false
	}
	stream, t := schedlog.Split(t)
	t = strings.TrimSpace(t)
	if stream == schedlog.Ktstr {
		if n, ok := schedlog.ParseDropped(t); ok {
			s.dropped = n
		}
		return s.inBlock // the harness's own note, not the scheduler's output
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
	return s.inBlock
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
