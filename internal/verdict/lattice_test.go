package verdict_test

import (
	"fmt"
	"testing"

	"github.com/ktstr-go/ktstr/internal/verdict"
	vt "github.com/ktstr-go/ktstr/internal/verdict/verdicttest"
	"github.com/ktstr-go/ktstr/lib/wire/payload"
)

// order is the documented lattice, lowest first; the tests compute the
// expected fold from it rather than from Status.Rank.
var order = []verdict.Status{verdict.StatusSkip, verdict.StatusPass, verdict.StatusInconclusive, verdict.StatusInfra, verdict.StatusFail}

var exitOf = map[verdict.Status]int{
	verdict.StatusSkip: 0, verdict.StatusPass: 0, verdict.StatusInconclusive: 3, verdict.StatusInfra: 4, verdict.StatusFail: 1,
}

func pos(s verdict.Status) int {
	for i, x := range order {
		if x == s {
			return i
		}
	}
	panic("unknown status " + s)
}

func worst(ss ...verdict.Status) verdict.Status {
	w := ss[0]
	for _, s := range ss[1:] {
		if pos(s) > pos(w) {
			w = s
		}
	}
	return w
}

func TestWorseAndExitCodes(t *testing.T) {
	for _, a := range order {
		if got := a.ExitCode(); got != exitOf[a] {
			t.Errorf("%s.ExitCode() = %d, want %d", a, got, exitOf[a])
		}
		for _, b := range order {
			if got, want := verdict.Worse(a, b), worst(a, b); got != want {
				t.Errorf("Worse(%s, %s) = %s, want %s", a, b, got, want)
			}
		}
	}
	if got := verdict.Status("BOGUS").ExitCode(); got != verdict.ExitFail {
		t.Errorf("unknown status exits %d, want %d (never pass on garbage)", got, verdict.ExitFail)
	}
}

// TestLatticeCombinations folds every combination of the guest's outcomes
// (any subset of skip, pass, inconclusive, fail, or no TEST at all) with
// an infrastructure error (LOSS), a host-seen failure (SCDX) and an
// inconclusive splat, and checks the status is the lattice's maximum.
func TestLatticeCombinations(t *testing.T) {
	kinds := []struct {
		o payload.Outcome
		s verdict.Status
	}{
		{vt.Skip("n/a"), verdict.StatusSkip},
		{vt.Pass(), verdict.StatusPass},
		{vt.Inconclusive("benchmark", "noisy"), verdict.StatusInconclusive},
		{vt.Fail("starved", "starved"), verdict.StatusFail},
	}
	cfg := verdict.Config{Splats: verdict.DefaultSplats(), SplatStatus: verdict.StatusInconclusive}
	n := 0
	for mask := -1; mask < 1<<len(kinds); mask++ { // -1: no TEST at all
		for extra := 0; extra < 8; extra++ {
			infra, hostFail, splat := extra&1 != 0, extra&2 != 0, extra&4 != 0
			s := vt.New().Boot()
			var want []verdict.Status
			if mask >= 0 {
				var os []payload.Outcome
				var got []verdict.Status
				for i, k := range kinds {
					if mask&(1<<i) != 0 {
						os = append(os, k.o)
						got = append(got, k.s)
					}
				}
				s.Outcomes(os...)
				if len(got) == 0 {
					got = []verdict.Status{verdict.StatusPass} // an empty list is a pass
				}
				want = append(want, worst(got...))
			} else {
				// No result: a failure, unless the stream is damaged.
				switch {
				case hostFail:
				case infra:
					want = append(want, verdict.StatusInfra)
				default:
					want = append(want, verdict.StatusFail)
				}
			}
			if infra {
				s.Loss(1, 10)
				want = append(want, verdict.StatusInfra)
			}
			if hostFail {
				s.SchedExit(1)
				want = append(want, verdict.StatusFail)
			}
			if splat {
				s.Dmesg("WARNING: CPU: 0 PID: 1 at x.c:1 f")
				want = append(want, verdict.StatusInconclusive)
			}
			s.Finish()
			w := worst(want...)
			name := fmt.Sprintf("test=%d/infra=%v/fail=%v/splat=%v", mask, infra, hostFail, splat)
			t.Run(name, func(t *testing.T) {
				v := fold(s, cfg)
				if v.Status != w || v.ExitStatus != exitOf[w] {
					t.Errorf("status %s exit %d, want %s exit %d; findings:%s", v.Status, v.ExitStatus, w, exitOf[w], findingsString(v.Findings))
				}
				// The headline is a finding at the final status, or a pass.
				if v.Cause != "" && (len(v.Findings) == 0 || v.Findings[0].Status != v.Status || v.Findings[0].Cause != v.Cause) {
					t.Errorf("headline cause %q does not match the first finding %+v", v.Cause, v.Findings)
				}
				if v.Cause == "" && v.Status != verdict.StatusPass {
					t.Errorf("status %s without a cause", v.Status)
				}
			})
			n++
		}
	}
	if n != 17*8 {
		t.Fatalf("%d combinations, want %d", n, 17*8)
	}
}

// TestAggregateLattice folds every triple of run statuses: the aggregate
// is the worst, so one failing run fails the gauntlet whatever the order
// and however many other runs pass.
func TestAggregateLattice(t *testing.T) {
	for _, a := range order {
		for _, b := range order {
			for _, c := range order {
				runs := []verdict.Verdict{{Name: "a", Status: a}, {Name: "b", Status: b}, {Name: "c", Status: c}}
				rep := verdict.Aggregate("g", runs)
				w := worst(a, b, c)
				if rep.Status != w || rep.ExitStatus != exitOf[w] || rep.Totals.Runs != 3 {
					t.Errorf("Aggregate(%s, %s, %s) = %s exit %d, want %s exit %d", a, b, c, rep.Status, rep.ExitStatus, w, exitOf[w])
				}
				sum := rep.Totals.Pass + rep.Totals.Skip + rep.Totals.Inconclusive + rep.Totals.Error + rep.Totals.Fail
				if sum != 3 {
					t.Errorf("Aggregate(%s, %s, %s) totals %+v do not add up to 3", a, b, c, rep.Totals)
				}
			}
		}
	}
	// A retried test keeps its failing attempt: no retry-until-green.
	rep := verdict.Aggregate("g", []verdict.Verdict{{Name: "t", Status: verdict.StatusFail}, {Name: "t", Status: verdict.StatusPass}})
	if rep.Status != verdict.StatusFail || len(rep.Runs) != 2 {
		t.Errorf("fail then pass of the same test = %s with %d runs, want FAIL with 2", rep.Status, len(rep.Runs))
	}
}
