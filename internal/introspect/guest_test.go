package introspect

import (
	"errors"
	"strings"
	"testing"
)

func TestPagingDiscovery(t *testing.T) {
	for _, c := range []struct {
		name   string
		levels int
		regs   []Regs
	}{
		{"4 levels, phys_base 0, no registers", 4, nil},
		{"5 levels, phys_base 0, no registers", 5, nil},
		{"CR3 with PTI's user bit and a PCID", 4, []Regs{{CR0: cr0PG, CR3: Hex(0x1200000 | cr3PTIUser | 5)}}},
		{"LA57 from CR4", 5, []Regs{{CR0: cr0PG, CR3: 0x1200000, CR4: cr4LA57}}},
	} {
		t.Run(c.name, func(t *testing.T) {
			im := newImage(t, c.levels)
			p, err := im.guest().Paging(c.regs)
			if err != nil || p != (Paging{Root: im.top, Levels: c.levels}) {
				t.Errorf("Paging = %+v, %v; want root %#x, %d levels", p, err, im.top, c.levels)
			}
		})
	}
	t.Run("kernel loaded elsewhere: found through a vCPU's CR3", func(t *testing.T) {
		im := newImageAt(t, 4, 2<<20)
		if _, err := im.guest().Paging(nil); !errors.Is(err, ErrNoPaging) {
			t.Errorf("without registers: error %v, want ErrNoPaging", err)
		}
		p, err := im.guest().Paging([]Regs{{}, {CR0: cr0PG, CR3: Hex(im.top)}})
		if err != nil || p.Root != im.top {
			t.Errorf("Paging = %+v, %v; want root %#x", p, err, im.top)
		}
	})
	t.Run("another kernel's vmlinux", func(t *testing.T) {
		im := newImage(t, 4)
		im.putBytes(kBanner, []byte("Linux version 6.13"))
		if _, err := im.guest().Paging(nil); !errors.Is(err, ErrMismatch) {
			t.Errorf("error %v, want ErrMismatch", err)
		}
	})
	t.Run("no vmlinux", func(t *testing.T) {
		im := newImage(t, 4)
		if _, err := New(im.mem, nil).Paging(nil); !errors.Is(err, ErrNoVmlinux) {
			t.Errorf("error %v, want ErrNoVmlinux", err)
		}
	})
}

func TestFieldOf(t *testing.T) {
	im := newImage(t, 4)
	ts, err := im.k.Struct("task_struct")
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		path       string
		off, size  uint64
		errContain string
	}{
		{"", 0, tsSize, ""},
		{"pid", tsPID, 4, ""},
		{"__state", tsState, 4, ""},
		{"comm", tsComm, 16, ""},
		{"comm[3]", tsComm + 3, 1, ""},
		{"scx.runnable_at", tsSCX + scxRunnableAt, 8, ""},
		{"scx.runnable_node.prev", tsSCX + 8, 8, ""},
		{"ux", tsUnion, 8, ""},
		{"uy", tsUnion, 4, ""},
		{"nosuch", 0, 0, "no member nosuch"},
		{"flags_bit", 0, 0, "bitfield"},
		{"comm[16]", 0, 0, "past comm's 16 elements"},
		{"pid[0]", 0, 0, "not an array"},
		{"comm[x]", 0, 0, "bad index"},
		{"pid.x", 0, 0, "has no members"},
	} {
		f, err := FieldOf(ts, c.path)
		if c.errContain != "" {
			if !errors.Is(err, ErrNoField) || !strings.Contains(err.Error(), c.errContain) {
				t.Errorf("FieldOf(%q) error %v, want ErrNoField with %q", c.path, err, c.errContain)
			}
			continue
		}
		if err != nil || f.Offset != c.off || f.Size != c.size {
			t.Errorf("FieldOf(%q) = %d, %d, %v; want %d, %d", c.path, f.Offset, f.Size, err, c.off, c.size)
		}
	}
	if _, err := im.k.Struct("nosuch"); !errors.Is(err, ErrNoType) {
		t.Errorf("Struct(nosuch) error %v, want ErrNoType", err)
	}
	if _, _, err := im.k.Symbol("dup"); err == nil || !strings.Contains(err.Error(), "ambiguous") {
		t.Errorf("Symbol(dup) error %v, want ambiguous", err)
	}
	if _, _, err := im.k.Symbol("runqueues"); err == nil || !strings.Contains(err.Error(), "per-CPU") {
		t.Errorf("Symbol(runqueues) error %v, want per-CPU", err)
	}
	if _, _, err := im.k.PerCPU("jiffies"); err == nil || !strings.Contains(err.Error(), "not per-CPU") {
		t.Errorf("PerCPU(jiffies) error %v, want not per-CPU", err)
	}
}

func TestFindTask(t *testing.T) {
	im := newImage(t, 4)
	im.populate()
	g := im.guest()
	for _, c := range []struct {
		pid   uint32
		start uint64
		want  uint64
		gone  bool
	}{
		{0, 0, kInitTask, false},
		{100, 1111, directMap + 0x510000, false},
		{101, 2222, directMap + 0x511000, false}, // a thread, not a process
		{101, 0, directMap + 0x511000, false},    // start time 0: any
		{200, 3333, directMap + 0x512000, false},
		{100, 9999, 0, true}, // pid reused
		{999, 0, 0, true},
	} {
		got, err := g.FindTask(c.pid, c.start)
		if c.gone {
			if !errors.Is(err, ErrTaskGone) {
				t.Errorf("FindTask(%d, %d) = %#x, %v; want ErrTaskGone", c.pid, c.start, got, err)
			}
			continue
		}
		if err != nil || got != c.want {
			t.Errorf("FindTask(%d, %d) = %#x, %v; want %#x", c.pid, c.start, got, err, c.want)
		}
	}
	// A list that loops without returning to its head ends at MaxTasks.
	p200 := directMap + 0x512000
	im.put64(p200+tsTasks, p200+tsTasks)
	if _, err := g.FindTask(999, 0); err == nil || !strings.Contains(err.Error(), "longer than") {
		t.Errorf("looping list: error %v, want the bound", err)
	}
	// A pointer into nothing.
	im.put64(p200+tsTasks, 0xdead000000000000)
	if _, err := g.FindTask(999, 0); !errors.Is(err, ErrNotMapped) {
		t.Errorf("wild pointer: error %v, want ErrNotMapped", err)
	}
}

func TestRunningAndNrCPUs(t *testing.T) {
	im := newImage(t, 4)
	g := im.guest()
	// Early boot: system_state SYSTEM_BOOTING, nr_cpu_ids still NR_CPUS.
	im.put32(kNrCPUs, 256)
	if up, err := g.Running(); err != nil || up {
		t.Errorf("Running() while booting = %v, %v; want false", up, err)
	}
	if _, err := g.NrCPUs(); err == nil {
		t.Error("nr_cpu_ids 256 with a 4-entry __per_cpu_offset: no error")
	}
	im.populate()
	im.put32(kNrCPUs, imgCPUs) // the kernel counted its CPUs
	if up, err := g.Running(); err != nil || !up {
		t.Errorf("Running() = %v, %v; want true", up, err)
	}
	if n, err := g.NrCPUs(); err != nil || n != imgCPUs {
		t.Errorf("NrCPUs() = %d, %v; want %d (read again, not cached)", n, err, imgCPUs)
	}
}
