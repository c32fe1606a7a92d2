// Package cgroup drives the cgroup v2 files a scenario needs: creating
// child cgroups, enabling the cpu and cpuset controllers, writing
// cpuset.cpus and cpu.weight, and removing the cgroups again.
package cgroup

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// Root is where cgroup v2 is mounted.
const Root = "/sys/fs/cgroup"

// Mount mounts cgroup2 at Root unless something is mounted there.
func Mount() error {
	var st unix.Statfs_t
	if err := unix.Statfs(Root, &st); err == nil && st.Type == unix.CGROUP2_SUPER_MAGIC {
		return nil
	}
	if err := os.MkdirAll(Root, 0o755); err != nil {
		return err
	}
	if err := unix.Mount("cgroup2", Root, "cgroup2", 0, ""); err != nil {
		return fmt.Errorf("mount cgroup2 at %s: %w", Root, err)
	}
	return nil
}

// IsV2 reports whether dir is on a cgroup v2 filesystem.
func IsV2(dir string) bool {
	var st unix.Statfs_t
	return unix.Statfs(dir, &st) == nil && st.Type == unix.CGROUP2_SUPER_MAGIC
}

// Controllers returns the controllers available in dir.
func Controllers(dir string) (map[string]bool, error) {
	b, err := os.ReadFile(filepath.Join(dir, "cgroup.controllers"))
	if err != nil {
		return nil, err
	}
	m := map[string]bool{}
	for _, c := range strings.Fields(string(b)) {
		m[c] = true
	}
	return m, nil
}

// Enable turns on controllers for dir's children (cgroup.subtree_control).
// Controllers dir does not have are reported in the error and skipped.
func Enable(dir string, controllers ...string) error {
	have, err := Controllers(dir)
	if err != nil {
		return err
	}
	var missing []string
	for _, c := range controllers {
		if !have[c] {
			missing = append(missing, c)
			continue
		}
		if err := write(dir, "cgroup.subtree_control", "+"+c); err != nil {
			return err
		}
	}
	if len(missing) > 0 {
		return &MissingError{Dir: dir, Controllers: missing}
	}
	return nil
}

// MissingError lists controllers a cgroup does not offer.
type MissingError struct {
	Dir         string
	Controllers []string
}

func (e *MissingError) Error() string {
	return fmt.Sprintf("cgroup %s lacks controllers %s", e.Dir, strings.Join(e.Controllers, ","))
}

// Group is one child cgroup.
type Group struct {
	Dir string
}

// Create makes the child cgroup parent/name (it must not exist).
func Create(parent, name string) (*Group, error) {
	if name == "" || strings.ContainsAny(name, "/\x00") || name == "." || name == ".." {
		return nil, fmt.Errorf("cgroup: bad name %q", name)
	}
	dir := filepath.Join(parent, name)
	if err := os.Mkdir(dir, 0o755); err != nil {
		return nil, err
	}
	return &Group{Dir: dir}, nil
}

// SetCPUs writes cpuset.cpus (the kernel's list format).
func (g *Group) SetCPUs(list string) error { return write(g.Dir, "cpuset.cpus", list) }

// SetMems writes cpuset.mems: the NUMA nodes the group allocates from.
func (g *Group) SetMems(list string) error { return write(g.Dir, "cpuset.mems", list) }

// EffectiveCPUs reads cpuset.cpus.effective.
func (g *Group) EffectiveCPUs() (string, error) {
	b, err := os.ReadFile(filepath.Join(g.Dir, "cpuset.cpus.effective"))
	return strings.TrimSpace(string(b)), err
}

// SetWeight writes cpu.weight (1..10000).
func (g *Group) SetWeight(w int) error { return write(g.Dir, "cpu.weight", strconv.Itoa(w)) }

// Enable turns on controllers for this group's children.
func (g *Group) Enable(controllers ...string) error { return Enable(g.Dir, controllers...) }

// Procs returns the pids in the cgroup.
func (g *Group) Procs() ([]int, error) {
	b, err := os.ReadFile(filepath.Join(g.Dir, "cgroup.procs"))
	if err != nil {
		return nil, err
	}
	var out []int
	for _, f := range strings.Fields(string(b)) {
		if p, err := strconv.Atoi(f); err == nil {
			out = append(out, p)
		}
	}
	return out, nil
}

// Remove kills what is left in the cgroup (cgroup.kill, which reaches
// its descendants too) and removes it, waiting up to wait for its
// processes to go. Child cgroups left in it (a killed worker's
// cgroup_churn leaf) are removed first, deepest first.
func (g *Group) Remove(wait time.Duration) error {
	write(g.Dir, "cgroup.kill", "1") // absent before 5.14: rmdir then fails with EBUSY
	deadline := time.Now().Add(wait)
	removeChildren(g.Dir, deadline, 0)
	for {
		err := unix.Rmdir(g.Dir)
		if err == nil || errors.Is(err, unix.ENOENT) {
			return nil
		}
		if !errors.Is(err, unix.EBUSY) || time.Now().After(deadline) {
			return fmt.Errorf("remove cgroup %s: %w", g.Dir, err)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// removeChildren removes the cgroups under dir, deepest first, each
// retried on EBUSY (its killed tasks still going) until deadline; depth
// bounds the walk.
func removeChildren(dir string, deadline time.Time, depth int) {
	ents, err := os.ReadDir(dir)
	if err != nil || depth > 16 {
		return
	}
	for _, e := range ents {
		if !e.IsDir() {
			continue
		}
		d := filepath.Join(dir, e.Name())
		removeChildren(d, deadline, depth+1)
		for unix.Rmdir(d) == unix.EBUSY && time.Now().Before(deadline) {
			time.Sleep(10 * time.Millisecond)
		}
	}
}

func write(dir, file, val string) error {
	p := filepath.Join(dir, file)
	if err := os.WriteFile(p, []byte(val), 0); err != nil {
		return fmt.Errorf("write %q to %s: %w", val, p, err)
	}
	return nil
}

// FindV2 returns the mount point of the cgroup v2 hierarchy from
// /proc/self/mountinfo ("" when there is none).
func FindV2() string {
	b, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return ""
	}
	for _, line := range strings.Split(string(b), "\n") {
		// ID PARENT MAJ:MIN ROOT MOUNTPOINT OPTS [OPTIONAL...] - FSTYPE SOURCE SUPER
		pre, post, ok := strings.Cut(line, " - ")
		if !ok {
			continue
		}
		pf, qf := strings.Fields(pre), strings.Fields(post)
		if len(pf) >= 5 && len(qf) >= 1 && qf[0] == "cgroup2" {
			return pf[4]
		}
	}
	return ""
}
