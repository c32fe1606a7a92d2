// Package verdict folds a run's records into a verdict people can trust
// and renders the report. It is the logic of ktstr-verdict.
//
// Only CRC-valid entries count. EXIT and TEST are last-wins, EXIT only
// with exactly 4 bytes. The outcome lattice is ktstr's, Fail >
// Inconclusive > Pass > Skip, with one more level between Fail and
// Inconclusive: an infrastructure error (frames lost, a truncated stream,
// unreadable records) means a passing result cannot be trusted, while a
// real failure that did arrive still stands.
package verdict

import (
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/ktstr-go/ktstr/internal/record"
	"github.com/ktstr-go/ktstr/lib/wire"
	"github.com/ktstr-go/ktstr/lib/wire/payload"
)

// Status is the final verdict.
type Status string

const (
	StatusPass         Status = "PASS"
	StatusSkip         Status = "SKIP"
	StatusInconclusive Status = "INCONCLUSIVE"
	StatusInfra        Status = "ERROR" // infrastructure error
	StatusFail         Status = "FAIL"
)

// Exit statuses of ktstr-verdict.
const (
	ExitPass         = 0 // pass or skip
	ExitFail         = 1
	ExitUsage        = 2
	ExitInconclusive = 3
	ExitInfra        = 4
)

func rank(s Status) int {
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

// Causes name why a run did not simply pass.
const (
	CauseAssertion     = "assertion"      // the TEST result has failures
	CauseCrash         = "crash"          // guest panic or crash
	CauseTimeout       = "timeout"        // the watchdog stopped the VM
	CauseSchedulerDied = "scheduler_died" // SCDX
	CauseNoResult      = "no_result"      // no TEST arrived
	CauseInfra         = "infrastructure" // frames lost, truncated stream, bad records
	CauseInconclusive  = "inconclusive"
	CauseSkip          = "skip"
)

// Finding is one reason in the verdict.
type Finding struct {
	Status  Status `json:"status"`
	Cause   string `json:"cause"`
	Kind    string `json:"kind,omitempty"`
	Message string `json:"message"`
}

// Verdict is the folded outcome of one run.
type Verdict struct {
	Name     string                `json:"name"`
	Status   Status                `json:"status"`
	Cause    string                `json:"cause,omitempty"`
	Reason   string                `json:"reason"`
	Findings []Finding             `json:"findings"`
	Result   *payload.AssertResult `json:"result,omitempty"`
	ExitCode *int32                `json:"guest_exit_code,omitempty"`
	VMEnd    *VMEnd                `json:"vm_end,omitempty"`
	Steps    []Step                `json:"steps,omitempty"`
	Stage    string                `json:"stage"`
	SchedLog string                `json:"sched_log,omitempty"`
	Dmesg    string                `json:"dmesg,omitempty"`
	Output   string                `json:"output,omitempty"`
	Counts   Counts                `json:"counts"`
	Diags    map[string]int64      `json:"diags,omitempty"`
}

// VMEnd is the host's account of how the VM ended.
type VMEnd struct {
	Reason   string  `json:"reason"`
	ExitCode int32   `json:"exit_code"`
	Elapsed  float64 `json:"elapsed_s"`
}

// Step is one scenario step from STIM/STEN.
type Step struct {
	Index      uint16  `json:"index"`
	StartMS    uint32  `json:"start_ms"`
	EndMS      *uint32 `json:"end_ms,omitempty"`
	Workers    uint16  `json:"workers"`
	Cgroups    uint16  `json:"cgroups"`
	Iterations uint64  `json:"iterations"`
}

// Counts are totals over the records.
type Counts struct {
	Records      int64  `json:"records"`
	Entries      int64  `json:"entries"`
	BadCRC       int64  `json:"bad_crc_entries"`
	Effects      int64  `json:"effects"`
	Diags        int64  `json:"diags"`
	LostFrames   uint64 `json:"lost_frames"`
	LostBytes    uint64 `json:"lost_bytes"`
	Kills        int64  `json:"kills"`
	UnreadableAt int64  `json:"unreadable_at,omitempty"` // record index where reading failed, +1
}

// Folder accumulates records of one run.
type Folder struct {
	v        Verdict
	test     []byte
	testSeen bool
	crash    string
	schedRC  *int32
	phases   map[wire.Phase]string
	schedLog strings.Builder
	dmesg    []string
	output   strings.Builder
	readErr  error
}

// NewFolder starts a run named name.
func NewFolder(name string) *Folder {
	return &Folder{v: Verdict{Name: name, Diags: map[string]int64{}}, phases: map[wire.Phase]string{}}
}

// Add folds one record.
func (f *Folder) Add(r *record.Record) {
	c := &f.v.Counts
	c.Records++
	switch r.Kind {
	case record.KindEffect:
		c.Effects++
		if r.Effect == record.EffectKill {
			c.Kills++
		}
		return
	case record.KindDiag:
		c.Diags++
		f.v.Diags[r.Diag]++
		return
	case record.KindEntry:
	default:
		return
	}
	c.Entries++
	if !r.CRCOK {
		c.BadCRC++
		return
	}
	t := wire.Type(r.MsgType)
	switch t {
	case wire.TypeTestResult:
		f.test, f.testSeen = r.Payload, true
	case wire.TypeExit:
		if code, err := wire.DecodeExitCode(t, r.Payload); err == nil {
			f.v.ExitCode = &code
		}
	case wire.TypeSchedExit:
		if code, err := wire.DecodeExitCode(t, r.Payload); err == nil {
			f.schedRC = &code
		} else {
			var unknown int32 = -1
			f.schedRC = &unknown
		}
	case wire.TypeCrash:
		if f.crash == "" {
			f.crash = firstLine(string(r.Payload))
		}
	case wire.TypeLifecycle:
		if l, err := wire.DecodeLifecycle(r.Payload); err == nil {
			if _, ok := f.phases[l.Phase]; !ok {
				f.phases[l.Phase] = l.Reason
			}
		}
	case wire.TypeStimulus:
		if s, err := wire.DecodeStimulus(r.Payload); err == nil {
			f.v.Steps = append(f.v.Steps, Step{Index: s.StepIndex, StartMS: s.ElapsedMS, Workers: s.WorkerCount, Cgroups: s.CgroupCount})
		}
	case wire.TypeStepEnd:
		if s, err := wire.DecodeStimulus(r.Payload); err == nil {
			for i := len(f.v.Steps) - 1; i >= 0; i-- {
				if f.v.Steps[i].Index == s.StepIndex && f.v.Steps[i].EndMS == nil {
					e := s.ElapsedMS
					f.v.Steps[i].EndMS = &e
					f.v.Steps[i].Iterations = s.TotalIterations
					break
				}
			}
		}
	case wire.TypeSchedLog:
		if f.schedLog.Len() < 4<<20 {
			f.schedLog.Write(r.Payload)
		}
	case wire.TypeDmesg:
		if len(r.Payload) > 0 && len(f.dmesg) < 4096 {
			f.dmesg = append(f.dmesg, string(r.Payload))
		}
	case wire.TypeStdout, wire.TypeStderr:
		if f.output.Len() < 4<<20 {
			f.output.Write(r.Payload)
		}
	case wire.TypeLoss:
		if l, err := wire.DecodeLoss(r.Payload); err == nil {
			c.LostFrames = max(c.LostFrames, l.Frames)
			c.LostBytes = max(c.LostBytes, l.Bytes)
		}
	case wire.TypeVMEnd:
		if e, err := wire.DecodeVMEnd(r.Payload); err == nil {
			f.v.VMEnd = &VMEnd{Reason: e.Reason.String(), ExitCode: e.ExitCode, Elapsed: time.Duration(e.ElapsedNS).Seconds()}
		}
	}
}

// ReadError records that the record stream could not be read to its end.
func (f *Folder) ReadError(err error) {
	f.readErr = err
	f.v.Counts.UnreadableAt = f.v.Counts.Records + 1
}

// Verdict finishes the fold.
func (f *Folder) Verdict() Verdict {
	v := f.v
	v.Findings = nil
	add := func(s Status, cause, kind, msg string) {
		v.Findings = append(v.Findings, Finding{Status: s, Cause: cause, Kind: kind, Message: msg})
	}
	v.SchedLog = f.schedLog.String()
	v.Dmesg = strings.Join(f.dmesg, "\n")
	v.Output = f.output.String()
	v.Stage = f.stage()

	// The guest's own result.
	if f.testSeen {
		res, err := payload.UnmarshalAssertResult(f.test)
		if err != nil {
			add(StatusFail, CauseNoResult, "", fmt.Sprintf("test result does not decode: %v", err))
		} else {
			v.Result = res
			for _, o := range res.Outcomes {
				switch o.Verdict {
				case payload.Fail:
					add(StatusFail, CauseAssertion, o.Kind, o.Message)
				case payload.Inconclusive:
					add(StatusInconclusive, CauseInconclusive, o.Kind, o.Message)
				case payload.Skip:
					add(StatusSkip, CauseSkip, o.Kind, o.Message)
				}
			}
		}
	}
	// Causes the host saw.
	if f.schedRC != nil {
		add(StatusFail, CauseSchedulerDied, "", fmt.Sprintf("scheduler exited (exit code %d)", *f.schedRC))
	}
	if f.crash != "" {
		add(StatusFail, CauseCrash, "", "guest crashed: "+f.crash)
	}
	if e := v.VMEnd; e != nil {
		switch e.Reason {
		case wire.EndTimeout.String():
			if !f.testSeen {
				add(StatusFail, CauseTimeout, "", "timed out (no result arrived before the watchdog deadline)")
			} else {
				add(StatusFail, CauseTimeout, "", "timed out after the result arrived (guest did not power off)")
			}
		case wire.EndCrash.String():
			add(StatusFail, CauseCrash, "", "guest crashed (the VM reset before the agent finished)")
		case wire.EndVMMError.String():
			add(StatusInfra, CauseInfra, "", "the VMM failed or ktstr-boot died before closing the region")
		}
	}
	if !f.testSeen && !hasCause(v.Findings, CauseTimeout) && !hasCause(v.Findings, CauseCrash) && !hasCause(v.Findings, CauseSchedulerDied) {
		add(StatusFail, CauseNoResult, "", "no test result ("+v.Stage+")")
	}
	// What may have been lost.
	if c := v.Counts; c.LostFrames > 0 {
		add(StatusInfra, CauseInfra, "", fmt.Sprintf("the guest dropped %d frames (%d bytes): ring full", c.LostFrames, c.LostBytes))
	}
	for _, d := range []string{record.DiagTruncatedTail, record.DiagOversized, record.DiagResidualOverflow} {
		if n := v.Diags[d]; n > 0 {
			add(StatusInfra, CauseInfra, "", fmt.Sprintf("frame stream damaged: %d %s", n, d))
		}
	}
	if f.readErr != nil {
		add(StatusInfra, CauseInfra, "", fmt.Sprintf("records unreadable: %v", f.readErr))
	}

	v.Status = StatusPass
	if f.testSeen && v.Result != nil && len(v.Result.Outcomes) > 0 && v.Result.Verdict() == payload.Skip {
		v.Status = StatusSkip
	}
	for _, fd := range v.Findings {
		if rank(fd.Status) > rank(v.Status) {
			v.Status = fd.Status
		}
	}
	// The headline: the first finding at the final level.
	v.Reason = "all checks passed"
	for _, fd := range v.Findings {
		if fd.Status == v.Status {
			v.Cause, v.Reason = fd.Cause, fd.Message
			break
		}
	}
	if v.Status == StatusPass && v.Result != nil && v.Result.Scenario != "" {
		v.Reason = fmt.Sprintf("scenario %s: all checks passed", v.Result.Scenario)
	}
	sort.SliceStable(v.Findings, func(i, j int) bool { return rank(v.Findings[i].Status) > rank(v.Findings[j].Status) })
	return v
}

func hasCause(fs []Finding, cause string) bool {
	for _, f := range fs {
		if f.Cause == cause {
			return true
		}
	}
	return false
}

// stage is ktstr's init-stage classification from LIFE phases.
func (f *Folder) stage() string {
	if f.testSeen {
		return "test result received"
	}
	if reason, ok := f.phases[wire.PhaseSchedulerNotAttached]; ok {
		return "scheduler not attached: " + reason
	}
	if _, ok := f.phases[wire.PhaseSchedulerDied]; ok {
		return "scheduler died during startup"
	}
	if _, ok := f.phases[wire.PhasePayloadStarting]; ok {
		return "payload started but produced no test result"
	}
	if len(f.phases) > 0 {
		return "init started but payload never ran (cgroup/scheduler setup failed)"
	}
	return "init script never started (kernel or mount failure)"
}

func firstLine(s string) string {
	s, _, _ = strings.Cut(strings.TrimSpace(s), "\n")
	return s
}
