package workload

import (
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ktstr-go/ktstr/internal/cgroup"
)

// testCgroup makes a cgroup under the test's own one for workers to start
// in, and removes it at the end; it skips the test where cgroup v2 is not
// writable.
func testCgroup(t *testing.T) string {
	t.Helper()
	own, err := ownCgroup()
	if err != nil {
		t.Skipf("no cgroup v2: %v", err)
	}
	dir, err := os.MkdirTemp(own, "ktstr-test-")
	if err != nil {
		t.Skipf("cgroup v2 not writable here: %v", err)
	}
	t.Cleanup(func() { (&cgroup.Group{Dir: dir}).Remove(2 * time.Second) })
	return dir
}

// children lists the cgroups under dir.
func children(t *testing.T, dir string) []string {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range ents {
		if e.IsDir() {
			out = append(out, e.Name())
		}
	}
	return out
}

// noLeaves checks that no cgroup is left under dir, nor a leaf of the
// workers beside it.
func noLeaves(t *testing.T, dir string, pids []int) {
	t.Helper()
	if left := children(t, dir); len(left) > 0 {
		t.Errorf("cgroups left under %s after stop: %v", dir, left)
	}
	for _, c := range children(t, filepath.Dir(dir)) {
		for _, p := range pids {
			if strings.HasSuffix(c, "-"+strconv.Itoa(p)) || strings.Contains(c, "-"+strconv.Itoa(p)+"-") {
				t.Errorf("cgroup %s left beside %s after stop", c, dir)
			}
		}
	}
}

// seeCgroups polls /proc/PID/cgroup until each of want (a suffix of the
// cgroup path) has been seen, or 10 s passed; it returns those not seen.
func seeCgroups(pid int, want ...string) []string {
	left := slices.Clone(want)
	for deadline := time.Now().Add(10 * time.Second); len(left) > 0 && time.Now().Before(deadline); {
		b, _ := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/cgroup")
		for _, l := range strings.Split(string(b), "\n") {
			if p, ok := strings.CutPrefix(l, "0::"); ok {
				left = slices.DeleteFunc(left, func(s string) bool { return strings.HasSuffix(p, "/"+s) })
			}
		}
	}
	return left
}

func TestCgroupChurn(t *testing.T) {
	dir := testCgroup(t)
	allowed := allowedCPUs(t)
	var pids []int
	stats := runFor(t, SpawnSpec{Work: Work{Type: CgroupChurn, Loops: 200000}, Count: 2, CgroupDir: dir}, func(g *Group) {
		pids = g.PIDs()
		// The worker spends most of each round in its new leaf.
		if left := seeCgroups(pids[0], "ktstr-churn-"+strconv.Itoa(pids[0])); len(left) > 0 {
			t.Errorf("worker %d never seen in %v", pids[0], left)
		}
	})
	checkCommon(t, stats, allowed, pids)
	noLeaves(t, dir, pids)
}

func TestCgroupAttachStorm(t *testing.T) {
	dir := testCgroup(t)
	allowed := allowedCPUs(t)
	var pids []int
	stats := runFor(t, SpawnSpec{Work: Work{Type: CgroupAttachStorm, Loops: 200000}, Count: 2, CgroupDir: dir}, func(g *Group) {
		pids = g.PIDs()
		p := strconv.Itoa(pids[1])
		if left := seeCgroups(pids[1], "ktstr-attach-"+p+"-a", "ktstr-attach-"+p+"-b"); len(left) > 0 {
			t.Errorf("worker %d never seen in %v", pids[1], left)
		}
	})
	checkCommon(t, stats, allowed, pids)
	noLeaves(t, dir, pids)
}

func TestNUMAMigrationChurn(t *testing.T) {
	allowed := allowedCPUs(t)
	var pids []int
	stats := runFor(t, SpawnSpec{Work: Work{Type: NUMAMigrationChurn, SizeKB: 256}, Count: 1}, func(g *Group) { pids = g.PIDs() })
	checkCommon(t, stats, allowed, pids)
	// Each iteration ends on the CPU set it moved to: with two sets or
	// more, the iterations cover at least two CPUs.
	if s := stats[0]; len(allowed) >= 2 && s.Iterations >= 2 && len(s.CPUs) < 2 {
		t.Errorf("numa_migration_churn: %d iterations all on CPUs %v, want at least two CPUs", s.Iterations, s.CPUs)
	}
	if len(allowed) < 2 {
		t.Logf("one CPU allowed: only the re-touching was tested")
	}
}

func TestNUMACPUSets(t *testing.T) {
	sys := t.TempDir()
	node := func(n, list string) {
		d := filepath.Join(sys, "node"+n)
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(d, "cpulist"), []byte(list+"\n"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	node("0", "0-3")
	if got := numaCPUSets(sys, []int{0, 1, 2, 3}); !slices.EqualFunc(got, [][]int{{0, 1}, {2, 3}}, slices.Equal) {
		t.Errorf("one node: %v, want the halves", got)
	}
	if got := numaCPUSets(sys, []int{2}); len(got) != 1 || !slices.Equal(got[0], []int{2}) {
		t.Errorf("one CPU: %v, want [[2]]", got)
	}
	node("1", "4-7")
	node("2", "8-11")
	os.MkdirAll(filepath.Join(sys, "power"), 0o755)
	if got := numaCPUSets(sys, []int{1, 2, 5, 6}); !slices.EqualFunc(got, [][]int{{1, 2}, {5, 6}}, slices.Equal) {
		t.Errorf("three nodes, CPUs on two: %v, want [[1 2] [5 6]]", got)
	}
}

func TestChurnWorkValidate(t *testing.T) {
	for _, tc := range []struct {
		w    Work
		want string
	}{
		{Work{Type: CgroupChurn, SizeKB: 4}, "size_kb is not a parameter of cgroup_churn"},
		{Work{Type: CgroupAttachStorm, GroupSize: 2}, "group_size is not a parameter of cgroup_attach_storm"},
		{Work{Type: NUMAMigrationChurn, Loops: 5}, "loops is not a parameter of numa_migration_churn"},
	} {
		if err := tc.w.Validate(); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%+v.Validate() = %v, want %q", tc.w, err, tc.want)
		}
	}
	for ty, want := range map[Type]Work{
		CgroupChurn:        {Type: CgroupChurn, Loops: DefaultCgChurnLoops},
		CgroupAttachStorm:  {Type: CgroupAttachStorm, Loops: DefaultAttachLoops},
		NUMAMigrationChurn: {Type: NUMAMigrationChurn, SizeKB: DefaultNUMAChurnKB},
	} {
		if got := (Work{Type: ty}).WithDefaults(); got.Loops != want.Loops || got.SizeKB != want.SizeKB {
			t.Errorf("%s defaults: %+v, want %+v", ty, got, want)
		}
	}
}

// TestLeafPlace: leaves go beside the worker's cgroup when its parent
// enables controllers for its children, else under it.
func TestLeafPlace(t *testing.T) {
	dir := testCgroup(t)
	parent := filepath.Dir(dir)
	b, err := os.ReadFile(filepath.Join(parent, "cgroup.subtree_control"))
	if err != nil {
		t.Fatal(err)
	}
	want, wantBeside := dir, false
	if len(strings.TrimSpace(string(b))) > 0 {
		want, wantBeside = parent, true
	}
	if got, beside := leafPlace(dir); got != want || beside != wantBeside {
		t.Errorf("leafPlace(%s) = %s, %v; want %s, %v (parent's subtree_control %q)", dir, got, beside, want, wantBeside, b)
	}
	// The mount's root has no parent on the mount: under it.
	if got, beside := leafPlace(filepath.Clean(cgroup.FindV2())); beside || got != filepath.Clean(cgroup.FindV2()) {
		t.Errorf("leafPlace(root) = %s, %v; want the root itself", got, beside)
	}
}

// TestCgroupChurnSetupFails: a worker that cannot make its leaves (here
// cgroup.max.descendants 0 on a cgroup whose parent enables no
// controllers, so the leaves go under it) fails its setup and Spawn says
// why.
func TestCgroupChurnSetupFails(t *testing.T) {
	dir := filepath.Join(testCgroup(t), "inner")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "cgroup.max.descendants"), []byte("0"), 0); err != nil {
		t.Skipf("cgroup.max.descendants: %v", err)
	}
	for _, ty := range []Type{CgroupChurn, CgroupAttachStorm} {
		g, err := Spawn(SpawnSpec{Work: Work{Type: ty}, Count: 1, CgroupDir: dir})
		if err == nil {
			g.Stop(5 * time.Second)
			t.Errorf("%s: Spawn succeeded with no room for a leaf", ty)
			continue
		}
		if want := string(ty) + ": create cgroup " + dir + "/ktstr-"; !strings.Contains(err.Error(), want) {
			t.Errorf("%s: Spawn error %q, want it to contain %q", ty, err, want)
		}
		if left := children(t, dir); len(left) > 0 {
			t.Errorf("%s: cgroups left: %v", ty, left)
		}
	}
}
