package workload

import (
	"slices"
	"testing"
	"time"
)

// TestProgress: while the workers run, the parent reads their progress
// (iterations, CPUs, gaps, the kernel's run time) from the progress page
// and /proc; it only grows, and never passes what they report at Stop.
func TestProgress(t *testing.T) {
	spec := SpawnSpec{Work: Work{Type: Spin}, Count: 2}
	g, err := Spawn(spec)
	if err != nil {
		t.Fatal(err)
	}
	waitRun(t, g.PIDs())
	var first []Progress
	for range 2000 { // until both completed an iteration (a loaded machine is slow)
		if first = g.Progress(); first[0].Iterations > 0 && first[1].Iterations > 0 {
			break
		}
		time.Sleep(time.Millisecond)
	}
	waitRun(t, g.PIDs())
	second := g.Progress()
	total := g.Iterations()
	stats, err := g.Stop(10 * time.Second)
	if err != nil {
		t.Fatal(err)
	}
	for i, s := range stats {
		a, b := first[i], second[i]
		if a.Iterations == 0 || a.Index != i || a.PID != s.PID {
			t.Errorf("worker %d: first progress %+v, want iterations and its pid %d", i, a, s.PID)
		}
		if b.Iterations < a.Iterations || b.RunNS < a.RunNS || b.WallNS < a.WallNS || b.RunNS == 0 {
			t.Errorf("worker %d: progress went back or ran nothing: %+v then %+v", i, a, b)
		}
		if b.Iterations > s.Iterations || b.RunNS > s.RunNS {
			t.Errorf("worker %d: progress %+v beyond its final stats %+v", i, b, s)
		}
		for _, c := range b.CPUs {
			if !slices.Contains(s.CPUs, c) {
				t.Errorf("worker %d: progress CPU %d not in its final CPUs %v", i, c, s.CPUs)
			}
		}
		if len(b.CPUs) == 0 || b.MaxGapNS == 0 {
			t.Errorf("worker %d: progress without CPUs or gap: %+v", i, b)
		}
	}
	if sum := stats[0].Iterations + stats[1].Iterations; total > sum || total < second[0].Iterations+second[1].Iterations {
		t.Errorf("Iterations() = %d between progress %d and final %d: want it in between", total, second[0].Iterations+second[1].Iterations, sum)
	}
	if got, want := g.Iterations(), stats[0].Iterations+stats[1].Iterations; got != want {
		t.Errorf("Iterations() after Stop = %d, want the reported %d", got, want)
	}
	if g.Progress() != nil {
		t.Error("Progress() after Stop is not nil")
	}
}
