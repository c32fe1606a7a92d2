package noise

import (
	"bytes"
	"errors"
	"math"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"
)

func i64(v int64) *int64 { return &v }

func TestSteal(t *testing.T) {
	tests := []struct {
		name       string
		m          Measurement
		steal      float64
		ok         bool
		worst, psi float64
		psiOK      bool
	}{
		{"idle vCPUs", Measurement{WindowNS: 1e9, Threads: []Thread{{"CPU 0/TCG", 0, 0}}}, 0, false, 0, 0, false},
		{"no wait", Measurement{WindowNS: 1e9, Threads: []Thread{{"CPU 0/TCG", 9e8, 0}, {"CPU 1/TCG", 5e8, 0}}}, 0, true, 0, 0, false},
		{"half", Measurement{WindowNS: 2e9, Threads: []Thread{{"CPU 0/TCG", 1e9, 1e9}, {"CPU 1/TCG", 1e9, 1e9}}, PSISomeUS: i64(5e5)}, 50, true, 50, 25, true},
		{"one starved", Measurement{WindowNS: 1e9, Threads: []Thread{{"CPU 0/TCG", 3e8, 7e8}, {"CPU 1/TCG", 1e9, 0}}, PSISomeUS: i64(5e6)}, 35, true, 70, 100, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s, ok := tc.m.Steal()
			if ok != tc.ok || math.Abs(s-tc.steal) > 1e-9 {
				t.Errorf("Steal() = %v, %v; want %v, %v", s, ok, tc.steal, tc.ok)
			}
			if w := tc.m.WorstSteal(); math.Abs(w-tc.worst) > 1e-9 {
				t.Errorf("WorstSteal() = %v, want %v", w, tc.worst)
			}
			if p, ok := tc.m.PSISome(); ok != tc.psiOK || math.Abs(p-tc.psi) > 1e-9 {
				t.Errorf("PSISome() = %v, %v; want %v, %v", p, ok, tc.psi, tc.psiOK)
			}
		})
	}
}

func TestReadRoundTrip(t *testing.T) {
	m := Measurement{Schema: Schema, Backend: "qemu", WindowNS: 5e9, Threads: []Thread{{"CPU 0/TCG", 4e9, 1e9}}, PSISomeUS: i64(123)}
	var b bytes.Buffer
	if err := m.Write(&b); err != nil {
		t.Fatal(err)
	}
	got, err := Read(&b)
	if err != nil || got.Backend != "qemu" || got.WindowNS != 5e9 || len(got.Threads) != 1 || got.Threads[0] != m.Threads[0] || *got.PSISomeUS != 123 {
		t.Fatalf("Read(Write(m)) = %+v, %v", got, err)
	}
}

func TestReadRejects(t *testing.T) {
	bad := map[string]string{
		"not json":       "{",
		"schema":         `{"schema": 2, "threads": []}`,
		"negative delay": `{"schema": 1, "threads": [{"name": "x", "run_ns": 1, "delay_ns": -1}]}`,
		"huge run":       `{"schema": 1, "threads": [{"name": "x", "run_ns": 9000000000000000000, "delay_ns": 1}]}`,
		"negative psi":   `{"schema": 1, "threads": [], "psi_cpu_some_us": -5}`,
		"negative win":   `{"schema": 1, "window_ns": -5, "threads": []}`,
		"too large":      `{"schema": 1, "backend": "` + strings.Repeat("x", maxFile) + `"}`,
	}
	for name, text := range bad {
		if _, err := Read(strings.NewReader(text)); !errors.Is(err, ErrFile) {
			t.Errorf("%s: Read = %v, want ErrFile", name, err)
		}
	}
}

// TestSamplerFakeProc samples a /proc tree laid out as the kernel's: only
// the matching threads count, the last reading of a thread that went away
// stays, and the PSI total is the difference between start and end.
func TestSamplerFakeProc(t *testing.T) {
	proc := t.TempDir()
	write := func(rel, text string) {
		p := filepath.Join(proc, rel)
		os.MkdirAll(filepath.Dir(p), 0o755)
		if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	psi := func(total int) {
		write("pressure/cpu", "some avg10=1.00 avg60=0.50 avg300=0.10 total="+itoa(total)+"\nfull avg10=0.00 avg60=0.00 avg300=0.00 total=0\n")
	}
	thread := func(tid int, comm string, run, delay int) {
		write("42/task/"+itoa(tid)+"/comm", comm+"\n")
		write("42/task/"+itoa(tid)+"/schedstat", itoa(run)+" "+itoa(delay)+" 7\n")
	}
	psi(1000)
	thread(42, "qemu-system-x86", 100, 100)
	thread(43, "CPU 0/TCG", 10, 1)
	s := start(proc, "qemu", 42, VCPUThread, time.Hour)
	thread(43, "CPU 0/TCG", 900, 100)
	thread(44, "CPU 1/TCG", 600, 400)
	psi(4000)
	s.Sample()
	os.RemoveAll(filepath.Join(proc, "42/task/44")) // the thread ended
	s.Sample()
	m := s.Stop()
	if len(m.Threads) != 2 || m.Threads[0] != (Thread{"CPU 0/TCG", 900, 100}) || m.Threads[1] != (Thread{"CPU 1/TCG", 600, 400}) {
		t.Errorf("threads %+v, want CPU 0 900/100 and CPU 1 600/400", m.Threads)
	}
	if m.PSISomeUS == nil || *m.PSISomeUS != 3000 {
		t.Errorf("PSI some %v, want 3000", m.PSISomeUS)
	}
	if st, _ := m.Steal(); math.Abs(st-25) > 1e-9 {
		t.Errorf("steal %v%%, want 25", st)
	}
}

// TestSamplerSelf samples this process's real threads while one of them
// spins: the kernel's accounting shows run time.
func TestSamplerSelf(t *testing.T) {
	s := Start("test", os.Getpid(), AnyThread, 10*time.Millisecond)
	stop := time.Now().Add(200 * time.Millisecond)
	runtime.LockOSThread()
	for time.Now().Before(stop) {
	}
	runtime.UnlockOSThread()
	s.Sample()
	m := s.Stop()
	var run int64
	for _, th := range m.Threads {
		run += th.RunNS
	}
	if len(m.Threads) == 0 || run <= 0 || m.WindowNS <= 0 {
		t.Fatalf("measurement %+v: want threads with run time", m)
	}
}

func itoa(n int) string { return strconv.Itoa(n) }
