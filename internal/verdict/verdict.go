package verdict

import (
	"fmt"

	"github.com/ktstr-go/ktstr/internal/sanitize"

	"github.com/ktstr-go/ktstr/lib/wire/payload"
)

// Status is a position in the verdict lattice.
type Status string

// The lattice, lowest first: Skip < Pass < Inconclusive < Infra < Fail.
const (
	StatusSkip         Status = "SKIP"
	StatusPass         Status = "PASS"
	StatusInconclusive Status = "INCONCLUSIVE"
	StatusInfra        Status = "ERROR" // infrastructure error
	StatusFail         Status = "FAIL"
)

// Statuses lists the lattice, lowest first.
var Statuses = []Status{StatusSkip, StatusPass, StatusInconclusive, StatusInfra, StatusFail}

// Exit statuses of ktstr-verdict.
const (
	ExitPass         = 0 // pass or skip
	ExitFail         = 1
	ExitUsage        = 2
	ExitInconclusive = 3
	ExitInfra        = 4
)

// Rank orders statuses for folding. An unknown status ranks as Fail, so
// that nothing garbled can ever pass.
func (s Status) Rank() int {
	switch s {
	case StatusSkip:
		return 0
	case StatusPass:
		return 1
	case StatusInconclusive:
		return 2
	case StatusInfra:
		return 3
	}
	return 4
}

// Worse returns the higher of a and b in the lattice (a on a tie).
func Worse(a, b Status) Status {
	if b.Rank() > a.Rank() {
		return b
	}
	return a
}

// ExitCode maps a status to ktstr-verdict's exit status.
func (s Status) ExitCode() int {
	switch s {
	case StatusPass, StatusSkip:
		return ExitPass
	case StatusInconclusive:
		return ExitInconclusive
	case StatusInfra:
		return ExitInfra
	}
	return ExitFail
}

// OK reports whether s lets the run count as passed (pass or skip).
func (s Status) OK() bool { return s == StatusPass || s == StatusSkip }

// Causes name why a run did not simply pass.
const (
	CauseCrash         = "crash"                  // guest panic or crash
	CauseSchedulerDied = "scheduler_died"         // SCDX, LIFE, or sched_ext disabled by an error
	CauseNotAttached   = "scheduler_not_attached" // LIFE: alive, but not attached in time
	CauseSchedDetached = "scheduler_detached"     // TEST: it detached mid-run while its process lived
	CauseTimeout       = "timeout"                // the watchdog stopped the VM
	CauseAssertion     = "assertion"              // the TEST result has failures
	CauseSplat         = "splat"                  // a kernel WARN, BUG, KASAN, lockdep, stall...
	CauseNoResult      = "no_result"              // no usable TEST arrived
	CauseInfra         = "infrastructure"         // frames lost, truncated stream, bad records
	CauseInconclusive  = "inconclusive"           // the TEST result says it cannot tell
	CauseSkip          = "skip"                   // the TEST result skipped
)

// causes is the headline priority: when several findings share the final
// status, the first cause in this list names the verdict.
var causes = []struct{ cause, label string }{
	{CauseCrash, "guest crashed"},
	{CauseSchedulerDied, "scheduler died"},
	{CauseSchedDetached, "scheduler detached"},
	{CauseNotAttached, "scheduler not attached"},
	{CauseTimeout, "timed out"},
	{CauseAssertion, "assertion failed"},
	{CauseHostContention, "host contention"},
	{CauseSplat, "kernel splat"},
	{CauseMonitor, "runqueue monitor"},
	{CauseInfra, "infrastructure error"},
	{CauseNoResult, "no test result"},
	{CauseInconclusive, "inconclusive"},
	{CauseSkip, "skipped"},
}

func causePriority(c string) int {
	for i, x := range causes {
		if x.cause == c {
			return i
		}
	}
	return len(causes)
}

// CauseLabel is the words the report prints for a cause.
func CauseLabel(c string) string {
	for _, x := range causes {
		if x.cause == c {
			return x.label
		}
	}
	return c
}

// Finding is one reason in the verdict.
type Finding struct {
	Status  Status `json:"status"`
	Cause   string `json:"cause"`
	Kind    string `json:"kind,omitempty"` // the TEST detail kind, or the splat pattern's name
	Message string `json:"message"`
	// Source is where the evidence came from: a record tag (TEST, SCDX,
	// CRSH, LIFE, LOSS, VEND), "dmesg", "sched_log", "output", "diag",
	// "records" or a console file's name.
	Source string `json:"source,omitempty"`
	// Lines are supporting lines (the scheduler's EXIT line, the kernel's
	// sched_ext message), at most a few.
	Lines []string `json:"lines,omitempty"`
}

// Text is the finding as the report prints it: "label: message".
func (f Finding) Text() string {
	return CauseLabel(f.Cause) + ": " + f.Message
}

// Verdict is the folded outcome of one run. Everything in it comes from
// the records and console files, never from the clock, so the same
// recording always gives the same Verdict.
type Verdict struct {
	Name       string    `json:"name"`
	Status     Status    `json:"status"`
	ExitStatus int       `json:"exit_status"`
	Cause      string    `json:"cause,omitempty"`
	Reason     string    `json:"reason"`
	BugSummary string    `json:"bug_summary,omitempty"`
	Findings   []Finding `json:"findings"`

	// Stage is ktstr's init-stage classification from LIFE frames
	// ("test result received" once a TEST decoded).
	Stage  string   `json:"stage"`
	Phases []string `json:"phases,omitempty"` // LIFE phases in arrival order, first of each

	Result    *payload.AssertResult `json:"result,omitempty"`
	GuestExit *int32                `json:"guest_exit_code,omitempty"` // last valid EXIT
	SchedExit *int32                `json:"sched_exit_code,omitempty"` // first valid SCDX
	VMEnd     *VMEnd                `json:"vm_end,omitempty"`
	// FailureDump is the summary of the snapshot ktstr-boot took on its
	// own before stopping the VM (HDMP); Monitor what the host-side
	// monitor's samples showed (HMON).
	FailureDump *payload.HostDump `json:"failure_dump,omitempty"`
	Monitor     *Monitor          `json:"monitor,omitempty"`
	// HostNonce says the stream began with ktstr-drain's HELO, so its
	// LOSS and VEND were checked against the run's nonce.
	HostNonce bool `json:"host_nonce,omitempty"`
	// HostNoise is ktstr-boot's measurement of how much the host starved
	// the vCPUs (AddNoise).
	HostNoise *HostNoise `json:"host_noise,omitempty"`

	Scenario Scenario `json:"scenario"`
	Steps    []Step   `json:"steps,omitempty"`
	// StepsNotListed counts STIM frames past the first 256, which Steps
	// leaves out.
	StepsNotListed int              `json:"steps_not_listed,omitempty"`
	Logs           Logs             `json:"logs"`
	Counts         Counts           `json:"counts"`
	Diags          map[string]int64 `json:"diags,omitempty"`
	// Effects counts the effect records by name.
	Effects map[string]int64 `json:"effects,omitempty"`
}

// VMEnd is the host's account of how the VM ended (the VEND entry).
type VMEnd struct {
	Reason   string  `json:"reason"`
	ExitCode int32   `json:"exit_code"` // ktstr-boot's exit status
	Elapsed  float64 `json:"elapsed_s"` // boot start to VM end, as recorded
	// RingCorrupt: ktstr-drain stopped copying because the guest wrote
	// ring positions no producer reaches (wire.VMEndRingCorrupt).
	RingCorrupt bool `json:"ring_corrupt,omitempty"`
}

// Scenario is what SCST, SCPP, SCRR and SCEN said.
type Scenario struct {
	Starts          int     `json:"starts"`
	Pauses          int     `json:"pauses"`
	Resumes         int     `json:"resumes"`
	EndMS           *uint64 `json:"end_ms,omitempty"`
	TotalIterations *uint64 `json:"total_iterations,omitempty"`
}

// Step is one scenario step from STIM, closed by its STEN, or else by
// the next STIM, or else by SCEN (ktstr's stimulus_timeline).
type Step struct {
	Index           uint16  `json:"index"`
	StartMS         uint32  `json:"start_ms"`
	EndMS           *uint64 `json:"end_ms,omitempty"`
	EndFrom         string  `json:"end_from,omitempty"` // step_end, next_step, scenario_end
	Ops             uint16  `json:"ops"`
	OpKinds         uint32  `json:"op_kinds"`
	Cgroups         uint16  `json:"cgroups"`
	Workers         uint16  `json:"workers"`
	StartIterations uint64  `json:"start_iterations"`
	EndIterations   *uint64 `json:"end_iterations,omitempty"`
	Rate            float64 `json:"iterations_per_s,omitempty"`
}

// Logs are the tails of the run's text streams.
type Logs struct {
	Sched   *Log  `json:"sched,omitempty"`   // SCLG (or SOUT/SERR), the SCHED_OUTPUT block when marked
	Kernel  *Log  `json:"kernel,omitempty"`  // DMSG
	Output  *Log  `json:"output,omitempty"`  // SOUT and SERR
	Console []Log `json:"console,omitempty"` // --console files
}

// Log is the tail of one text stream, and for a scheduler log its head.
type Log struct {
	Name       string   `json:"name"`
	Lines      int64    `json:"lines"`                          // lines seen in all
	Incomplete bool     `json:"last_line_incomplete,omitempty"` // the stream did not end in a newline
	Head       []string `json:"head,omitempty"`                 // scheduler log: its first lines (at most HeadLines), when they are not in the tail
	Omitted    int64    `json:"omitted,omitempty"`              // lines between head and tail not kept
	// DroppedInGuest is what the guest agent said it did not forward
	// (scheduler output over its budget): lines missing from Lines.
	DroppedInGuest int64    `json:"dropped_in_guest,omitempty"`
	Tail           []string `json:"tail"` // the last lines, at most TailLines (more for a console with a panic)
}

// Counts are totals over the records.
type Counts struct {
	Records      int64  `json:"records"`
	Entries      int64  `json:"entries"`
	BadCRC       int64  `json:"bad_crc_entries"`
	Effects      int64  `json:"effects"`
	Diags        int64  `json:"diags"`
	UnknownKinds int64  `json:"unknown_kinds,omitempty"`
	LostFrames   uint64 `json:"lost_frames"`
	LostBytes    uint64 `json:"lost_bytes"`
	Kills        int64  `json:"kills"`
	Splats       int64  `json:"splats"`
	UnreadableAt int64  `json:"unreadable_at,omitempty"` // 1 + the number of records read before reading failed
}

// Report is what ktstr-verdict prints: one or more runs folded into one
// aggregate verdict where every run must pass.
type Report struct {
	Schema     int       `json:"schema"`
	Name       string    `json:"name"`
	Status     Status    `json:"status"`
	ExitStatus int       `json:"exit_status"`
	Reason     string    `json:"reason"`
	Totals     Totals    `json:"totals"`
	Runs       []Verdict `json:"runs"`
}

// Totals count runs by status.
type Totals struct {
	Runs         int `json:"runs"`
	Pass         int `json:"pass"`
	Skip         int `json:"skip"`
	Inconclusive int `json:"inconclusive"`
	Error        int `json:"error"`
	Fail         int `json:"fail"`
}

// ReportSchema is the "schema" of the JSON report.
const ReportSchema = 1

// Aggregate folds runs into one report. The aggregate status is the worst
// run's: every run must pass, and no run is ever dropped or replaced by a
// later attempt of the same test (no retry-until-green).
func Aggregate(name string, runs []Verdict) Report {
	rep := Report{Schema: ReportSchema, Name: sanitize.String(name), Runs: runs}
	if rep.Runs == nil {
		rep.Runs = []Verdict{}
	}
	if len(runs) == 0 {
		rep.Status, rep.ExitStatus, rep.Reason = StatusInfra, ExitInfra, "no runs"
		return rep
	}
	rep.Status = StatusSkip
	var bad []string
	for _, v := range runs {
		rep.Status = Worse(rep.Status, v.Status)
		rep.Totals.Runs++
		switch v.Status {
		case StatusPass:
			rep.Totals.Pass++
		case StatusSkip:
			rep.Totals.Skip++
		case StatusInconclusive:
			rep.Totals.Inconclusive++
		case StatusInfra:
			rep.Totals.Error++
		default:
			rep.Totals.Fail++
		}
		if !v.Status.OK() {
			bad = append(bad, fmt.Sprintf("%s (%s)", v.Name, v.Status))
		}
	}
	rep.ExitStatus = rep.Status.ExitCode()
	switch {
	case len(runs) == 1:
		rep.Reason = runs[0].Reason
	case len(bad) == 0:
		rep.Reason = fmt.Sprintf("all %d runs passed", len(runs))
		if rep.Totals.Skip > 0 {
			rep.Reason += fmt.Sprintf(" (%d skipped)", rep.Totals.Skip)
		}
	default:
		rep.Reason = fmt.Sprintf("%d of %d runs did not pass: %s", len(bad), len(runs), joinMax(bad, 10))
	}
	return rep
}

func joinMax(s []string, n int) string {
	out := ""
	for i, x := range s {
		if i == n {
			return out + fmt.Sprintf(", and %d more", len(s)-n)
		}
		if i > 0 {
			out += ", "
		}
		out += x
	}
	return out
}
