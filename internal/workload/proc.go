package workload

import (
	"bytes"
	"errors"
	"strconv"
	"strings"
)

// errProcFormat is returned by the /proc parsers for text they do not
// understand.
var errProcFormat = errors.New("workload: unexpected /proc format")

// parseSchedstat parses /proc/<pid>/task/<tid>/schedstat: three decimal
// numbers, the time on CPU (ns), the time waiting on a run queue (ns) and
// the number of time slices run.
func parseSchedstat(b []byte) (run, wait, slices uint64, err error) {
	f := bytes.Fields(b)
	if len(f) < 3 {
		return 0, 0, 0, errProcFormat
	}
	var v [3]uint64
	for i := range v {
		if v[i], err = strconv.ParseUint(string(f[i]), 10, 64); err != nil {
			return 0, 0, 0, errProcFormat
		}
	}
	return v[0], v[1], v[2], nil
}

// parseKeyed finds "key<sep>value" in line-oriented /proc text, where the
// separator is any run of spaces, tabs and colons (both /proc/PID/status,
// "key:\tvalue", and /proc/PID/sched, "key   :   value", use it), and
// returns the value as an unsigned integer. A fractional value
// ("12.345678") is truncated to its integer part.
func parseKeyed(b []byte, key string) (uint64, bool) {
	for len(b) > 0 {
		line := b
		if i := bytes.IndexByte(b, '\n'); i >= 0 {
			line, b = b[:i], b[i+1:]
		} else {
			b = nil
		}
		rest, ok := bytes.CutPrefix(line, []byte(key))
		if !ok || len(rest) == 0 || !isSep(rest[0]) {
			continue
		}
		rest = bytes.TrimLeft(rest, " \t:")
		if i := bytes.IndexAny(rest, ". \t"); i >= 0 {
			rest = rest[:i]
		}
		v, err := strconv.ParseUint(string(rest), 10, 64)
		if err != nil {
			return 0, false
		}
		return v, true
	}
	return 0, false
}

func isSep(c byte) bool { return c == ' ' || c == '\t' || c == ':' }

// cpuBits is a set of CPU numbers that grows as needed.
type cpuBits []uint64

func (s *cpuBits) add(cpu int) {
	if cpu < 0 {
		return
	}
	w := cpu / 64
	if w >= len(*s) {
		*s = append(*s, make([]uint64, w+1-len(*s))...)
	}
	(*s)[w] |= 1 << (cpu % 64)
}

func (s cpuBits) list() []int {
	out := []int{}
	for w, bits := range s {
		for b := 0; b < 64; b++ {
			if bits&(1<<b) != 0 {
				out = append(out, w*64+b)
			}
		}
	}
	return out
}

// countNodePages sums the "N<node>=<pages>" fields of the anonymous
// mappings in numa_maps (lines with anon= and no file=: the memory the
// task allocated, which its cpuset.mems places; the binary's and
// libraries' page cache is wherever the first reader put it): all of
// them, and those of nodes.
func countNodePages(b []byte, nodes map[int]bool) (pages, local uint64) {
	for _, line := range strings.Split(string(b), "\n") {
		if !strings.Contains(line, " anon=") || strings.Contains(line, " file=") {
			continue
		}
		for _, f := range strings.Fields(line) {
			if len(f) < 4 || f[0] != 'N' {
				continue
			}
			k, v, ok := strings.Cut(f[1:], "=")
			if !ok {
				continue
			}
			node, err1 := strconv.Atoi(k)
			n, err2 := strconv.ParseUint(v, 10, 64)
			if err1 != nil || err2 != nil {
				continue
			}
			pages += n
			if nodes[node] {
				local += n
			}
		}
	}
	return pages, local
}
