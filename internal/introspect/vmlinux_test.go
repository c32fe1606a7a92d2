package introspect

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// projectVmlinux returns the project kernel's vmlinux (scripts/build-kernel
// keeps a copy with DWARF stripped next to the bzImage), or skips.
func projectVmlinux(t *testing.T) string {
	t.Helper()
	cache := os.Getenv("KTSTR_CACHE")
	if cache == "" {
		base := os.Getenv("XDG_CACHE_HOME")
		if base == "" {
			home, _ := os.UserHomeDir()
			base = filepath.Join(home, ".cache")
		}
		cache = filepath.Join(base, "ktstr")
	}
	p := filepath.Join(cache, "kernel", "current", "vmlinux")
	if _, err := os.Stat(p); err != nil {
		t.Skipf("no project kernel vmlinux (%v): run scripts/build-kernel", err)
	}
	return p
}

// TestProjectKernelBTF checks that every name the package reads resolves
// in the project kernel (Linux 6.12 with sched_ext), with the sizes the
// readers assume.
func TestProjectKernelBTF(t *testing.T) {
	k, err := OpenKernel(projectVmlinux(t))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(k.Banner, "Linux version 6.") {
		t.Errorf("banner %q", k.Banner)
	}
	_, rq, err := k.PerCPU("runqueues")
	if err != nil || rq == nil || typeName(rq) != "struct rq" {
		t.Fatalf("runqueues: %v, %v", rq, err)
	}
	ts, err := k.Struct("task_struct")
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		in   string
		path string
		size uint64
	}{
		{"rq", "nr_running", 4}, {"rq", "clock", 8}, {"rq", "curr", 8},
		{"rq", "scx.nr_running", 4}, {"rq", "scx.local_dsq.nr", 4}, {"rq", "scx.runnable_list", 16},
		{"task_struct", "pid", 4}, {"task_struct", "comm", 16}, {"task_struct", "start_time", 8},
		{"task_struct", "tasks", 16}, {"task_struct", "thread_node", 16}, {"task_struct", "signal", 8},
		{"task_struct", "scx.runnable_node", 16}, {"task_struct", "scx.runnable_at", 8},
		{"task_struct", "thread_info.cpu", 4}, // an anonymous-free nested path
		{"signal_struct", "thread_head", 16}, {"sched_ext_ops", "name", 128},
		{"scx_exit_info", "kind", 4}, {"scx_exit_info", "exit_code", 8}, {"scx_exit_info", "msg", 8},
	} {
		typ := rq
		if c.in != "rq" {
			if typ, err = k.Struct(c.in); err != nil {
				t.Errorf("struct %s: %v", c.in, err)
				continue
			}
		}
		f, err := FieldOf(typ, c.path)
		if err != nil || f.Size != c.size {
			t.Errorf("%s.%s: size %d, %v; want %d", c.in, c.path, f.Size, err, c.size)
		}
	}
	if _, err := FieldOf(ts, "no_such_field"); err == nil {
		t.Error("task_struct.no_such_field resolved")
	}
	for _, name := range []string{"jiffies", "init_top_pgt", "init_task", "__per_cpu_offset", "nr_cpu_ids", "linux_banner",
		"scx_ops", "scx_ops_enable_state_var", "scx_exit_kind", "scx_exit_info", "_text", "__end_rodata", "system_state"} {
		if _, _, err := k.Symbol(name); err != nil {
			t.Errorf("symbol %s: %v", name, err)
		}
	}
	for _, e := range []struct{ enum, name string }{{"scx_ops_enable_state", "SCX_OPS_ENABLED"}, {"scx_exit_kind", "SCX_EXIT_ERROR_STALL"}, {"system_states", "SYSTEM_RUNNING"}} {
		m, err := k.Enum(e.enum)
		found := false
		for _, n := range m {
			found = found || n == e.name
		}
		if err != nil || !found {
			t.Errorf("enum %s: %v, %v; want %s", e.enum, m, err, e.name)
		}
	}
	if k.roStart >= k.roEnd {
		t.Errorf("text/rodata range [%#x, %#x)", k.roStart, k.roEnd)
	}
}
