package workload_test

import (
	"fmt"
	"os"
	"time"

	"github.com/ktstr-go/ktstr/internal/workload"
)

// A program that spawns workers hands control to WorkerMain first thing in
// main: a worker is the same executable re-executed.
func Example_main() {
	if workload.IsWorker(os.Args) {
		os.Exit(workload.WorkerMain(os.Args))
	}
	// ... the program proper.
}

// Four spinning workers in a cgroup, pinned to CPUs 0 and 1, for two
// seconds.
func ExampleSpawn() {
	g, err := workload.Spawn(workload.SpawnSpec{
		Work:      workload.Work{Type: workload.Spin},
		Count:     4,
		CgroupDir: "/sys/fs/cgroup/ktstr/cg0",
		Affinity:  []int{0, 1},
		Name:      "cg0-spin",
	})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return
	}
	time.Sleep(2 * time.Second)
	stats, err := g.Stop(5 * time.Second)
	if err != nil {
		fmt.Fprintln(os.Stderr, err) // stats still has one entry per worker
	}
	for _, s := range stats {
		fmt.Printf("worker %d: %d iterations, ran %v, waited %v, longest gap %v, cpus %v\n",
			s.Index, s.Iterations, time.Duration(s.RunNS), time.Duration(s.WaitNS), time.Duration(s.MaxGapNS), s.CPUs)
	}
}
