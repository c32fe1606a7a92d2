package verdict_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/ktstr-go/ktstr/internal/verdict"
	vt "github.com/ktstr-go/ktstr/internal/verdict/verdicttest"
)

// TestDefaultSplats runs real kernel log lines through the default
// patterns: each names its splat, and ordinary lines name none.
func TestDefaultSplats(t *testing.T) {
	tests := []struct {
		line string
		want string
	}{
		{"[   12.345678] WARNING: CPU: 3 PID: 117 at kernel/sched/ext.c:4567 scx_ops_disable_workfn+0x1b/0x2c0", "warn"},
		{"<4>[    1.000000] WARNING: CPU: 0 PID: 1 at fs/sysfs/dir.c:32 sysfs_warn_dup+0x5a/0x70", "warn"},
		{"4,321,1234567,-;WARNING: CPU: 1 PID: 0 at kernel/rcu/tree.c:99 f+0x1/0x2", "warn"},
		{"[    2.000000][    T1] WARNING: CPU: 1 PID: 1 at mm/page_alloc.c:1 x", "warn"},
		{"[    5.5] BUG: kernel NULL pointer dereference, address: 0000000000000008", "bug"},
		{"[    5.5] kernel BUG at mm/slub.c:435!", "bug"},
		{"[    5.5] BUG: sleeping function called from invalid context at kernel/locking/mutex.c:580", "bug"},
		{"[    5.5] BUG: scheduling while atomic: swapper/0/0/0x00000002", "bug"},
		{"[    5.5] BUG: workqueue lockup - pool cpus=0 node=0 flags=0x0 nice=0 stuck for 31s!", "bug"},
		{"[    5.5] BUG: KASAN: slab-use-after-free in scx_dispatch+0x10/0x20", "kasan"},
		{"[    5.5] BUG: KFENCE: out-of-bounds read in foo+0x1/0x2", "kasan"},
		{"[    5.5] Oops: general protection fault, probably for non-canonical address 0xdead: 0000 [#1] PREEMPT SMP", "oops"},
		{"[    5.5] general protection fault, probably for non-canonical address 0xdead000000000100", "oops"},
		{"[    5.5] UBSAN: shift-out-of-bounds in kernel/sched/ext.c:100:5", "ubsan"},
		{"[    5.5] WARNING: possible circular locking dependency detected", "lockdep"},
		{"[    5.5] WARNING: possible recursive locking detected", "lockdep"},
		{"[    5.5] WARNING: inconsistent lock state", "lockdep"},
		{"[    5.5] WARNING: suspicious RCU usage", "lockdep"},
		{"[   30.1] rcu: INFO: rcu_preempt detected stalls on CPUs/tasks:", "rcu_stall"},
		{"[   30.1] rcu: INFO: rcu_sched self-detected stall on CPU", "rcu_stall"},
		{"[   30.1] INFO: rcu_tasks detected stalls on tasks:", "rcu_stall"},
		{"[  150.0] INFO: task kworker/u8:2:45 blocked for more than 122 seconds.", "hung_task"},
		{"[   40.0] watchdog: BUG: soft lockup - CPU#2 stuck for 26s! [stress:300]", "soft_lockup"},
		{"[   40.0] BUG: soft lockup - CPU#2 stuck for 26s!", "soft_lockup"},
		{"[   40.0] Watchdog detected hard LOCKUP on cpu 1", "hard_lockup"},
		{"[   40.0] NMI watchdog detected hard LOCKUP on cpu 1", "hard_lockup"},
		// Not splats.
		{"[    0.1] sched_ext: BPF scheduler \"demo\" enabled", ""},
		{"[    0.1] ACPI: bus type PCI registered", ""},
		{"scx_demo: no BUG: here, all fine", ""},
		{"user said WARNING: CPU: 1 PID: 2 at nothing", ""},
		{"[    0.2] rcu: Hierarchical RCU implementation.", ""},
		{"", ""},
	}
	for _, tc := range tests {
		s := vt.Base().Dmesg(tc.line).Outcomes(vt.Pass()).Finish()
		v := fold(s, verdict.DefaultConfig())
		got := ""
		for _, f := range v.Findings {
			if f.Cause == verdict.CauseSplat {
				got = f.Kind
			}
		}
		if got != tc.want {
			t.Errorf("splat(%q) = %q, want %q", tc.line, got, tc.want)
		}
	}
}

func TestParseAndSelectSplats(t *testing.T) {
	good, err := verdict.ParseSplat(`nvme=^nvme nvme0: I/O \d+ timeout`)
	if err != nil || good.Name != "nvme" || !good.Re.MatchString("nvme nvme0: I/O 12 timeout") {
		t.Fatalf("ParseSplat = %+v, %v", good, err)
	}
	for _, bad := range []string{"", "noequals", "=re", "name=", "bad name=x", "x=(unclosed"} {
		if _, err := verdict.ParseSplat(bad); !errors.Is(err, verdict.ErrSplatSpec) {
			t.Errorf("ParseSplat(%q) = %v, want ErrSplatSpec", bad, err)
		}
	}
	pats, err := verdict.SelectSplats([]verdict.Splat{good}, []string{"warn", "rcu_stall"})
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, p := range pats {
		names = append(names, p.Name)
	}
	if got := strings.Join(names, ","); got != "nvme,kasan,lockdep,soft_lockup,hard_lockup,hung_task,ubsan,oops,bug" {
		t.Errorf("SelectSplats = %s", got)
	}
	if pats, _ := verdict.SelectSplats(nil, []string{"all"}); len(pats) != 0 {
		t.Errorf("SelectSplats(all) kept %d patterns", len(pats))
	}
	if _, err := verdict.SelectSplats(nil, []string{"nope"}); !errors.Is(err, verdict.ErrSplatSpec) {
		t.Errorf("SelectSplats(nope) = %v, want ErrSplatSpec", err)
	}
	// A custom pattern applies; a dropped default no longer does.
	cfg := verdict.Config{Splats: pats}
	pats2, _ := verdict.SelectSplats([]verdict.Splat{good}, []string{"warn"})
	cfg.Splats = pats2
	s := vt.Base().Dmesg("nvme nvme0: I/O 7 timeout\nWARNING: CPU: 0 PID: 1 at a.c:1 f").Outcomes(vt.Pass()).Finish()
	v := fold(s, cfg)
	if v.Status != verdict.StatusFail || len(v.Findings) != 1 || v.Findings[0].Kind != "nvme" {
		t.Errorf("custom pattern: %s %+v, want one nvme splat", v.Status, v.Findings)
	}
}

func TestSplatFindingsBounded(t *testing.T) {
	var b strings.Builder
	for i := 0; i < 40; i++ {
		b.WriteString("WARNING: CPU: 0 PID: 1 at a.c:")
		b.WriteString(strings.Repeat("1", i+1))
		b.WriteString(" f\n")
	}
	b.WriteString("WARNING: CPU: 0 PID: 1 at a.c:1 f\n") // a repeat
	v := fold(vt.Base().Dmesg(b.String()).Outcomes(vt.Pass()).Finish(), verdict.DefaultConfig())
	if v.Counts.Splats != 41 || len(v.Findings) != 17 || v.Findings[16].Kind != "more" {
		t.Errorf("splats=%d findings=%d, want 41 counted, 16 listed and one summary", v.Counts.Splats, len(v.Findings))
	}
}

func TestKernelText(t *testing.T) {
	// Through a custom pattern anchored at the start, the decorations
	// must be gone.
	re, _ := verdict.ParseSplat("x=^hello world$")
	cfg := verdict.Config{Splats: []verdict.Splat{re}}
	for _, line := range []string{
		"hello world",
		"[    1.234567] hello world",
		"[12345.000001] hello world",
		"<4>[    1.234567] hello world",
		"6,1234,5678901,-;hello world",
		"6,1234,5678901,-,caller=T1;hello world",
		"[    1.234567][    T1] hello world",
		"[    1.234567] [  C12] hello world",
		"   hello world  ",
	} {
		v := fold(vt.New().Dmesg(line), cfg)
		if v.Counts.Splats != 1 {
			t.Errorf("kernelText(%q) did not reduce to %q", line, "hello world")
		}
	}
	for _, line := range []string{"[abc] hello world", "<x>hello world", "1,2;hello world", "[T1x] hello world"} {
		if v := fold(vt.New().Dmesg(line), cfg); v.Counts.Splats != 0 {
			t.Errorf("kernelText(%q) stripped what is not a printk decoration", line)
		}
	}
}
