package verdict

import (
	"math"

	"github.com/ktstr-go/ktstr/lib/wire"
)

// stepFold is the scenario's course: its start, pauses, resumes and end
// (SCST, SCPP, SCRR, SCEN) and its steps (STIM, STEN), the first maxSteps
// of them kept. It answers with the timeline.
type stepFold struct {
	scen  Scenario
	steps []Step // the first maxSteps STIM frames
	more  *Step  // the first STIM not kept: it closes the last kept step
	out   int    // STIM frames not kept
}

// entry notes an entry of one of the scenario's types.
func (s *stepFold) entry(t wire.Type, p []byte) {
	switch t {
	case wire.TypeScenarioStart:
		s.scen.Starts++
	case wire.TypeScenarioPause:
		s.scen.Pauses++
	case wire.TypeScenarioResume:
		s.scen.Resumes++
	case wire.TypeScenarioEnd:
		if e, err := wire.DecodeScenarioEnd(p); err == nil && s.scen.EndMS == nil {
			s.scen.EndMS, s.scen.TotalIterations = &e.ElapsedMS, &e.TotalIterations
		}
	case wire.TypeStimulus:
		if st, err := wire.DecodeStimulus(p); err == nil {
			s.start(Step{Index: st.StepIndex, StartMS: st.ElapsedMS, Ops: st.OpCount, OpKinds: st.OpKinds,
				Cgroups: st.CgroupCount, Workers: st.WorkerCount, StartIterations: st.TotalIterations})
		}
	case wire.TypeStepEnd:
		if st, err := wire.DecodeStimulus(p); err == nil {
			s.end(st)
		}
	}
}

func (s *stepFold) start(st Step) {
	switch {
	case len(s.steps) < maxSteps:
		s.steps = append(s.steps, st)
	case s.more == nil:
		s.more = &st
		s.out++
	default:
		s.out++
	}
}

// end closes the last open kept step of st's index. Once STIM frames are
// no longer kept, an STEN may belong to one that was not: it closes
// nothing.
func (s *stepFold) end(st wire.Stimulus) {
	if s.out > 0 {
		return
	}
	for i := len(s.steps) - 1; i >= 0; i-- {
		k := &s.steps[i]
		if k.Index == st.StepIndex && k.EndMS == nil {
			end, it := uint64(st.ElapsedMS), st.TotalIterations
			k.EndMS, k.EndIterations, k.EndFrom = &end, &it, "step_end"
			return
		}
	}
}

// timeline closes steps that have no STEN with the next step's start,
// then with SCEN, and computes each step's iteration rate.
func (s *stepFold) timeline() []Step {
	steps := append([]Step(nil), s.steps...)
	for i := range steps {
		st := &steps[i]
		if st.EndMS == nil {
			switch {
			case i+1 < len(steps) || s.more != nil:
				next := s.more
				if i+1 < len(steps) {
					next = &steps[i+1]
				}
				end, it := uint64(next.StartMS), next.StartIterations
				st.EndMS, st.EndIterations, st.EndFrom = &end, &it, "next_step"
			case s.scen.EndMS != nil:
				end, it := *s.scen.EndMS, *s.scen.TotalIterations
				st.EndMS, st.EndIterations, st.EndFrom = &end, &it, "scenario_end"
			}
		}
		if st.EndMS != nil && *st.EndMS > uint64(st.StartMS) && *st.EndIterations >= st.StartIterations {
			ms := float64(*st.EndMS - uint64(st.StartMS))
			st.Rate = math.Round(float64(*st.EndIterations-st.StartIterations)*1000/ms*10) / 10
		}
	}
	return steps
}
