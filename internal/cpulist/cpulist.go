// Package cpulist reads and writes the kernel's CPU list format
// ("0-3,5,7-8"), as sysfs prints it and cpuset.cpus takes it.
package cpulist

import (
	"fmt"
	"sort"
	"strconv"
	"strings"
)

// Max bounds CPU numbers in lists.
const Max = 8191

// Parse parses a list into sorted, distinct CPU numbers; "" is an empty
// list.
func Parse(s string) ([]int, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return nil, nil
	}
	parts := strings.Split(s, ",")
	if len(parts) > Max+1 {
		return nil, fmt.Errorf("cpu list: %d parts, more than CPUs can exist", len(parts))
	}
	seen := map[int]bool{}
	for _, part := range parts {
		a, b, isRange := strings.Cut(strings.TrimSpace(part), "-")
		lo, err := strconv.Atoi(a)
		if err != nil || lo < 0 || lo > Max {
			return nil, fmt.Errorf("cpu list %q: bad CPU %q", s, a)
		}
		hi := lo
		if isRange {
			hi, err = strconv.Atoi(b)
			if err != nil || hi < lo || hi > Max {
				return nil, fmt.Errorf("cpu list %q: bad range %q", s, part)
			}
		}
		for c := lo; c <= hi; c++ {
			seen[c] = true
		}
	}
	out := make([]int, 0, len(seen))
	for c := range seen {
		out = append(out, c)
	}
	sort.Ints(out)
	return out, nil
}

// Format writes sorted CPUs in the list format.
func Format(cpus []int) string {
	var b strings.Builder
	for i := 0; i < len(cpus); {
		j := i
		for j+1 < len(cpus) && cpus[j+1] == cpus[j]+1 {
			j++
		}
		if b.Len() > 0 {
			b.WriteByte(',')
		}
		if j == i {
			fmt.Fprintf(&b, "%d", cpus[i])
		} else {
			fmt.Fprintf(&b, "%d-%d", cpus[i], cpus[j])
		}
		i = j + 1
	}
	return b.String()
}
