package scenario

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
)

// Limits are a cgroup's controller settings, given when the cgroup is
// made ("limits" of a cgroup) or changed by a step (op set_limits). A
// field left out is not written. A setting whose controller the kernel
// lacks (no cpu.max without CONFIG_CFS_BANDWIDTH, no memory.* without
// CONFIG_MEMCG, no pids.max without CONFIG_CGROUP_PIDS) is skipped with
// a note, not failed: the scenario still tests what it can.
//
//	"limits": {"cpu_max": "50000 100000", "cpu_idle": true,
//	           "memory_max": "256M", "memory_high": "max", "pids_max": 64}
type Limits struct {
	// CPUMax is cpu.max: "max", "QUOTA" or "QUOTA PERIOD" in
	// microseconds (period 100000 when left out).
	CPUMax *CPUMax `json:"cpu_max,omitempty"`
	// CPUIdle is cpu.idle (SCHED_IDLE for the whole cgroup).
	CPUIdle *bool `json:"cpu_idle,omitempty"`
	// MemoryMax and MemoryHigh are memory.max and memory.high: a byte
	// count, a count with a K, M or G suffix, or "max".
	MemoryMax  *Amount `json:"memory_max,omitempty"`
	MemoryHigh *Amount `json:"memory_high,omitempty"`
	// PidsMax is pids.max: a count or "max".
	PidsMax *Amount `json:"pids_max,omitempty"`
}

// Setting is one controller file and the value to write.
type Setting struct{ File, Value string }

// Settings lists the files l writes, in a fixed order.
func (l *Limits) Settings() []Setting {
	if l == nil {
		return nil
	}
	var out []Setting
	if l.CPUMax != nil {
		out = append(out, Setting{"cpu.max", l.CPUMax.String()})
	}
	if l.CPUIdle != nil {
		out = append(out, Setting{"cpu.idle", map[bool]string{false: "0", true: "1"}[*l.CPUIdle]})
	}
	for _, a := range []struct {
		file string
		v    *Amount
	}{{"memory.max", l.MemoryMax}, {"memory.high", l.MemoryHigh}, {"pids.max", l.PidsMax}} {
		if a.v != nil {
			out = append(out, Setting{a.file, a.v.String()})
		}
	}
	return out
}

// UnmarshalJSON decodes the limits object; an empty one is an error (it
// would change nothing).
func (l *Limits) UnmarshalJSON(b []byte) error {
	var v Limits
	present, err := decodeObject(b, fields{"cpu_max": &v.CPUMax, "cpu_idle": &v.CPUIdle,
		"memory_max": &v.MemoryMax, "memory_high": &v.MemoryHigh, "pids_max": &v.PidsMax})
	if err != nil {
		return err
	}
	if len(present) == 0 {
		return errf("{}: want at least one of cpu_max, cpu_idle, memory_max, memory_high, pids_max")
	}
	*l = v
	return nil
}

// Controller settings' bounds.
const (
	MinCPUPeriodUS = 1000
	MaxCPUPeriodUS = 1000000
	MaxAmount      = 1 << 62
)

// CPUMax is a cpu.max setting: QuotaUS 0 is "max" (no limit).
type CPUMax struct {
	QuotaUS, PeriodUS int64
}

func (c CPUMax) String() string {
	q := "max"
	if c.QuotaUS > 0 {
		q = strconv.FormatInt(c.QuotaUS, 10)
	}
	return q + " " + strconv.FormatInt(c.PeriodUS, 10)
}

// UnmarshalJSON parses "max", "QUOTA" or "QUOTA PERIOD".
func (c *CPUMax) UnmarshalJSON(b []byte) error {
	const want = `want "max", "QUOTA" or "QUOTA PERIOD" in microseconds, quota 1000.. and period 1000..1000000`
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return errf("%s: %s", short(b), want)
	}
	f := strings.Fields(s)
	if len(f) == 0 || len(f) > 2 {
		return errf("%q: %s", s, want)
	}
	v := CPUMax{PeriodUS: 100000}
	if len(f) == 2 {
		p, err := strconv.ParseInt(f[1], 10, 64)
		if err != nil || p < MinCPUPeriodUS || p > MaxCPUPeriodUS {
			return errf("%q: %s", s, want)
		}
		v.PeriodUS = p
	}
	if f[0] != "max" {
		q, err := strconv.ParseInt(f[0], 10, 64)
		if err != nil || q < 1000 || q > MaxAmount {
			return errf("%q: %s", s, want)
		}
		v.QuotaUS = q
	}
	*c = v
	return nil
}

// MarshalJSON writes the cpu.max form.
func (c CPUMax) MarshalJSON() ([]byte, error) { return json.Marshal(c.String()) }

// Amount is a count or a byte size, or no limit ("max").
type Amount struct {
	N   uint64
	Max bool
}

func (a Amount) String() string {
	if a.Max {
		return "max"
	}
	return strconv.FormatUint(a.N, 10)
}

// UnmarshalJSON takes a number, "max", or a number with a K, M or G
// suffix (powers of 1024).
func (a *Amount) UnmarshalJSON(b []byte) error {
	const want = `want a count, "max", or a size like "64M" (K, M, G)`
	var n uint64
	if err := json.Unmarshal(b, &n); err == nil {
		if n > MaxAmount {
			return errf("%d: at most %d", n, uint64(MaxAmount))
		}
		*a = Amount{N: n}
		return nil
	}
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return errf("%s: %s", short(b), want)
	}
	if s == "max" {
		*a = Amount{Max: true}
		return nil
	}
	orig, mult := s, uint64(1)
	if k := strings.IndexAny(s, "KMG"); k >= 0 && k == len(s)-1 {
		mult = map[byte]uint64{'K': 1 << 10, 'M': 1 << 20, 'G': 1 << 30}[s[k]]
		s = s[:k]
	}
	v, err := strconv.ParseUint(s, 10, 64)
	if err != nil || v > MaxAmount/mult {
		return errf("%q: %s", orig, want)
	}
	*a = Amount{N: v * mult}
	return nil
}

// MarshalJSON writes a number or "max".
func (a Amount) MarshalJSON() ([]byte, error) {
	if a.Max {
		return json.Marshal("max")
	}
	return json.Marshal(a.N)
}

func (l *Limits) String() string {
	var parts []string
	for _, s := range l.Settings() {
		parts = append(parts, fmt.Sprintf("%s=%s", s.File, s.Value))
	}
	return strings.Join(parts, " ")
}
