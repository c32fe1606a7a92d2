package noise

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Schema is noise.json's version.
const Schema = 1

// File is the measurement's name in a run directory.
const File = "noise.json"

// maxFile bounds a noise.json that is read (252 vCPU threads take about
// 20 KiB).
const maxFile = 1 << 20

// ErrFile is the error of a noise.json that cannot be read.
var ErrFile = errors.New("noise: bad measurement")

// Measurement is what a Sampler saw: noise.json.
type Measurement struct {
	Schema   int      `json:"schema"`
	Backend  string   `json:"backend"`
	WindowNS int64    `json:"window_ns"`
	Threads  []Thread `json:"threads"`
	// PSISomeUS is how long, in the window, some task on the host waited
	// for a CPU (/proc/pressure/cpu); nil where PSI is not available.
	PSISomeUS *int64 `json:"psi_cpu_some_us,omitempty"`
}

// Thread is one vCPU thread's accounting over the window.
type Thread struct {
	Name    string `json:"name"`
	RunNS   int64  `json:"run_ns"`
	DelayNS int64  `json:"delay_ns"`
}

// Steal is the share, in percent, of the threads' runnable time (on a
// CPU or waiting for one) they spent waiting; ok is false when they were
// never runnable.
func (m Measurement) Steal() (pct float64, ok bool) {
	var run, delay int64
	for _, t := range m.Threads {
		run += t.RunNS
		delay += t.DelayNS
	}
	if run+delay <= 0 {
		return 0, false
	}
	return 100 * float64(delay) / float64(run+delay), true
}

// WorstSteal is the highest one thread's steal, in percent.
func (m Measurement) WorstSteal() float64 {
	w := 0.0
	for _, t := range m.Threads {
		if t.RunNS+t.DelayNS > 0 {
			w = max(w, 100*float64(t.DelayNS)/float64(t.RunNS+t.DelayNS))
		}
	}
	return w
}

// PSISome is the share of the window, in percent, in which some host
// task waited for a CPU; ok is false without PSI.
func (m Measurement) PSISome() (pct float64, ok bool) {
	if m.PSISomeUS == nil || m.WindowNS <= 0 {
		return 0, false
	}
	return min(100, 100*float64(*m.PSISomeUS)*1e3/float64(m.WindowNS)), true
}

// Read reads a noise.json, checking what it says.
func Read(r io.Reader) (Measurement, error) {
	b, err := io.ReadAll(io.LimitReader(r, maxFile+1))
	if err != nil {
		return Measurement{}, fmt.Errorf("%w: %v", ErrFile, err)
	}
	if len(b) > maxFile {
		return Measurement{}, fmt.Errorf("%w: larger than %d bytes", ErrFile, maxFile)
	}
	var m Measurement
	if err := json.Unmarshal(b, &m); err != nil {
		return Measurement{}, fmt.Errorf("%w: %v", ErrFile, err)
	}
	if m.Schema != Schema {
		return Measurement{}, fmt.Errorf("%w: schema %d, want %d", ErrFile, m.Schema, Schema)
	}
	if m.WindowNS < 0 || m.PSISomeUS != nil && *m.PSISomeUS < 0 {
		return Measurement{}, fmt.Errorf("%w: negative time", ErrFile)
	}
	for _, t := range m.Threads {
		// Each term below 2^62 keeps the sums from overflowing for any
		// number of threads a file can hold.
		if t.RunNS < 0 || t.DelayNS < 0 || t.RunNS > 1<<52 || t.DelayNS > 1<<52 {
			return Measurement{}, fmt.Errorf("%w: thread %q: run %d ns, delay %d ns", ErrFile, t.Name, t.RunNS, t.DelayNS)
		}
	}
	return m, nil
}

// Sampler follows a process's vCPU threads while a VM runs.
type Sampler struct {
	backend string
	proc    string // /proc
	pid     int
	match   func(comm string) bool
	start   time.Time
	psi0    *int64

	mu      sync.Mutex
	threads map[int]Thread // by thread id, the last reading
	last    time.Time
	psi1    *int64

	stop chan struct{}
	done chan struct{}
}

// VCPUThread matches QEMU's vCPU thread names ("CPU 0/TCG", "CPU 3/KVM").
func VCPUThread(comm string) bool {
	return strings.HasPrefix(comm, "CPU ") && (strings.HasSuffix(comm, "/TCG") || strings.HasSuffix(comm, "/KVM"))
}

// AnyThread matches every thread.
func AnyThread(string) bool { return true }

// Start samples pid's threads that match, every interval, until Stop.
// The threads' counts start at zero when they are created, so threads
// that pid creates after Start are measured whole.
func Start(backend string, pid int, match func(comm string) bool, interval time.Duration) *Sampler {
	return start("/proc", backend, pid, match, interval)
}

func start(proc, backend string, pid int, match func(string) bool, interval time.Duration) *Sampler {
	s := &Sampler{backend: backend, proc: proc, pid: pid, match: match, start: time.Now(),
		threads: map[int]Thread{}, stop: make(chan struct{}), done: make(chan struct{})}
	s.psi0 = readPSI(filepath.Join(proc, "pressure", "cpu"))
	s.sample()
	go func() {
		defer close(s.done)
		t := time.NewTicker(interval)
		defer t.Stop()
		for {
			select {
			case <-s.stop:
				return
			case <-t.C:
				s.sample()
			}
		}
	}()
	return s
}

// Sample reads the threads once more (before the process exits, when
// the caller can tell).
func (s *Sampler) Sample() { s.sample() }

func (s *Sampler) sample() {
	dir := filepath.Join(s.proc, strconv.Itoa(s.pid), "task")
	ents, err := os.ReadDir(dir)
	if err != nil {
		return // gone: the last reading stands
	}
	got := map[int]Thread{}
	for _, e := range ents {
		tid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		comm, err := os.ReadFile(filepath.Join(dir, e.Name(), "comm"))
		if err != nil || !s.match(strings.TrimSpace(string(comm))) {
			continue
		}
		run, delay, err := readSchedstat(filepath.Join(dir, e.Name(), "schedstat"))
		if err != nil {
			continue
		}
		got[tid] = Thread{Name: strings.TrimSpace(string(comm)), RunNS: run, DelayNS: delay}
	}
	psi := readPSI(filepath.Join(s.proc, "pressure", "cpu"))
	s.mu.Lock()
	defer s.mu.Unlock()
	for tid, t := range got {
		s.threads[tid] = t
	}
	s.last = time.Now()
	if psi != nil {
		s.psi1 = psi
	}
}

// Stop ends the sampling and returns the measurement: every matching
// thread's last reading, over the window from Start to the last sample.
func (s *Sampler) Stop() Measurement {
	close(s.stop)
	<-s.done
	s.mu.Lock()
	defer s.mu.Unlock()
	m := Measurement{Schema: Schema, Backend: s.backend, WindowNS: s.last.Sub(s.start).Nanoseconds(), Threads: []Thread{}}
	tids := make([]int, 0, len(s.threads))
	for tid := range s.threads {
		tids = append(tids, tid)
	}
	// Thread ids grow in creation order: vCPU 0 first.
	slices.Sort(tids)
	for _, tid := range tids {
		m.Threads = append(m.Threads, s.threads[tid])
	}
	if s.psi0 != nil && s.psi1 != nil && *s.psi1 >= *s.psi0 {
		d := *s.psi1 - *s.psi0
		m.PSISomeUS = &d
	}
	return m
}

// readSchedstat reads "run_ns delay_ns slices".
func readSchedstat(path string) (run, delay int64, err error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, 0, err
	}
	f := strings.Fields(string(b))
	if len(f) < 2 {
		return 0, 0, fmt.Errorf("%s: %q", path, b)
	}
	if run, err = strconv.ParseInt(f[0], 10, 64); err != nil {
		return 0, 0, err
	}
	delay, err = strconv.ParseInt(f[1], 10, 64)
	return run, delay, err
}

// readPSI reads the "some" line's total (µs) of a pressure file; nil
// when there is none.
func readPSI(path string) *int64 {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil
	}
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) == 0 || f[0] != "some" {
			continue
		}
		for _, kv := range f[1:] {
			if v, ok := strings.CutPrefix(kv, "total="); ok {
				if n, err := strconv.ParseInt(v, 10, 64); err == nil {
					return &n
				}
			}
		}
	}
	return nil
}

// Write writes m as noise.json to w.
func (m Measurement) Write(w io.Writer) error {
	b, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return err
	}
	_, err = w.Write(append(b, '\n'))
	return err
}
