package guest

import (
	"fmt"
	"os"
	"os/exec"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ktstr-go/ktstr/internal/cgroup"
	"github.com/ktstr-go/ktstr/internal/scenario"
	"github.com/ktstr-go/ktstr/lib/wire/payload"
)

// The cgroup lifecycle ops, without real cgroups: cgroups added by an op
// and by a step, removed by an op and at the step's end, workers moved
// between cgroups and stopped, cpusets swapped and cleared. Each ends up
// counted where the op put it.
func TestRunScenarioCgroupOps(t *testing.T) {
	sc := mustParse(t, `{"name":"t",
		"cgroups":[{"name":"a","workers":2,"cpuset":"0","work":{"type":"spin"}},
		           {"name":"b","cpuset":"1"},
		           {"name":"p"},{"name":"p/q","workers":1,"work":{"type":"spin"}}],
		"checks":{"isolation":false},
		"steps":[
		  {"hold_ms":5,"ops":[{"op":"add_cgroup","spec":{"name":"c","workers":1,"work":{"type":"yield"}}}]},
		  {"hold_ms":5,"cgroups":[{"name":"s","workers":1,"work":{"type":"spin"}}],
		   "ops":[{"op":"move_tasks","cgroup":"a","to":"b"},{"op":"stop_workers","cgroup":"c"},{"op":"swap_cpusets","cgroup":"a","with":"b"}]},
		  {"hold_ms":5,"ops":[{"op":"remove_cgroup","cgroup":"c"},{"op":"clear_cpuset","cgroup":"a"},{"op":"add_workers","cgroup":"a","count":1}]}]}`)
	r := &recorder{}
	res := runScenario(sc, testEnv(r))
	if res.Verdict() != payload.Pass {
		t.Fatalf("verdict %v: %+v", res.Verdict(), res.Outcomes)
	}
	workers := map[string]int{}
	var names []string
	for _, c := range res.Stats.Cgroups {
		workers[c.Name] = c.Workers
		names = append(names, c.Name)
	}
	// b ran no workers of its own: it has a's two; p is only a parent.
	if want := map[string]int{"a": 1, "b": 2, "p/q": 1, "c": 1, "s": 1}; !mapsEqual(workers, want) {
		t.Errorf("workers per cgroup %v, want %v", workers, want)
	}
	if slices.Contains(names, "p") {
		t.Errorf("the parent p is judged: %v", names)
	}
	// Worker counts after each step's ops and at each step's end: c
	// joins (4), s joins and c stops (4), s goes at the end (3), a gets
	// one more (4).
	var counts []uint16
	for _, s := range r.stims {
		counts = append(counts, s.WorkerCount)
	}
	if want := []uint16{4, 4, 4, 3, 4, 4}; !slices.Equal(counts, want) {
		t.Errorf("worker counts %v, want %v", counts, want)
	}
	// Cgroups alive after each step's ops: a b p p/q c (5), and s (6),
	// then c removed and s gone (4).
	var cgs []uint16
	for _, s := range r.stims {
		cgs = append(cgs, s.CgroupCount)
	}
	if want := []uint16{5, 5, 6, 6, 4, 4}; !slices.Equal(cgs, want) {
		t.Errorf("cgroup counts %v, want %v", cgs, want)
	}
}

func mapsEqual(a, b map[string]int) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}

// Ops that need a real cgroup fail the run with the op named when there
// is none.
func TestRunScenarioFreezeWithoutCgroups(t *testing.T) {
	sc := mustParse(t, `{"name":"t","cgroups":[{"name":"a","workers":1,"work":{"type":"spin"}}],
		"steps":[{"hold_ms":5,"ops":[{"op":"freeze","cgroup":"a"}]},{"hold_ms":5,"ops":[{"op":"set_limits","cgroup":"a","limits":{"cpu_max":"50000"}}]}]}`)
	res := runScenario(sc, testEnv(&recorder{}))
	var msgs []string
	for _, o := range res.Outcomes {
		msgs = append(msgs, o.Message)
	}
	all := strings.Join(msgs, "\n")
	for _, want := range []string{"step 1: freeze on cgroup a: no cgroup", "step 2: set_limits on cgroup a: no cgroup"} {
		if !strings.Contains(all, want) {
			t.Errorf("outcomes %q, want one with %q", all, want)
		}
	}
}

// Payloads: a program's exit status and output tail become a note; a
// status other than the expected one fails the run; kill_payload ends
// one, and one still running at the end is killed and noted.
func TestRunScenarioPayloads(t *testing.T) {
	sc := mustParse(t, `{"name":"t","cgroups":[{"name":"a","workers":1,"work":{"type":"spin"}}],
		"steps":[{"hold_ms":5,"ops":[
		   {"op":"run_payload","payload":"three","path":"/bin/sh","args":["-c","echo hello; exit 3"]},
		   {"op":"run_payload","payload":"sleeper","path":"/bin/sh","args":["-c","sleep 30"]},
		   {"op":"run_payload","payload":"left","path":"/bin/sh","args":["-c","sleep 30"]},
		   {"op":"run_payload","payload":"wrong","path":"/bin/sh","args":["-c","exit 1"]}]},
		  {"hold_ms":5,"ops":[
		   {"op":"wait_payload","payload":"three","expect_exit":3},
		   {"op":"kill_payload","payload":"sleeper","signal":15},
		   {"op":"wait_payload","payload":"sleeper","timeout_ms":5000},
		   {"op":"wait_payload","payload":"wrong","expect_exit":0}]}]}`)
	res := runScenario(sc, testEnv(&recorder{}))
	notes := strings.Join(res.InfoNotes, "\n")
	for _, want := range []string{"payload three (/bin/sh): exited with status 3; output: hello",
		"payload sleeper (/bin/sh): killed by SIGTERM", "payload left (/bin/sh): killed by SIGKILL (at the scenario's end)"} {
		if !strings.Contains(notes, want) {
			t.Errorf("notes:\n%s\nwant %q", notes, want)
		}
	}
	var msgs []string
	for _, o := range res.Outcomes {
		msgs = append(msgs, o.Message)
	}
	if all := strings.Join(msgs, "\n"); len(msgs) != 1 || !strings.Contains(all, "step 2: wait_payload wrong: exited with status 1, want status 0") {
		t.Errorf("outcomes %q, want the one for the wrong exit status", all)
	}
}

// setAffinity pins every thread of a running process.
func TestSetAffinity(t *testing.T) {
	cmd := exec.Command("/bin/sleep", "30")
	if err := cmd.Start(); err != nil {
		t.Skip(err)
	}
	defer func() { cmd.Process.Kill(); cmd.Wait() }()
	if err := setAffinity([]int{cmd.Process.Pid, 1 << 30}, []int{0}); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", cmd.Process.Pid))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(b), "Cpus_allowed_list:\t0\n") {
		t.Errorf("after set_affinity to CPU 0:\n%s", b)
	}
}

// The scheduler ops call the agent's detach and attach in order (restart
// is both); without a scheduler under test they are notes.
func TestRunScenarioSchedulerOps(t *testing.T) {
	sc := mustParse(t, `{"name":"t","cgroups":[{"name":"a","workers":1,"work":{"type":"spin"}}],
		"steps":[{"hold_ms":5,"ops":[{"op":"detach_scheduler"}]},{"hold_ms":5,"ops":[{"op":"attach_scheduler"}]},
		         {"hold_ms":5,"ops":[{"op":"restart_scheduler"}]},{"hold_ms":5,"ops":[{"op":"replace_scheduler"}]}]}`)
	res := runScenario(sc, testEnv(&recorder{}))
	if n := strings.Count(strings.Join(res.InfoNotes, "\n"), ": no scheduler under test"); n != 4 || res.Verdict() != payload.Pass {
		t.Errorf("without a scheduler: %d notes, verdict %v; want 4 and pass: %q", n, res.Verdict(), res.InfoNotes)
	}
	var calls []string
	env := testEnv(&recorder{})
	env.detachScheduler = func() (string, error) { calls = append(calls, "detach"); return "detached", nil }
	env.attachScheduler = func() (string, error) { calls = append(calls, "attach"); return "attached", nil }
	env.replaceScheduler = func() (string, error) { calls = append(calls, "replace"); return "replaced", nil }
	res = runScenario(sc, env)
	if want := []string{"detach", "attach", "detach", "attach", "replace"}; !slices.Equal(calls, want) || res.Verdict() != payload.Pass {
		t.Errorf("calls %v, verdict %v; want %v and pass", calls, res.Verdict(), want)
	}
}

func TestParseStatCPU(t *testing.T) {
	line := "1234 (ktstr worker) R 1 1234 1234 0 -1 4194560 100 0 0 0 5 0 0 0 20 0 3 0 100 1000 100 18446744073709551615 1 1 0 0 0 0 0 0 0 0 0 0 17 3 0 0 0 0 0\n"
	st, cpu, ok := parseStatCPU([]byte(line))
	if !ok || st != 'R' || cpu != 3 {
		t.Errorf("parseStatCPU = %c %d %v, want R 3 true", st, cpu, ok)
	}
	if _, _, ok := parseStatCPU([]byte("1 (x) S 1 2")); ok {
		t.Error("a short line parsed")
	}
	if st, cpu, ok := taskCPU(os.Getpid()); !ok || st == 0 || cpu < 0 {
		t.Errorf("taskCPU(self) = %c %d %v, want a state and a CPU", st, cpu, ok)
	}
}

// pidGroup is a batch of one running process.
type pidGroup struct {
	fakeGroup
	pid int
}

func (p *pidGroup) PIDs() []int { return []int{p.pid} }

// The isolation sampler flags a runnable worker on a CPU outside its
// cgroup's changed cpuset, and only past the grace.
func TestSampleIsolation(t *testing.T) {
	cmd := exec.Command("/bin/sh", "-c", "while :; do :; done")
	if err := cmd.Start(); err != nil {
		t.Skip(err)
	}
	defer func() { cmd.Process.Kill(); cmd.Wait() }()
	if err := setAffinity([]int{cmd.Process.Pid}, []int{0}); err != nil {
		t.Fatal(err)
	}
	env := testEnv(&recorder{})
	env.controllers = map[string]bool{"cpuset": true}
	c := &liveCgroup{spec: scenario.Cgroup{Name: "a"}, group: &cgroup.Group{Dir: t.TempDir()}, expected: []int{1},
		batches: []workerGroup{&pidGroup{pid: cmd.Process.Pid}}}
	sn := &scene{env: env, cgs: []*liveCgroup{c}}
	c.changedAt = time.Now()
	sn.sampleIsolation(c.changedAt.Add(isolationGrace / 2))
	if c.strayed != "" {
		t.Fatalf("flagged within the grace: %s", c.strayed)
	}
	for i := 0; i < 200 && c.strayed == ""; i++ { // until the busy loop is seen runnable
		sn.sampleIsolation(c.changedAt.Add(isolationGrace))
		time.Sleep(5 * time.Millisecond)
	}
	if !strings.Contains(c.strayed, "was runnable on CPU 0, outside its cpuset 1") {
		t.Errorf("strayed = %q", c.strayed)
	}
}
