package workload

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"github.com/ktstr-go/ktstr/internal/hist"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// TestMain lets the test binary be a worker: Spawn re-executes it.
func TestMain(m *testing.M) {
	if IsWorker(os.Args) {
		os.Exit(WorkerMain(os.Args))
	}
	if os.Getenv(exitNowEnv) == "1" { // BenchmarkForkExecSelf's child
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// hold is how long each test lets its workers run. Short: the machine is
// shared.
const hold = 300 * time.Millisecond

// allowedCPUs is the test process's affinity: the CPUs a worker may use.
func allowedCPUs(t *testing.T) []int {
	t.Helper()
	var set unix.CPUSet
	if err := unix.SchedGetaffinity(0, &set); err != nil {
		t.Fatalf("sched_getaffinity: %v", err)
	}
	var out []int
	for c := 0; c <= MaxCPU; c++ {
		if set.IsSet(c) {
			out = append(out, c)
		}
	}
	return out
}

// runFor spawns spec, calls during (if any) while the workers run, and
// stops them.
func runFor(t *testing.T, spec SpawnSpec, during func(g *Group)) []Stats {
	t.Helper()
	g, err := Spawn(spec)
	if err != nil {
		t.Fatalf("Spawn(%+v) = %v", spec, err)
	}
	if len(g.PIDs()) != spec.Count {
		t.Errorf("PIDs() = %v, want %d pids", g.PIDs(), spec.Count)
	}
	time.Sleep(hold / 2)
	if during != nil {
		during(g)
	}
	time.Sleep(hold / 2)
	waitRun(t, g.PIDs())
	stats, err := g.Stop(10 * time.Second)
	if err != nil {
		t.Fatalf("Stop() error = %v", err)
	}
	if len(stats) != spec.Count {
		t.Fatalf("Stop() returned %d stats, want %d", len(stats), spec.Count)
	}
	return stats
}

// waitRun waits until every worker has run for a while since the call,
// so that a loaded machine (this one is shared) does not make a worker
// look starved. It bounds the wait and does not fail: the checks after it
// do.
func waitRun(t *testing.T, pids []int) {
	t.Helper()
	const minRun = 10 * time.Millisecond
	start := make([]uint64, len(pids))
	for i, pid := range pids {
		start[i] = threadRun(pid)
	}
	for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		done := true
		for i, pid := range pids {
			if threadRun(pid)-start[i] < uint64(minRun) {
				done = false
			}
		}
		if done {
			return
		}
	}
	t.Logf("workers %v did not all run %v within 20s", pids, minRun)
}

// threadRun is the main thread's run time from /proc/PID/task/PID/schedstat.
func threadRun(pid int) uint64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/task/%d/schedstat", pid, pid))
	if err != nil {
		return 1 << 62 // gone: do not wait for it
	}
	run, _, _, _ := parseSchedstat(b)
	return run
}

// checkCommon checks what every normally ended worker must show.
func checkCommon(t *testing.T, stats []Stats, allowed []int, pids []int) {
	t.Helper()
	for i, s := range stats {
		if !s.OK() {
			t.Errorf("worker %d not OK: %+v", i, s)
		}
		if s.Index != i || (pids != nil && s.PID != pids[i]) {
			t.Errorf("worker %d: Index %d PID %d, want %d and %v", i, s.Index, s.PID, i, pids)
		}
		if s.TID != s.PID {
			t.Errorf("worker %d: TID %d, want the PID %d (work on the main thread)", i, s.TID, s.PID)
		}
		if s.Iterations == 0 {
			t.Errorf("worker %d: no iterations", i)
		}
		if s.RunNS == 0 || s.WallNS == 0 || s.Timeslices == 0 {
			t.Errorf("worker %d: RunNS %d WallNS %d Timeslices %d, want all > 0", i, s.RunNS, s.WallNS, s.Timeslices)
		}
		if s.MaxGapNS == 0 || s.MaxGapNS > s.WallNS {
			t.Errorf("worker %d: MaxGapNS %d, want 0 < gap <= WallNS %d", i, s.MaxGapNS, s.WallNS)
		}
		if len(s.CPUs) == 0 {
			t.Errorf("worker %d: no CPUs", i)
		}
		for _, c := range s.CPUs {
			if !slices.Contains(allowed, c) {
				t.Errorf("worker %d ran on CPU %d, outside the allowed %v", i, c, allowed)
			}
		}
		if !slices.IsSorted(s.CPUs) {
			t.Errorf("worker %d: CPUs %v not sorted", i, s.CPUs)
		}
		if s.MigrationsFrom != "sched" && s.MigrationsFrom != "getcpu" {
			t.Errorf("worker %d: MigrationsFrom %q", i, s.MigrationsFrom)
		}
	}
}

// processesForked reads the kernel's count of forks since boot.
func processesForked(t *testing.T) uint64 {
	t.Helper()
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		t.Fatal(err)
	}
	n, ok := parseKeyed(b, "processes")
	if !ok {
		t.Fatalf("no processes line in /proc/stat")
	}
	return n
}

func absDiff(a, b uint64) uint64 {
	if a > b {
		return a - b
	}
	return b - a
}

// procNice reads a process's nice value from /proc/PID/stat (field 19).
func procNice(pid int) (int, error) { return procStat(pid, 19) }

func TestWorkTypes(t *testing.T) {
	allowed := allowedCPUs(t)
	tests := []struct {
		work  Work
		count int
		check func(t *testing.T, stats []Stats)
		// during runs while the workers run.
		during func(t *testing.T, g *Group)
	}{
		{work: Work{Type: Spin}, count: 2},
		{work: Work{Type: Yield}, count: 2},
		{work: Work{Type: Bursty, SpinUS: 200, SleepUS: 300}, count: 1, check: func(t *testing.T, stats []Stats) {
			if stats[0].VoluntaryCtxSwitches == 0 {
				t.Errorf("bursty: no voluntary context switches over %d sleeps", stats[0].Iterations)
			}
		}},
		{work: Work{Type: Pipe}, count: 4, check: checkPairs},
		{work: Work{Type: FutexPingPong}, count: 2, check: checkPairs},
		{work: Work{Type: FutexFanout, GroupSize: 3, Loops: 100}, count: 6, check: func(t *testing.T, stats []Stats) {
			for grp := 0; grp < 2; grp++ {
				waker := stats[grp*3].Iterations
				for _, s := range stats[grp*3+1 : grp*3+3] {
					if s.Iterations != waker && s.Iterations != waker+1 {
						t.Errorf("fanout group %d: waiter %d has %d iterations, waker %d; want equal or one more", grp, s.Index, s.Iterations, waker)
					}
				}
			}
		}},
		{work: Work{Type: Cache, SizeKB: 4096, Loops: 256}, count: 1},
		{work: Work{Type: NiceSweep, Loops: 2000}, count: 3, check: func(t *testing.T, stats []Stats) {
			for i, want := range []int{-10, 0, 10} {
				if stats[i].Nice != want {
					t.Errorf("nice_sweep worker %d: Nice %d, want %d", i, stats[i].Nice, want)
				}
			}
		}, during: func(t *testing.T, g *Group) {
			for i, pid := range g.PIDs() {
				n, err := procNice(pid)
				if want := []int{-10, 0, 10}[i]; err != nil || n != want {
					t.Errorf("/proc/%d/stat nice = %d, %v; want %d", pid, n, err, want)
				}
			}
		}},
		{work: Work{Type: AffinityChurn, Every: 1}, count: 1, check: func(t *testing.T, stats []Stats) {
			if len(allowed) < 2 {
				t.Logf("one CPU allowed: cannot check that the worker moved")
				return
			}
			if len(stats[0].CPUs) < 2 || stats[0].Migrations == 0 {
				t.Errorf("affinity_churn: CPUs %v, migrations %d over %d iterations; want 2+ CPUs and migrations", stats[0].CPUs, stats[0].Migrations, stats[0].Iterations)
			}
		}},
		{work: Work{Type: Mutex, Loops: 200, HoldLoops: 200}, count: 3},
		{work: Work{Type: WakeLatency, GroupSize: 3, Loops: 100, SleepUS: 50}, count: 3, check: func(t *testing.T, stats []Stats) {
			if h := stats[0].Latency; h == nil || h.Count != 0 {
				t.Errorf("wake_latency message thread: latency %+v, want an empty histogram", h)
			}
			for _, s := range stats[1:] {
				checkLatency(t, s, LatencyWake)
			}
		}},
		{work: Work{Type: OpenLoop, SleepUS: 500, Loops: 1000}, count: 3, check: func(t *testing.T, stats []Stats) {
			if h := stats[0].Latency; h == nil || h.Count != 0 || stats[0].Iterations == 0 {
				t.Errorf("open_loop generator: %d iterations, latency %+v; want some and an empty histogram", stats[0].Iterations, h)
			}
			served := uint64(0)
			for _, s := range stats[1:] {
				checkLatency(t, s, LatencyRequest)
				served += s.Iterations
			}
			// Never more served than issued: one request per 500 µs of
			// the generator's window at most.
			if offered := stats[0].WallNS/500000 + 1; served > offered {
				t.Errorf("open_loop: %d requests served, at most %d offered", served, offered)
			}
		}},
		{work: Work{Type: TimerLatency, SleepUS: 500}, count: 2, check: func(t *testing.T, stats []Stats) {
			for _, s := range stats {
				checkLatency(t, s, LatencyTimer)
			}
		}},
	}
	for _, tt := range tests {
		t.Run(string(tt.work.Type), func(t *testing.T) {
			var pids []int
			stats := runFor(t, SpawnSpec{Work: tt.work, Count: tt.count}, func(g *Group) {
				pids = g.PIDs()
				if tt.during != nil {
					tt.during(t, g)
				}
			})
			checkCommon(t, stats, allowed, pids)
			for _, s := range stats {
				t.Logf("%s worker %d: %d iterations in %v (%.0f/s), run %v, wait %v, max gap %v, cpus %v, vcs %d, ivcs %d",
					s.Type, s.Index, s.Iterations, time.Duration(s.WallNS), float64(s.Iterations)/(float64(s.WallNS)/1e9),
					time.Duration(s.RunNS), time.Duration(s.WaitNS), time.Duration(s.MaxGapNS), s.CPUs,
					s.VoluntaryCtxSwitches, s.InvoluntaryCtxSwitches)
			}
			if tt.check != nil {
				tt.check(t, stats)
			}
		})
	}
}

// TestForkExit checks that every fork_exit iteration is a real fork: the
// kernel's fork counter grows by at least the iterations.
func TestForkExit(t *testing.T) {
	before := processesForked(t)
	stats := runFor(t, SpawnSpec{Work: Work{Type: ForkExit}, Count: 1}, nil)
	after := processesForked(t)
	checkCommon(t, stats, allowedCPUs(t), nil)
	if forks := after - before; forks < stats[0].Iterations {
		t.Errorf("fork_exit: kernel counted %d forks, worker %d iterations", forks, stats[0].Iterations)
	}
	t.Logf("fork_exit: %d forks in %v", stats[0].Iterations, time.Duration(stats[0].WallNS))
}

// checkPairs checks that both sides of each ping-pong pair did the same
// number of hand-offs, give or take the one in flight at Stop.
func checkPairs(t *testing.T, stats []Stats) {
	t.Helper()
	for i := 0; i+1 < len(stats); i += 2 {
		if d := absDiff(stats[i].Iterations, stats[i+1].Iterations); d > 1 {
			t.Errorf("pair %d: iterations %d and %d, want equal +-1", i/2, stats[i].Iterations, stats[i+1].Iterations)
		}
	}
}

func TestPinned(t *testing.T) {
	allowed := allowedCPUs(t)
	cpu := allowed[len(allowed)-1]
	stats := runFor(t, SpawnSpec{Work: Work{Type: Spin}, Count: 1, Affinity: []int{cpu}, Nice: 5, Name: "pinned-spinner-long"}, func(g *Group) {
		pid := g.PIDs()[0]
		tasks, _ := filepath.Glob(fmt.Sprintf("/proc/%d/task/*/status", pid))
		if len(tasks) == 0 {
			t.Errorf("no threads of %d", pid)
		}
		for _, f := range tasks {
			b, err := os.ReadFile(f)
			if err != nil {
				continue // thread gone
			}
			if got := statusField(b, "Cpus_allowed_list"); got != strconv.Itoa(cpu) {
				t.Errorf("%s: Cpus_allowed_list %q, want %d", f, got, cpu)
			}
		}
		comm, _ := os.ReadFile(fmt.Sprintf("/proc/%d/comm", pid))
		if got := strings.TrimSpace(string(comm)); got != "pinned-spinner-" {
			t.Errorf("comm %q, want the name cut to 15 bytes", got)
		}
	})
	checkCommon(t, stats, allowed, nil)
	if !slices.Equal(stats[0].CPUs, []int{cpu}) {
		t.Errorf("pinned worker CPUs %v, want [%d]", stats[0].CPUs, cpu)
	}
	if stats[0].Nice != 5 {
		t.Errorf("Nice %d, want 5", stats[0].Nice)
	}
}

func statusField(b []byte, key string) string {
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		if k, v, ok := strings.Cut(sc.Text(), ":"); ok && k == key {
			return strings.TrimSpace(v)
		}
	}
	return ""
}

// TestStopKillsStuckWorker stops a worker with SIGSTOP so it cannot answer;
// Stop must kill it after the timeout and say so, and still report the
// other worker.
func TestStopKillsStuckWorker(t *testing.T) {
	g, err := Spawn(SpawnSpec{Work: Work{Type: Spin}, Count: 2})
	if err != nil {
		t.Fatal(err)
	}
	stuck := g.PIDs()[0]
	if err := syscall.Kill(stuck, syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	time.Sleep(hold / 2)
	waitRun(t, g.PIDs()[1:])
	stats, err := g.Stop(2 * time.Second)
	if err == nil || !strings.Contains(err.Error(), "did not stop in time") {
		t.Errorf("Stop() error = %v, want one naming the stuck worker", err)
	}
	if s := stats[0]; !s.TimedOut || s.Signal != int(syscall.SIGKILL) || s.Reported || !s.Exited || s.PID != stuck {
		t.Errorf("stuck worker: %+v, want TimedOut, killed by SIGKILL, not reported", s)
	}
	if s := stats[1]; !s.OK() || s.Iterations == 0 {
		t.Errorf("healthy worker: %+v, want OK with iterations", s)
	}
	if err := syscall.Kill(stuck, 0); err != syscall.ESRCH {
		t.Errorf("kill(%d, 0) = %v after Stop, want ESRCH (reaped)", stuck, err)
	}
}

// TestKilledWorkerReported kills a worker mid-run: Stop reports it, with
// the signal, instead of losing it.
func TestKilledWorkerReported(t *testing.T) {
	g, err := Spawn(SpawnSpec{Work: Work{Type: Spin}, Count: 2})
	if err != nil {
		t.Fatal(err)
	}
	victim := g.PIDs()[1]
	time.Sleep(hold / 2)
	if err := syscall.Kill(victim, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	time.Sleep(hold / 2)
	stats, err := g.Stop(5 * time.Second)
	if err == nil || !strings.Contains(err.Error(), "killed by SIGKILL") {
		t.Errorf("Stop() error = %v, want one naming the killed worker", err)
	}
	if s := stats[1]; s.Reported || !s.Exited || s.Signal != int(syscall.SIGKILL) || s.TimedOut || s.PID != victim {
		t.Errorf("killed worker: %+v, want Exited by SIGKILL, not reported, not timed out", s)
	}
	if !stats[0].OK() {
		t.Errorf("other worker: %+v, want OK", stats[0])
	}
}

// TestPipePeerKilled: when one side of a pipe pair dies, the other sees end
// of file, says so, and still reports.
func TestPipePeerKilled(t *testing.T) {
	g, err := Spawn(SpawnSpec{Work: Work{Type: Pipe}, Count: 2})
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(hold / 2)
	syscall.Kill(g.PIDs()[1], syscall.SIGKILL)
	time.Sleep(hold / 2)
	stats, _ := g.Stop(5 * time.Second)
	if s := stats[0]; !s.Reported || s.Exited || !strings.Contains(s.Error, "peer went away") {
		t.Errorf("survivor: %+v, want a report saying the peer went away", s)
	}
	if s := stats[1]; s.Signal != int(syscall.SIGKILL) {
		t.Errorf("victim: %+v, want killed by SIGKILL", s)
	}
}

// TestFutexPeerKilled: a futex ping-pong worker whose peer died waits, and
// still stops promptly when told.
func TestFutexPeerKilled(t *testing.T) {
	g, err := Spawn(SpawnSpec{Work: Work{Type: FutexPingPong}, Count: 2})
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(hold / 2)
	syscall.Kill(g.PIDs()[0], syscall.SIGKILL)
	time.Sleep(hold / 2)
	stats, _ := g.Stop(5 * time.Second)
	if s := stats[1]; !s.OK() {
		t.Errorf("survivor: %+v, want OK", s)
	}
	if s := stats[0]; s.Signal != int(syscall.SIGKILL) || s.Reported {
		t.Errorf("victim: %+v, want killed by SIGKILL", s)
	}
}

func TestStopTwice(t *testing.T) {
	g, err := Spawn(SpawnSpec{Work: Work{Type: Yield}, Count: 1})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := g.Stop(5 * time.Second); err != nil {
		t.Fatal(err)
	}
	if _, err := g.Stop(time.Second); !errors.Is(err, ErrStopped) {
		t.Errorf("second Stop() = %v, want ErrStopped", err)
	}
}

func TestSpawnErrors(t *testing.T) {
	var set unix.CPUSet
	unix.SchedGetaffinity(0, &set)
	absent := -1
	for c := MaxCPU; c >= 0; c-- {
		if !set.IsSet(c) {
			absent = c
			break
		}
	}
	tests := []struct {
		name string
		spec SpawnSpec
		want string
	}{
		{"unknown type", SpawnSpec{Work: Work{Type: "sleepy"}, Count: 1}, "unknown work type"},
		{"zero count", SpawnSpec{Work: Work{Type: Spin}}, "count 0"},
		{"odd pipe", SpawnSpec{Work: Work{Type: Pipe}, Count: 3}, "groups of 2"},
		{"partial fanout", SpawnSpec{Work: Work{Type: FutexFanout}, Count: 6}, "groups of 4"},
		{"nice and sweep", SpawnSpec{Work: Work{Type: NiceSweep}, Count: 2, Nice: 3}, "spec nice must be 0"},
		{"bad nice", SpawnSpec{Work: Work{Type: Spin}, Count: 1, Nice: 20}, "nice 20"},
		{"empty affinity", SpawnSpec{Work: Work{Type: Spin}, Count: 1, Affinity: []int{}}, "empty affinity"},
		{"affinity out of range", SpawnSpec{Work: Work{Type: Spin}, Count: 1, Affinity: []int{4096}}, "affinity CPU 4096"},
		{"no cgroup", SpawnSpec{Work: Work{Type: Spin}, Count: 1, CgroupDir: "/nonexistent/cgroup"}, "/nonexistent/cgroup"},
	}
	if absent >= 0 {
		tests = append(tests, struct {
			name string
			spec SpawnSpec
			want string
		}{"affinity to an absent CPU", SpawnSpec{Work: Work{Type: Spin}, Count: 2, Affinity: []int{absent}}, "did not start: pin to CPUs"})
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g, err := Spawn(tt.spec)
			if err == nil {
				g.Stop(time.Second)
				t.Fatalf("Spawn(%+v) succeeded, want an error containing %q", tt.spec, tt.want)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("Spawn(%+v) = %v, want an error containing %q", tt.spec, err, tt.want)
			}
		})
	}
}

// cgroup2Root finds a writable cgroup v2 mount.
func cgroup2Root() (string, error) {
	b, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return "", err
	}
	for _, line := range strings.Split(string(b), "\n") {
		before, after, ok := strings.Cut(line, " - ")
		if !ok || !strings.HasPrefix(after, "cgroup2 ") {
			continue
		}
		f := strings.Fields(before)
		if len(f) < 6 || !strings.Contains(","+f[5]+",", ",rw,") {
			continue
		}
		return f[4], nil
	}
	return "", errors.New("no read-write cgroup2 mount in /proc/self/mountinfo")
}

func TestSpawnIntoCgroup(t *testing.T) {
	root, err := cgroup2Root()
	if err != nil {
		t.Skipf("cgroup v2: %v", err)
	}
	name := fmt.Sprintf("ktstr-workload-test-%d", os.Getpid())
	dir := filepath.Join(root, name)
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Skipf("cannot create a cgroup under %s: %v", root, err)
	}
	t.Cleanup(func() {
		// The workers are reaped by Stop; rmdir succeeds once the cgroup
		// is empty, which can take a moment after the last exit.
		for i := 0; i < 50; i++ {
			if os.Remove(dir) == nil || errors.Is(os.Remove(dir), os.ErrNotExist) {
				return
			}
			time.Sleep(20 * time.Millisecond)
		}
		t.Errorf("could not remove %s", dir)
	})
	stats := runFor(t, SpawnSpec{Work: Work{Type: Spin}, Count: 2, CgroupDir: dir}, func(g *Group) {
		for _, pid := range g.PIDs() {
			b, err := os.ReadFile(fmt.Sprintf("/proc/%d/cgroup", pid))
			if err != nil {
				t.Fatal(err)
			}
			if !strings.Contains("\n"+string(b), "\n0::/"+name+"\n") {
				t.Errorf("/proc/%d/cgroup = %q, want 0::/%s", pid, b, name)
			}
		}
		procs, _ := os.ReadFile(filepath.Join(dir, "cgroup.procs"))
		if n := len(strings.Fields(string(procs))); n != 2 {
			t.Errorf("%s/cgroup.procs lists %d processes, want 2", dir, n)
		}
	})
	checkCommon(t, stats, allowedCPUs(t), nil)
}

func TestWorkerMainBadArgs(t *testing.T) {
	for _, args := range [][]string{
		{"prog"},
		{"prog", workerArg},
		{"prog", workerArg, "{not json"},
	} {
		if got := WorkerMain(args); got != exitUsage {
			t.Errorf("WorkerMain(%q) = %d, want %d", args, got, exitUsage)
		}
	}
}

// TestPlacementAndDomains: Placement pins the workers round the given
// sets, and a worker moved over CPUs of different domains counts the
// crossings (affinity_churn moves itself over its allowed CPUs).
func TestPlacementAndDomains(t *testing.T) {
	allowed := allowedCPUs(t)
	if len(allowed) < 2 {
		t.Skip("needs two CPUs")
	}
	a, b := allowed[0], allowed[1]
	stats := runFor(t, SpawnSpec{Work: Work{Type: Spin}, Count: 4, Placement: [][]int{{a}, {b}}}, nil)
	for i, s := range stats {
		want := []int{a, b}[i%2]
		if !slices.Equal(s.CPUs, []int{want}) {
			t.Errorf("worker %d ran on %v, want only CPU %d (placement round the sets)", i, s.CPUs, want)
		}
	}
	// Two CPUs, each its own LLC; both on node 0.
	dom := &Domains{LLC: make([]int, b+1), Node: make([]int, b+1)}
	dom.LLC[b] = 1
	stats = runFor(t, SpawnSpec{Work: Work{Type: AffinityChurn}, Count: 1, Affinity: []int{a, b}, Domains: dom}, nil)
	s := stats[0]
	if s.CPUChanges == 0 {
		t.Fatalf("affinity_churn made no CPU changes: %+v", s)
	}
	if s.CrossLLC == 0 || s.CrossLLC > s.CPUChanges {
		t.Errorf("CrossLLC = %d with %d CPU changes between two LLCs, want 1..changes", s.CrossLLC, s.CPUChanges)
	}
	if s.CrossNode != 0 {
		t.Errorf("CrossNode = %d with both CPUs on node 0", s.CrossNode)
	}
	if s.Pages == 0 || s.LocalPages != s.Pages {
		t.Errorf("pages %d, local %d: want every resident page on node 0 (numa_maps)", s.Pages, s.LocalPages)
	}
}

func TestCountNodePages(t *testing.T) {
	maps := "7f00 default anon=3 dirty=3 N0=2 N1=1 kernelpagesize_kB=4\n" +
		"7f10 bind:1 file=/x mapped=5 N1=5 kernelpagesize_kB=4\n" +
		"7f18 default file=/y anon=1 dirty=1 mapped=4 N0=4 kernelpagesize_kB=4\n" +
		"7f20 default anon=9 Nx=3 N=4 N2=bad N1=4\n"
	pages, local := countNodePages([]byte(maps), map[int]bool{1: true})
	if pages != 7 || local != 5 {
		t.Errorf("countNodePages = %d, %d; want 7 anonymous pages, 5 on node 1 (file mappings left out)", pages, local)
	}
}

// checkLatency: a latency worker recorded one latency per iteration, in a
// histogram that survives its trip through the report.
func checkLatency(t *testing.T, s Stats, kind string) {
	t.Helper()
	if s.LatencyKind != kind || s.Latency == nil {
		t.Fatalf("%s worker %d: latency kind %q, histogram %v", s.Type, s.Index, s.LatencyKind, s.Latency)
	}
	h, err := hist.FromSparse(s.Latency)
	if err != nil {
		t.Fatalf("%s worker %d: %v", s.Type, s.Index, err)
	}
	if h.Count() != s.Iterations || s.Iterations == 0 {
		t.Errorf("%s worker %d: %d latencies for %d iterations", s.Type, s.Index, h.Count(), s.Iterations)
	}
	t.Logf("%s worker %d: %+v", s.Type, s.Index, h.Summarize())
}
