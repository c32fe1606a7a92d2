package workload

import (
	"bufio"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"os/exec"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// SpawnSpec describes a set of identical workers.
type SpawnSpec struct {
	Work  Work
	Count int
	// CgroupDir is a cgroup v2 directory the workers start in (clone3
	// with CLONE_INTO_CGROUP, so they never run outside it); "" leaves
	// them in the caller's cgroup.
	CgroupDir string
	// Nice is applied to every thread of every worker (nice_sweep sets
	// its own values and wants Nice 0).
	Nice int
	// Affinity pins every thread of every worker to these CPUs; nil
	// leaves the inherited mask.
	Affinity []int
	// Placement, when set, pins worker i to Placement[i%len(Placement)]
	// instead of Affinity (one set per LLC or node: the workers go round
	// the domains, so the two ends of a pipe pair land in different ones).
	Placement [][]int
	// Domains map CPUs to their LLC and NUMA node, so that each worker
	// counts its moves across them (nil: not counted).
	Domains *Domains
	// Name is the workers' command name (comm, 15 bytes at most, cut);
	// "" names them after the work type.
	Name string
	// Policy is the workers' scheduling policy (Policies; "" leaves the
	// inherited one) and RTPriority its priority for fifo and rr.
	Policy     string
	RTPriority int
}

// ReadyTimeout bounds how long Spawn waits for the workers to start.
const ReadyTimeout = 30 * time.Second

// killWait bounds how long Stop waits for a process it sent SIGKILL.
const killWait = 5 * time.Second

// maxReport bounds a worker's stats line.
const maxReport = 1 << 20

// ErrStopped is returned by Stop after the first call.
var ErrStopped = errors.New("workload: group already stopped")

// Validate reports the first problem with s: its Work, the count, or a
// count that does not fill whole groups (pairs for pipe and futex_pingpong,
// group_size for futex_fanout and mutex).
func (s SpawnSpec) Validate() error {
	if err := s.Work.Validate(); err != nil {
		return err
	}
	if s.Count < 1 || s.Count > 4096 {
		return fmt.Errorf("%w: count %d, want 1..4096", ErrBadParam, s.Count)
	}
	if gs := s.Work.groupSize(s.Count); s.Count%gs != 0 {
		return fmt.Errorf("%w: %s runs in groups of %d; count %d is not a multiple", ErrBadParam, s.Work.Type, gs, s.Count)
	}
	if s.Nice < -20 || s.Nice > 19 {
		return fmt.Errorf("%w: nice %d, want -20..19", ErrBadParam, s.Nice)
	}
	if err := ValidPolicy(s.Policy, s.RTPriority); err != nil {
		return err
	}
	if s.Work.Type == NiceSweep && s.Nice != 0 {
		return fmt.Errorf("%w: nice_sweep sets each worker's nice; spec nice must be 0, got %d", ErrBadParam, s.Nice)
	}
	if s.Affinity != nil && len(s.Affinity) == 0 {
		return fmt.Errorf("%w: empty affinity (nil for no pinning)", ErrBadParam)
	}
	for _, set := range append([][]int{s.Affinity}, s.Placement...) {
		for _, c := range set {
			if c < 0 || c > MaxCPU {
				return fmt.Errorf("%w: affinity CPU %d, want 0..%d", ErrBadParam, c, MaxCPU)
			}
		}
	}
	for i, set := range s.Placement {
		if len(set) == 0 {
			return fmt.Errorf("%w: placement %d is empty", ErrBadParam, i)
		}
	}
	if d := s.Domains; d != nil && (len(d.LLC) > MaxCPU+1 || len(d.Node) > MaxCPU+1) {
		return fmt.Errorf("%w: domains for more than %d CPUs", ErrBadParam, MaxCPU+1)
	}
	return nil
}

// Domains map each CPU (the index) to its LLC and NUMA node; a CPU past
// the end of a list is in no known domain.
type Domains struct {
	LLC  []int `json:"llc,omitempty"`
	Node []int `json:"node,omitempty"`
}

// of returns CPU c's domain in list, -1 when unknown.
func of(list []int, c int) int {
	if c < 0 || c >= len(list) {
		return -1
	}
	return list[c]
}

// Shared-memory layout: the stop word in the first slot, then one slot per
// group; each slot's words sit on their own cache lines.
const (
	slotSize  = 256
	offStop   = 0
	offWordA  = 0   // futex_pingpong turn, futex_fanout generation, mutex lock
	offWordB  = 64  // futex_fanout acknowledgements
	offCount  = 128 // mutex: critical sections entered (u64)
	wakeWait  = 100 * time.Millisecond
	workerArg = "__ktstr_workload_worker__"
)

func slotOff(group int) int { return slotSize * (1 + group) }

func shmSize(groups int) int {
	pg := os.Getpagesize()
	n := slotSize * (groups + 1)
	return (n + pg - 1) / pg * pg
}

// workerConfig is what a worker process is told on its command line.
type workerConfig struct {
	Work     Work     `json:"work"`
	Index    int      `json:"index"`
	Count    int      `json:"count"`
	Group    int      `json:"group"` // group index: shm slot, pipe pair
	Role     int      `json:"role"`  // index within the group
	Name     string   `json:"name"`
	Nice     int      `json:"nice"`
	SetNice  bool     `json:"set_nice"`
	Affinity []int    `json:"affinity,omitempty"`
	Domains  *Domains `json:"domains,omitempty"`
	CtlFD    int      `json:"ctl_fd"`
	ReportFD int      `json:"report_fd"`
	ProgFD   int      `json:"prog_fd"` // the progress page
	ProgSize int      `json:"prog_size"`
	ShmFD    int      `json:"shm_fd"` // -1: none
	ShmSize  int      `json:"shm_size"`
	PipeRFD  int      `json:"pipe_r_fd"` // -1: none
	PipeWFD  int      `json:"pipe_w_fd"`
	// Policy and RTPriority: SpawnSpec's.
	Policy     string `json:"policy,omitempty"`
	RTPriority int    `json:"rt_priority,omitempty"`
}

// Group is a set of running workers started by Spawn.
type Group struct {
	spec    SpawnSpec
	workers []*proc
	shm     []byte
	prog    []byte // the progress page
	release uint64 // CLOCK_MONOTONIC ns of the release

	mu      sync.Mutex
	stopped bool
	final   uint64 // iterations reported at Stop
}

// proc is the parent's handle on one worker process.
type proc struct {
	index   int
	cmd     *exec.Cmd
	ctl     *os.File // write end; closing it tells the worker to stop
	report  *os.File // read end of the worker's report pipe
	rd      *bufio.Reader
	stderr  *tail
	done    chan struct{}
	exitAt  time.Time
	waitErr error
}

// Spawn starts spec.Count worker processes, each the current executable
// re-executed in worker mode, waits until every one has set itself up
// (affinity, nice, buffers) and then releases them together. On error no
// worker is left running.
func Spawn(spec SpawnSpec) (g *Group, err error) {
	if err := spec.Validate(); err != nil {
		return nil, err
	}
	w := spec.Work
	gs := w.groupSize(spec.Count)
	g = &Group{spec: spec}
	defer func() {
		if err != nil {
			g.kill()
			g = nil
		}
	}()

	var shmFile *os.File
	if w.sharedMemory() {
		fd, err := unix.MemfdCreate("ktstr-workload", unix.MFD_CLOEXEC)
		if err != nil {
			return g, fmt.Errorf("workload: memfd_create: %w", err)
		}
		shmFile = os.NewFile(uintptr(fd), "ktstr-workload")
		defer shmFile.Close()
		size := shmSize(spec.Count / gs)
		if err := unix.Ftruncate(fd, int64(size)); err != nil {
			return g, fmt.Errorf("workload: ftruncate memfd: %w", err)
		}
		if g.shm, err = unix.Mmap(fd, 0, size, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED); err != nil {
			return g, fmt.Errorf("workload: mmap memfd: %w", err)
		}
	}

	progFile, prog, err := mapProgress(spec.Count)
	if err != nil {
		return g, err
	}
	defer progFile.Close()
	g.prog = prog

	var sys *syscall.SysProcAttr
	if spec.CgroupDir != "" {
		fd, err := unix.Open(spec.CgroupDir, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
		if err != nil {
			return g, fmt.Errorf("workload: cgroup %s: %w", spec.CgroupDir, err)
		}
		defer unix.Close(fd)
		sys = &syscall.SysProcAttr{UseCgroupFD: true, CgroupFD: fd}
	}

	// Pipe pairs: worker 2k writes ab and reads ba; worker 2k+1 the reverse.
	var peer [2]*os.File // the odd worker's ends, kept until it starts
	defer func() { closeAll(peer[:]) }()

	for i := 0; i < spec.Count; i++ {
		cfg := workerConfig{
			Work: w, Index: i, Count: spec.Count, Group: i / gs, Role: i % gs,
			Name: spec.Name, Nice: spec.Nice, SetNice: spec.Nice != 0, Affinity: spec.Affinity,
			Domains: spec.Domains, Policy: spec.Policy, RTPriority: spec.RTPriority, CtlFD: 3, ReportFD: 4, ProgFD: 5, ProgSize: len(g.prog), ShmFD: -1, PipeRFD: -1, PipeWFD: -1,
		}
		if w.Type == NiceSweep {
			cfg.Nice, cfg.SetNice = w.NiceFor(i, spec.Count), true
		}
		if len(spec.Placement) > 0 {
			cfg.Affinity = spec.Placement[i%len(spec.Placement)]
		}
		extra := []*os.File{progFile}
		if shmFile != nil {
			cfg.ShmFD, cfg.ShmSize = 3+2+len(extra), len(g.shm)
			extra = append(extra, shmFile)
		}
		if w.Type == Pipe {
			if i%2 == 0 {
				ab, err := pipe()
				if err != nil {
					return g, err
				}
				ba, err := pipe()
				if err != nil {
					closeAll(ab[:])
					return g, err
				}
				extra = append(extra, ba[0], ab[1])
				peer = [2]*os.File{ab[0], ba[1]}
			} else {
				extra = append(extra, peer[0], peer[1])
				peer = [2]*os.File{}
			}
			cfg.PipeRFD, cfg.PipeWFD = 3+2+len(extra)-2, 3+2+len(extra)-1
		}
		p, err := g.start(cfg, sys, extra)
		if w.Type == Pipe {
			closeAll(extra[len(extra)-2:])
		}
		if err != nil {
			return g, fmt.Errorf("workload: start worker %d: %w", i, err)
		}
		g.workers = append(g.workers, p)
	}

	deadline := time.Now().Add(ReadyTimeout)
	for _, p := range g.workers {
		line, err := p.readLine(deadline)
		if err != nil || line != "ready" {
			msg := strings.TrimPrefix(line, "error: ")
			if err != nil {
				msg = err.Error()
			}
			if t := p.stderr.String(); t != "" {
				msg += "; stderr: " + t
			}
			return g, fmt.Errorf("workload: worker %d (pid %d) did not start: %s", p.index, p.cmd.Process.Pid, msg)
		}
	}
	g.release = monoNow()
	rel := binary.LittleEndian.AppendUint64([]byte{'g'}, g.release)
	for _, p := range g.workers {
		if _, err := p.ctl.Write(rel); err != nil {
			return g, fmt.Errorf("workload: release worker %d (pid %d): %w", p.index, p.cmd.Process.Pid, err)
		}
	}
	return g, nil
}

func pipe() ([2]*os.File, error) {
	var fds [2]int
	if err := unix.Pipe2(fds[:], unix.O_CLOEXEC); err != nil {
		return [2]*os.File{}, fmt.Errorf("workload: pipe: %w", err)
	}
	return [2]*os.File{os.NewFile(uintptr(fds[0]), "pipe-r"), os.NewFile(uintptr(fds[1]), "pipe-w")}, nil
}

func closeAll(fs []*os.File) {
	for _, f := range fs {
		if f != nil {
			f.Close()
		}
	}
}

// start starts one worker process. extra are the files after the control
// and report pipes (fd 5 on).
func (g *Group) start(cfg workerConfig, sys *syscall.SysProcAttr, extra []*os.File) (*proc, error) {
	ctlR, ctlW, err := os.Pipe()
	if err != nil {
		return nil, err
	}
	defer ctlR.Close()
	repR, repW, err := os.Pipe()
	if err != nil {
		ctlW.Close()
		return nil, err
	}
	defer repW.Close()
	arg, err := json.Marshal(cfg)
	if err != nil {
		ctlW.Close()
		repR.Close()
		return nil, err
	}
	p := &proc{index: cfg.Index, ctl: ctlW, report: repR, stderr: &tail{max: 4096}, done: make(chan struct{})}
	p.rd = bufio.NewReader(io.LimitReader(repR, maxReport))
	cmd := &exec.Cmd{
		Path:       "/proc/self/exe",
		Args:       []string{"ktstr-worker", workerArg, string(arg)},
		ExtraFiles: append([]*os.File{ctlR, repW}, extra...),
		// Explicit stdin and stdout: a nil one would make exec open
		// /dev/null, which a minimal guest may not have. Stdin is the
		// control pipe again (never read); stdout joins stderr.
		Stdin:       ctlR,
		Stdout:      p.stderr,
		Stderr:      p.stderr,
		SysProcAttr: sys,
		WaitDelay:   time.Second,
	}
	p.cmd = cmd
	if err := cmd.Start(); err != nil {
		ctlW.Close()
		repR.Close()
		return nil, err
	}
	go func() {
		p.waitErr = cmd.Wait()
		p.exitAt = time.Now()
		close(p.done)
	}()
	return p, nil
}

// readLine reads one line of the worker's report pipe before deadline.
func (p *proc) readLine(deadline time.Time) (string, error) {
	p.report.SetReadDeadline(deadline)
	line, err := p.rd.ReadString('\n')
	if err != nil {
		if errors.Is(err, os.ErrDeadlineExceeded) {
			return "", errors.New("no answer before the deadline")
		}
		if err == io.EOF {
			return "", errors.New("it exited")
		}
		return "", err
	}
	return strings.TrimSuffix(line, "\n"), nil
}

// PIDs returns the workers' process ids, in index order.
func (g *Group) PIDs() []int {
	out := make([]int, len(g.workers))
	for i, p := range g.workers {
		out[i] = p.cmd.Process.Pid
	}
	return out
}

// Stop tells every worker to finish, collects each one's Stats and reaps
// the processes. A worker that has not reported and exited within timeout
// is killed with SIGKILL (TimedOut); one that died earlier is reported with
// its exit status or signal. Stop always returns one Stats per worker, in
// index order; the error summarises the workers that did not end normally.
// Stop never waits much longer than timeout plus a few seconds for a
// process that survives SIGKILL (one in uninterruptible sleep).
func (g *Group) Stop(timeout time.Duration) ([]Stats, error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.stopped {
		return nil, ErrStopped
	}
	g.stopped = true
	stopAt := time.Now()
	if g.shm != nil {
		g.wakeAll()
	}
	for _, p := range g.workers {
		p.ctl.Close()
	}
	deadline := stopAt.Add(timeout)
	stats := make([]Stats, len(g.workers))
	var wg sync.WaitGroup
	for i, p := range g.workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			stats[i] = g.collect(p, stopAt, deadline)
		}()
	}
	wg.Wait()
	var bad []string
	for i := range stats {
		if s := &stats[i]; !s.OK() {
			bad = append(bad, fmt.Sprintf("worker %d (pid %d): %s", s.Index, s.PID, describe(s)))
		}
	}
	if g.spec.Work.Type == Mutex && len(bad) == 0 {
		bad = append(bad, g.checkMutex(stats)...)
	}
	for _, s := range stats {
		g.final += s.Iterations
	}
	g.unmap()

	if len(bad) > 0 {
		return stats, fmt.Errorf("workload: %d of %d workers did not end normally: %s", len(bad), len(stats), strings.Join(bad, "; "))
	}
	return stats, nil
}

// collect gathers one worker's report and exit status.
func (g *Group) collect(p *proc, stopAt, deadline time.Time) Stats {
	pid := p.cmd.Process.Pid
	s := Stats{Index: p.index, PID: pid, Type: g.spec.Work.Type, Name: g.spec.Name, TID: pid}
	line, rerr := p.readLine(deadline)
	if rerr == nil {
		var r Stats
		if err := json.Unmarshal([]byte(line), &r); err != nil {
			rerr = fmt.Errorf("bad report: %v", err)
		} else {
			s = r
			s.Index, s.PID, s.Type, s.Name = p.index, pid, g.spec.Work.Type, g.spec.Name
			s.Reported = true
		}
	}
	select {
	case <-p.done:
	case <-time.After(time.Until(deadline)):
		s.TimedOut = true
		p.cmd.Process.Signal(syscall.SIGKILL)
		select {
		case <-p.done:
		case <-time.After(killWait):
			s.Exited = true
			s.Error = joinErr(s.Error, "not reaped within "+killWait.String()+" of SIGKILL")
			return s
		}
	}
	st := p.cmd.ProcessState
	if st == nil {
		s.Exited = true
		s.Error = joinErr(s.Error, fmt.Sprintf("wait: %v", p.waitErr))
		return s
	}
	ws, _ := st.Sys().(syscall.WaitStatus)
	s.ExitCode = st.ExitCode()
	if ws.Signaled() {
		s.Signal = int(ws.Signal())
	}
	if s.ExitCode != 0 || s.Signal != 0 || (!s.Reported && p.exitAt.Before(stopAt)) {
		s.Exited = true
	}
	if !s.Reported && !s.TimedOut && rerr != nil && s.Signal == 0 {
		s.Error = joinErr(s.Error, "no report: "+rerr.Error())
	}
	if s.Exited {
		if t := p.stderr.String(); t != "" {
			s.Error = joinErr(s.Error, "stderr: "+t)
		}
	}
	return s
}

func joinErr(a, b string) string {
	if a == "" {
		return b
	}
	return a + "; " + b
}

// describe says in a few words why s is not OK.
func describe(s *Stats) string {
	var parts []string
	switch {
	case s.TimedOut:
		parts = append(parts, "did not stop in time, killed")
	case s.Signal != 0:
		parts = append(parts, "killed by "+unix.SignalName(syscall.Signal(s.Signal)))
	case s.Exited:
		parts = append(parts, fmt.Sprintf("exited with status %d", s.ExitCode))
	}
	if !s.Reported {
		parts = append(parts, "no stats")
	}
	if s.Error != "" {
		parts = append(parts, s.Error)
	}
	return strings.Join(parts, ", ")
}

// checkMutex compares each lock's counter, which its holders update
// non-atomically inside the lock, with the iterations its workers report: a
// difference means the lock did not exclude. Only meaningful when every
// worker ended normally.
func (g *Group) checkMutex(stats []Stats) []string {
	var bad []string
	gs := g.spec.Work.groupSize(g.spec.Count)
	for grp := 0; grp*gs < len(stats); grp++ {
		var sum uint64
		for _, s := range stats[grp*gs : (grp+1)*gs] {
			sum += s.Iterations
		}
		if n := atomic.LoadUint64(word64(g.shm, slotOff(grp)+offCount)); n != sum {
			bad = append(bad, fmt.Sprintf("mutex group %d: lock counter %d, iterations %d: the lock did not exclude", grp, n, sum))
		}
	}
	return bad
}

// wakeAll raises the stop word and wakes every futex word, so that workers
// blocked in futex waits see Stop at once instead of at their next timeout.
func (g *Group) wakeAll() {
	atomic.StoreUint32(word32(g.shm, offStop), 1)
	for off := slotSize; off+slotSize <= len(g.shm); off += slotSize {
		futexWake(word32(g.shm, off+offWordA), math.MaxInt32)
		futexWake(word32(g.shm, off+offWordB), math.MaxInt32)
	}
}

// unmap frees the parent's resources; the processes are gone or lost.
func (g *Group) unmap() {
	for _, p := range g.workers {
		p.ctl.Close()
		p.report.Close()
	}
	for _, m := range []*[]byte{&g.shm, &g.prog} {
		if *m != nil {
			unix.Munmap(*m)
			*m = nil
		}
	}
}

// kill ends every started worker at once and releases everything; Spawn's
// unwinding.
func (g *Group) kill() {
	for _, p := range g.workers {
		p.cmd.Process.Signal(syscall.SIGKILL)
	}
	for _, p := range g.workers {
		select {
		case <-p.done:
		case <-time.After(killWait):
		}
	}
	g.unmap()
}

// tail keeps the last max bytes written to it.
type tail struct {
	mu  sync.Mutex
	max int
	b   []byte
}

func (t *tail) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.b = append(t.b, p...)
	if len(t.b) > t.max {
		t.b = append(t.b[:0], t.b[len(t.b)-t.max:]...)
	}
	return len(p), nil
}

func (t *tail) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return strings.TrimSpace(string(t.b))
}
