package guest

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// scxDir is sched_ext's sysfs directory.
const scxDir = "/sys/kernel/sched_ext"

// scxFS reads sched_ext's sysfs interface under a directory (scxDir; a
// test gives its own).
type scxFS string

// scxSnap is one reading of sched_ext's sysfs.
type scxSnap struct {
	State string // state: "enabled", "disabled", "enabling", "disabling"
	Ops   string // root/ops: the attached scheduler's name; "" when none
	Seq   int64  // enable_seq: attaches since boot; -1 when the kernel has none
}

// attached reports whether a scheduler is attached.
func (s scxSnap) attached() bool { return s.State == "enabled" && s.Ops != "" }

// same reports whether s shows the scheduler attached as at base: the
// same ops, and the same attach (enable_seq) where the kernel has it.
func (s scxSnap) same(base scxSnap) bool {
	return s.attached() && s.Ops == base.Ops && s.Seq == base.Seq
}

// read reads the state, root/ops and enable_seq. Its error wraps
// os.ErrNotExist when the kernel has no sched_ext.
func (d scxFS) read() (scxSnap, error) {
	st, err := os.ReadFile(filepath.Join(string(d), "state"))
	if err != nil {
		return scxSnap{}, err
	}
	s := scxSnap{State: strings.TrimSpace(string(st)), Seq: -1}
	if ops, err := os.ReadFile(filepath.Join(string(d), "root", "ops")); err == nil {
		s.Ops = strings.TrimSpace(string(ops))
	}
	if b, err := os.ReadFile(filepath.Join(string(d), "enable_seq")); err == nil {
		if n, err := strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64); err == nil {
			s.Seq = n
		}
	}
	return s, nil
}
