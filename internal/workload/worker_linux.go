package workload

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"runtime"
	"strconv"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// A worker process runs its work loop on the main thread: the scheduler's
// view of the process (/proc/PID/schedstat, /proc/PID/sched, comm, nice) is
// the view of the task doing the work. Locking the OS thread in init makes
// the Go runtime run main, and so WorkerMain, on the main thread.
func init() {
	if IsWorker(os.Args) {
		runtime.LockOSThread()
	}
}

// IsWorker reports whether args (os.Args) are a worker's: the executable
// re-executed by Spawn with the hidden first argument. A program that
// spawns workers calls it first thing in main (and a test binary in
// TestMain) and then exits with WorkerMain's status.
func IsWorker(args []string) bool {
	return len(args) > 1 && args[1] == workerArg
}

// Exit statuses of WorkerMain.
const (
	exitOK      = 0
	exitUsage   = 2
	exitSetup   = 3
	exitReport  = 4
	initialSeed = 0x9e3779b97f4a7c15
)

// WorkerMain runs one worker and returns its exit status: 0 when it ran and
// reported, 2 for bad arguments, 3 when it could not set itself up (the
// reason went to Spawn), 4 when it could not write its report.
func WorkerMain(args []string) int {
	runtime.LockOSThread()
	if !IsWorker(args) || len(args) != 3 {
		fmt.Fprintln(os.Stderr, "ktstr-worker: started without a worker configuration")
		return exitUsage
	}
	var cfg workerConfig
	if err := json.Unmarshal([]byte(args[2]), &cfg); err != nil {
		fmt.Fprintf(os.Stderr, "ktstr-worker: configuration: %v\n", err)
		return exitUsage
	}
	report := os.NewFile(uintptr(cfg.ReportFD), "report")
	w, err := newWorker(cfg)
	if err != nil {
		fmt.Fprintf(report, "error: %v\n", err)
		return exitSetup
	}
	// The kernel's accounting starts before the wait, so that the time
	// between the release and the first run counts as run-queue wait.
	// The parent reads the progress page's copy once all are ready.
	before, serr := takeSnap()
	w.prog.start(w.progMem, cfg.Index, before)
	if _, err := report.WriteString("ready\n"); err != nil {
		return exitReport
	}
	// Wait for the release: 'g' and the release time (CLOCK_MONOTONIC,
	// ns, little-endian u64). Anything else (EOF: Spawn gave up) ends the
	// worker quietly.
	var rel [9]byte
	if n, _ := readFullRetry(cfg.CtlFD, rel[:]); n != len(rel) || rel[0] != 'g' {
		return exitOK
	}
	start := monoTime(binary.LittleEndian.Uint64(rel[1:]))
	stopped := make(chan struct{})
	go func() {
		var buf [64]byte
		for {
			if n, _ := readRetry(cfg.CtlFD, buf[:]); n <= 0 {
				break
			}
		}
		w.stop.Store(true)
		close(stopped)
	}()
	st := w.run(start, before, serr)
	w.close()
	<-stopped
	line, _ := json.Marshal(st)
	if _, err := report.Write(append(line, '\n')); err != nil {
		return exitReport
	}
	return exitOK
}

// readFullRetry reads len(b) bytes unless end of file or an error comes
// first.
func readFullRetry(fd int, b []byte) (int, error) {
	n := 0
	for n < len(b) {
		m, err := readRetry(fd, b[n:])
		if m <= 0 {
			return n, err
		}
		n += m
	}
	return n, nil
}

// monoNow is CLOCK_MONOTONIC in nanoseconds, the clock the parent stamps
// the release with.
func monoNow() uint64 {
	var ts unix.Timespec
	unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts)
	return uint64(ts.Nano())
}

// monoTime converts a CLOCK_MONOTONIC reading to a time.Time comparable
// with time.Now (to within the cost of one clock_gettime), never later
// than now.
func monoTime(mono uint64) time.Time {
	now := time.Now()
	if d := monoNow() - mono; int64(d) > 0 {
		return now.Add(-time.Duration(d))
	}
	return now
}

// readRetry is read(2) retried on EINTR.
func readRetry(fd int, b []byte) (int, error) {
	for {
		n, err := unix.Read(fd, b)
		if err != unix.EINTR {
			return n, err
		}
	}
}

func writeRetry(fd int, b []byte) (int, error) {
	for {
		n, err := unix.Write(fd, b)
		if err != unix.EINTR {
			return n, err
		}
	}
}

// worker is one worker's state, in its own process.
type worker struct {
	cfg  workerConfig
	work Work // with defaults
	stop atomic.Bool
	step func() bool
	x    uint64 // LCG state, kept so the loops are not optimised away
	err  error  // why the loop could not go on

	progMem []byte // the progress page
	prog    progress

	shm      []byte
	stopWord *uint32
	a, b     *uint32
	counter  *uint64
	last     uint32 // futex_fanout: the last generation seen

	peerEnded bool // pipe: the peer sent its end byte

	allowed  []int // affinity_churn: the CPUs to move over
	churnPos int
	churnN   int

	buf      []byte // cache
	mask     int
	stride   int
	cachePos int

	lat *latency // wake_latency, timer_latency

	cleanup func() // cgroup_churn, cgroup_attach_storm: remove the cgroups made
}

func newWorker(cfg workerConfig) (*worker, error) {
	if err := cfg.Work.Validate(); err != nil {
		return nil, err
	}
	w := &worker{cfg: cfg, work: cfg.Work.WithDefaults(), x: initialSeed + uint64(cfg.Index)}
	for _, fd := range []int{cfg.CtlFD, cfg.ReportFD, cfg.PipeRFD, cfg.PipeWFD} {
		if fd >= 0 {
			unix.SetNonblock(fd, false)
		}
	}
	name := cfg.Name
	if name == "" {
		name = string(cfg.Work.Type)
	}
	if len(name) > 15 {
		name = name[:15]
	}
	if err := setComm(name); err != nil {
		return nil, fmt.Errorf("prctl(PR_SET_NAME): %w", err)
	}
	if cfg.SetNice {
		if err := allThreads(func(tid int) error { return unix.Setpriority(unix.PRIO_PROCESS, tid, cfg.Nice) }); err != nil {
			return nil, fmt.Errorf("set nice %d: %w", cfg.Nice, err)
		}
	}
	if cfg.Policy != "" {
		if err := setPolicy(cfg.Policy, cfg.RTPriority); err != nil {
			return nil, fmt.Errorf("policy %s: %w", cfg.Policy, err)
		}
	}
	if cfg.Affinity != nil {
		var set unix.CPUSet
		for _, c := range cfg.Affinity {
			set.Set(c)
		}
		if err := allThreads(func(tid int) error { return unix.SchedSetaffinity(tid, &set) }); err != nil {
			return nil, fmt.Errorf("pin to CPUs %v: %w", cfg.Affinity, err)
		}
	}
	m, err := unix.Mmap(cfg.ProgFD, 0, cfg.ProgSize, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED)
	if err != nil {
		return nil, fmt.Errorf("map the progress page: %w", err)
	}
	unix.Close(cfg.ProgFD)
	if len(m) < (cfg.Index+1)*progSlot {
		return nil, fmt.Errorf("progress page of %d bytes has no slot %d", len(m), cfg.Index)
	}
	w.progMem, w.prog = m, newProgress(m, cfg.Index)
	if cfg.ShmFD >= 0 {
		m, err := unix.Mmap(cfg.ShmFD, 0, cfg.ShmSize, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED)
		if err != nil {
			return nil, fmt.Errorf("map shared memory: %w", err)
		}
		unix.Close(cfg.ShmFD)
		if len(m) < slotOff(cfg.Group)+slotSize {
			return nil, fmt.Errorf("shared memory of %d bytes has no slot %d", len(m), cfg.Group)
		}
		w.shm = m
		w.stopWord = word32(m, offStop)
		base := slotOff(cfg.Group)
		w.a, w.b, w.counter = word32(m, base+offWordA), word32(m, base+offWordB), word64(m, base+offCount)
	}
	switch cfg.Work.Type {
	case Spin, NiceSweep:
		w.step = w.spin
	case Yield:
		w.step = w.yield
	case Bursty:
		w.step = w.bursty
	case Cache:
		if err := w.setupCache(); err != nil {
			return nil, err
		}
		w.step = w.cache
	case AffinityChurn:
		var set unix.CPUSet
		if err := unix.SchedGetaffinity(0, &set); err != nil {
			return nil, fmt.Errorf("sched_getaffinity: %w", err)
		}
		for c := 0; c <= MaxCPU; c++ {
			if set.IsSet(c) {
				w.allowed = append(w.allowed, c)
			}
		}
		w.step = w.churn
	case ForkExit:
		w.step = w.forkExit
	case Pipe:
		if cfg.PipeRFD < 0 || cfg.PipeWFD < 0 {
			return nil, errors.New("pipe worker without pipes")
		}
		w.step = w.pipeStep
	case FutexPingPong:
		w.step = w.futexPingPong
	case FutexFanout:
		if cfg.Role == 0 {
			w.step = w.fanoutWaker
		} else {
			w.step = w.fanoutWaiter
		}
	case Mutex:
		w.step = w.mutex
	case WakeLatency, TimerLatency, OpenLoop:
		if err := w.setupLatency(); err != nil {
			return nil, err
		}
	}
	if w.step == nil {
		if err := w.setupMore(); err != nil {
			return nil, err
		}
	}
	if w.step == nil || (w.shm == nil && cfg.Work.sharedMemory()) {
		return nil, fmt.Errorf("%s: incomplete worker configuration", cfg.Work.Type)
	}
	return w, nil
}

// allThreads calls f for every thread of this process, then again for
// threads the runtime started meanwhile, so that a per-thread setting
// (affinity, nice) covers the whole process. New threads inherit it from
// the thread that creates them.
func allThreads(f func(tid int) error) error {
	done := map[int]bool{}
	for pass := 0; pass < 5; pass++ {
		ents, err := os.ReadDir("/proc/self/task")
		if err != nil {
			return err
		}
		fresh := 0
		for _, e := range ents {
			tid, err := strconv.Atoi(e.Name())
			if err != nil || done[tid] {
				continue
			}
			if err := f(tid); err != nil && err != unix.ESRCH {
				return err
			}
			done[tid] = true
			fresh++
		}
		if fresh == 0 {
			return nil
		}
	}
	return nil
}

// close releases what the loop used: closing the pipes lets a blocked peer
// see end of file; affinity_churn gives back its whole mask.
func (w *worker) close() {
	if w.cfg.PipeRFD >= 0 {
		if !w.peerEnded {
			writeRetry(w.cfg.PipeWFD, []byte{pipeEnd})
		}
		unix.Close(w.cfg.PipeRFD)
		unix.Close(w.cfg.PipeWFD)
	}
	if len(w.allowed) > 0 {
		var set unix.CPUSet
		for _, c := range w.allowed {
			set.Set(c)
		}
		unix.SchedSetaffinity(0, &set)
	}
	if w.cleanup != nil {
		w.cleanup()
	}
}

// snap is the kernel's accounting of the calling thread at one moment.
type snap struct {
	run, wait, slices uint64
	migr              uint64
	haveMigr          bool
	vcs, ivcs         uint64
}

func takeSnap() (s snap, err error) {
	b, err := os.ReadFile("/proc/thread-self/schedstat")
	if err != nil {
		return s, err
	}
	if s.run, s.wait, s.slices, err = parseSchedstat(b); err != nil {
		return s, err
	}
	if b, err := os.ReadFile("/proc/thread-self/sched"); err == nil {
		s.migr, s.haveMigr = parseKeyed(b, "se.nr_migrations")
	}
	b, err = os.ReadFile("/proc/thread-self/status")
	if err != nil {
		return s, err
	}
	s.vcs, _ = parseKeyed(b, "voluntary_ctxt_switches")
	s.ivcs, _ = parseKeyed(b, "nonvoluntary_ctxt_switches")
	return s, nil
}

// run is the measured window: the loop between two snapshots.
// The window opens at start, the release time.
func (w *worker) run(start time.Time, before snap, serr error) Stats {
	st := Stats{Index: w.cfg.Index, PID: os.Getpid(), TID: unix.Gettid(), Type: w.cfg.Work.Type, Name: w.cfg.Name}
	var cpus cpuBits
	prev := getcpu()
	cpus.add(prev)
	w.prog.addCPU(prev)
	last := start
	var maxGap time.Duration
	var rate rateSlices
	rate.begin(start)
	for !w.stop.Load() {
		if !w.step() {
			break
		}
		st.Iterations++
		now := time.Now()
		if d := now.Sub(last); d > maxGap {
			maxGap = d
		}
		last = now
		rate.done(now)
		w.prog.done(st.Iterations, uint64(max(now.Sub(start), 0)), uint64(maxGap))
		if c := getcpu(); c != prev {
			st.CPUChanges++
			if d := w.cfg.Domains; d != nil {
				if of(d.LLC, c) != of(d.LLC, prev) {
					st.CrossLLC++
				}
				if of(d.Node, c) != of(d.Node, prev) {
					st.CrossNode++
				}
			}
			prev = c
			cpus.add(c)
			w.prog.addCPU(c)
		}
	}
	end := time.Now()
	after, serr2 := takeSnap()
	// The time since the last completion is a gap too: a worker that
	// stalls until Stop shows it.
	if d := end.Sub(last); d > maxGap {
		maxGap = d
	}
	st.WallNS = uint64(end.Sub(start))
	st.MaxGapNS = uint64(maxGap)
	st.RateSlices, st.RateCV = rate.result()
	if w.lat != nil {
		st.Latency, st.LatencyKind = w.lat.h.Sparse(), w.cfg.Work.Type.LatencyKind()
	}
	st.CPUs = cpus.list()
	if d := w.cfg.Domains; d != nil && len(d.Node) > 0 {
		st.Pages, st.LocalPages = pageLocality(d.Node, st.CPUs)
	}
	if serr == nil && serr2 == nil {
		st.RunNS = after.run - before.run
		st.WaitNS = after.wait - before.wait
		st.Timeslices = after.slices - before.slices
		st.VoluntaryCtxSwitches = after.vcs - before.vcs
		st.InvoluntaryCtxSwitches = after.ivcs - before.ivcs
	} else {
		w.fail(fmt.Errorf("read /proc/thread-self: %v", errors.Join(serr, serr2)))
	}
	if before.haveMigr && after.haveMigr {
		st.Migrations, st.MigrationsFrom = after.migr-before.migr, "sched"
	} else {
		st.Migrations, st.MigrationsFrom = st.CPUChanges, "getcpu"
	}
	if p, err := unix.Getpriority(unix.PRIO_PROCESS, 0); err == nil {
		st.Nice = 20 - p // the raw system call returns 20 - nice
	}
	if w.err != nil {
		st.Error = w.err.Error()
	}
	if w.x == 0 { // never true; uses the LCG state
		st.Error += " "
	}
	return st
}

// fail records the first reason the loop could not go on.
func (w *worker) fail(err error) {
	if w.err == nil {
		w.err = err
	}
}

// stopping reports whether Stop was asked, by the control pipe or, for
// shared-memory types, by the stop word.
func (w *worker) stopping() bool {
	return w.stop.Load() || (w.stopWord != nil && atomic.LoadUint32(w.stopWord) != 0)
}

// burn runs n steps of a 64-bit LCG.
func (w *worker) burn(n int) {
	x := w.x
	for i := 0; i < n; i++ {
		x = x*6364136223846793005 + 1442695040888963407
	}
	w.x = x
}

func (w *worker) spin() bool {
	w.burn(w.work.Loops)
	return true
}

func (w *worker) yield() bool {
	w.burn(w.work.Loops)
	syscall.RawSyscall(unix.SYS_SCHED_YIELD, 0, 0, 0)
	return true
}

func (w *worker) bursty() bool {
	until := time.Now().Add(time.Duration(w.work.SpinUS) * time.Microsecond)
	for time.Now().Before(until) && !w.stop.Load() {
		w.burn(64)
	}
	ts := unix.NsecToTimespec(int64(w.work.SleepUS) * 1000)
	for unix.Nanosleep(&ts, &ts) == unix.EINTR {
	}
	return true
}

func (w *worker) setupCache() error {
	size := w.work.SizeKB << 10
	lines := 1
	for lines*2*64 <= size {
		lines *= 2
	}
	if lines < 2 {
		return fmt.Errorf("cache: size_kb %d too small", w.work.SizeKB)
	}
	m, err := unix.Mmap(-1, 0, lines*64, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_PRIVATE|unix.MAP_ANONYMOUS|unix.MAP_POPULATE)
	if err != nil {
		return fmt.Errorf("cache: map %d KiB: %w", lines*64>>10, err)
	}
	for i := 0; i < len(m); i += 64 {
		m[i] = byte(i >> 6)
	}
	w.buf, w.mask = m, lines-1
	// An odd stride visits every line of a power-of-two ring before
	// repeating; about 0.618 of the ring apart defeats the prefetchers.
	w.stride = (lines*618/1000)&^1 | 1
	return nil
}

func (w *worker) cache() bool {
	buf, pos, mask, stride := w.buf, w.cachePos, w.mask, w.stride
	for i := 0; i < w.work.Loops; i++ {
		buf[pos<<6]++
		pos = (pos + stride) & mask
	}
	w.cachePos = pos
	return true
}

func (w *worker) churn() bool {
	w.burn(w.work.Loops)
	w.churnN++
	if w.churnN%w.work.Every != 0 || len(w.allowed) < 2 {
		return true
	}
	for range w.allowed {
		w.churnPos = (w.churnPos + 1) % len(w.allowed)
		var set unix.CPUSet
		set.Set(w.allowed[w.churnPos])
		err := unix.SchedSetaffinity(0, &set)
		if err == nil {
			break
		}
		// A CPU taken away by the cpuset: try the next one.
		w.fail(fmt.Errorf("affinity_churn: move to CPU %d: %w", w.allowed[w.churnPos], err))
	}
	return true
}

func (w *worker) forkExit() bool {
	w.burn(w.work.Loops)
	pid, errno := rawFork()
	if errno != 0 {
		w.fail(fmt.Errorf("fork_exit: clone: %w", errno))
		return false
	}
	var ws unix.WaitStatus
	for {
		_, err := unix.Wait4(pid, &ws, 0, nil)
		if err == nil {
			break
		}
		if err != unix.EINTR {
			w.fail(fmt.Errorf("fork_exit: wait4(%d): %w", pid, err))
			return false
		}
	}
	if !ws.Exited() || ws.ExitStatus() != 0 {
		w.fail(fmt.Errorf("fork_exit: child %d ended with wait status %#x", pid, uint32(ws)))
		return false
	}
	return true
}

// Pipe bytes: a hand-off, and the last byte a worker sends when it ends
// normally, so that its peer can tell a stop from a death.
const (
	pipeByte = 'p'
	pipeEnd  = 'x'
)

// pipeStep is one round trip: the even worker of a pair writes a byte and
// reads the answer; the odd one reads and answers.
func (w *worker) pipeStep() bool {
	w.burn(w.work.Loops)
	if w.cfg.Role == 0 {
		return w.pipeWrite() && w.pipeRead()
	}
	return w.pipeRead() && w.pipeWrite()
}

// pipeRead reads one hand-off byte. The end byte means the peer stopped;
// end of file without it means the peer died.
func (w *worker) pipeRead() bool {
	var b [1]byte
	n, err := readRetry(w.cfg.PipeRFD, b[:])
	switch {
	case n == 1 && b[0] == pipeByte:
		return true
	case n == 1 && b[0] == pipeEnd:
		w.peerEnded = true
	case n == 1:
		w.fail(fmt.Errorf("pipe: read %q, want %q or %q", b[0], pipeByte, pipeEnd))
	case err != nil:
		w.fail(fmt.Errorf("pipe: read: %w", err))
	default:
		w.fail(errors.New("pipe: the peer went away (end of file without its end byte)"))
	}
	return false
}

// pipeWrite writes one hand-off byte. A broken pipe means the peer closed
// its end: whether it stopped or died is in what it left to read.
func (w *worker) pipeWrite() bool {
	n, err := writeRetry(w.cfg.PipeWFD, []byte{pipeByte})
	if n == 1 {
		return true
	}
	if err == unix.EPIPE {
		for w.pipeRead() {
			// a hand-off still in the pipe before its end byte
		}
		return false
	}
	w.fail(fmt.Errorf("pipe: write: %v", err))
	return false
}

// futexPingPong is one hand-off: wait for the turn word to have this
// worker's parity, compute the work's loops, then advance it and wake
// the peer.
func (w *worker) futexPingPong() bool { return w.futexHandOff(w.work.Loops) }

// futexHandOff is a hand-off that computes n loops on this worker's turn.
func (w *worker) futexHandOff(n int) bool {
	mine := uint32(w.cfg.Role)
	for {
		v := atomic.LoadUint32(w.a)
		if v%2 == mine {
			break
		}
		if w.stopping() {
			return false
		}
		futexWait(w.a, v, wakeWait)
	}
	w.burn(n)
	atomic.AddUint32(w.a, 1)
	futexWake(w.a, 1)
	return true
}

// awaitGeneration waits on the group's generation word (a) until it moves
// past the last one this worker saw, and takes it; false when the worker
// is asked to stop meanwhile.
func (w *worker) awaitGeneration() bool {
	for {
		g := atomic.LoadUint32(w.a)
		if g != w.last {
			w.last = g
			return true
		}
		if w.stopping() {
			return false
		}
		futexWait(w.a, g, wakeWait)
	}
}

// awaitAcks waits on the group's acknowledgement count (b) until waiters
// have acknowledged; false when the worker is asked to stop meanwhile.
func (w *worker) awaitAcks(waiters uint32) bool {
	for {
		n := atomic.LoadUint32(w.b)
		if n >= waiters {
			return true
		}
		if w.stopping() {
			return false
		}
		futexWait(w.b, n, wakeWait)
	}
}

// fanoutWaker starts a generation, wakes every waiter and waits until all
// have acknowledged it.
func (w *worker) fanoutWaker() bool {
	waiters := uint32(w.work.GroupSize - 1)
	w.burn(w.work.Loops)
	atomic.StoreUint32(w.b, 0)
	atomic.AddUint32(w.a, 1)
	futexWake(w.a, int(waiters))
	return w.awaitAcks(waiters)
}

// fanoutWaiter waits for a new generation, works, and acknowledges it; the
// last to acknowledge wakes the waker.
func (w *worker) fanoutWaiter() bool {
	if !w.awaitGeneration() {
		return false
	}
	w.burn(w.work.Loops)
	if atomic.AddUint32(w.b, 1) == uint32(w.work.GroupSize-1) {
		futexWake(w.b, 1)
	}
	return true
}

// mutex is work outside the lock, then the lock (a three-state futex
// mutex: 0 free, 1 locked, 2 locked with waiters), work inside it with a
// deliberately non-atomic update of the group's counter, and the unlock.
func (w *worker) mutex() bool {
	w.burn(w.work.Loops)
	if !w.lock() {
		return false
	}
	c := atomic.LoadUint64(w.counter)
	w.burn(w.work.HoldLoops)
	atomic.StoreUint64(w.counter, c+1)
	w.unlock()
	return true
}

func (w *worker) lock() bool {
	if atomic.CompareAndSwapUint32(w.a, 0, 1) {
		return true
	}
	for atomic.SwapUint32(w.a, 2) != 0 {
		if w.stopping() {
			return false
		}
		futexWait(w.a, 2, wakeWait)
	}
	return true
}

func (w *worker) unlock() {
	if atomic.SwapUint32(w.a, 0) == 2 {
		futexWake(w.a, 1)
	}
}

// pageLocality reads /proc/self/numa_maps and returns the resident pages
// and those on the NUMA nodes of cpus (nodeOf maps a CPU to its node).
func pageLocality(nodeOf, cpus []int) (pages, local uint64) {
	b, err := os.ReadFile("/proc/self/numa_maps")
	if err != nil {
		return 0, 0
	}
	nodes := map[int]bool{}
	for _, c := range cpus {
		if n := of(nodeOf, c); n >= 0 {
			nodes[n] = true
		}
	}
	return countNodePages(b, nodes)
}
