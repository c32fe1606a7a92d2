package workload

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/ktstr-go/ktstr/internal/cgroup"
	"github.com/ktstr-go/ktstr/internal/cpulist"
	"golang.org/x/sys/unix"
)

// The change-heavy types: cgroup_churn, cgroup_attach_storm and
// numa_migration_churn. The cgroups they make are leaves that hold only
// the worker, so cgroup v2's "no internal processes" rule never applies
// to them (doc.go says where they go).

// ownCgroup is the directory of the cgroup v2 group this process is in:
// the cgroup2 mount (the one the agent mounts at /sys/fs/cgroup, else
// the first in /proc/self/mountinfo) joined with the "0::" line of
// /proc/self/cgroup.
func ownCgroup() (string, error) {
	mount := cgroup.FindV2()
	if mount == "" {
		return "", errors.New("no cgroup v2 hierarchy mounted")
	}
	b, err := os.ReadFile("/proc/self/cgroup")
	if err != nil {
		return "", err
	}
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		if p, ok := strings.CutPrefix(sc.Text(), "0::"); ok {
			p = strings.TrimSuffix(p, " (deleted)")
			if !strings.HasPrefix(p, "/") || strings.Contains(p, "/../") || strings.HasSuffix(p, "/..") {
				return "", fmt.Errorf("/proc/self/cgroup: odd path %q", p)
			}
			return filepath.Join(mount, p), nil
		}
	}
	return "", errors.New("/proc/self/cgroup has no cgroup v2 line (0::)")
}

// enter moves this whole process (every thread) into the cgroup dir.
func enter(dir, pid string) error {
	p := filepath.Join(dir, "cgroup.procs")
	if err := os.WriteFile(p, []byte(pid), 0); err != nil {
		return fmt.Errorf("move into %s: %w", dir, err)
	}
	return nil
}

// rmLeaf removes an empty cgroup, retrying briefly while the kernel
// still counts the task that just left it (EBUSY); gone already is fine.
func rmLeaf(dir string) error {
	for i := 0; ; i++ {
		err := unix.Rmdir(dir)
		if err == nil || errors.Is(err, unix.ENOENT) {
			return nil
		}
		if !errors.Is(err, unix.EBUSY) || i >= 100 {
			return fmt.Errorf("remove %s: %w", dir, err)
		}
		time.Sleep(time.Millisecond)
	}
}

// mkLeaf creates the cgroup dir; existing already is fine (a round cut
// short left it).
func mkLeaf(dir string) error {
	if err := os.Mkdir(dir, 0o755); err != nil && !errors.Is(err, os.ErrExist) {
		return fmt.Errorf("create cgroup %s: %w", dir, err)
	}
	return nil
}

// leafPlace is where the leaves of a worker whose cgroup is home go:
// beside home when home's parent enables controllers for its children
// (it then holds no processes, and the leaves get the cpu controller, so
// a move changes the task's cpu cgroup and reaches the scheduler's cgroup
// callbacks); else under home, without controllers.
func leafPlace(home string) (dir string, beside bool) {
	mount := filepath.Clean(cgroup.FindV2())
	parent := filepath.Dir(home)
	if home == mount || !strings.HasPrefix(parent, mount) {
		return home, false
	}
	b, err := os.ReadFile(filepath.Join(parent, "cgroup.subtree_control"))
	if err != nil || len(bytes.TrimSpace(b)) == 0 {
		return home, false
	}
	return parent, true
}

// copySettings gives a leaf beside home home's CPUs, memory nodes and CPU
// weight and bandwidth, so a worker in it keeps its cgroup's limits (and
// the isolation check its cpuset). Only the cpuset must succeed.
func copySettings(home, leaf string) error {
	for _, f := range []string{"cpuset.cpus", "cpuset.mems", "cpu.weight", "cpu.max"} {
		b, err := os.ReadFile(filepath.Join(home, f))
		v, cpuset := bytes.TrimSpace(b), strings.HasPrefix(f, "cpuset.")
		if err != nil || len(v) > 4096 || len(v) == 0 && !cpuset {
			continue
		}
		if len(v) == 0 {
			v = []byte("\n") // none: the leaf takes its parent's, as home does
		}
		if err := os.WriteFile(filepath.Join(leaf, f), v, 0); err != nil && cpuset {
			return fmt.Errorf("copy %s of %s: %w", f, home, err)
		}
	}
	return nil
}

// makeLeaf creates the leaf name for a worker whose cgroup is home (see
// leafPlace) and copies home's settings into it when it is beside home.
func makeLeaf(home, name string) (string, error) {
	dir, beside := leafPlace(home)
	leaf := filepath.Join(dir, name)
	if err := mkLeaf(leaf); err != nil {
		return leaf, err
	}
	if beside {
		if err := copySettings(home, leaf); err != nil {
			rmLeaf(leaf)
			return leaf, err
		}
	}
	return leaf, nil
}

// setupCgroupChurn: each round creates the leaf ktstr-churn-PID for the
// worker's cgroup of the moment (leafPlace), moves the worker in, runs
// loops LCG steps there, moves it back and removes the leaf.
func (w *worker) setupCgroupChurn() error {
	home, err := ownCgroup()
	if err != nil {
		return fmt.Errorf("cgroup_churn: %w", err)
	}
	pid := strconv.Itoa(os.Getpid())
	name := "ktstr-churn-" + pid
	leaf := ""
	w.cleanup = func() {
		if cur, err := ownCgroup(); err == nil && cur == leaf {
			enter(home, pid)
		}
		if leaf != "" {
			rmLeaf(leaf)
		}
	}
	round := func() error {
		// The worker's cgroup may have changed (a scenario's move_tasks):
		// the new leaf is made for wherever it is now.
		cur, err := ownCgroup()
		if err != nil {
			return err
		}
		if cur != leaf { // else a round cut short left it inside
			home = cur
		}
		if leaf, err = makeLeaf(home, name); err != nil {
			return err
		}
		if err := enter(leaf, pid); err != nil {
			rmLeaf(leaf)
			return err
		}
		w.burn(w.work.Loops)
		if err := enter(home, pid); err != nil {
			return err
		}
		return rmLeaf(leaf)
	}
	// One round now, so that a worker that cannot do it says so at once.
	if err := round(); err != nil {
		w.cleanup()
		return fmt.Errorf("cgroup_churn: %w", err)
	}
	w.step = func() bool {
		if err := round(); err != nil {
			w.fail(fmt.Errorf("cgroup_churn: %w", err))
			return false
		}
		return true
	}
	return nil
}

// setupAttachStorm creates the sibling leaves ktstr-attach-PID-a and -b
// (leafPlace); each step runs loops LCG steps and moves the worker into
// the other leaf. At the end it goes back and removes both.
func (w *worker) setupAttachStorm() error {
	home, err := ownCgroup()
	if err != nil {
		return fmt.Errorf("cgroup_attach_storm: %w", err)
	}
	pid := strconv.Itoa(os.Getpid())
	var leaves [2]string
	w.cleanup = func() {
		if cur, err := ownCgroup(); err == nil && (cur == leaves[0] || cur == leaves[1]) {
			enter(home, pid)
		}
		for _, l := range leaves {
			if l != "" {
				rmLeaf(l)
			}
		}
	}
	for i, suf := range []string{"-a", "-b"} {
		if leaves[i], err = makeLeaf(home, "ktstr-attach-"+pid+suf); err != nil {
			w.cleanup()
			return fmt.Errorf("cgroup_attach_storm: %w", err)
		}
	}
	if err := enter(leaves[0], pid); err != nil {
		w.cleanup()
		return fmt.Errorf("cgroup_attach_storm: %w", err)
	}
	next, loops := 1, w.work.Loops
	_, beside := leafPlace(home)
	cpus, _ := os.ReadFile(filepath.Join(home, "cpuset.cpus"))
	w.step = func() bool {
		w.burn(loops)
		if beside {
			// Follow a change of the cgroup's cpuset (a scenario op).
			if now, err := os.ReadFile(filepath.Join(home, "cpuset.cpus")); err == nil && !bytes.Equal(now, cpus) {
				cpus = now
				for _, l := range leaves {
					if err := copySettings(home, l); err != nil {
						w.fail(fmt.Errorf("cgroup_attach_storm: %w", err))
						return false
					}
				}
			}
		}
		if err := enter(leaves[next], pid); err != nil {
			w.fail(fmt.Errorf("cgroup_attach_storm: %w", err))
			return false
		}
		next ^= 1
		return true
	}
	return nil
}

// numaCPUSets splits allowed into the CPU sets numa_migration_churn
// alternates between: one per NUMA node that has allowed CPUs (sysfs's
// nodeN/cpulist), or, on one node, the two halves of allowed.
func numaCPUSets(sysNode string, allowed []int) [][]int {
	in := map[int]bool{}
	for _, c := range allowed {
		in[c] = true
	}
	var sets [][]int
	ents, _ := os.ReadDir(sysNode)
	for _, e := range ents {
		n, ok := strings.CutPrefix(e.Name(), "node")
		if _, err := strconv.Atoi(n); !ok || err != nil {
			continue
		}
		b, err := os.ReadFile(filepath.Join(sysNode, e.Name(), "cpulist"))
		if err != nil || len(b) > 1<<16 {
			continue
		}
		cpus, err := cpulist.Parse(string(b))
		if err != nil {
			continue
		}
		var mine []int
		for _, c := range cpus {
			if in[c] {
				mine = append(mine, c)
			}
		}
		if len(mine) > 0 {
			sets = append(sets, mine)
		}
	}
	if len(sets) >= 2 {
		return sets
	}
	if len(allowed) < 2 {
		return [][]int{allowed}
	}
	h := len(allowed) / 2
	return [][]int{allowed[:h], allowed[h:]}
}

// setupNUMAChurn maps size_kb of anonymous memory and touches it; each
// step pins the worker to the next CPU set (node) and touches every page
// again.
func (w *worker) setupNUMAChurn() error {
	var set unix.CPUSet
	if err := unix.SchedGetaffinity(0, &set); err != nil {
		return fmt.Errorf("numa_migration_churn: sched_getaffinity: %w", err)
	}
	var allowed []int
	for c := 0; c <= MaxCPU; c++ {
		if set.IsSet(c) {
			allowed = append(allowed, c)
		}
	}
	sets := numaCPUSets("/sys/devices/system/node", allowed)
	m, err := unix.Mmap(-1, 0, w.work.SizeKB<<10, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_PRIVATE|unix.MAP_ANONYMOUS)
	if err != nil {
		return fmt.Errorf("numa_migration_churn: mmap %d KiB: %w", w.work.SizeKB, err)
	}
	pg := unix.Getpagesize()
	touch := func() {
		for i := 0; i < len(m); i += pg {
			m[i]++
		}
	}
	touch()
	w.allowed = allowed // close gives the whole mask back
	pos := 0
	w.step = func() bool {
		pos = (pos + 1) % len(sets)
		var s unix.CPUSet
		for _, c := range sets[pos] {
			s.Set(c)
		}
		if err := unix.SchedSetaffinity(0, &s); err != nil {
			// CPUs taken away by a cpuset: note it, keep touching.
			w.fail(fmt.Errorf("numa_migration_churn: move to CPUs %v: %w", sets[pos], err))
		}
		touch()
		return true
	}
	return nil
}
