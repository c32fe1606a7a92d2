package workload

import (
	"os"
	"slices"
	"testing"
)

func readDoc(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile("doc.go")
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestParseSchedstat(t *testing.T) {
	tests := []struct {
		in               string
		run, wait, slice uint64
		ok               bool
	}{
		{"4348759 3619679 2\n", 4348759, 3619679, 2, true},
		{"0 0 0", 0, 0, 0, true},
		{"18446744073709551615 1 1\n", 1<<64 - 1, 1, 1, true},
		{"1 2\n", 0, 0, 0, false},
		{"", 0, 0, 0, false},
		{"1 x 3\n", 0, 0, 0, false},
		{"-1 2 3\n", 0, 0, 0, false},
	}
	for _, tt := range tests {
		run, wait, slices, err := parseSchedstat([]byte(tt.in))
		if (err == nil) != tt.ok || run != tt.run || wait != tt.wait || slices != tt.slice {
			t.Errorf("parseSchedstat(%q) = %d, %d, %d, %v; want %d, %d, %d, ok=%v", tt.in, run, wait, slices, err, tt.run, tt.wait, tt.slice, tt.ok)
		}
	}
}

const sampleSched = `head (28726, #threads: 1)
-------------------------------------------------------------------
se.exec_start                                :       1006765.451838
se.sum_exec_runtime                          :             5.571413
se.nr_migrations                             :                    17
nr_switches                                  :                    2
`

const sampleStatus = "Name:\thead\nvoluntary_ctxt_switches:\t12\nnonvoluntary_ctxt_switches:\t3\n"

func TestParseKeyed(t *testing.T) {
	tests := []struct {
		in, key string
		want    uint64
		ok      bool
	}{
		{sampleSched, "se.nr_migrations", 17, true},
		{sampleSched, "se.exec_start", 1006765, true},
		{sampleSched, "nr_switches", 2, true},
		{sampleSched, "se.nr", 0, false},
		{sampleSched, "missing", 0, false},
		{sampleStatus, "voluntary_ctxt_switches", 12, true},
		{sampleStatus, "nonvoluntary_ctxt_switches", 3, true},
		{"processes 12345\nprocs_running 2\n", "processes", 12345, true},
		{"key: -5\n", "key", 0, false},
		{"key:", "key", 0, false},
		{"", "key", 0, false},
	}
	for _, tt := range tests {
		got, ok := parseKeyed([]byte(tt.in), tt.key)
		if got != tt.want || ok != tt.ok {
			t.Errorf("parseKeyed(%.20q, %q) = %d, %v; want %d, %v", tt.in, tt.key, got, ok, tt.want, tt.ok)
		}
	}
}

func TestCPUBits(t *testing.T) {
	var s cpuBits
	for _, c := range []int{5, 1, 200, 5, -1, 63, 64} {
		s.add(c)
	}
	if got, want := s.list(), []int{1, 5, 63, 64, 200}; !slices.Equal(got, want) {
		t.Errorf("list() = %v, want %v", got, want)
	}
	if got := (cpuBits{}).list(); got == nil || len(got) != 0 {
		t.Errorf("empty list() = %#v, want non-nil empty (JSON [])", got)
	}
}

func FuzzParseSchedstat(f *testing.F) {
	f.Add([]byte("4348759 3619679 2\n"))
	f.Add([]byte("1 2"))
	f.Add([]byte(""))
	f.Fuzz(func(t *testing.T, b []byte) {
		run, wait, slices, err := parseSchedstat(b)
		if err != nil && (run != 0 || wait != 0 || slices != 0) {
			t.Errorf("parseSchedstat(%q) = %d, %d, %d with error %v", b, run, wait, slices, err)
		}
	})
}

func FuzzParseKeyed(f *testing.F) {
	f.Add([]byte(sampleSched), "se.nr_migrations")
	f.Add([]byte(sampleStatus), "voluntary_ctxt_switches")
	f.Add([]byte("k:\t\t9.5\n"), "k")
	f.Fuzz(func(t *testing.T, b []byte, key string) {
		v, ok := parseKeyed(b, key)
		if !ok && v != 0 {
			t.Errorf("parseKeyed(%q, %q) = %d, false", b, key, v)
		}
	})
}
