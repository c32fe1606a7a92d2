package workload

import (
	"fmt"
	"os"
	"strconv"
	"sync/atomic"

	"golang.org/x/sys/unix"
)

// The progress page: a memfd shared by a spawn's workers and the parent,
// one slot per worker, in which each worker publishes its progress while
// it runs. Every value is a u64 in the machine's byte order, written
// with atomic stores by its worker only.
//
//	offset  what
//	0       iterations completed
//	8       ns from the release to the last completion
//	16      longest gap between two completions so far (ns; the gap open
//	        now is not in it)
//	64      the kernel's accounting at the window's start: run ns, wait
//	        ns, time slices, migrations, flags (bit 0: migrations known)
//	128     CPUs iterations completed on: 16 words, bit c of word c/64
const (
	progSlot   = 256
	progIter   = 0
	progLast   = 8
	progMaxGap = 16
	progBase   = 64
	progCPUs   = 128
	progWords  = (MaxCPU + 1) / 64
)

func progSize(workers int) int {
	pg := os.Getpagesize()
	return (progSlot*workers + pg - 1) / pg * pg
}

// progress is a worker's view of its slot.
type progress struct {
	iter, last, maxGap *uint64
	cpus               []byte
}

func newProgress(mem []byte, index int) progress {
	base := index * progSlot
	return progress{
		iter: word64(mem, base+progIter), last: word64(mem, base+progLast), maxGap: word64(mem, base+progMaxGap),
		cpus: mem[base+progCPUs : base+progCPUs+8*progWords],
	}
}

// start publishes the kernel's accounting at the window's start.
func (p progress) start(mem []byte, index int, s snap) {
	base := index*progSlot + progBase
	flags := uint64(0)
	if s.haveMigr {
		flags = 1
	}
	for i, v := range []uint64{s.run, s.wait, s.slices, s.migr, flags} {
		atomic.StoreUint64(word64(mem, base+8*i), v)
	}
}

// done publishes one more completion.
func (p progress) done(iterations, sinceRelease, maxGap uint64) {
	atomic.StoreUint64(p.last, sinceRelease)
	atomic.StoreUint64(p.maxGap, maxGap)
	atomic.StoreUint64(p.iter, iterations)
}

// addCPU publishes a CPU an iteration completed on.
func (p progress) addCPU(cpu int) {
	if cpu < 0 || cpu > MaxCPU {
		return
	}
	atomic.OrUint64(word64(p.cpus, 8*(cpu/64)), 1<<(cpu%64))
}

// Progress is one worker's measurements so far, read while it runs: what
// it published in the progress page, and the kernel's accounting of its
// work thread now (/proc/PID/schedstat, /proc/PID/sched) less its
// accounting at the window's start. Fields as in Stats.
type Progress struct {
	Index      int
	PID        int
	Iterations uint64
	WallNS     uint64 // from the release to now
	RunNS      uint64
	WaitNS     uint64
	Timeslices uint64
	MaxGapNS   uint64 // the gap open now included
	Migrations uint64 // 0 when /proc/PID/sched is missing
	CPUs       []int
}

// Iterations returns the iterations the group's workers completed so far,
// from the progress page; after Stop, the total they reported.
func (g *Group) Iterations() uint64 {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.stopped {
		return g.final
	}
	var n uint64
	for i := range g.workers {
		n += atomic.LoadUint64(word64(g.prog, i*progSlot+progIter))
	}
	return n
}

// Progress returns each worker's measurements so far, in index order; nil
// after Stop. A worker whose /proc files are gone (it died) has only what
// it published.
func (g *Group) Progress() []Progress {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.stopped {
		return nil
	}
	now := monoNow()
	out := make([]Progress, len(g.workers))
	for i, p := range g.workers {
		base := i * progSlot
		load := func(off int) uint64 { return atomic.LoadUint64(word64(g.prog, base+off)) }
		pr := Progress{Index: i, PID: p.cmd.Process.Pid, Iterations: load(progIter)}
		if now > g.release {
			pr.WallNS = now - g.release
		}
		pr.MaxGapNS = max(load(progMaxGap), pr.WallNS-min(pr.WallNS, load(progLast)))
		cpus := make(cpuBits, progWords)
		for w := range cpus {
			cpus[w] = load(progCPUs + 8*w)
		}
		pr.CPUs = cpus.list()
		dir := "/proc/" + strconv.Itoa(pr.PID) + "/"
		if b, err := os.ReadFile(dir + "schedstat"); err == nil {
			if run, wait, slices, err := parseSchedstat(b); err == nil {
				pr.RunNS = run - min(run, load(progBase))
				pr.WaitNS = wait - min(wait, load(progBase+8))
				pr.Timeslices = slices - min(slices, load(progBase+16))
			}
		}
		if load(progBase+32)&1 != 0 {
			if b, err := os.ReadFile(dir + "sched"); err == nil {
				if m, ok := parseKeyed(b, "se.nr_migrations"); ok {
					pr.Migrations = m - min(m, load(progBase+24))
				}
			}
		}
		out[i] = pr
	}
	return out
}

// mapProgress creates the progress page for n workers.
func mapProgress(n int) (*os.File, []byte, error) {
	fd, err := unix.MemfdCreate("ktstr-progress", unix.MFD_CLOEXEC)
	if err != nil {
		return nil, nil, fmt.Errorf("workload: memfd_create: %w", err)
	}
	f := os.NewFile(uintptr(fd), "ktstr-progress")
	size := progSize(n)
	if err := unix.Ftruncate(fd, int64(size)); err != nil {
		f.Close()
		return nil, nil, fmt.Errorf("workload: ftruncate progress page: %w", err)
	}
	mem, err := unix.Mmap(fd, 0, size, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED)
	if err != nil {
		f.Close()
		return nil, nil, fmt.Errorf("workload: mmap progress page: %w", err)
	}
	return f, mem, nil
}
